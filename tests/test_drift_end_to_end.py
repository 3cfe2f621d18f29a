"""Drift end to end, on a world where WD-IRT does flag items: the tiny world flags none, so every reader of a
flag (the item bank's split, demo_trace's difficulty in effect, the mastery report, the behaviour slices, the
report page) and the wdirt.drift_* settings were only ever run on steady items."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from conftest import ROOT, report_page_data, run_pipeline, simulated_tables
from ktirt.exports.trace import trace
from ktirt.irt import wdirt_run
from ktirt.irt.drift import DriftSettings, drifting_item_ids
from ktirt.irt.wdirt_run import WDIRTSettings, run_wdirt
from ktirt.kt.sakt_run import SaktRun
from ktirt.truth import truth_dir
from test_exports import SAKT_MODEL, SAKT_TRAIN, SETTINGS
from test_wdirt import FAST

DRIFTY = dict(n_students=240, n_items=44, drift_fraction=0.25, drift_shift=2.0)
"""TINY with three times the students on the same 44 items (an in-unit item is answered 75 to 400 times) and a
quarter of the bank drifting by 2 logits: 11 drifting items, of which WD-IRT flags every one and nothing else
(measured; the asserts below ask for at least half and nothing else)"""


@pytest.fixture(scope="module")
def drifty(tmp_path_factory):
    raw, tables, split = simulated_tables(tmp_path_factory.mktemp("drifty") / "synthetic", **DRIFTY)
    out = run_pipeline(tables, split, raw.parent, SaktRun(SAKT_MODEL, SAKT_TRAIN), WDIRTSettings(**FAST), SETTINGS,
                       truth_dir(raw))
    params = pq.read_table(out["exports"] / "item_params.parquet").to_pandas().set_index("item_id")
    truth = pd.read_parquet(truth_dir(raw) / "items.parquet").set_index("item_id")
    return out | {"flagged": drifting_item_ids(out["wdirt"].drift), "params": params, "truth": truth}


def _state(drifty) -> pd.DataFrame:
    return pq.read_table(drifty["exports"] / "sakt_student_state.parquet").to_pandas()


def test_the_flagged_items_are_drifting_ones(drifty):
    flagged, truth = drifty["flagged"], drifty["truth"]
    in_events = set(drifty["events"]["item_id"].to_pylist())
    drifting = set(truth.index[truth["drift"]]) & in_events
    assert flagged <= drifting and len(flagged) >= len(drifting) / 2 and len(drifting) >= 6
    assert drifty["wdirt"].metrics["drift_flagged_items"] == len(flagged)
    assert drifty["wdirt"].metrics["drift_precision"] == 1.0  # nothing flagged that did not drift
    assert in_events - drifting  # steady items answered too: both kinds are checked below


def test_the_item_bank_splits_exactly_the_flagged_items(drifty):
    """(moved here from test_wdirt.py, where the tiny world flags nothing and the test held vacuously)"""
    flagged, truth, drift = drifty["flagged"], drifty["truth"], drifty["wdirt"].drift
    p = drifty["wdirt"].item_params.set_index("item_id")
    assert set(p.index[p["drift_start"].notna()]) == flagged
    steady = p["drift_start"].isna()
    assert (p.loc[steady, "difficulty_current"] == p.loc[steady, "difficulty"]).all()
    for item in sorted(flagged):
        shift = p.at[item, "difficulty_current"] - p.at[item, "difficulty"]
        # the bank's shift has the simulated change's direction (its size is on the bank's ability scale, which on
        # items of few students and a small discrimination stretches 2 simulated logits to 5 or 7)
        assert np.sign(shift) == np.sign(truth.at[item, "drift_shift"]), (item, shift)
        windows = drift[(drift["item_id"] == item) & drift["drift_flag"]]
        assert p.at[item, "drift_start"] == windows.loc[windows["z"].abs().idxmax(), "window_start"]
        # a weekly test places the change within a few windows of the simulated one
        assert abs(p.at[item, "drift_start"] - truth.at[item, "drift_time"]) < pd.Timedelta(days=21), item
    # and the exported item_params.parquet carries the split unchanged
    exported = drifty["params"]
    for col in ("difficulty", "difficulty_current", "drift_start"):
        pd.testing.assert_series_equal(exported[col], p.loc[exported.index, col], check_dtype=False, check_index_type=False)


def _either_side(drifty, item):
    """The state rows of `item` nearest its drift start: the last response before it and the first from it on."""
    rows = _state(drifty)
    rows = rows[rows["item_id"] == item].sort_values("timestamp")
    start = drifty["params"].at[item, "drift_start"]
    return rows[rows["timestamp"] < start].iloc[-1], rows[rows["timestamp"] >= start].iloc[0]


def test_demo_trace_uses_the_current_difficulty_from_drift_start_on(drifty):
    params = drifty["params"]
    for item in sorted(drifty["flagged"]):
        start, before, after = params.at[item, "drift_start"], params.at[item, "difficulty"], params.at[item, "difficulty_current"]
        label = f"{after - before:+.1f} on {start:%Y-%m-%d}"
        for row, in_effect, side in zip(_either_side(drifty, item), (before, after), ("before ", "after ")):
            t = trace(drifty["exports"], row["user_id"], row["skill_id"]).rows
            met = t[(t["item_id"] == item) & (t["timestamp"] == row["timestamp"])]
            assert len(met) == 1 and met["difficulty"].iloc[0] == pytest.approx(in_effect), (item, side)
            assert met["drift"].iloc[0] == side + label
    # the door itself, once: demo_trace.py's JSON for a student who met a flagged item after its change
    item = sorted(drifty["flagged"])[0]
    _, row = _either_side(drifty, item)
    r = subprocess.run([sys.executable, str(ROOT / "demo_trace.py"), "--exports", str(drifty["exports"]), "--student-id",
                        row["user_id"], "--topic", row["skill_id"], "--format", "json"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    met = [x for x in json.loads(r.stdout)["rows"] if x["item_id"] == item]
    assert met and all(x["difficulty"] == pytest.approx(params.at[item, "difficulty_current"]) for x in met
                       if x["drift"].startswith("after "))
    assert any(x["drift"].startswith("after ") for x in met)


def _drifting_per_skill(drifty) -> pd.Series:
    p = drifty["params"].reset_index()[["item_id", "skill_ids"]].explode("skill_ids").dropna()
    return p.assign(drifting=p["item_id"].isin(drifty["flagged"])).groupby("skill_ids")["drifting"].agg(["size", "sum"])


def test_the_mastery_report_and_the_slices_count_the_flagged_items(drifty):
    section = drifty["export"].mastery_report.split("## Skills with the most drifting items")[1]
    expected = _drifting_per_skill(drifty)
    assert expected["sum"].sum() >= len(drifty["flagged"]) > 0
    for skill, (items, drifting) in expected.iterrows():
        assert f"| {skill} | {items:,} | {drifting:,} |" in section, skill
    slices = drifty["export"].behavior_slices.set_index(["slice", "value"])
    pred = pq.read_table(drifty["exports"] / "sakt_predictions.parquet").to_pandas()
    test_on_flagged = (pred["split"].eq("test") & pred["item_id"].isin(drifty["flagged"])).sum()
    assert slices.at[("item drift", "item flagged as drifting"), "responses"] == test_on_flagged > 0


def test_the_report_page_shows_the_flagged_items(drifty):
    data = report_page_data(drifty, 40)
    flagged, params = drifty["flagged"], drifty["params"]

    assert data["run"]["counts"]["drifting items"] == len(flagged)
    items = pd.DataFrame(data["items"]).set_index("item_id")
    assert set(items.index[items["drifting"]]) == flagged
    d = pd.DataFrame(data["drifting"]).set_index("item_id")
    assert set(d.index) == flagged
    for item, r in d.iterrows():
        assert r["before"] == pytest.approx(params.at[item, "difficulty"], abs=1e-3)
        assert r["after"] == pytest.approx(params.at[item, "difficulty_current"], abs=1e-3)
        assert r["since"] == f"{params.at[item, 'drift_start']:%Y-%m-%d}"
    per_skill = {s["skill_id"]: s["drifting_items"] for s in data["skills"]}
    assert per_skill == _drifting_per_skill(drifty)["sum"].to_dict()
    # the students' timelines: the difficulty in effect on each side of a flagged item's change
    sides = set()
    for user, tl in data["students"]["timelines"].items():
        for item, drift, difficulty in zip(tl["item_id"], tl["drift"], tl["difficulty"]):
            if item in flagged:
                side = drift.split(" ")[0]
                sides.add(side)
                in_effect = params.at[item, "difficulty_current" if side == "after" else "difficulty"]
                assert difficulty == pytest.approx(in_effect, abs=1e-3), (user, item, drift)
            else:
                assert drift == ""
    assert sides == {"before", "after"}


def test_the_drift_settings_reach_the_drift_test(drifty, monkeypatch):
    """wdirt.drift_* as the stage reads them (WDIRTSettings.from_dict) arrive in the drift test field by field,
    and a min_shift above every possible shift (difficulties are clipped to +-8, so 16 is the most a split can
    show; this world has a flagged window at -11.5) leaves the same windows tested and nothing flagged."""
    seen = []

    def spy(real):
        def spied(*args):
            seen.append((real.__name__, args[-1]))
            return real(*args)
        return spied

    for name in ("drift_cells", "flag_drift"):  # the test's two halves: each item's windows, then the flags
        monkeypatch.setattr(wdirt_run, name, spy(getattr(wdirt_run, name)))
    s = WDIRTSettings.from_dict({**FAST, "drift_min_shift": 17.0, "drift_z": 3.2, "drift_fdr": 0.15})
    r = run_wdirt(drifty["events"], drifty["tables"].unit_tests, drifty["split"], s)
    ds = DriftSettings(window="W", z_threshold=3.2, min_shift=17.0, min_responses=FAST["drift_min_responses"], fdr=0.15)
    assert seen == [("drift_cells", ds), ("flag_drift", ds)]
    assert not r.drift["drift_flag"].any() and r.metrics["drift_flagged_items"] == 0
    assert r.item_params["drift_start"].isna().all()
    assert (r.item_params["difficulty_current"] == r.item_params["difficulty"]).all()
    # the same windows with the same z: only the flag decision moved
    pd.testing.assert_series_equal(r.drift["z"], drifty["wdirt"].drift["z"])
    assert drifty["wdirt"].drift["drift_flag"].any()
