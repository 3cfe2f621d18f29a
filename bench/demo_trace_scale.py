"""Benchmark: demo_trace's answer time at EDM-Cup scale, against reading the exports whole, in one run.

The exports are written at EDM-Cup scale with the export stage's own schemas, sort order and row groups
(ktirt.exports.tables) from the EDM-Cup-scale events that `bench/prepare_scale.py` leaves in bench/out/;
the model columns (predicted, mastery, item parameters, drift) are random, since only the reading is timed.
Each query runs `python demo_trace.py` in a fresh process (imports included), as a user would.
The baseline answers the same question with pandas.read_parquet of the whole tables, then filtering.

    python bench/prepare_scale.py && python bench/demo_trace_scale.py
"""

from __future__ import annotations

import logging
import statistics
import subprocess
import sys
import time

import click
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from _measure import ROOT

from ktirt.exports.tables import ROW_GROUP, typed_table
from ktirt.io import write_parquet
from ktirt.vocab import NO_SKILL, first_skill

log = logging.getLogger("bench.demo_trace_scale")
OUT = ROOT / "bench" / "out"


def write_exports(events: pa.Table, out, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    n = events.num_rows
    skill = first_skill(events["skill_ids"])
    pred = typed_table("sakt_predictions", {"user_id": events["user_id"], "item_id": events["item_id"], "timestamp": events["timestamp"],
                                       "split": np.full(n, "train", dtype=object), "predicted": rng.random(n, np.float32),
                                       "actual": events["correct"]})
    has = pc.not_equal(skill, NO_SKILL)
    state = typed_table("sakt_student_state", {"user_id": events["user_id"].filter(has), "skill_id": skill.filter(has),
                                          "timestamp": events["timestamp"].filter(has), "item_id": events["item_id"].filter(has),
                                          "mastery": rng.random(pc.sum(has).as_py(), np.float32),
                                          "n_attempts": np.ones(pc.sum(has).as_py(), np.int32)})
    items = pc.unique(events["item_id"]).sort()
    k = len(items)
    item_skill = pd.Series(skill.to_numpy(zero_copy_only=False)).groupby(events["item_id"].to_numpy(zero_copy_only=False)).first()
    params = typed_table("item_params", {"item_id": items, "skill_id": item_skill.reindex(items.to_pylist()).to_numpy(),
                                    "difficulty": rng.normal(size=k), "discrimination": np.exp(rng.normal(0, 0.3, k)),
                                    "guessing": np.zeros(k), "n_responses": np.full(k, 100), "difficulty_se": np.full(k, 0.2),
                                    "cold": np.zeros(k, bool), "problem_type": np.full(k, "Number", dtype=object)})
    weeks = 10
    start = pa.array(np.repeat(np.datetime64("2022-09-05", "ms") + np.arange(weeks) * np.timedelta64(7, "D"), 1), pa.timestamp("ms", tz="UTC"))
    drift = typed_table("item_drift", {"item_id": pa.array(np.repeat(items.to_numpy(zero_copy_only=False), weeks), pa.string()),
                                  "window_start": pa.concat_arrays([start] * k),
                                  "window_end": pc.add(pa.concat_arrays([start] * k), pa.scalar(7 * 86400000, pa.duration("ms"))),
                                  "difficulty_shift": rng.normal(size=k * weeks), "z": rng.normal(size=k * weeks),
                                  "drift_flag": rng.random(k * weeks) < 0.005, "n_window": np.full(k * weeks, 10),
                                  "n_before": np.full(k * weeks, 50), "n_after": np.full(k * weeks, 50)})
    codes = pc.unique(skill.filter(has)).sort()
    skills = typed_table("skills", {"skill_id": codes, "description": codes, "n_items": np.ones(len(codes), np.int64)})
    for name, t in (("sakt_predictions", pred), ("sakt_student_state", state), ("item_params", params),
                    ("item_drift", drift), ("skills", skills)):
        write_parquet(t, out / f"{name}.parquet", ROW_GROUP)


def whole_tables(exports, user: str, skill: str) -> int:
    """The baseline: read each table whole with pandas, then filter and join."""
    state = pd.read_parquet(exports / "sakt_student_state.parquet")
    pred = pd.read_parquet(exports / "sakt_predictions.parquet")
    params = pd.read_parquet(exports / "item_params.parquet")
    drift = pd.read_parquet(exports / "item_drift.parquet")
    s = state[(state["user_id"] == user) & (state["skill_id"] == skill)]
    rows = s.merge(pred[pred["user_id"] == user], on=["item_id", "timestamp"]).merge(params, on="item_id")
    return len(rows.merge(drift[drift["drift_flag"]], on="item_id", how="left"))


@click.command()
@click.option("--queries", default=5, show_default=True)
def main(queries: int) -> None:
    """Time demo_trace's answer at EDM-Cup scale against reading the exports whole, in one run: reads the events
    bench/prepare_scale.py leaves in bench/out/, writes scale exports to bench/out/exports_scale/, prints both timings."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    events_path = OUT / "interim" / "events.parquet"
    if not events_path.is_file():
        raise click.ClickException(f"{events_path}: not found (run python bench/prepare_scale.py first)")
    exports = OUT / "exports_scale"
    events = pq.read_table(events_path)
    t0 = time.perf_counter()
    write_exports(events, exports)
    log.info("wrote EDM-scale exports (%d predictions) in %.1f s", events.num_rows, time.perf_counter() - t0)
    state = pq.read_table(exports / "sakt_student_state.parquet", columns=["user_id", "skill_id"])
    rng = np.random.default_rng(1)
    picks = rng.choice(state.num_rows, queries, replace=False)
    from ktirt.exports.trace import trace

    ours, inproc, base = [], [], []
    for i in picks:
        user, skill = state["user_id"][int(i)].as_py(), state["skill_id"][int(i)].as_py()
        t = time.perf_counter()
        r = subprocess.run([sys.executable, str(ROOT / "demo_trace.py"), "--exports", str(exports), "--student-id", user,
                            "--topic", skill], capture_output=True, text=True, cwd=ROOT)
        ours.append(time.perf_counter() - t)
        if r.returncode != 0:
            raise click.ClickException(r.stderr)
        t = time.perf_counter()
        trace(exports, user, skill)
        inproc.append(time.perf_counter() - t)
        t = time.perf_counter()
        whole_tables(exports, user, skill)
        base.append(time.perf_counter() - t)
    a, q, b = statistics.median(ours), statistics.median(inproc), statistics.median(base)
    print(f"{events.num_rows:,} predictions, {state.num_rows:,} student-state rows; median of {queries} queries")
    print(f"demo_trace (fresh process, filtered reads): {a:.2f} s   [target < 2 s]")
    print(f"the same query in-process (no imports):     {q:.3f} s")
    print(f"baseline in-process: read the whole tables with pandas, then filter: {b:.2f} s")
    print(f"ratio, in-process: {b / q:.1f}x faster")


if __name__ == "__main__":
    main()
