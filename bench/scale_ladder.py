"""The scale ladder: the whole pipeline at 35,000, 70,000 and 140,000 students (about 26, 52 and 104 M action
rows), each stage in its own process, its wall time and peak memory per step, and how cost grows: per stage,
the least-squares line through the steps (seconds and GiB per million action rows) and what it gives at EdNet
KT1's size (784,309 students). Training stages run one epoch at every step (their cost is per epoch).

Everything but the size and the epochs is params.yaml as it is; each step simulates its own world (timed, under
bench/out/ladder/<n>/, removed after the step unless --keep). A stage that fails (say, killed out of memory) is
recorded as failed with its exit status, and the stages after it in that step are skipped. Results go to
bench/results/scale_ladder.json after every stage, so a long run that is stopped keeps what it measured.

    python bench/scale_ladder.py                         # 35k, 70k, 140k
    python bench/scale_ladder.py --steps 2000,4000       # a quick look
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
EDNET_STUDENTS = 784_309
RESULTS = ROOT / "bench" / "results" / "scale_ladder.json"


@click.command()
@click.option("--steps", default="35000,70000,140000", show_default=True, help="students per step, comma-separated")
@click.option("--results", "results_path", default=str(RESULTS), show_default=True)
@click.option("--keep", is_flag=True, help="keep each step's simulation and outputs")
def main(steps: str, results_path: str, keep: bool) -> None:
    """Run the pipeline at each step's size, each stage in its own process; write each stage's wall time and peak
    memory per step, and per stage the slope and the extrapolation to EdNet KT1's 784,309 students."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sizes = [int(s) for s in steps.split(",") if s.strip()]
    out = {"machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores, "
                      f"{_mem_gib():.0f} GiB", "epochs_per_training_stage": 1, "steps": {}}
    for n in sizes:
        out["steps"][str(n)] = _step(n, out, Path(results_path), keep)
        out["growth"] = growth(out["steps"])
        _write(out, Path(results_path))
    _print(out)


def _step(n: int, out: dict, results: Path, keep: bool) -> dict:
    """One step: every stage at n students (simulate included, into a fresh folder)."""
    w = ROOT / "bench" / "out" / "ladder" / str(n)
    shutil.rmtree(w, ignore_errors=True)
    p, _ = scale_params(n, w)
    raw = w / "raw"
    params = yaml.safe_load(p.read_text())
    params["data"]["raw_dir"] = str(raw)
    params["train"]["epochs"] = params["wdirt"]["epochs"] = params["dkt"]["epochs"] = 1
    p.write_text(yaml.safe_dump(params, sort_keys=False))
    step: dict = {"students": n, "stages": {}}
    out["steps"][str(n)] = step
    for name, cmd, metrics_name in _stage_commands(w, p, raw):
        log.info("%d students: running %s", n, name)
        try:
            wall, gib = child([str(c) for c in cmd])
            step["stages"][name] = {"wall_s": round(wall, 1), "peak_gib": round(gib, 3)} | _phases(w, metrics_name)
        except subprocess.CalledProcessError as exc:
            step["stages"][name] = {"failed": f"exit status {exc.returncode}"}
            log.error("%d students: %s failed (%s); the step's later stages are skipped", n, name, exc.returncode)
            break
        if name == "simulate":
            with open(raw / "action_logs.csv", "rb") as f:
                step["action_rows"] = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 24), b"")) - 1
        if name == "prepare":
            step["events"] = json.loads((w / "prepare.json").read_text())["events"]
        _write(out, results)
    if not keep:
        shutil.rmtree(w, ignore_errors=True)
    return step


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
