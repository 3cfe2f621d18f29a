"""The bad-input matrix of `prepare`: each case copies a tiny simulated raw folder, spoils it in one way
and runs the stage. Refused input must give exit != 0, one line naming the file (and column and value
where there is one) and no output at all; input that is read on purpose (another time unit, a proven
day/month order, another encoding) must give the clean run's tables; unusable rows must be counted."""

from __future__ import annotations

import importlib
import json
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner

from conftest import ROOT, events_as_assistments_2009, run_stage
from ktirt.errors import InputError
from ktirt.simulate import edm_tables
from ktirt.sources import edm_cup, timestamps
from ktirt.sources.timestamps import to_utc_ms

sys.path.insert(0, str(ROOT / "stages"))
prepare = importlib.import_module("prepare")

KNOWN_ACTIONS = "known actions: " + ", ".join(edm_cup.ACTIONS)
EDM, A09 = "synthetic", "assistments_2009"


# ---- running the stage --------------------------------------------------------------------------------

def params_file(folder: Path, source: str, raw: Path) -> Path:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"] = {"source": source, "raw_dir": str(raw), "part_mb": 512}
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def run_prepare(work: Path, source: str, raw: Path):
    """prepare in-process (click's runner: the same exit code and stderr as the command line)."""
    args = ["--params", str(params_file(work, source, raw)), "--out-dir", str(work / "out"),
            "--metrics", str(work / "out" / "prepare.json")]
    return CliRunner().invoke(prepare.main, args)


def outputs(work: Path) -> list[Path]:
    out = work / "out"
    return sorted(out.iterdir()) if out.exists() else []


# ---- raw folders: built once per session, copied per case -----------------------------------------------

@pytest.fixture(scope="session")
def a09_raw(tiny_tables, tmp_path_factory) -> Path:
    """The tiny world as ASSISTments 2009's latin-1 skill_builder_data.csv (skill names with accents)."""
    return events_as_assistments_2009(tiny_tables.events, tmp_path_factory.mktemp("a09") / "raw")


@pytest.fixture(scope="session")
def clean(tiny_raw, tmp_path_factory) -> dict:
    """prepare's output on the unspoilt tiny folder, the reference for accepted and counted cases."""
    return prepared(tmp_path_factory.mktemp("clean"), EDM, tiny_raw)


def prepared(work: Path, source: str, raw: Path) -> dict:
    """prepare's metrics, events and unit tests for `raw`, run in `work`; it must succeed."""
    result = run_prepare(work, source, raw)
    assert result.exit_code == 0, result.output
    return {"metrics": json.loads((work / "out" / "prepare.json").read_text()),
            "events": pq.read_table(work / "out" / "events.parquet"),
            "unit_tests": pq.read_table(work / "out" / "unit_tests.parquet")}


def copy_raw(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("_truth"))
    return dst


def edit(stem: str, change: Callable[[pd.DataFrame], pd.DataFrame], encoding: str = "utf-8"):
    """A spoiler rewriting one CSV through pandas, every value kept as text."""
    def spoil(raw: Path):
        path = raw / f"{stem}.csv"
        table = pd.read_csv(path, dtype=str, keep_default_na=False, encoding=encoding)
        change(table).to_csv(path, index=False, encoding=encoding)
    return spoil


def a09_edit(change: Callable[[pd.DataFrame], pd.DataFrame]):
    return edit("skill_builder_data", change, encoding="latin-1")


def repeat_training_key(raw: Path):
    """The first training-score key also listed, as withheld, in the evaluation file."""
    first = pd.read_csv(raw / "training_unit_test_scores.csv", dtype=str).iloc[0]
    edit("evaluation_unit_test_scores", lambda d: d.assign(
        assignment_log_id=d.assignment_log_id.mask(d.index == 0, first.assignment_log_id),
        problem_id=d.problem_id.mask(d.index == 0, first.problem_id)))(raw)


def write_bytes(stem: str, change: Callable[[bytes], bytes]):
    def spoil(raw: Path):
        path = raw / f"{stem}.csv"
        path.write_bytes(change(path.read_bytes()))
    return spoil


def remove(*stems: str):
    def spoil(raw: Path):
        for stem in stems:
            (raw / f"{stem}.csv").unlink()
    return spoil


def header_only(stem: str):
    return write_bytes(stem, lambda b: b.split(b"\n", 1)[0] + b"\n")


