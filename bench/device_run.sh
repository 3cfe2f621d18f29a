#!/usr/bin/env bash
# The one prepared run for a machine with a GPU (README, "Using a GPU"): at once, on the same GPU,
#  - bench/device_check.py: SAKT's and WD-IRT's training at EDM-Cup scale (35,000 students) with device auto;
#  - bench/kt_benchmark.py: pyKT's DKT, SAKT, simpleKT and AKT on all 5 folds of the 2,000-student skill_builder
#    world, leakage controls included, at pyKT's own training settings bounded by --max-epochs (default 100),
#    one process per model and fold.
# Everything lands in OUT (default bench/out/device_run): device_check.json, kt_benchmark_gpu.json (merge it
# into bench/results/kt_benchmark.json with `python bench/kt_benchmark_merge.py`), and the logs.
#     bash bench/device_run.sh OUT [SECONDS]   # SECONDS: stop whatever still runs after this long (default 480)
# Environment: MODELS (default "akt simplekt sakt dkt"), FOLDS ("0 1 2 3 4"), PAR (processes at once, 10),
# MAX_EPOCHS (100), SKIP_CHECK=1 (no device_check). Measured on one H200: DKT, SAKT and simpleKT with their
# controls finish all folds in under 8 minutes; AKT at pyKT's lr 1e-5 needs more than 215 s a fold, and
# device_check's WD-IRT (its final item bank on the CPU) more than 440 s: give them a longer SECONDS.
# A machine without pykt-toolkit, pydantic or kt-audit needs them first (requirements-dev.txt).
set -u
OUT=${1:-bench/out/device_run}
LIMIT=${2:-480}
mkdir -p "$OUT/logs"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$OUT/logs/gpu.txt" 2>&1
python -c "import torch, numpy, pandas, pyarrow; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), \
'numpy', numpy.__version__, 'pandas', pandas.__version__, 'pyarrow', pyarrow.__version__)" >> "$OUT/logs/gpu.txt" 2>&1
[ -n "${SKIP_CHECK:-}" ] || timeout "$LIMIT" python bench/device_check.py --threads 6 --out "$OUT/device_check.json" > "$OUT/logs/device_check.log" 2>&1 &
for m in ${MODELS:-akt simplekt sakt dkt}; do for f in ${FOLDS:-0 1 2 3 4}; do echo "$m $f"; done; done |
  xargs -P ${PAR:-10} -n 2 sh -c 'timeout '"$LIMIT"' python bench/kt_benchmark.py --world skill_builder --students 2000 \
    --models "$0" --folds-to-run "$1" --max-epochs '"${MAX_EPOCHS:-100}"' --patience 10 --threads 1 \
    --results '"$OUT"'/kt_benchmark_gpu.json --out-dir '"$OUT"'/audit > '"$OUT"'/logs/kt_$0_$1.log 2>&1; \
    echo "$0 fold $1: exit $?" >> '"$OUT"'/logs/kt_exits.txt'
wait
tar czf "$OUT/logs.tgz" -C "$OUT" logs && rm -rf "$OUT/logs" "$OUT/audit"
