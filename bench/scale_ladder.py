"""The scale ladder: the whole pipeline at 35,000, 70,000 and 140,000 students (about 26, 52 and 104 M action
rows), each stage in its own process, its wall time and peak memory per step, and how cost grows: per stage,
the least-squares line through the steps (seconds and GiB per million action rows) and what it gives at EdNet
KT1's size (784,309 students). Training stages run one epoch at every step (their cost is per epoch), and each of
WD-IRT's two calibrations at most CALIBRATION_SWEEPS block-Newton sweeps (their cost is per sweep: on the default
they settle in about 47; at 140,000 students the loss moves by less than 1e-6 a sweep for a hundred more).

Everything but the size, the epochs and the sweeps is params.yaml as it is; each step simulates its own world
(timed, under bench/out/ladder/<n>/, removed after the step unless --keep). Each stage judged by its time per row
runs twice in a row (TIMED_TWICE): its time is the faster run, its peak the higher, both runs kept. A stage that
fails (say, killed out of memory) is recorded as failed with its exit status, and the stages after it in that step are skipped. Results
go to bench/results/scale_ladder.json after every stage, so a long run that is stopped keeps what it measured.

    python bench/scale_ladder.py                         # 35k, 70k, 140k
    python bench/scale_ladder.py --steps 2000,4000       # a quick look
    python bench/scale_ladder.py --steps 140000 --from-stage train_sakt   # rerun a kept step's later stages
    python bench/scale_ladder.py --steps 35000,140000 --only train_sakt    # or just some of them
    python bench/scale_ladder.py --layout ednet_kt1 --steps 35000,140000  # the data stages on EdNet KT1's files
"""

from __future__ import annotations

import json
import logging
import platform
import shutil
import subprocess
from pathlib import Path

import click
import numpy as np
import yaml
from _measure import ROOT, child, scale_params
from pipeline_scale import _stage_commands

log = logging.getLogger("bench.scale_ladder")

CALIBRATION_SWEEPS = 50
EDNET_STUDENTS = 784_309
RESULTS = ROOT / "bench" / "results" / "scale_ladder.json"


LAYOUTS = {"edm_cup": {}, "ednet_kt1": {"simulate": {"profile": "ednet_kt1"}, "data": {"source": "ednet_kt1", "part_mb": 64}}}
"""what each layout changes in a step's params.yaml: EDM Cup's files (the whole pipeline) or EdNet KT1's one file
per student (the data stages; 64 MB parts suit its shorter rows, README)"""
DATA_STAGES = ("simulate", "prepare", "split", "pykt_adapt")
TIMED_TWICE = DATA_STAGES + ("export", "blend", "validate_join", "report")
"""the stages whose time per row the ladder judges: each runs twice in a row, its wall time the faster run (a
disturbance on a shared machine only ever adds time), its peak the higher; both runs are kept in `runs`"""


@click.command()
@click.option("--steps", default="35000,70000,140000", show_default=True, help="students per step, comma-separated")
@click.option("--results", "results_path", default=str(RESULTS), show_default=True)
@click.option("--keep", is_flag=True, help="keep each step's simulation and outputs")
@click.option("--from-stage", default=None, help="rerun each step's stages from this one on, in the folder a run left "
              "(--keep, or a run that was stopped), keeping the earlier stages' figures in the results file")
@click.option("--only", default=None, help="rerun just these stages (comma-separated) of each step, in the folder a run "
              "left, keeping the other figures")
@click.option("--layout", type=click.Choice(list(LAYOUTS)), default="edm_cup", show_default=True,
              help="ednet_kt1: the same worlds as EdNet KT1's files, through the data stages only; its figures go "
                   "under the results' `ednet_kt1_layout`, beside the rest")
