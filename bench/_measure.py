"""Shared by the benchmarks: run a command in its own process and report its wall time and peak memory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_MEASURE = (
    "import resource, subprocess, sys, time; t = time.perf_counter(); subprocess.run(sys.argv[1:], check=True); "
    "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def child(cmd: list[str]) -> tuple[float, float]:
    """Run `cmd` under its own small parent, so the peak RSS reported is that command's alone.
    Returns (wall seconds, peak RSS in GiB)."""
    out = subprocess.run([sys.executable, "-c", _MEASURE, *cmd], check=True, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    wall, kib = out.stdout.split()[-2:]
    return float(wall), int(kib) / 2**20


def scale_params(students: int, folder: Path) -> tuple[Path, Path]:
    """params.yaml as it is, at `students` simulated students in bench/out/edm_scale_<n>/ (EDM Cup files, read
    by the `synthetic` source: the EDM Cup adapter, and the simulate stage writes them only for that source),
    written to folder/params.yaml. Returns (that params file, the raw folder)."""
    import yaml

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["simulate"]["n_students"] = students
    raw = ROOT / "bench" / "out" / f"edm_scale_{students}"
    params["data"] |= {"source": "synthetic", "raw_dir": str(raw)}
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / "params.yaml"
    p.write_text(yaml.safe_dump(params, sort_keys=False))
    return p, raw
