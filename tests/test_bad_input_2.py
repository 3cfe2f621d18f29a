"""The second bad-input matrix of `prepare` ("nothing doubled, merged or half-written"): rules that hold for
every source and every raw table, on a spoilt copy of the tiny simulated release (EDM Cup files, or the same
world as ASSISTments 2009's skill_builder_data.csv). The harness is tests/test_bad_input.py's: refused input
gives exit != 0, one line naming file and column, no output; counted input gives the counts; accepted input
gives the clean run's tables."""

from __future__ import annotations

import gzip
import io
import json
import shutil
import zipfile
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from conftest import run_stage
from test_bad_input import (A09, EDM, Accepted, Case, Refused, a09_edit, a09_raw, assert_outcome, clean, copy_raw,  # noqa: F401
                            each_row, edit, params_file, prepared, run_prepare, same_tables, write_bytes)

TABLES = ("action_logs", "assignment_details", "problem_details", "assignment_relationships",
          "training_unit_test_scores", "evaluation_unit_test_scores")
"""every raw table the EDM Cup adapter reads"""


@pytest.fixture(scope="session")
def a09_clean(a09_raw, tmp_path_factory) -> dict:
    """prepare's output on the unspoilt ASSISTments 2009 file."""
    return prepared(tmp_path_factory.mktemp("a09_clean"), A09, a09_raw)


# ---- spoilers -----------------------------------------------------------------------------------------------

def twice(stem: str, rows=slice(None), a09: bool = False):
    """The selected rows written a second time at the end of the table, every column equal."""
    change = lambda d: pd.concat([d, d.iloc[rows]])  # noqa: E731
    return a09_edit(change) if a09 else edit(stem, change)


def in_every_table(*spoilers):
    return lambda raw: [spoil(raw) for spoil in spoilers]


def a09_numeric(column: str, fn=lambda number, row: number):
    """`column`'s values as numbers (70000 + their rank), written `fn(number, row position)`."""
    def change(d):
        number = {v: str(70000 + i) for i, v in enumerate(sorted(d[column].unique()))}
        return d.assign(**{column: [fn(number[v], k) for k, v in enumerate(d[column])]})
    return a09_edit(change)


def a09_users(first: str, second: str):
    """The first two students (by id) renamed `first` and `second`."""
    def change(d):
        users = sorted(d.user_id.unique())
        return d.assign(user_id=d.user_id.replace({users[0]: first, users[1]: second}))
    return a09_edit(change)


def edm_numeric_log_ids(float_in: tuple[str, ...]):
    """Every assignment log id as a number (in every table that names one), written `N.0` in the `float_in` tables."""
    columns = ("assignment_log_id", "unit_test_assignment_log_id", "in_unit_assignment_log_id")

    def spoil(raw: Path):
        ids = pd.read_csv(raw / "assignment_details.csv", dtype=str, keep_default_na=False).assignment_log_id
        number = {v: str(500 + i) for i, v in enumerate(sorted(ids))}
        for stem in TABLES:
            suffix = ".0" if stem in float_in else ""
            edit(stem, lambda d: d.assign(**{c: [number[v] + suffix if v else v for v in d[c]]
                                             for c in columns if c in d}))(raw)
    return spoil


def edm_student_ids_half_float(raw: Path):
    def change(d):
        number = {v: str(9000 + i) for i, v in enumerate(sorted(d.student_id.unique()))}
        return d.assign(student_id=[number[v] + (".0" if k % 2 else "") for k, v in enumerate(d.student_id)])
    edit("assignment_details", change)(raw)


def a09_skill_list(separator: str, second: str | None = None):
    """The first response's one skill field written as a list of two skill codes, the second one `second`."""
    def change(d):
        codes = sorted(d.skill_id.unique(), key=int)
        other = second or next(c for c in codes if c != d.skill_id.iloc[0])
        return d.assign(skill_id=d.skill_id.mask(d.index == 0, d.skill_id.iloc[0] + separator + other))
    return a09_edit(change)


def edm_skill_list(separator: str, second: str | None = None):
    """Every other problem of the first skill listed under two codes (the others keep the first code alone)."""
    def change(d):
        codes = sorted(c for c in d.problem_skill_code.unique() if c)
        first = d.problem_skill_code.iloc[0]
        other = second or next(c for c in codes if c != first)
        listed = d.problem_skill_code.eq(first) & (d.problem_skill_code.eq(first).cumsum() % 2 == 0)
        return d.assign(problem_skill_code=d.problem_skill_code.mask(listed, first + separator + other))
    return edit("problem_details", change)


