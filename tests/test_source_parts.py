"""EDM Cup's action log read in parts (ktirt.sources.csv_parts): whatever the part size and the parser's block
size, the canonical tables, every count and the events' digest (prepare's metrics) are those of one read, each part holds whole students in the events'
order, and what must hold over the whole file (one id form, one timestamp unit, known actions) is still checked
when the rows that break it lie in different blocks."""

import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from ktirt.errors import InputError
from ktirt.events import summarize
from ktirt.events_digest import EventsDigest
from ktirt.shape import shape
from ktirt.sources import csv_parts, edm_cup, tables
from ktirt.sources.unit_tests_digest import UnitTestsDigest

@pytest.fixture(scope="module")
def messy_raw(tiny_raw, tmp_path_factory):
    """The tiny simulation with what a part must keep together or count: exact duplicate rows far from their
    originals and rows of an unknown assignment log (in the action log, the training scores and the relationships),
    a blank action and a blank timestamp."""
    raw = tmp_path_factory.mktemp("parts") / "raw"
    shutil.copytree(tiny_raw, raw)
    rng = np.random.default_rng(0)
    for name, repeated, unknown, column, other in (
            ("action_logs.csv", 40, 30, "assignment_log_id", None),
            ("training_unit_test_scores.csv", 7, 5, "assignment_log_id", "problem_id"),
            ("assignment_relationships.csv", 6, 4, "unit_test_assignment_log_id", "in_unit_assignment_log_id")):
        rows = pd.read_csv(raw / name, dtype=str, keep_default_na=False)
        extra = rows.iloc[rng.choice(len(rows), repeated, replace=False)]
        orphans = (rows.drop_duplicates(other) if other else rows).iloc[:unknown].assign(**{column: "NO_SUCH_LOG"})
        rows = pd.concat([rows, extra, orphans], ignore_index=True)
        if name == "action_logs.csv":
            rows.loc[rng.choice(len(rows), 5, replace=False), "action"] = ""
            rows.loc[rng.choice(len(rows), 5, replace=False), "timestamp"] = ""
        rows.to_csv(raw / name, index=False)
    return raw


def _small_blocks(monkeypatch):
    monkeypatch.setattr(tables, "BLOCK_BYTES", 64 << 10)


