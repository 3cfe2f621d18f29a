"""Multi-skill items end to end: tricky_tables (every fourth item on two skills, repeated user-item pairs, rare
and cold items) through both engines and the export. A response is predicted once, and counts once on every
skill it carries: in the item bank, the student state, the skill table, the mastery report, the join and the
report page. Nothing doubled (a prediction per skill), nothing merged (a skill dropped)."""

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from conftest import report_page_data, run_pipeline
from ktirt import user_batches
from ktirt.events import EVENTS_SCHEMA
from ktirt.exports.join import validate_join
from ktirt.irt.drift import drifting_item_ids
from ktirt.irt.wdirt_run import WDIRTSettings
from ktirt.kt.sakt_run import SaktRun
from ktirt.split import split_users
from test_exports import SAKT_MODEL, SAKT_TRAIN, SETTINGS, WDIRT


@pytest.fixture(scope="module")
def multi(tricky_tables, tmp_path_factory):
    events = tricky_tables.events
    split = split_users(events["user_id"].to_numpy(zero_copy_only=False), 0.6, 0.2, seed=3)
    out = run_pipeline(tricky_tables, split, tmp_path_factory.mktemp("multi"), SaktRun(SAKT_MODEL, SAKT_TRAIN),
                       WDIRTSettings(**WDIRT), SETTINGS)
    ev = events.to_pandas()
    ev["skill_ids"] = ev["skill_ids"].map(list)
    items = (pd.concat([ev, tricky_tables.unit_tests.to_pandas()]).drop_duplicates("item_id")
             .set_index("item_id")["skill_ids"].map(list))
    return out | {"ev": ev, "item_skills": items, "multi_items": set(items.index[items.map(len) == 2])}


def _table(multi, name) -> pd.DataFrame:
    return pq.read_table(multi["exports"] / f"{name}.parquet").to_pandas()


def test_the_fixture_has_multi_skill_responses_in_every_split(multi):
    ev = multi["ev"]
    on_multi = ev[ev["item_id"].isin(multi["multi_items"])]
    assert len(multi["multi_items"]) >= 10 and (on_multi["skill_ids"].map(len) == 2).all()
    for name in ("train", "val", "test"):
        assert on_multi["user_id"].isin(multi["split"][name]).sum() >= 20, name


def test_the_item_bank_keeps_both_skills(multi):
    p = _table(multi, "item_params").set_index("item_id")
    expected = multi["item_skills"]
    assert set(p.index) == set(expected.index)
    for item in sorted(multi["multi_items"]):
        assert list(p.at[item, "skill_ids"]) == expected[item] and p.at[item, "skill_id"] == expected[item][0], item
    skills = _table(multi, "skills").set_index("skill_id")["n_items"]
    per_skill = expected.explode().value_counts()
    pd.testing.assert_series_equal(skills.sort_index(), per_skill.sort_index(), check_names=False)


def test_a_response_is_predicted_once_and_has_a_state_row_per_skill(multi):
    ev = multi["ev"]
    keys = ["user_id", "item_id", "timestamp"]
    for name, table in (("sakt", _table(multi, "sakt_predictions")), ("wdirt", multi["wdirt"].event_predictions.to_pandas())):
        assert len(table) == len(ev) and (table[keys].to_numpy() == ev[keys].to_numpy()).all(), name
        assert np.isfinite(table["predicted"]).all(), name
    state = _table(multi, "sakt_student_state")
    expected = ev[keys + ["skill_ids"]].explode("skill_ids").rename(columns={"skill_ids": "skill_id"})
    assert len(state) == len(expected) == ev["skill_ids"].map(len).sum() > len(ev)
    pd.testing.assert_frame_equal(state[keys + ["skill_id"]].reset_index(drop=True),
                                  expected[keys + ["skill_id"]].reset_index(drop=True), check_dtype=False)
    assert state["mastery"].notna().all()
    # attempts count each skill's responses, a multi-skill response on both of its skills
    assert (state["n_attempts"] == state.groupby(["user_id", "skill_id"]).cumcount() + 1).all()
    on_multi = state[state["item_id"].isin(multi["multi_items"])]
    assert (on_multi.groupby(keys).size() == 2).all() and len(on_multi) >= 100
    assert (on_multi.groupby(keys)["skill_id"].nunique() == 2).all()


def test_the_reports_and_the_join_count_each_skill(multi):
    state = _table(multi, "sakt_student_state")
    report = multi["export"].mastery_report
    end, drift = report.split("## Mastery at the end of the data, per skill")[1].split("## Skills with the most drifting items")
    students = state.groupby("skill_id")["user_id"].nunique()
    items = multi["item_skills"].explode().value_counts()
    described = _table(multi, "skills").set_index("skill_id")["description"]
    flagged = drifting_item_ids(_table(multi, "item_drift"))
    for skill in sorted(items.index):
        assert f"| {skill} | {described[skill]} | {students[skill]:,} |" in end, skill
        drifting = sum(skill in s and i in flagged for i, s in multi["item_skills"].items())
        assert f"| {skill} | {items[skill]:,} | {drifting:,} |" in drift, skill
    pred = _table(multi, "sakt_predictions")
    slices = multi["export"].behavior_slices
    for name, g in slices.groupby("slice"):  # every slice partitions the test responses once
        assert g["responses"].sum() == (pred["split"] == "test").sum(), name
    report = validate_join(multi["exports"], EVENTS_SCHEMA, n_samples=2)
    assert report.duplicates == [] and report.coverage == 1.0 and not report.mismatches


def test_the_report_page_shows_both_skills(multi):
    data = report_page_data(multi, 1000)
    items = pd.DataFrame(data["items"]).set_index("item_id")
    for item in sorted(multi["multi_items"]):
        assert items.at[item, "skills"] == " ".join(multi["item_skills"][item]), item
    n_items = multi["item_skills"].explode().value_counts()
    assert {s["skill_id"]: s["n_items"] for s in data["skills"]} == n_items.to_dict()
    # every student's timeline: one row per response and skill, a multi-skill response on both of its skills
    ev = multi["ev"]
    timelines = data["students"]["timelines"]
    assert set(timelines) == set(ev["user_id"])
    for user, tl in timelines.items():
        mine = ev[ev["user_id"] == user]
        rows = pd.DataFrame(tl)
        assert len(rows) == mine["skill_ids"].map(len).sum() and rows["response"].max() == len(mine), user
        per_response = rows.groupby("response")["skill_id"].agg(list)
        assert [sorted(s) for s in per_response] == [sorted(s) for s in mine["skill_ids"]], user


def test_the_report_page_reads_the_exports_a_few_students_at_a_time_to_the_same_data(multi, monkeypatch):
    """The report's one pass over the per-response exports (ktirt/report/summary.py) in batches of about 200 rows:
    the page's data, every number to the last digit, is the one read in one batch."""
    whole = report_page_data(multi, 50)
    monkeypatch.setattr(user_batches, "ROWS_PER_BATCH", 200)
    assert sum(1 for _ in user_batches.user_batches(multi["exports"] / "sakt_predictions.parquet", made_by="export",
                                                    schema=None)) > 5
    assert report_page_data(multi, 50) == whole
