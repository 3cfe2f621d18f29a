"""prepare's EDM Cup 2023 adapter: the ASSISTments first-response convention on a hand-written release,
and the canonical schema on a simulated one."""

import pandas as pd
import pyarrow as pa
import pytest

from conftest import hand_written_edm
from ktirt.errors import InputError
from ktirt.events import EVENTS_SCHEMA, UNIT_TESTS_SCHEMA
from ktirt.sources import edm_cup, load_source

T0_MS = 1_664_000_000_000


@pytest.fixture
def hand(tmp_path):
    return edm_cup.load(hand_written_edm(tmp_path / "edm"))


def test_first_response_convention(hand):
    ev = hand.events.to_pandas().set_index(["user_id", "item_id"])
    # right first time
    assert ev.loc[("S1", "P1"), "correct"] == 1 and ev.loc[("S1", "P1"), "latency_ms"] == 30_000
    # two hints, then right: help first counts as incorrect
    p2 = ev.loc[("S1", "P2")]
    assert (p2.correct, p2.help_requested, p2.hint_count, p2.attempt_count) == (0, True, 2, 1)
    # wrong, then right
    p3 = ev.loc[("S1", "P3")]
    assert (p3.correct, p3.attempt_count, p3.skill_ids.tolist()) == (0, 2, [])
    # answer requested first (rows given out of order in the file)
    s2 = ev.loc[("S2", "P1")]
    assert (s2.correct, s2.help_requested, s2.latency_ms) == (0, True, 10_000)
    assert s2.timestamp == pd.Timestamp(T0_MS + 4010 * 1000, unit="ms", tz="UTC")
    # the open response and the never-answered problem are not events, and are counted
    assert set(ev.index) == {("S1", "P1"), ("S1", "P2"), ("S1", "P3"), ("S2", "P1")}
    assert hand.excluded["ungraded_responses"] == 1
    assert hand.excluded["problems_started_never_answered"] == 1


def test_unit_tests_link_student_and_in_unit_logs(hand):
    ut = hand.unit_tests.to_pandas().set_index("item_id")
    assert ut.loc["P9", "correct"] == 1
    assert pd.isna(ut.loc["P1", "correct"])  # evaluation rows keep their place, score withheld
    assert ut.loc["P9", "user_id"] == "S1" and list(ut.loc["P9", "in_unit_ids"]) == ["L1"]
    assert ut.loc["P9", "timestamp"] == pd.Timestamp("2022-10-01 10:00:00", tz="UTC")
    assert hand.unit_tests.schema == UNIT_TESTS_SCHEMA


def test_simulated_events_follow_the_contract(tiny_tables):
    ev = tiny_tables.events
    assert ev.schema == EVENTS_SCHEMA
    assert ev.schema.field("timestamp").type == pa.timestamp("ms", tz="UTC")
    df = ev.to_pandas()
    assert df["correct"].isin([0, 1]).all()
    assert (df["latency_ms"].dropna() >= 0).all()
    key = pd.DataFrame({"u": df["user_id"], "t": df["timestamp"]})
    assert key.equals(key.sort_values(["u", "t"], kind="stable"))
    assert not df.duplicated(["action_sequence_id", "item_id"]).any()
    assert "Ungraded Open Response" not in set(df["problem_type"])
    assert tiny_tables.unit_tests.schema == UNIT_TESTS_SCHEMA
    assert tiny_tables.features == {"has_unit_tests": 1, "has_text_embeddings": 1, "has_timestamps": 1}


def test_rows_without_a_student_are_dropped_and_counted(tmp_path):
    details = pd.read_csv(hand_written_edm(tmp_path / "a") / "assignment_details.csv")
    details.loc[details.assignment_log_id == "L2", "student_id"] = None
    t = edm_cup.load(hand_written_edm(tmp_path / "b", assignment_details=details))
    assert t.dropped["responses_no_student"] == 1
    assert set(t.events["user_id"].to_pylist()) == {"S1"}


def test_action_rows_without_problem_or_time_are_counted(tmp_path):
    logs = pd.read_csv(hand_written_edm(tmp_path / "a") / "action_logs.csv")
    extra = logs.iloc[[1, 2]].copy()
    extra["problem_id"] = [None, "P2"]
    extra["timestamp"] = [T0_MS / 1000, None]
    t = edm_cup.load(hand_written_edm(tmp_path / "b", action_logs=pd.concat([logs, extra])))
    assert t.dropped["action_rows_no_problem"] == 1
    assert t.dropped["action_rows_no_timestamp"] == 1
    assert t.events.num_rows == 4


@pytest.mark.parametrize(
    "stem, change, column, words",
    [
        ("action_logs", lambda d: d.rename(columns={"problem_id": "problemid"}), "problem_id", "did you mean 'problemid'"),
        ("action_logs", lambda d: d.assign(timestamp=d.timestamp.astype(str).where(d.index != 3, "yesterday")), "timestamp", "'yesterday' does not parse"),
        ("assignment_details", lambda d: d.assign(assignment_start_time="not a date"), "assignment_start_time", "do not parse"),
        ("action_logs", lambda d: d.assign(assignment_log_id="X" + d.assignment_log_id), "assignment_log_id", "none of the"),
        ("action_logs", lambda d: d.assign(problem_id="Z" + d.problem_id.fillna("")).where(d.problem_id.notna(), d), "problem_id", "none of the"),
        ("problem_details", lambda d: pd.concat([d, d.iloc[[0]].assign(problem_type="Other")]), "problem_id", "duplicate"),
        ("training_unit_test_scores", lambda d: pd.concat([d, d.assign(score=1 - d.score)]), "assignment_log_id", "duplicate"),
        ("training_unit_test_scores", lambda d: d.assign(score=0.5), "score", "0 or 1"),
        ("problem_details", lambda d: d.iloc[0:0], None, "no rows"),
    ],
)
def test_bad_input_names_file_and_column(tmp_path, stem, change, column, words):
    original = pd.read_csv(hand_written_edm(tmp_path / "a") / f"{stem}.csv")
    folder = hand_written_edm(tmp_path / "b", **{stem: change(original)})
    with pytest.raises(InputError) as err:
        edm_cup.load(folder)
    assert err.value.path.endswith(f"{stem}.csv")
    assert err.value.column == column
    assert words in str(err.value)


def test_missing_file_and_unknown_source(tmp_path):
    folder = hand_written_edm(tmp_path / "a")
    (folder / "problem_details.csv").unlink()
    with pytest.raises(InputError, match="problem_details.csv: file not found"):
        edm_cup.load(folder)
    with pytest.raises(InputError, match="unknown data.source 'edm_cup_2024'"):
        load_source("edm_cup_2024", folder)
    with pytest.raises(InputError, match="raw data folder not found"):
        load_source("edm_cup_2023", tmp_path / "nowhere")