@pytest.mark.parametrize("buffer_bytes", [64 << 20, 24 << 10], ids=["one batch a part", "several batches a part"])
def test_parts_give_the_tables_and_counts_of_one_read(messy_raw, monkeypatch, buffer_bytes):
    whole = edm_cup.load(messy_raw)
    assert whole.dropped["duplicate_rows"] == 40 + 7 + 6 and whole.dropped["responses_unknown_assignment_log"] > 0
    assert whole.dropped["unit_test_rows_unknown_assignment_log"] == 5
    assert whole.reading["relationship_rows_unknown_unit_test_log"] == 4
    _small_blocks(monkeypatch)
    monkeypatch.setattr(csv_parts, "BUFFER_BYTES", buffer_bytes)
    written = []
    monkeypatch.setattr(csv_parts._PartWriters, "_flush", lambda self, k, flush=csv_parts._PartWriters._flush:
                        (written.append(self.files[k]), flush(self, k))[1])  # per file (not id(self): reused once freed)
    size = (messy_raw / "action_logs.csv").stat().st_size
    parted = edm_cup.load(messy_raw, part_bytes=size // 6)
    parts = list(parted.event_parts())
    assert len(parts) == 6 + 1  # round(size / part_bytes) of students, then the rows of no known student (no events)
    assert parts[-1].num_rows == 0
    users = [p["user_id"].to_pylist() for p in parts if p.num_rows]
    assert all(a[-1] < b[0] for a, b in zip(users, users[1:])), "parts follow one another in user order"
    assert pa.concat_tables(parts).equals(whole.events)
    batches = max(written.count(k) for k in set(written))
    assert batches == 1 if buffer_bytes > size else batches > 1, "the slices of a part wait, then go together"
    digest, one = EventsDigest(0), EventsDigest.of(whole.events, 0)
    for part in parts:
        digest.add(part)
    assert shape(digest) == shape(one) and digest.items().to_pydict() == one.items().to_pydict()
    assert digest.pairs().sort_by("item_id").to_pydict() == one.pairs().sort_by("item_id").to_pydict()
    assert digest.first_by_log().sort_by("action_sequence_id").equals(one.first_by_log().sort_by("action_sequence_id"))
    unit_tests = list(parted.unit_test_parts())
    assert len(unit_tests) == len(parts) and unit_tests[-1].num_rows == 0, "the unit tests come in the events' parts"
    assert all(set(u["user_id"].to_pylist()) <= set(p["user_id"].to_pylist()) for u, p in zip(unit_tests, parts))
    assert pa.concat_tables(unit_tests).equals(whole.unit_tests)
    ut_digest, ut_one = UnitTestsDigest(digest), UnitTestsDigest.of(whole.unit_tests, one)
    for part in unit_tests:
        ut_digest.add(part)
    assert summarize(digest, ut_digest) == summarize(one, ut_one)
    assert ut_digest.after_work_share() == ut_one.after_work_share() and ut_one.after_work_share() > 0.5
    assert ut_digest.items().equals(ut_one.items()) and ut_digest.skills().equals(ut_one.skills())
    with pytest.raises(RuntimeError, match="come after the event parts"):
        next(edm_cup.load(messy_raw, part_bytes=size // 6).unit_test_parts())
    for counts in ("dropped", "excluded", "first_actions", "reading", "features"):
        assert getattr(parted, counts) == getattr(whole, counts), counts
        assert list(getattr(parted, counts)) == list(getattr(whole, counts)), f"{counts}: same order in the metrics"


def _rewritten(tiny_raw, tmp_path, change) -> object:
    raw = tmp_path / "raw"
    shutil.copytree(tiny_raw, raw)
    logs = pd.read_csv(raw / "action_logs.csv", dtype=str, keep_default_na=False)
    change(logs)
    logs.to_csv(raw / "action_logs.csv", index=False)
    return raw


def test_an_id_written_two_ways_in_two_blocks_stops_the_run(tiny_raw, tmp_path, monkeypatch):
    def two_forms(logs):
        logs.loc[1, "problem_id"], logs.loc[len(logs) - 1, "problem_id"] = "7.0", "007"

    raw = _rewritten(tiny_raw, tmp_path, two_forms)
    _small_blocks(monkeypatch)
    with pytest.raises(InputError, match="ids '7.0' and '007' may be the same id") as err:
        edm_cup.load(raw, part_bytes=1 << 16)
    assert err.value.column == "problem_id"


def test_timestamps_in_two_units_in_two_blocks_stop_the_run(tiny_raw, tmp_path, monkeypatch):
    def milliseconds_at_the_end(logs):
        tail = logs.index[-50:]
        logs.loc[tail, "timestamp"] = (logs.loc[tail, "timestamp"].astype(float) * 1000).map(repr)

    raw = _rewritten(tiny_raw, tmp_path, milliseconds_at_the_end)
    _small_blocks(monkeypatch)
    with pytest.raises(InputError, match=r"timestamps mix units: .*\(seconds\) and .*\(milliseconds\)") as err:
        edm_cup.load(raw, part_bytes=1 << 16)
    assert err.value.column == "timestamp"


def test_an_unknown_action_in_a_late_block_stops_the_run_before_any_part(tiny_raw, tmp_path, monkeypatch):
    def renamed(logs):
        logs.loc[logs.index[-3:], "action"] = "correct"

    raw = _rewritten(tiny_raw, tmp_path, renamed)
    _small_blocks(monkeypatch)
    with pytest.raises(InputError, match=r"unknown action 'correct' \(3 rows\)"):
        edm_cup.load(raw, part_bytes=1 << 16)


@pytest.mark.parametrize("where", ["training", "both", "null"])
def test_score_keys_are_checked_over_every_part(tiny_raw, tmp_path, where):
    """A key twice in the training scores, or in both score files, stops the run with the count over every part,
    as one read does, when the rows lie in the parts of the first and last students; so do two keys holding a
    null (one value), one of a known log and one of none."""
    raw = tmp_path / "raw"
    shutil.copytree(tiny_raw, raw)
    read = lambda name: pd.read_csv(raw / name, dtype=str, keep_default_na=False)  # noqa: E731
    train = read("training_unit_test_scores.csv")
    students = train.reset_index().merge(read("assignment_details.csv")[["assignment_log_id", "student_id"]])
    picked = students.sort_values("student_id").iloc[[0, len(students) // 2, -1]].set_index("index")[list(train.columns)]
    if where == "training":
        flipped = picked.assign(score=(1 - picked["score"].astype(int)).astype(str))
        pd.concat([train, flipped]).to_csv(raw / "training_unit_test_scores.csv", index=False)
        name, message = "training_unit_test_scores.csv", "3 duplicate (assignment_log_id, problem_id) rows, e.g. '"
    elif where == "null":
        first, last = picked.index[0], picked.index[-1]
        train.loc[first, "problem_id"], train.loc[last, "assignment_log_id"] = "", ""
        train.to_csv(raw / "training_unit_test_scores.csv", index=False)
        name, message = "training_unit_test_scores.csv", "1 duplicate (assignment_log_id, problem_id) rows, e.g. 'None'"
    else:
        evaluation = read("evaluation_unit_test_scores.csv")
        ids = [str(i) for i in range(10**6, 10**6 + 3)]
        more = picked[["assignment_log_id", "problem_id"]].assign(id=ids)[evaluation.columns]
        pd.concat([evaluation, more]).to_csv(raw / "evaluation_unit_test_scores.csv", index=False)
        name, message = "evaluation_unit_test_scores.csv", "3 (assignment_log_id, problem_id) keys are also in"
    size = (raw / "action_logs.csv").stat().st_size
    for part_bytes in (None, size // 6):  # one part of students, then seven
        with pytest.raises(InputError, match=re.escape(message)) as err:
            edm_cup.load(raw, part_bytes=part_bytes).whole()
        assert Path(err.value.path).name == name and err.value.column == "assignment_log_id"
