"""EDM Cup's action log read in one pass (ktirt.sources.edm_stream): where each assignment log's rows lie together,
the tables, every count and the fault a bad file stops on are those of the split by student
(ktirt.sources.csv_parts), whatever the parser's block and the part sizes, on fixed and on seeded random dirt;
where they do not (a log met again, a blank or unknown log) the file is split instead, and nothing of the pass
is left behind."""

import logging
import shutil
import tempfile

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from conftest import hand_written_edm
from ktirt.errors import InputError
from ktirt.sources import edm_cup, tables
from ktirt.sources.edm_stream import NotStreamable

COUNTS = ("dropped", "excluded", "first_actions", "reading", "features")


@pytest.fixture(scope="module")
def dirty_in_runs(tiny_raw, tmp_path_factory):
    """The tiny simulation with, each inside its log's own rows: exact duplicates right after their originals, rows
    that repeat another but for a column read only for the duplicate rule or for a log id written with a space
    (the same log, not the same row), blank actions and times, problems blank or not in problem_details."""
    raw = tmp_path_factory.mktemp("stream") / "raw"
    shutil.copytree(tiny_raw, raw)
    rows = pd.read_csv(raw / "action_logs.csv", dtype=str, keep_default_na=False)
    rng = np.random.default_rng(1)
    exact, hint, spaced = (rows.iloc[rng.choice(len(rows), n, replace=False)] for n in (40, 10, 10))
    rows = pd.concat([rows, exact, hint.assign(hint_id="H0"),
                      spaced.assign(assignment_log_id=spaced["assignment_log_id"] + " ")])
    rows = rows.sort_index(kind="stable").reset_index(drop=True)  # each copy right after its original
    for column, value, n in (("action", "", 5), ("timestamp", "", 5), ("problem_id", "NO_SUCH_PROBLEM", 12),
                             ("problem_id", "", 3)):
        rows.loc[rng.choice(len(rows), n, replace=False), column] = value
    rows.to_csv(raw / "action_logs.csv", index=False)
    return raw


def _loaded(raw, part_bytes, stream: bool, monkeypatch) -> tuple[list[pa.Table], list[pa.Table], object]:
    with monkeypatch.context() as m:
        if not stream:
            m.setattr(edm_cup, "stream_visits", _refused)
        t = edm_cup.load(raw, part_bytes=part_bytes)
        return list(t.event_parts()), list(t.unit_test_parts()), t


def _refused(*args):
    raise NotStreamable("refused by the test")