def a09_skill_renamed(code: str):
    """Every row of the first skill under the code `code`."""
    return a09_edit(lambda d: d.assign(skill_id=d.skill_id.replace({sorted(d.skill_id.unique())[0]: code})))


PUNCTUATION = " \u2019s \u2013 \u201cpart\u201d"
"""a curly apostrophe, an en dash and curly quotes: Windows-1252's bytes 0x92, 0x96, 0x93, 0x94"""


def cp1252_names(stem: str, column: str, source_encoding: str = "utf-8"):
    def spoil(raw: Path):
        path = raw / f"{stem}.csv"
        d = pd.read_csv(path, dtype=str, keep_default_na=False, encoding=source_encoding)
        d[column] = d[column] + PUNCTUATION
        path.write_bytes(d.to_csv(index=False).encode("cp1252"))
    return spoil


def undefined_cp1252_byte(raw: Path):
    d = pd.read_csv(raw / "problem_details.csv", dtype=str, keep_default_na=False)
    d.loc[2, "problem_skill_description"] = "Fraccion @BAD@"
    (raw / "problem_details.csv").write_bytes(d.to_csv(index=False).encode("cp1252").replace(b"@BAD@", b"\xe9\x81"))


def replace_file(stem: str, how):
    def spoil(raw: Path):
        path = raw / f"{stem}.csv"
        data = path.read_bytes()
        path.unlink()
        how(path, data)
    return spoil


def as_zip(path: Path, data: bytes):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr(path.name, data)
    path.write_bytes(buffer.getvalue())


def raw_dir_replaced(how):
    def spoil(raw: Path):
        shutil.rmtree(raw)
        how(raw)
    return spoil


def rename_column(stem: str, old: str, new: str):
    return write_bytes(stem, lambda b: b.replace(old.encode(), new.encode(), 1))


def iso_text(seconds: str) -> str:
    return pd.Timestamp(float(seconds), unit="s").strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def unix_seconds(text: str) -> str:
    return f"{pd.Timestamp(text).timestamp():.3f}"


def nul_lines(stem: str, action: str | None, n: int):
    """The first `n` lines holding `action` (any line when None) spoilt by NUL bytes: the first wholly, the
    others from their middle on (newline kept)."""
    def spoil(raw: Path):
        path = raw / f"{stem}.csv"
        lines = path.read_bytes().split(b"\n")
        hits = [k for k in range(1, len(lines)) if lines[k] and (action is None or action.encode() in lines[k])][:n]
        for j, k in enumerate(hits):
            keep = 0 if j == 0 else len(lines[k]) // 2
            lines[k] = lines[k][:keep] + b"\0" * (len(lines[k]) - keep)
        path.write_bytes(b"\n".join(lines))
    return spoil


def unknown_relationships(raw: Path):
    edit("assignment_relationships", lambda d: pd.concat([d, pd.DataFrame({
        "unit_test_assignment_log_id": ["NO-SUCH-TEST-1", "NO-SUCH-TEST-2", "NO-SUCH-TEST-3"] + [d.unit_test_assignment_log_id.iloc[0]] * 2,
        "in_unit_assignment_log_id": [d.in_unit_assignment_log_id.iloc[0]] * 3 + ["NO-SUCH-LOG-1", "NO-SUCH-LOG-2"]})]))(raw)


FUTURE_YEARS = date.today().year + 3 - 2022
"""years that move the tiny release (2022) to three years after the run"""


def in_the_future(raw: Path):
    """Every action and every assignment start moved by the same number of years."""
    seconds = FUTURE_YEARS * 365.25 * 86400
    edit("action_logs", each_row("timestamp", lambda v: f"{float(v) + seconds:.3f}"))(raw)
    edit("assignment_details", each_row("assignment_start_time", lambda v: iso_text(str(float(unix_seconds(v)) + seconds))))(raw)


# ---- checks -------------------------------------------------------------------------------------------------

def metrics_are(expected: dict, *tables: str):
    """Each dotted metrics key has its value (a callable: of the run's folder), and the named tables are the
    clean run's."""
    def check(m, clean, work):
        for key, want in expected.items():
            section, _, name = key.rpartition(".")
            got = (m[section] if section else m)[name]
            want = want(work) if callable(want) else want
            assert got == want, (key, got, want)
        same_tables(*tables)(m, clean, work)
    return check


def rows_of(stem: str, share: float = 1.0):
    return lambda work: int(len(pd.read_csv(work / "raw" / f"{stem}.csv", dtype=str, encoding="latin-1")) * share)


def and_then(first, second):
    return lambda m, clean, work: (first(m, clean, work), second(m, clean, work))