def main(steps: str, results_path: str, keep: bool, from_stage: str | None, only: str | None, layout: str) -> None:
    """Run the pipeline at each step's size, each stage in its own process; write each stage's wall time and peak
    memory per step, and per stage the slope and the extrapolation to EdNet KT1's 784,309 students."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sizes = [int(s) for s in steps.split(",") if s.strip()]
    results = Path(results_path)
    rerun = [from_stage] if from_stage else only.split(",") if only else None
    out = json.loads(results.read_text()) if results.exists() else {}  # the other layout's figures are kept
    out |= {"machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores, {_mem_gib():.0f} GiB",
            "epochs_per_training_stage": 1, "calibration_sweeps": CALIBRATION_SWEEPS}
    ladder = out if layout == "edm_cup" else out.setdefault(f"{layout}_layout", {})
    if not rerun:
        ladder["steps"] = {}  # a whole run: this layout's figures are all its own
    ladder.setdefault("steps", {})
    for n in sizes:
        _step(n, ladder, lambda: _write(out, results), keep or bool(rerun), rerun, bool(from_stage), layout)
        ladder["growth"] = growth(ladder["steps"])
        _write(out, results)
    _print(ladder)


def _step(n: int, ladder: dict, save, keep: bool, rerun: list[str] | None, onwards: bool, layout: str) -> None:
    """One step into ladder["steps"]: every stage at n students (simulate included, into a fresh folder); with
    `rerun`, those stages (and with `onwards` every later one), in the folder an earlier run left (the step's
    other figures kept). `save()` writes the results after each stage."""
    w = ROOT / "bench" / "out" / "ladder" / (str(n) if layout == "edm_cup" else f"{layout}_{n}")
    if rerun and not (w / "interim" / "events.parquet").exists():
        raise click.UsageError(f"{w} holds no earlier run of this step to rerun stages in")
    if not rerun:
        shutil.rmtree(w, ignore_errors=True)
    p, raw = _step_params(n, w, layout)
    step = ladder["steps"].get(str(n), {}) if rerun else {}
    step |= {"students": n, "stages": step.get("stages", {})}
    ladder["steps"][str(n)] = step
    commands = [c for c in _stage_commands(w, p, raw) if layout == "edm_cup" or c[0] in DATA_STAGES]
    names = [name for name, _, _ in commands]
    if rerun and set(rerun) - set(names):
        raise click.BadParameter(f"not one of {', '.join(names)}", param_hint="--from-stage / --only")
    chosen = names[names.index(rerun[0]):] if onwards else rerun or names
    if rerun:
        step.setdefault("rerun", []).append(chosen)
    for name, cmd, metrics_name in (c for c in commands if c[0] in chosen):
        log.info("%d students: running %s", n, name)
        try:
            runs = [child([str(c) for c in cmd]) for _ in range(2 if name in TIMED_TWICE else 1)]
            wall, gib = min(r[0] for r in runs), max(r[1] for r in runs)
            step["stages"][name] = {"wall_s": round(wall, 1), "peak_gib": round(gib, 3)} | _phases(w, metrics_name)
            if len(runs) > 1:
                step["stages"][name]["runs"] = [[round(r[0], 1), round(r[1], 3)] for r in runs]
        except subprocess.CalledProcessError as exc:
            step["stages"][name] = {"failed": f"exit status {exc.returncode}"}
            log.error("%d students: %s failed (%s); the step's later stages are skipped", n, name, exc.returncode)
            break
        if name == "simulate":
            step["action_rows"] = _raw_rows(raw)
        if name == "prepare":
            step["events"] = json.loads((w / "prepare.json").read_text())["events"]
        save()
    if not keep:
        shutil.rmtree(w, ignore_errors=True)


def _step_params(n: int, w: Path, layout: str) -> tuple[Path, Path]:
    """params.yaml as it is at n students, one epoch per training stage, CALIBRATION_SWEEPS at most per calibration,
    in `layout`: (its path, the raw folder)."""
    p, _ = scale_params(n, w)
    raw = w / "raw"
    params = yaml.safe_load(p.read_text())
    params["data"]["raw_dir"] = str(raw)
    params["train"]["epochs"] = params["wdirt"]["epochs"] = params["dkt"]["epochs"] = 1
    params["wdirt"]["calibration_sweeps"] = CALIBRATION_SWEEPS
    for section, values in LAYOUTS[layout].items():
        params[section] |= values
    p.write_text(yaml.safe_dump(params, sort_keys=False))
    return p, raw


def _raw_rows(raw: Path) -> int:
    """The rows of the raw log: EDM Cup's action_logs.csv, or every EdNet KT1 file under KT1/ (headers left out)."""
    files = [raw / "action_logs.csv"] if (raw / "action_logs.csv").exists() else sorted((raw / "KT1").glob("*.csv"))
    rows = 0
    for path in files:
        with open(path, "rb") as f:
            rows += sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 24), b"")) - 1
    return rows