@pytest.mark.parametrize("block_bytes", [None, 4 << 10], ids=["one block", "logs across blocks"])
@pytest.mark.parametrize("parts", [1, 6], ids=["one part", "six parts"])
def test_one_pass_gives_what_the_split_gives(dirty_in_runs, monkeypatch, caplog, block_bytes, parts):
    if block_bytes:
        monkeypatch.setattr(tables, "BLOCK_BYTES", block_bytes)
    part_bytes = -(-(dirty_in_runs / "action_logs.csv").stat().st_size // parts)
    with caplog.at_level(logging.INFO):
        events, unit_tests, streamed = _loaded(dirty_in_runs, part_bytes, True, monkeypatch)
        assert "not read in one pass" not in caplog.text, "this file is read in one pass"
        split_events, split_unit_tests, split = _loaded(dirty_in_runs, part_bytes, False, monkeypatch)
    said = [r.getMessage() for r in caplog.records if "first-response events" in r.getMessage()]
    assert len(said) == 2 and said[0] == said[1], "the same action rows (duplicates out) and events"
    assert len(events) == parts and len(split_events) == parts + 1  # the split's last: rows of no known student
    assert split_events[-1].num_rows == 0
    for a, b in zip(events, split_events):
        assert a.equals(b)
    for a, b in zip(unit_tests, split_unit_tests):
        assert a.equals(b)
    for counts in COUNTS:
        assert getattr(streamed, counts) == getattr(split, counts), counts
        assert list(getattr(streamed, counts)) == list(getattr(split, counts)), f"{counts}: same order in the metrics"
    dropped = streamed.dropped
    assert dropped["duplicate_rows"] == 40 and dropped["responses_unknown_problem"] > 0
    assert dropped["action_rows_no_action"] == 5 and dropped["action_rows_no_problem"] > 0


def _moved_row(rows):
    """One row of the first log moved to the end of the file: that log's rows are no longer together."""
    return pd.concat([rows.drop(index=1), rows.iloc[[1]]])


@pytest.mark.parametrize("change", [
    _moved_row,
    lambda rows: rows.assign(assignment_log_id=rows["assignment_log_id"].mask(rows.index == 300, "")),
    lambda rows: rows.assign(assignment_log_id=rows["assignment_log_id"].mask(rows.index == 300, "NO_SUCH_LOG")),
], ids=["a log met again", "a blank log", "a log not in assignment_details"])
def test_a_file_the_one_pass_cannot_read_is_split(tiny_raw, tmp_path, monkeypatch, caplog, change):
    raw = tmp_path / "raw"
    shutil.copytree(tiny_raw, raw)
    rows = pd.read_csv(raw / "action_logs.csv", dtype=str, keep_default_na=False)
    change(rows).to_csv(raw / "action_logs.csv", index=False)
    monkeypatch.setattr(tables, "BLOCK_BYTES", 4 << 10)  # the pass stops after some blocks, not at the first
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with caplog.at_level(logging.INFO):
        events, unit_tests, streamed = _loaded(raw, None, True, monkeypatch)
    assert "split by student, not read in one pass" in caplog.text
    split_events, split_unit_tests, split = _loaded(raw, None, False, monkeypatch)
    assert pa.concat_tables(events).equals(pa.concat_tables(split_events))
    assert pa.concat_tables(unit_tests).equals(pa.concat_tables(split_unit_tests))
    for counts in COUNTS:
        assert getattr(streamed, counts) == getattr(split, counts), counts
    assert not list(tmp_path.glob("ktirt-*")), "the pass's and the parts' folders are removed"


def _two_ambiguous_problems(rows):
    """`7.0` / `007` in blocks apart, `8.0` / `008` side by side in one block: one read names the first met."""
    return rows.assign(problem_id=rows["problem_id"].mask(rows.index == 1, "7.0").mask(rows.index == 10, "8.0")
                       .mask(rows.index == 11, "008").mask(rows.index == 20, "007"))


def _ambiguous_problem_then_a_bad_time(rows):
    """`8.0` / `008` side by side, then a timestamp that does not parse in a later block: the parser meets it first."""
    rows = rows.assign(problem_id=rows["problem_id"].mask(rows.index == 10, "8.0").mask(rows.index == 11, "008"))
    return rows.assign(timestamp=rows["timestamp"].mask(rows.index == 20, "abc"))


@pytest.mark.parametrize("change, named", [
    (_two_ambiguous_problems, "column 'problem_id': ids '7.0' and '007' may be the same id"),
    (_ambiguous_problem_then_a_bad_time, "column 'timestamp': value 'abc' does not parse"),
], ids=["two ambiguous problem ids", "an ambiguous problem id, then a bad time"])
def test_a_file_with_several_faults_stops_on_the_same_one_either_way(tmp_path, monkeypatch, change, named):
    """The one pass refuses a problem id in a block only as the split does (until a problem joins), then leaves it
    to the whole file's checks: which fault a run names does not depend on the path or on where blocks end."""
    raw = hand_written_edm(tmp_path / "raw")
    rows = pd.read_csv(raw / "action_logs.csv", dtype=str, keep_default_na=False)
    change(rows).to_csv(raw / "action_logs.csv", index=False)
    monkeypatch.setattr(tables, "BLOCK_BYTES", 512)  # a few rows a block: rows 10 and 11 together, 1 and 20 apart
    said = []
    for stream in (True, False):
        with pytest.raises(InputError) as error:
            _loaded(raw, None, stream, monkeypatch)
        said.append(str(error.value))
    assert said[0] == said[1] and named in said[0]


def _trailing_zeros(rows: pd.DataFrame) -> pd.Series:
    """Each time with a decimal point written with two more zeros: the same time, written another way."""
    return rows["timestamp"].mask(rows["timestamp"].str.contains(".", regex=False), rows["timestamp"] + "00")


def _shuffled_dirt(rows: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Dirt a real export may hold, each log's rows still together: rows out of time order within their log,
    exact duplicates far from their originals (in the same log), copies written another way (a time with
    trailing zeros, a hint id quoted with a comma) or a millisecond later, blank actions, times and problems."""
    run = np.r_[0, np.cumsum(rows["assignment_log_id"].to_numpy()[1:] != rows["assignment_log_id"].to_numpy()[:-1])]
    rows = rows.assign(_run=run, _at=rng.permutation(len(rows)))
    pick = lambda n: rows.iloc[rng.choice(len(rows), n, replace=False)]  # noqa: E731
    copies = [pick(30), pick(8).assign(timestamp=_trailing_zeros),
              pick(8).assign(hint_id="H1, or H2"),
              pick(8).assign(timestamp=lambda d: (d["timestamp"].astype(float) + 0.001).map("{:.3f}".format))]
    rows = pd.concat([rows, *(c.assign(_at=rng.integers(0, len(rows), len(c))) for c in copies)], ignore_index=True)
    for column, n in (("action", 4), ("timestamp", 4), ("problem_id", 4)):
        rows.loc[rng.choice(len(rows), n, replace=False), column] = ""
    return rows.sort_values(["_run", "_at"], kind="stable").drop(columns=["_run", "_at"])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_seeded_dirty_files_read_the_same_either_way(tiny_raw, tmp_path, monkeypatch, caplog, seed):
    """Random dirt (seeded), in a file with Windows line endings and a byte-order mark: the one pass and the
    split give the same events, unit tests and counts, with logs spanning 4 KB blocks, in one part and in three."""
    rng = np.random.default_rng(seed)
    raw = tmp_path / "raw"
    shutil.copytree(tiny_raw, raw)
    rows = pd.read_csv(raw / "action_logs.csv", dtype=str, keep_default_na=False)
    text = _shuffled_dirt(rows, rng).to_csv(index=False, lineterminator="\r\n")
    (raw / "action_logs.csv").write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    monkeypatch.setattr(tables, "BLOCK_BYTES", 4 << 10)
    for parts in (1, 3):
        part_bytes = -(-(raw / "action_logs.csv").stat().st_size // parts)
        with caplog.at_level(logging.INFO):
            caplog.clear()
            events, unit_tests, streamed = _loaded(raw, part_bytes, True, monkeypatch)
            assert "not read in one pass" not in caplog.text, "this file is read in one pass"
        split_events, split_unit_tests, split = _loaded(raw, part_bytes, False, monkeypatch)
        assert pa.concat_tables(events).equals(pa.concat_tables(split_events))
        assert pa.concat_tables(unit_tests).equals(pa.concat_tables(split_unit_tests))
        for counts in COUNTS:
            assert getattr(streamed, counts) == getattr(split, counts), counts
        assert streamed.dropped["duplicate_rows"] >= 30 and sum(map(len, events)) > 0