def each_row(column: str, fn: Callable[[str], str], rows=slice(None)):
    """Change `column` with `fn` on the selected rows (blank values stay blank)."""
    def change(d: pd.DataFrame) -> pd.DataFrame:
        values = d[column].copy()
        sel = values.iloc[rows].index
        values[sel] = [fn(v) if v else v for v in values[sel]]
        return d.assign(**{column: values})
    return change


def slash_date(order: str, clip_day: bool = False):
    """'2022-09-05 07:25:06.894' -> '05/09/2022 07:25:06.894' (dmy) or '09/05/2022 07:25:06.894' (mdy)."""
    def fn(v: str) -> str:
        y, m, d = v[:10].split("-")
        d = min(d, "12") if clip_day else d
        return (f"{d}/{m}/{y}" if order == "dmy" else f"{m}/{d}/{y}") + v[10:]
    return fn


def mixed_encodings(raw: Path) -> tuple[int, int]:
    """problem_details.csv in UTF-8 with one description in UTF-8 ('ó') and a later one in latin-1."""
    path = raw / "problem_details.csv"
    d = pd.read_csv(path, dtype=str, keep_default_na=False)
    d.loc[0, "problem_skill_description"] = "Fracción"
    d.loc[5, "problem_skill_description"] = "Fracci@BAD@n"
    data = d.to_csv(index=False).encode("utf-8")
    good, bad = data.index("ó".encode()), data.index(b"@BAD@")
    path.write_bytes(data.replace(b"@BAD@", b"\xf3"))
    return bad, good


def a09_stray_byte(raw: Path) -> tuple[int, int]:
    """skill_builder_data.csv re-saved as UTF-8, then one skill name in the second half written in latin-1."""
    path = raw / "skill_builder_data.csv"
    data = path.read_bytes().decode("latin-1").encode("utf-8")
    bad = data.index("Fracción".encode(), len(data) // 2) + len("Fracci")
    path.write_bytes(data[:bad] + b"\xf3" + data[bad + 2:])
    return bad, data.index("ó".encode())


def a09_as_utf8_with_bom(raw: Path):
    path = raw / "skill_builder_data.csv"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().decode("latin-1").encode("utf-8"))


def bom_everywhere(raw: Path):
    """A UTF-8 byte-order mark before every file's (quoted) header, as spreadsheet tools save."""
    for path in raw.glob("*.csv"):
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())


def shift_start_times(years: int):
    return edit("assignment_details", each_row("assignment_start_time", lambda v: str(int(v[:4]) + years) + v[4:]))


def accented_descriptions(encoding: str):
    def spoil(raw: Path):
        path = raw / "problem_details.csv"
        d = pd.read_csv(path, dtype=str, keep_default_na=False)
        d["problem_skill_description"] = d["problem_skill_description"] + " (fracción)"
        path.write_bytes(d.to_csv(index=False).encode(encoding))
    return spoil


# ---- the matrix ---------------------------------------------------------------------------------------

@dataclass
class Refused:
    """exit != 0, one line `Error: <file>: column '<column>': ...` holding every word, no output."""

    file: str | None
    column: str | None
    words: tuple[str, ...]


@dataclass
class Accepted:
    """exit 0; `check(metrics, clean, work)` holds (counts, or equality with the clean run)."""

    check: Callable[[dict, dict, Path], None]


@dataclass
class Case:
    kind: str
    spoil: Callable[[Path], object] = lambda raw: None
    outcome: Refused | Accepted = field(default_factory=lambda: Accepted(lambda m, c, w: None))
    source: str = EDM


def same_tables(*names: str):
    def check(m, clean, work):
        for name in names:
            assert pq.read_table(work / "out" / f"{name}.parquet").equals(clean[name]), name
    return check


def dropped(reason: str, n: int, scored_change: int = 0, rows_change: int = 0):
    def check(m, clean, work):
        assert m["dropped"][reason] == n
        assert m["unit_test_scored"] == clean["metrics"]["unit_test_scored"] + scored_change
        assert m["unit_test_rows"] == clean["metrics"]["unit_test_rows"] + rows_change
    return check


def withheld_none(m, clean, work):
    assert m["unit_test_rows"] == m["unit_test_scored"] == clean["metrics"]["unit_test_scored"]