def _phases(w: Path, metrics_name: str | None) -> dict:
    """A stage's own profile, where it writes one (`train_wdirt`'s phases: seconds and the peak memory when each
    ended, ktirt.timings.Phases): which part of the stage sets its peak."""
    path = w / f"{metrics_name}_timings.json"
    if not metrics_name or not path.exists():
        return {}
    profile = json.loads(path.read_text())
    names = [k.removesuffix("_peak_gib") for k in profile if k.endswith("_peak_gib")]
    phases = {n: {"seconds": profile.get(f"{n}_seconds"), "peak_gib": profile[f"{n}_peak_gib"]} for n in names}
    return {"phases": phases} if phases else {}


def growth(steps: dict) -> dict:
    """Per stage measured at two or more steps: seconds and GiB per million action rows (least squares), the
    largest step's wall time per row against the smallest's, its peak against the smallest's, and the line's
    value at EdNet KT1's 784,309 students (action rows scaled by students from the largest step)."""
    done = [s for s in steps.values() if "action_rows" in s]
    if len(done) < 2:
        return {}
    rows_per_student = done[-1]["action_rows"] / done[-1]["students"]
    ednet_rows = EDNET_STUDENTS * rows_per_student
    out = {"ednet_kt1": {"students": EDNET_STUDENTS, "action_rows_assumed": int(ednet_rows)}}
    for name in done[0]["stages"]:
        pts = [(s["action_rows"], s["stages"][name]) for s in done if "wall_s" in s["stages"].get(name, {})]
        if len(pts) < 2:
            continue
        x = np.array([r for r, _ in pts], float) / 1e6
        wall, peak = (np.array([m[k] for _, m in pts]) for k in ("wall_s", "peak_gib"))
        (ws, wi), (ps, pi) = np.polyfit(x, wall, 1), np.polyfit(x, peak, 1)
        out[name] = {"s_per_m_rows": round(float(ws), 3), "gib_per_m_rows": round(float(ps), 4),
                     "time_per_row_ratio": round(float((wall[-1] / x[-1]) / (wall[0] / x[0])), 3),
                     "peak_ratio": round(float(peak[-1] / peak[0]), 3),
                     "ednet_wall_s": round(float(wi + ws * ednet_rows / 1e6), 0),
                     "ednet_peak_gib": round(float(pi + ps * ednet_rows / 1e6), 1)}
    return out


def _mem_gib() -> float:
    with open("/proc/meminfo") as f:
        return int(f.readline().split()[1]) / 2**20


def _write(out: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1) + "\n")


def _print(out: dict) -> None:
    sizes = list(out["steps"])
    names = list(next(iter(out["steps"].values()))["stages"])
    print(f"{'stage':16}" + "".join(f"{n + ' students':>26}" for n in sizes))
    for name in names:
        cells = []
        for n in sizes:
            m = out["steps"][n]["stages"].get(name, {})
            cells.append(f"{m['wall_s']:>9.1f} s {m['peak_gib']:>6.2f} GiB" if "wall_s" in m else m.get("failed", "-"))
        print(f"{name:16}" + "".join(f"{c:>26}" for c in cells))
    for name, g in out.get("growth", {}).items():
        if name != "ednet_kt1":
            print(f"{name:16} time/row x{g['time_per_row_ratio']}, peak x{g['peak_ratio']}; at EdNet KT1 size "
                  f"about {g['ednet_wall_s']:.0f} s and {g['ednet_peak_gib']} GiB")


if __name__ == "__main__":
    main()
