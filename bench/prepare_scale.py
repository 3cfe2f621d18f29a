"""Benchmark: `prepare` at EDM-Cup scale (simulate.n_students=35000, about 5 M first responses).

Simulates once (cached under bench/out/), then runs the real prepare stage in a child process and reports
its wall time and peak memory, beside a baseline measured in the same run: the obvious pandas version
(pandas.read_csv, sort, groupby-first) of the same first-response extraction.

    python bench/prepare_scale.py [--students 35000] [--repeat 3]
"""

from __future__ import annotations

import json
import logging
import statistics
import sys

import click
from _measure import ROOT, child, scale_params

OUT = ROOT / "bench" / "out"
log = logging.getLogger("bench.prepare_scale")


def pandas_baseline(raw: str) -> None:
    """First responses the obvious pandas way: read, filter, sort, take the first row of each problem."""
    import pandas as pd

    logs = pd.read_csv(f"{raw}/action_logs.csv", usecols=["assignment_log_id", "timestamp", "problem_id", "action"])
    logs = logs[logs["problem_id"].notna()]
    first = (logs[logs["action"] != "problem_started"].sort_values(["assignment_log_id", "problem_id", "timestamp"], kind="stable")
             .groupby(["assignment_log_id", "problem_id"], sort=False).first())
    details = pd.read_csv(f"{raw}/assignment_details.csv", usecols=["assignment_log_id", "student_id"])
    events = first.join(details.set_index("assignment_log_id"), on="assignment_log_id")
    print(len(events[events["action"] != "open_response"]))


@click.command()
@click.option("--students", default=35000, show_default=True)
@click.option("--repeat", default=3, show_default=True, help="pairs of runs (baseline, then ours), one after the other")
def main(students: int, repeat: int) -> None:
    """Time the prepare stage at EDM-Cup scale beside the obvious pandas version, in one run: simulates once into
    bench/out/ (cached), then runs the baseline and ours `repeat` times in turn and prints every pair's wall times
    and peak memories and the median ratio. Pairs, not one of each: on a shared machine the baseline alone swung from
    24 to 46 s between runs on the same file (it touches 5 GiB of fresh memory), so one pair says little."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    p, raw = scale_params(students, OUT)
    if not (raw / "action_logs.csv").exists():
        sim_s, sim_gb = child([sys.executable, "stages/simulate.py", "--params", str(p), "--out", str(raw)])
        log.info("simulated in %.1f s, peak %.2f GiB", sim_s, sim_gb)
    size_gb = sum(f.stat().st_size for f in raw.glob("*.csv")) / 2**30
    pairs = []
    for _ in range(repeat):
        base = child([sys.executable, "-c", f"import sys; sys.path.insert(0, 'bench'); import prepare_scale as b; b.pandas_baseline({str(raw)!r})"])
        ours = child([sys.executable, "stages/prepare.py", "--params", str(p), "--out-dir", str(OUT / "interim"),
                      "--metrics", str(OUT / "prepare.json")])
        pairs.append((ours, base))
    m = json.loads((OUT / "prepare.json").read_text())
    print(f"EDM-Cup scale: {students} students, {size_gb:.2f} GiB of CSV, {m['events']:,} events, {m['items']:,} items, "
          f"{m['unit_test_rows']:,} unit-test rows")
    print(f"{'pair':6}{'prepare (ktirt) s':>19}{'GiB':>7}{'pandas s':>10}{'GiB':>7}{'time ratio':>12}")
    for k, ((ours_s, ours_gb), (base_s, base_gb)) in enumerate(pairs, 1):
        print(f"{k:<6}{ours_s:19.1f}{ours_gb:7.2f}{base_s:10.1f}{base_gb:7.2f}{base_s / ours_s:11.2f}x")
    ratio = statistics.median(b[0] / o[0] for o, b in pairs)
    ours_s, ours_gb = statistics.median(o[0] for o, _ in pairs), max(o[1] for o, _ in pairs)
    print(f"median ratio (baseline / ours): time {ratio:.2f}x; ours {ours_s:.1f} s median, {ours_gb:.2f} GiB at most;"
          f" target: prepare < 45 s and < 8 GiB -> {'met' if ours_s < 45 and ours_gb < 8 else 'NOT met'};"
          f" issue #24's 3x the baseline's speed -> {'met' if ratio >= 3 else 'NOT met'}")


if __name__ == "__main__":
    main()
