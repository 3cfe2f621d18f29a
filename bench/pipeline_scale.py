"""Every stage at EDM-Cup scale (simulate.n_students=35000, about 5 M first responses), each in its own
process: wall time, peak memory, and the metrics it wrote. Everything else is params.yaml as it is.

Outputs go under bench/out/pipeline/ (the raw simulation is cached in bench/out/edm_scale_<n>/ and shared
with bench/prepare_scale.py; its simulate time is re-measured only when it is not cached yet).

    python bench/pipeline_scale.py [--students 35000] [--from-stage train_wdirt]

`--from-stage` reruns that stage and those after it on the outputs already under bench/out/pipeline/,
keeping the earlier stages' timings from the last run (for a change that touches only later stages).
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click
from _measure import ROOT, child, scale_params

OUT = ROOT / "bench" / "out"
log = logging.getLogger("bench.pipeline_scale")
LIMIT_GIB = 8.0


@click.command()
@click.option("--students", default=35000, show_default=True)
@click.option("--from-stage", default=None, help="rerun from this stage on; earlier ones keep their last timings")
def main(students: int, from_stage: str | None) -> None:
    """Run every stage at EDM-Cup scale, each in its own process, then demo_trace.py: writes wall time and peak
    memory per stage to bench/out/pipeline/timings.json and prints them with the stages' metrics."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    w = OUT / "pipeline"
    p, raw = scale_params(students, w)
    stages = _stage_commands(w, p, raw)
    names = [name for name, _, _ in stages]
    if from_stage is not None and from_stage not in names:
        raise click.BadParameter(f"not one of {', '.join(names)}", param_hint="--from-stage")
    rows = _run_stages(stages, w, raw, from_stage)
    rows.append(("demo_trace (one student, one skill)", *_time_demo_trace(w)))
    (w / "timings.json").write_text(json.dumps(rows, indent=1))
    _print_summary(rows, w, students)


def _stage_commands(w: Path, p: Path, raw: Path) -> list[tuple[str, list, str | None]]:
    """(stage, command line, the name of its metrics file or None) in pipeline order, every path under `w`."""
    py = sys.executable
    ev, split = str(w / "interim/events.parquet"), str(w / "split.json")
    return [
        ("simulate", [py, "stages/simulate.py", "--params", p, "--out", raw], None),
        ("prepare", [py, "stages/prepare.py", "--params", p, "--out-dir", w / "interim", "--metrics", w / "prepare.json"], "prepare"),
        ("split", [py, "stages/split.py", "--params", p, "--events", ev, "--out", split], None),
        ("pykt_adapt", [py, "stages/pykt_adapt.py", "--params", p, "--events", ev, "--split", split, "--out", w / "pykt",
                        "--metrics", w / "pykt_adapt.json"], "pykt_adapt"),
        ("train_sakt", [py, "stages/train_sakt.py", "--params", p, "--events", ev, "--split", split,
                        "--truth", w / "interim/truth", "--model-dir", w / "sakt",
                        "--metrics", w / "sakt.json", "--plots-dir", w / "plots/sakt", "--live-dir", w / "dvclive/sakt",
                        "--timings", w / "sakt_timings.json"],
         "sakt"),
        ("train_wdirt", [py, "stages/train_wdirt.py", "--params", p, "--interim", w / "interim", "--split", split,
                         "--model-dir", w / "wdirt", "--metrics", w / "wdirt.json", "--plots-dir", w / "plots/wdirt",
                         "--live-dir", w / "dvclive/wdirt", "--timings", w / "wdirt_timings.json"], "wdirt"),
        ("train_dkt", [py, "stages/train_dkt.py", "--params", p, "--events", ev, "--split", split, "--model-dir", w / "dkt",
                       "--metrics", w / "dkt.json", "--live-dir", w / "dvclive/dkt", "--timings", w / "dkt_timings.json"], "dkt"),
        ("export", [py, "stages/export.py", "--params", p, "--events", ev, "--split", split,
                    "--skills", w / "interim/skills.parquet", "--sakt", w / "sakt/model.pt",
                    "--wdirt", w / "wdirt", "--out", w / "exports", "--metrics", w / "export.json",
                    "--timings", w / "export_timings.json"], "export"),
        ("blend", [py, "stages/blend.py", "--params", p, "--events", ev, "--split", split, "--truth", w / "interim/truth",
                   "--sakt", w / "exports/sakt_predictions.parquet", "--wdirt", w / "wdirt/event_predictions.parquet",
                   "--dkt", w / "dkt/predictions.parquet", "--out", w / "exports/blend_predictions.parquet",
                   "--metrics", w / "blend.json"], "blend"),
        ("validate_join", [py, "stages/validate_join.py", "--params", p, "--exports", w / "exports", "--events", ev,
                           "--report", w / "exports/join_report.md", "--metrics", w / "join.json", "--plots-dir", w / "plots/join"], "join"),
        ("report", [py, "stages/report.py", "--params", p, "--exports", w / "exports", "--metrics", w, "--plots", w / "plots",
                    "--out", w / "exports/report.html"], None),
    ]


