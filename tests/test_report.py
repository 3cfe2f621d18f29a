"""The HTML report's data and page without a browser (tests/test_pipeline_dvc.py opens it in headless Chromium)."""

import json
import re

import numpy as np
import pandas as pd
import pytest

from ktirt.exports.join import sample_students
from ktirt.plots_offline import external_scripts
from ktirt.report.data import (CURVE_MIN_STUDENTS, DIFFICULTY_AXIS_BOUND, HISTOGRAM_BINS, difficulty_axis, pick_students,
                               skills_section)
from ktirt.report.page import render_page
from ktirt.report.summary import LogSummary


def _page_data(page: str) -> dict:
    m = re.search(r'<script id="report-data" type="application/json">(.*?)</script>', page, flags=re.S)
    return json.loads(m.group(1))


def test_page_carries_the_data_exactly_even_when_a_value_would_close_its_script():
    data = {"students": {"order": ["</script><script>alert(1)</script>", "é ü 学生"]}, "x": [1.5, None, "<!--"]}
    page = render_page(data, "ktirt report: <test>")
    assert _page_data(page) == data
    # the template's four script elements end where they should: nothing in the data or code closes one early
    assert page.count("</script>") == 4
    assert "<title>ktirt report: &lt;test&gt;</title>" in page
    assert external_scripts(page) == [] and "<link" not in page and "@import" not in page  # nothing fetched
    assert render_page(data, "t") == render_page(data, "t")


def test_students_are_the_join_samples_first_then_a_seeded_draw_of_test_students():
    users = [f"u{i:02d}" for i in range(30)]
    pred = pd.DataFrame({"user_id": users, "split": ["train"] * 20 + ["test"] * 10})  # every student once
    chosen = pick_students(pred, 8, 3, seed=1)
    samples = sample_students(pred["user_id"].to_numpy(), 3, 1)
    assert chosen[:3] == samples and len(chosen) == len(set(chosen)) == 8
    assert all(int(u[1:]) >= 20 for u in chosen[3:])  # the rest are test students
    assert chosen == pick_students(pred, 8, 3, seed=1) and chosen != pick_students(pred, 8, 3, seed=2)
    assert sorted(pick_students(pred, 100, 3, seed=1)) == users  # more asked than there are: everyone
    assert len(pick_students(pred, 15, 3, seed=1)) == 15  # fewer test students than asked: others fill in


def _summary(state: pd.DataFrame, correct: pd.Series, skills: pd.DataFrame) -> LogSummary:
    """The report's one-pass summary of a student-state table whose responses' outcomes are `correct`."""
    state = state.assign(item_id=[f"i{k}" for k in range(len(state))],
                         timestamp=pd.Timestamp("2022-09-01", tz="UTC") + pd.to_timedelta(np.arange(len(state)), "min"))
    pred = state[["user_id", "item_id", "timestamp"]].assign(split="test", actual=correct.to_numpy())
    summary = LogSummary(np.array(sorted(skills["skill_id"]), dtype=object))
    summary.add(pred, state)
    return summary


def test_skill_spread_and_learning_curve_count_what_they_say():
    rng = np.random.default_rng(0)
    rows = []
    for u in range(40):
        n = 3 if u < 30 else 12  # only 10 students get past attempt 3
        rows += [{"user_id": f"u{u}", "skill_id": "A", "n_attempts": k + 1, "mastery": rng.uniform()} for k in range(n)]
    state = pd.DataFrame(rows)
    correct = pd.Series(rng.integers(0, 2, len(state)))
    skills = pd.DataFrame({"skill_id": ["A", "B"], "description": ["a skill", None], "n_items": [4, 2]})
    items = pd.DataFrame({"skills": ["A", "A B", "B"], "drifting": [True, True, False]})
    a, b = skills_section(_summary(state, correct, skills), skills, items)
    assert a["students"] == 40 and sum(a["histogram"]) == 40 and len(a["histogram"]) == HISTOGRAM_BINS
    last = state.groupby("user_id")["mastery"].last()
    assert a["mean_final"] == pytest.approx(last.mean(), abs=1e-4)
    assert a["curve"]["attempt"] == list(range(1, 13)) and CURVE_MIN_STUDENTS == 10
    assert a["curve"]["students"][:4] == [40, 40, 40, 10]
    assert a["curve"]["accuracy"][0] == pytest.approx(correct[state["n_attempts"] == 1].mean(), abs=1e-4)
    assert a["drifting_items"] == 2 and b["drifting_items"] == 1  # a multi-skill item counts under each skill
    assert b["students"] == 0 and b["mean_final"] is None and b["curve"]["attempt"] == []


def test_a_source_without_skill_descriptions_gives_empty_text_not_nan():
    """EdNet KT1 describes no skill: skills.parquet's description column is all null, which pandas reads as NaN."""
    state = pd.DataFrame({"user_id": ["u1"], "skill_id": ["7"], "n_attempts": [1], "mastery": [0.5]})
    skills = pd.DataFrame({"skill_id": ["7"], "description": [np.nan], "n_items": [1]})
    (row,) = skills_section(_summary(state, pd.Series([1]), skills), skills, pd.DataFrame({"skills": ["7"], "drifting": [False]}))
    assert row["description"] == ""


def test_the_difficulty_axis_stops_at_its_bound_and_counts_what_lies_beyond():
    """Issue 25: one item at 39.36 logits stretched the chart to -5..40. The axis now spans the items' whole
    logits up to +-DIFFICULTY_AXIS_BOUND and counts the items beyond (drawn at its edge)."""
    ordinary = pd.DataFrame({"difficulty": [-2.3, -0.4, 0.1, 1.7]})
    assert difficulty_axis(ordinary) == {"domain": [-3.0, 2.0], "outside": 0, "bound": DIFFICULTY_AXIS_BOUND}
    extreme = pd.DataFrame({"difficulty": [-2.3, -0.4, 0.1, 39.36, -7.5, None]})
    assert difficulty_axis(extreme) == {"domain": [-DIFFICULTY_AXIS_BOUND, DIFFICULTY_AXIS_BOUND], "outside": 2,
                                        "bound": DIFFICULTY_AXIS_BOUND}
    # drifting items: one row each, outside when either side is (counted once)
    drift = pd.DataFrame({"before": [0.5, 8.0, -9.0], "after": [1.5, 9.0, 0.0]})
    assert difficulty_axis(drift)["outside"] == 2 and difficulty_axis(drift)["domain"] == [-6.0, 6.0]
    # every item beyond one side, or none at all: still a readable, one-logit-wide axis inside the bound
    assert difficulty_axis(pd.DataFrame({"d": [8.0, 12.0]}))["domain"] == [5.0, 6.0]
    assert difficulty_axis(pd.DataFrame({"d": [0.0]}))["domain"] == [0.0, 1.0]
    assert difficulty_axis(pd.DataFrame({"d": []}, dtype=float)) == {"domain": [-1.0, 1.0], "outside": 0, "bound": 6.0}