def accents_read(m, clean, work):
    assert m["events"] == clean["metrics"]["events"]
    assert all(d.endswith("(fracción)") for d in edm_cup.skill_descriptions(work / "raw").values())


def blank_counted(column: str, reason: str):
    """The rows blanked in the spoilt action log (problem actions only) are the rows counted under `reason`."""
    def check(m, clean, work):
        logs = pd.read_csv(work / "raw" / "action_logs.csv", dtype=str, keep_default_na=False)
        n = int((logs[column].eq("") & logs.problem_id.ne("")).sum())
        assert n > 0 and m["dropped"][reason] == n, m["dropped"]
    return check


def a09_counts(m, clean, work):
    assert m["source"]["has_timestamps"] == 0 and "first_event_year" not in m["sanity"]
    assert m["events"] == clean["metrics"]["events"] and 0 < m["sanity"]["correct_rate"] < 1


DROP_20 = slice(0, 20)
CASES = {
    # files and columns
    "missing_file": Case("file", remove("problem_details"), Refused("problem_details", None, ("file not found",))),
    "empty_file": Case("file", write_bytes("assignment_relationships", lambda b: b""),
                       Refused("assignment_relationships", None, ("file is empty",))),
    "header_only_table": Case("file", header_only("problem_details"), Refused("problem_details", None, ("no rows",))),
    "misspelt_column": Case("column", edit("action_logs", lambda d: d.rename(columns={"problem_id": "problemid"})),
                            Refused("action_logs", "problem_id", ("did you mean 'problemid'",))),
    "bom_quoted_header": Case("encoding", bom_everywhere, Accepted(same_tables("events", "unit_tests"))),
    # encodings
    "utf8_with_stray_latin1_byte": Case("encoding", mixed_encodings, Refused("problem_details", None, ("mixed text encodings",))),
    "whole_file_latin1": Case("encoding", accented_descriptions("latin-1"), Accepted(accents_read)),
    "whole_file_utf8": Case("encoding", accented_descriptions("utf-8"), Accepted(accents_read)),
    "a09_latin1": Case("encoding", source=A09, outcome=Accepted(a09_counts)),
    "a09_utf8_with_bom": Case("encoding", a09_as_utf8_with_bom, Accepted(a09_counts), A09),
    "a09_utf8_with_stray_latin1_byte": Case("encoding", a09_stray_byte,
                                            Refused("skill_builder_data", None, ("mixed text encodings",)), A09),
    # timestamps: units
    "timestamps_in_ms": Case("time unit", edit("action_logs", each_row("timestamp", lambda v: str(round(float(v) * 1000)))),
                             Accepted(same_tables("events"))),
    "timestamps_in_ns": Case("time unit", edit("action_logs", each_row("timestamp", lambda v: str(round(float(v) * 1000) * 10**6))),
                             Accepted(same_tables("events"))),
    "timestamps_half_ms_half_s": Case("time unit", edit("action_logs", each_row("timestamp", lambda v: str(round(float(v) * 1000)),
                                                                                slice(0, 5000))),
                                      Refused("action_logs", "timestamp", ("mix units", "(milliseconds)", "(seconds)"))),
    "timestamp_before_1990": Case("time unit", edit("action_logs", each_row("timestamp", lambda v: "12345", slice(7, 8))),
                                  Refused("action_logs", "timestamp", ("12345", "between 1990 and 2100"))),
    "unparseable_timestamp": Case("time unit", edit("action_logs", each_row("timestamp", lambda v: "yesterday", slice(3, 4))),
                                  Refused("action_logs", "timestamp", ("'yesterday' does not parse",))),
    # date-time text: one format per column
    "dates_dd_mm_yyyy": Case("date format", edit("assignment_details", each_row("assignment_start_time", slash_date("dmy"))),
                             Accepted(same_tables("unit_tests"))),
    "dates_mm_dd_yyyy": Case("date format", edit("assignment_details", each_row("assignment_start_time", slash_date("mdy"))),
                             Accepted(same_tables("unit_tests"))),
    "dates_ambiguous_day_month": Case("date format", edit("assignment_details", each_row("assignment_start_time",
                                                                                          slash_date("dmy", clip_day=True))),
                                      Refused("assignment_details", "assignment_start_time", ("ambiguous dates", "ISO 8601"))),
    "dates_mixed_day_month_order": Case("date format", edit("assignment_details", lambda d: each_row(
        "assignment_start_time", slash_date("mdy"), slice(len(d) // 2, None))(each_row(
            "assignment_start_time", slash_date("dmy"), slice(0, len(d) // 2))(d))),
        Refused("assignment_details", "assignment_start_time", ("disagree on day/month order",))),
    "dates_iso_and_slash_mixed": Case("date format", edit("assignment_details", each_row(
        "assignment_start_time", slash_date("dmy"), slice(10, 11))),
        Refused("assignment_details", "assignment_start_time", ("does not fit the column's format ISO8601",))),
    "dates_unknown_format": Case("date format", edit("assignment_details", each_row("assignment_start_time", lambda v: "Sep 5 2022")),
                                 Refused("assignment_details", "assignment_start_time", ("'Sep 5 2022'", "ISO 8601"))),
    "unparseable_date": Case("date format", edit("assignment_details", each_row("assignment_start_time", lambda v: "not a date",
                                                                                  slice(4, 5))),
                             Refused("assignment_details", "assignment_start_time", ("'not a date'", "does not fit"))),
    # actions
    "renamed_action": Case("action", edit("action_logs", lambda d: d.replace({"action": {"correct_response": "Correct Response"}})),
                           Refused("action_logs", "action", ("unknown action 'Correct Response'", KNOWN_ACTIONS))),
    "blank_action": Case("action", edit("action_logs", lambda d: d.assign(action=d.action.where(d.index % 1000 != 1, ""))),
                         Accepted(blank_counted("action", "action_rows_no_action"))),
    "blank_timestamp": Case("time unit", edit("action_logs", lambda d: d.assign(timestamp=d.timestamp.where(
        (d.index % 1000 != 2) | d.problem_id.eq(""), ""))),
        Accepted(blank_counted("timestamp", "action_rows_no_timestamp"))),
    # ids and keys
    "unknown_assignment_logs": Case("ids", edit("action_logs", lambda d: d.assign(assignment_log_id="X" + d.assignment_log_id)),
                                    Refused("action_logs", "assignment_log_id", ("none of the",))),
    "unknown_problems": Case("ids", edit("action_logs", lambda d: d.assign(problem_id=d.problem_id.where(d.problem_id.eq(""),
                                                                                                          "Z" + d.problem_id))),
                             Refused("action_logs", "problem_id", ("none of the",))),
    # (a key repeated with other values; a row repeated exactly is removed and counted: tests/test_bad_input_2.py)
    "duplicate_problem_id": Case("ids", edit("problem_details", lambda d: pd.concat([d, d.iloc[[3]].assign(
        problem_multipart_position="9")])), Refused("problem_details", "problem_id", ("1 duplicate keys",))),
    "duplicate_assignment_log_id": Case("ids", edit("assignment_details", lambda d: pd.concat([d, d.iloc[[3]].assign(
        student_id="SOMEONE-ELSE")])), Refused("assignment_details", "assignment_log_id", ("1 duplicate keys",))),
    "duplicate_training_score": Case("ids", edit("training_unit_test_scores", lambda d: pd.concat([d, d.iloc[[0]].assign(
        score=lambda x: x.score.map({"0": "1", "1": "0"}))])), Refused("training_unit_test_scores", "assignment_log_id",
                                                                       ("duplicate",))),
    "null_in_training_keys": Case("ids", edit("training_unit_test_scores", lambda d: d.assign(  # a null key part: one value
        problem_id=d.problem_id.where(d.index != 0, ""), assignment_log_id=d.assignment_log_id.where(d.index != len(d) - 1, ""))),
        Refused("training_unit_test_scores", "assignment_log_id", ("1 duplicate (assignment_log_id, problem_id) rows",))),
    "unknown_unit_test_logs": Case("ids", edit("training_unit_test_scores", lambda d: d.assign(
        assignment_log_id="X" + d.assignment_log_id)), Refused("training_unit_test_scores", "assignment_log_id", (
            "none of its", "rows' assignment logs appear in assignment_details.csv"))),
    # unit-test scores
    "blank_scores": Case("score", edit("training_unit_test_scores", each_row("score", lambda v: "", DROP_20)),
                         Accepted(dropped("unit_test_rows_no_score", 20, -20, -20))),
    "nan_scores": Case("score", edit("training_unit_test_scores", each_row("score", lambda v: "NaN", DROP_20)),
                       Accepted(dropped("unit_test_rows_no_score", 20, -20, -20))),
    "out_of_range_scores": Case("score", edit("training_unit_test_scores", each_row("score", lambda v: "2", slice(0, 5))),
                                Accepted(dropped("unit_test_rows_score_not_0_1", 5, -5, -5))),
    "no_usable_score": Case("score", edit("training_unit_test_scores", lambda d: d.assign(score="0.5")),
                            Refused("training_unit_test_scores", "score", ("no usable score", "0 or 1", "0.5"))),
    "key_in_both_score_files": Case("score", repeat_training_key, Refused("evaluation_unit_test_scores", "assignment_log_id", ("also in training_unit_test_scores.csv",
                                                                     "both scored and withheld"))),
    "both_score_files_missing": Case("score", remove("training_unit_test_scores", "evaluation_unit_test_scores"),
                                     Refused(None, None, ("training_unit_test_scores.csv", "evaluation_unit_test_scores.csv"))),
    "both_score_files_header_only": Case("score", lambda raw: [header_only(s)(raw) for s in (
        "training_unit_test_scores", "evaluation_unit_test_scores")], Refused(None, None, ("no unit-test rows",))),
    "evaluation_file_header_only": Case("score", header_only("evaluation_unit_test_scores"), Accepted(withheld_none)),
    "evaluation_file_missing": Case("score", remove("evaluation_unit_test_scores"), Accepted(withheld_none)),
    # sanity: values that parse but cannot be real
    "every_first_response_wrong": Case("sanity", edit("action_logs", lambda d: d.replace({"action": {
        "correct_response": "wrong_response"}})), Refused(None, None, ("correct rate 0", "every first response is wrong"))),
    "unit_tests_before_their_units": Case("sanity", shift_start_times(-1),
                                          Refused(None, None, ("every unit test is dated before all the work of its unit",))),
    "unit_tests_in_2150": Case("sanity", shift_start_times(128),
                               Refused(None, None, ("unit_test timestamps span the years 2150-2150", "outside 1990-2100"))),
    "a09_every_response_right": Case("sanity", a09_edit(lambda d: d.assign(correct="1")),
                                     Refused(None, None, ("correct rate 1",)), A09),
    "a09_missing_column": Case("column", a09_edit(lambda d: d.rename(columns={"problem_id": "problem"})),
                               Refused("skill_builder_data", "problem_id", ("missing column",)), A09),
}


@pytest.mark.parametrize("name", CASES)
def test_prepare_on_bad_input(name, tmp_path, tiny_raw, a09_raw, clean):
    case = CASES[name]
    raw = copy_raw(tiny_raw if case.source == EDM else a09_raw, tmp_path / "raw")
    offsets = case.spoil(raw)
    assert_outcome(case, run_prepare(tmp_path, case.source, raw), raw, offsets, clean, tmp_path)


def assert_outcome(case: Case, result, raw: Path, offsets, clean: dict, tmp_path: Path) -> None:
    """An accepted case's check holds; a refused one is exit != 0, one line naming file, column and words, and
    no output."""
    if isinstance(case.outcome, Accepted):
        assert result.exit_code == 0, result.output
        case.outcome.check(json.loads((tmp_path / "out" / "prepare.json").read_text()), clean, tmp_path)
        return
    assert result.exit_code != 0 and isinstance(result.exception, SystemExit), result.output
    message = result.stderr.strip()
    assert "\n" not in message and message.startswith("Error: "), message
    expected = str(raw / f"{case.outcome.file}.csv") if case.outcome.file else str(raw)
    assert message.startswith(f"Error: {expected}: "), message
    assert (f"column '{case.outcome.column}'" in message) == (case.outcome.column is not None), message
    for words in case.outcome.words:
        assert words in message, message
    if isinstance(offsets, tuple):  # the byte offsets of the first bad byte and of a UTF-8 character
        assert f"byte offset {offsets[0]} is not UTF-8, but byte offset {offsets[1]}" in message, message
    assert outputs(tmp_path) == []


def test_missing_raw_folder_and_unknown_source(tmp_path):
    result = run_prepare(tmp_path, EDM, tmp_path / "nowhere")
    assert result.exit_code != 0 and "raw data folder not found" in result.stderr and outputs(tmp_path) == []
    result = run_prepare(tmp_path, "edm_cup_2024", tmp_path)
    assert result.exit_code != 0 and "data.source" in result.stderr and outputs(tmp_path) == []


def test_nothing_withheld_as_the_simulator_writes_it(tmp_path, tiny_raw, clean):
    """With nothing withheld the simulator's writer leaves a header-only evaluation file (what
    simulate.evaluation_fraction 0 gave); prepare reads it as 'no withheld scores', not as an empty table."""
    raw = copy_raw(tiny_raw, tmp_path / "raw")
    empty = pd.DataFrame({"id": pd.Series([], dtype="int64"), "assignment_log_id": pd.Series([], dtype=str),
                          "problem_id": pd.Series([], dtype=str)})
    edm_tables._csv(empty, raw / "evaluation_unit_test_scores.csv")
    assert (raw / "evaluation_unit_test_scores.csv").read_text() == '"id","assignment_log_id","problem_id"\n'
    result = run_prepare(tmp_path, EDM, raw)
    assert result.exit_code == 0, result.output
    withheld_none(json.loads((tmp_path / "out" / "prepare.json").read_text()), clean, tmp_path)


def test_command_line_matches_the_runner(tmp_path, tiny_raw):
    """The real command line: one error line last on stderr, no traceback, nothing written."""
    raw = copy_raw(tiny_raw, tmp_path / "raw")
    CASES["renamed_action"].spoil(raw)
    out = tmp_path / "out"
    r = run_stage("prepare", "--params", str(params_file(tmp_path, EDM, raw)), "--out-dir", str(out),
                  "--metrics", str(out / "prepare.json"))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith(f"Error: {raw / 'action_logs.csv'}: column 'action': unknown action")
    assert not out.exists()


def test_matrix_covers_every_kind():
    kinds = {c.kind for c in CASES.values()}
    assert kinds == {"file", "column", "encoding", "time unit", "date format", "action", "ids", "score", "sanity"}
    assert sum(isinstance(c.outcome, Refused) for c in CASES.values()) >= 25


def test_clean_run_sanity_block(clean):
    s = clean["metrics"]["sanity"]
    assert (s["first_event_year"], s["last_event_year"], s["first_unit_test_year"]) == (2022, 2022, 2022)
    assert 30 < s["event_span_days"] < 120 and s["unit_tests_after_unit_work_share"] == 1.0
    shares = {k: v for k, v in s.items() if k.startswith("first_action_")}
    assert set(shares) == {f"first_action_{a}_share" for a in edm_cup.FIRST_ACTIONS}
    assert abs(sum(shares.values()) - 1) < 1e-5
    assert s["first_action_correct_response_share"] == s["correct_rate"] == clean["metrics"]["correct_rate"]


@pytest.mark.parametrize("values, first_ms", [
    ([1662362706.894, None], 1662362706894),
    ([1662362706894123, 1662362706000000], 1662362706894),  # microseconds
    (["2022/09/05 07:25", "2022/12/31 00:00"], 1662362700000),
    (["5/9/2022", "13/9/2022"], 1662336000000),  # day first, proven by the 13
    (["9/5/2022", "9/13/2022"], 1662336000000),  # month first, proven by the 13
    (["2022-09-05T07:25:06+02:00", "2022-09-05 05:25:06"], 1662355506000),
])
def test_one_unit_or_format_per_column(values, first_ms):
    assert to_utc_ms(pa.array(values), "f.csv", "t")[0] == first_ms


def test_text_times_parsed_a_slice_at_a_time_read_as_one_column(monkeypatch):
    """Parsed in slices of TEXT_SLICE, a column gives what one parse gives, its format (here: day first, proven by
    one value in the last slice) is the column's, and the value that does not fit is named wherever it lies."""
    values = [f"{d}/9/2022 07:{m:02d}" for d in range(1, 13) for m in range(0, 60, 7)] + [None, "13/9/2022 00:00"]
    whole = to_utc_ms(pa.array(values), "f.csv", "t")
    monkeypatch.setattr(timestamps, "TEXT_SLICE", 7)
    assert (to_utc_ms(pa.array(values), "f.csv", "t") == whole).all()
    assert whole[0] == 1662015600000 and whole[-2] == timestamps.NAT  # 1 September 07:00, a blank
    with pytest.raises(InputError, match="'2022-09-14' does not fit"):  # the first of two, in the fifth slice
        to_utc_ms(pa.array(values[:30] + ["2022-09-14"] + values[30:] + ["2022-09-15"]), "f.csv", "t")