def same_counts(*keys: str):
    def check(m, clean, work):
        for key in keys:
            assert m[key] == clean["metrics"][key], (key, m[key], clean["metrics"][key])
    return check


def skills_described(words: str, n_skills_key: str = "skills"):
    """skills.parquet's descriptions hold `words` and no control character (what latin-1 makes of cp1252)."""
    def check(m, clean, work):
        descriptions = [d for d in pq.read_table(work / "out" / "skills.parquet")["description"].to_pylist() if d]
        assert descriptions and all(words in d for d in descriptions), descriptions[:3]
        assert not any(0x80 <= ord(c) <= 0x9F for d in descriptions for c in d)
        assert m[n_skills_key] == clean["metrics"][n_skills_key]
    return check


def listed_skills_split(m, clean, work):
    """No skill named like a list; the rows whose field listed two codes are counted; their events have both."""
    skills = pq.read_table(work / "out" / "skills.parquet")["skill_id"].to_pylist()
    assert not any(c in s for s in skills for c in ",;_|"), skills
    stem, column = ("skill_builder_data", "skill_id") if m["source"]["has_timestamps"] == 0 else ("problem_details",
                                                                                                 "problem_skill_code")
    fields = pd.read_csv(work / "raw" / f"{stem}.csv", dtype=str, keep_default_na=False, encoding="latin-1")[column]
    assert m["skills"] == clean["metrics"]["skills"]
    assert m["sanity"]["multi_skill_from_lists"] == fields.str.contains("[,;_|]").sum() > 0
    assert m["shape"]["multi_skill_response_share"] > clean["metrics"]["shape"]["multi_skill_response_share"]


def users_are_numbers(m, clean, work):
    users = set(pq.read_table(work / "out" / "events.parquet")["user_id"].to_pylist())
    assert len(users) == m["users"] == clean["metrics"]["users"] and all(u.isdigit() for u in users), sorted(users)[:5]


def kept_whole(code: str):
    def check(m, clean, work):
        assert code in pq.read_table(work / "out" / "skills.parquet")["skill_id"].to_pylist()
        assert m["skills"] == clean["metrics"]["skills"] and m["sanity"]["multi_skill_from_lists"] == 0
    return check


def encoding_recorded(stem: str):
    return lambda m, clean, work: (m["sanity"]["files_not_utf8"] == 1 and m["sanity"][f"read_as_cp1252_{stem}"] == 1
                                   or pytest.fail(str(m["sanity"])))


def each_table_once(m, clean, work):
    assert m["dropped"]["duplicate_rows"] == len(TABLES) and m["dropped_total"] == len(TABLES)
    assert all(m["sanity"][f"duplicate_rows_{stem}"] == 1 for stem in TABLES), m["sanity"]


def one_response_lost(m, clean, work):
    """The fixture writes one line per response: the damaged line's response is gone, counted as corrupt."""
    assert m["dropped"]["corrupt_rows"] == m["dropped_total"] == 1 and m["events"] == clean["metrics"]["events"] - 1


def in_future(m, clean, work):
    s = m["sanity"]
    assert s["events_future"] == m["events"] > 0 and s["unit_tests_future"] == m["unit_test_rows"] > 0, s


# ---- the matrix ---------------------------------------------------------------------------------------------

