"""Benchmark: `prepare` at EDM-Cup scale (simulate.n_students=35000, about 5 M first responses).

Simulates once (cached under bench/out/), then runs the real prepare stage in a child process and reports
its wall time and peak memory, beside a baseline measured in the same run: the obvious pandas version
(pandas.read_csv, sort, groupby-first) of the same first-response extraction.

    python bench/prepare_scale.py [--students 35000]
"""

from __future__ import annotations

import json
import logging
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
def main(students: int) -> None:
    """Time the prepare stage at EDM-Cup scale beside the obvious pandas version, in one run: simulates once into
    bench/out/ (cached) and prints both wall times and peak memories."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    p, raw = scale_params(students, OUT)
    if not (raw / "action_logs.csv").exists():
        sim_s, sim_gb = child([sys.executable, "stages/simulate.py", "--params", str(p), "--out", str(raw)])
        log.info("simulated in %.1f s, peak %.2f GiB", sim_s, sim_gb)
    size_gb = sum(f.stat().st_size for f in raw.glob("*.csv")) / 2**30
    base_s, base_gb = child([sys.executable, "-c", f"import sys; sys.path.insert(0, 'bench'); import prepare_scale as b; b.pandas_baseline({str(raw)!r})"])
    ours_s, ours_gb = child([sys.executable, "stages/prepare.py", "--params", str(p), "--out-dir", str(OUT / "interim"),
                             "--metrics", str(OUT / "prepare.json")])
    m = json.loads((OUT / "prepare.json").read_text())
    print(f"EDM-Cup scale: {students} students, {size_gb:.2f} GiB of CSV, {m['events']:,} events, {m['items']:,} items, "
          f"{m['unit_test_rows']:,} unit-test rows")
    print(f"{'':28}{'wall s':>9}{'peak GiB':>10}")
    print(f"{'prepare (ktirt)':28}{ours_s:9.1f}{ours_gb:10.2f}")
    print(f"{'pandas read/sort/groupby':28}{base_s:9.1f}{base_gb:10.2f}")
    print(f"ratio (baseline / ours): time {base_s / ours_s:.2f}x, memory {base_gb / ours_gb:.2f}x;"
          f" target: prepare < 45 s and < 8 GiB -> {'met' if ours_s < 45 and ours_gb < 8 else 'NOT met'};"
          f" issue #24's 3x the baseline's speed -> {'met' if base_s >= 3 * ours_s else 'NOT met'}")


if __name__ == "__main__":
    main()