def _run_stages(stages: list, w: Path, raw: Path, from_stage: str | None) -> list[tuple]:
    """(stage, wall s, peak GiB) per stage; stages before `from_stage` keep their last timings, a cached
    simulation is not re-timed (NaN). timings.json is rewritten after each stage, so a crash keeps the rest."""
    names = [name for name, _, _ in stages]
    earlier = {r[0]: r for r in json.loads((w / "timings.json").read_text())} if from_stage else {}
    rows = []
    for name, cmd, metrics in stages:
        if from_stage and names.index(name) < names.index(from_stage):
            log.info("%s: kept from the last run", name)
            rows.append(tuple(earlier[name]))
            continue
        if name == "simulate" and (raw / "action_logs.csv").exists():
            log.info("simulation cached in %s: not re-timed", raw)
            rows.append((name, float("nan"), float("nan")))
            continue
        log.info("running %s", name)
        wall, gib = child([str(c) for c in cmd])
        rows.append((name, wall, gib))
        (w / "timings.json").write_text(json.dumps(rows, indent=1))
    return rows


def _time_demo_trace(w: Path) -> tuple[float, float]:
    """Wall s and peak GiB of demo_trace.py on the first test student and a skill it has a state on."""
    users = json.loads((w / "split.json").read_text())["test"]
    state = __import__("pyarrow.parquet", fromlist=["x"]).read_table(w / "exports/sakt_student_state.parquet",
                                                                    filters=[("user_id", "=", users[0])], columns=["skill_id"])
    return child([sys.executable, "demo_trace.py", "--exports", str(w / "exports"), "--student-id", users[0],
                  "--topic", state["skill_id"][0].as_py()])


def _print_summary(rows: list[tuple], w: Path, students: int) -> None:
    """The timing table, the largest peak against LIMIT_GIB, and each stage's metrics with its timings."""
    print(f"EDM-Cup scale: {students} students; every stage in its own process")
    print(f"{'stage':40}{'wall s':>9}{'peak GiB':>10}")
    for name, wall, gib in rows:
        print(f"{name:40}{wall:9.1f}{gib:10.2f}")
    worst = max(g for _, _, g in rows if g == g)
    print(f"largest peak {worst:.2f} GiB; limit {LIMIT_GIB} GiB -> {'met' if worst < LIMIT_GIB else 'NOT met'}")
    for name in ("prepare", "sakt", "wdirt", "export", "join"):
        timings = w / f"{name}_timings.json"  # the stages keep seconds out of their tracked metrics
        print(name, json.loads((w / f"{name}.json").read_text()) | (json.loads(timings.read_text()) if timings.exists() else {}))


if __name__ == "__main__":
    main()