SAME = ("events", "unit_tests")
CASES = {
    # exact duplicate rows (every column equal): removed once, counted, never summed
    "action_logs_every_row_twice": Case("duplicates", twice("action_logs"), Accepted(metrics_are({
        "dropped.duplicate_rows": rows_of("action_logs", 0.5), "sanity.duplicate_rows_action_logs": rows_of("action_logs", 0.5)},
        *SAME))),
    "one_row_twice_in_every_table": Case("duplicates", in_every_table(*(twice(stem, [0]) for stem in TABLES)),
                                         Accepted(and_then(each_table_once, same_tables(*SAME)))),
    "a09_every_row_twice": Case("duplicates", twice("skill_builder_data", a09=True), Accepted(metrics_are({
        "dropped.duplicate_rows": rows_of("skill_builder_data", 0.5)}, "events")), A09),
    "a09_rows_equal_but_in_an_unread_column": Case("duplicates", a09_edit(lambda d: pd.concat(
        [d, d.iloc[:30].assign(opportunity="99")])), Accepted(metrics_are({"dropped.duplicate_rows": 0}, "events")), A09),
    # one id rule for every id column of every source
    "a09_user_ids_half_written_as_floats": Case("ids", a09_numeric("user_id", lambda n, k: n + ".0" * (k % 2)),
                                                Accepted(users_are_numbers), A09),
    "a09_order_ids_written_as_floats": Case("ids", a09_edit(each_row("order_id", lambda v: v + ".0")),
                                            Accepted(same_tables("events")), A09),
    "a09_problem_ids_with_spaces": Case("ids", a09_edit(each_row("problem_id", lambda v: f" {v} ", slice(0, None, 2))),
                                        Accepted(same_tables("events")), A09),
    "a09_float_id_may_be_a_zero_padded_one": Case("ids", a09_users("007", "7.0"), Refused(
        "skill_builder_data", "user_id", ("ids '7.0' and '007' may be the same id", "write every id as text")), A09),
    "a09_zero_padded_ids_stay_distinct": Case("ids", a09_users("007", "7"), Accepted(same_counts("users", "events")), A09),
    "edm_log_ids_as_floats_in_the_action_log": Case("ids", edm_numeric_log_ids(("action_logs",)),
                                                    Accepted(same_counts("events", "users", "unit_test_rows"))),
    "edm_log_ids_as_floats_in_the_score_files": Case("ids", edm_numeric_log_ids(TABLES[4:]),
                                                     Accepted(same_counts("events", "unit_test_rows", "unit_test_scored"))),
    "edm_student_ids_half_written_as_floats": Case("ids", edm_student_ids_half_float, Accepted(users_are_numbers)),
    # a skill field listing several codes
    **{f"a09_skill_list_{name}": Case("skill lists", a09_skill_list(sep), Accepted(listed_skills_split), A09)
       for name, sep in (("comma", ","), ("semicolon", ";"), ("underscore", "_"), ("pipe", "|"))},
    "edm_skill_list": Case("skill lists", edm_skill_list(","), Accepted(listed_skills_split)),
    "a09_skill_list_with_an_unknown_part": Case("skill lists", a09_skill_list(",", "99"), Refused(
        "skill_builder_data", "skill_id", (",99' reads as a list of skills", "'99' is not one")), A09),
    "edm_skill_list_with_an_unknown_part": Case("skill lists", edm_skill_list(";", "NOPE"), Refused(
        "problem_details", "problem_skill_code", (";NOPE' reads as a list of skills", "'NOPE' is not one"))),
    "a09_skill_code_with_a_separator_kept_whole": Case("skill lists", a09_skill_renamed("ratio_tables"),
                                                       Accepted(kept_whole("ratio_tables")), A09),
    # Windows-1252
    "a09_cp1252_punctuation": Case("encoding", cp1252_names("skill_builder_data", "skill_name", "latin-1"), Accepted(
        and_then(skills_described(PUNCTUATION), encoding_recorded("skill_builder_data"))), A09),
    "edm_cp1252_punctuation": Case("encoding", cp1252_names("problem_details", "problem_skill_description"), Accepted(
        and_then(skills_described(PUNCTUATION), encoding_recorded("problem_details")))),
    "byte_undefined_in_cp1252": Case("encoding", undefined_cp1252_byte, Refused(
        "problem_details", None, ("byte 0x81 at offset", "neither in UTF-8 nor in Windows-1252"))),
    # what is there instead of a file or a folder
    "gzip_named_csv": Case("files", replace_file("problem_details", lambda p, b: p.write_bytes(gzip.compress(b))),
                           Refused("problem_details", None, ("gzip-compressed: decompress it first",))),
    "zip_named_csv": Case("files", replace_file("action_logs", as_zip), Refused("action_logs", None, ("a zip archive",))),
    "folder_for_a_file": Case("files", replace_file("problem_details", lambda p, b: p.mkdir()),
                              Refused("problem_details", None, ("is a folder, not a file",))),
    "symlink_loop": Case("files", replace_file("assignment_details", lambda p, b: p.symlink_to(p.name)),
                         Refused("assignment_details", None, ("symbolic link loop",))),
    "score_file_symlink_loop": Case("files", replace_file("training_unit_test_scores", lambda p, b: p.symlink_to(p.name)),
                                    Refused("training_unit_test_scores", None, ("symbolic link loop",))),
    "dangling_symlink": Case("files", replace_file("problem_details", lambda p, b: p.symlink_to("gone.csv")),
                             Refused("problem_details", None, ("symbolic link to nothing", "gone.csv"))),
    "raw_dir_is_a_file": Case("files", raw_dir_replaced(lambda raw: raw.write_text("x\n")),
                              Refused(None, None, ("is a file, not a folder", "data.raw_dir"))),
    "a09_raw_dir_symlink_loop": Case("files", raw_dir_replaced(lambda raw: raw.symlink_to(raw.name)),
                                     Refused(None, None, ("symbolic link loop", "folder")), A09),
    "header_names_with_spaces": Case("column", in_every_table(
        rename_column("assignment_details", '"student_id"', '" student_id "'), rename_column("action_logs", '"action"', '"action "'),
        rename_column("training_unit_test_scores", "score", " score")), Accepted(same_tables(*SAME))),
    "column_named_twice": Case("column", rename_column("problem_details", "problem_multipart_id", "problem_type"),
                               Refused("problem_details", "problem_type", ("appears twice in the header (columns 2 and 4)",))),
    # a timestamp column in another form than its release's
    "action_timestamps_as_date_text": Case("time form", edit("action_logs", each_row("timestamp", iso_text)), Refused(
        "action_logs", "timestamp", ("(date text): this column holds unix time as a number",))),
    "start_times_as_numbers": Case("time form", edit("assignment_details", each_row("assignment_start_time", unix_seconds)),
                                   Refused("assignment_details", "assignment_start_time", (
                                       "timestamps are numbers", "this column holds date-time text (ISO 8601"))),
    # damaged lines, references to nothing, far-future dates, raw control characters
    "nul_bytes_in_action_log_lines": Case("corrupt", nul_lines("action_logs", "problem_finished", 3), Accepted(and_then(
        metrics_are({"dropped.corrupt_rows": 3, "dropped_total": 3, "sanity.corrupt_rows_action_logs": 3}, *SAME),
        same_counts("excluded")))),
    "a09_nul_bytes_in_a_line": Case("corrupt", nul_lines("skill_builder_data", None, 1), Accepted(one_response_lost), A09),
    "nul_bytes_in_a_header": Case("corrupt", write_bytes("problem_details", lambda b: b.replace(b"problem_type", b"prob\0", 1)),
                                  Refused("problem_details", None, ("header line holds NUL bytes",))),
    "relationships_naming_unknown_logs": Case("references", unknown_relationships, Accepted(metrics_are({
        "sanity.relationship_rows_unknown_unit_test_log": 3, "sanity.relationship_rows_unknown_in_unit_log": 2}, "events"))),
    "events_years_after_the_run": Case("sanity", in_the_future, Accepted(in_future)),
    "control_characters_in_a_value": Case("message", edit("action_logs", lambda d: d.replace({"action": {
        "correct_response": "correct\x1bresponse\t"}})), Refused("action_logs", "action", (
            "unknown action 'correct\\x1bresponse\\t'",))),
}


@pytest.mark.parametrize("name", CASES)
def test_prepare_on_bad_input_2(name, tmp_path, tiny_raw, a09_raw, clean, a09_clean):
    case = CASES[name]
    raw = copy_raw(tiny_raw if case.source == EDM else a09_raw, tmp_path / "raw")
    offsets = case.spoil(raw)
    assert_outcome(case, run_prepare(tmp_path, case.source, raw), raw, offsets, clean if case.source == EDM else a09_clean,
                   tmp_path)


def test_command_line_escapes_control_characters(tmp_path, tiny_raw):
    """The real command line: a raw value's control characters escaped, one error line last, no traceback."""
    raw = copy_raw(tiny_raw, tmp_path / "raw")
    CASES["control_characters_in_a_value"].spoil(raw)
    out = tmp_path / "out"
    r = run_stage("prepare", "--params", str(params_file(tmp_path, EDM, raw)), "--out-dir", str(out),
                  "--metrics", str(out / "prepare.json"))
    assert r.returncode == 1 and "Traceback" not in r.stderr and "\x1b" not in r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith(f"Error: {raw / 'action_logs.csv'}: column 'action': unknown action 'correct\\x1bresponse\\t'")
    assert not out.exists()


def test_clean_runs_count_nothing(clean, a09_clean):
    """On the unspoilt files every new count is 0, and the files' encodings are recorded."""
    for m in (clean["metrics"], a09_clean["metrics"]):
        assert m["dropped"]["duplicate_rows"] == m["dropped"]["corrupt_rows"] == m["sanity"]["multi_skill_from_lists"] == 0
    s = clean["metrics"]["sanity"]
    assert s["events_future"] == s["unit_tests_future"] == s["files_not_utf8"] == 0
    assert s["relationship_rows_unknown_unit_test_log"] == s["relationship_rows_unknown_in_unit_log"] == 0
    assert a09_clean["metrics"]["sanity"]["read_as_cp1252_skill_builder_data"] == 1  # the fixture is latin-1 text


def test_matrix_2_covers_every_rule():
    kinds = {c.kind for c in CASES.values()}
    assert kinds == {"duplicates", "ids", "skill lists", "encoding", "files", "column", "time form", "corrupt",
                     "references", "sanity", "message"}
    assert {c.source for c in CASES.values()} == {EDM, A09}
