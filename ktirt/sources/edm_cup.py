"""EDM Cup 2023 (ASSISTments clickstream) -> canonical events and unit-test scores.

One event per first response to a problem within an assignment log, by the ASSISTments convention:
`correct = 1` only when the first action after `problem_started` is `correct_response`; asking for a
hint, the answer, an explanation, a video or a live tutor first counts as incorrect. Ungraded open
responses are not events. The simulator writes the same files, and this module cannot tell them apart.
The action log's vocabulary and its grouping into visits live in ktirt.sources.edm_actions.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ktirt.errors import InputError
from ktirt.events import sort_codes
from ktirt.heap import heap_trimmed
from ktirt.sources.canonical import SourceTables, events_table, unit_tests_order, unit_tests_table
from ktirt.sources.csv_parts import CsvParts
from ktirt.sources.edm_actions import (ACTION_LOG_COLUMNS, ACTIONS, CODE, FIRST_ACTIONS, ID_COLUMNS, NEVER, Visits,
                                       WholeLogChecks, read_visits)
from ktirt.sources.files import check_raw_folder, present
from ktirt.sources.ids import described_codes, normalise_ids, skill_code_lists
from ktirt.sources.key_index import KeyIndex, hash_rows
from ktirt.sources.tables import NAT, read_csv, read_header, reading, require_unique, to_utc_ms
from ktirt.sources.timestamps import NUMBER_FORM

log = logging.getLogger(__name__)
__all__ = ["ACTIONS", "FIRST_ACTIONS", "item_text_embeddings", "load", "problem_types", "skill_descriptions"]

ACTION_LOGS = "action_logs.csv"
ASSIGNMENT_DETAILS = "assignment_details.csv"
PROBLEM_DETAILS = "problem_details.csv"
ASSIGNMENT_RELATIONSHIPS = "assignment_relationships.csv"
TRAINING_SCORES = "training_unit_test_scores.csv"
EVALUATION_SCORES = "evaluation_unit_test_scores.csv"

UNGRADED_TYPE = "Ungraded Open Response"


def load(raw_dir: str | Path, part_bytes: int | None = None) -> SourceTables:
    """The canonical tables of an EDM Cup 2023 folder. Without `part_bytes` the events are one table; with it,
    parts of whole students in the events' order, about one per `part_bytes` of action log, each read as it is
    consumed (SourceTables.event_parts): memory is one part, whatever the log's size."""
    raw = Path(raw_dir)
    check_raw_folder(raw)
    dropped = dict.fromkeys(ACTION_ROW_DROPS + RESPONSE_DROPS, 0)
    excluded = dict.fromkeys(EXCLUSIONS, 0)
    with reading() as ledger:
        details = _assignment_details(raw / ASSIGNMENT_DETAILS)
        problems = _problem_details(raw / PROBLEM_DETAILS)
        heap_trimmed()  # what reading them freed (0.27 GiB at 140,000 students): the split starts from what is held
        action_log = _split_action_log(raw / ACTION_LOGS, details, problems, part_bytes)
    tables = SourceTables(None, None, {}, excluded, {}, dict.fromkeys(FIRST_ACTIONS, 0), {})

    def counted() -> None:
        """After the last part: the unit tests (read now, so they are never held beside a part) and the final counts."""
        with reading(ledger):
            tables.unit_tests, references = _unit_tests(raw, details, problems, dropped)
        heap_trimmed()
        tables.features = {
            "has_unit_tests": int(tables.unit_tests.num_rows > 0),
            "has_text_embeddings": int(problems.has_text),
            "has_timestamps": 1,
        }
        tables.dropped = dropped | ledger.dropped()
        tables.reading = {"multi_skill_from_lists": problems.split_lists} | references | ledger.facts()

    tables.events = _first_responses(action_log, details, problems, dropped, tables, counted)
    return tables if part_bytes else tables.whole()


@dataclass
class _Details:
    """assignment_details.csv, keyed by assignment_log_id (the ids held only in `index`); students
    dictionary-encoded. The index answers the action log's parts: Arrow's hash join (`hash_rows`) builds its hash
    of every log anew at each call, so the parts together cost parts x logs (6.3 s at 140,000 students, 0.5 s at
    35,000)."""

    student: pa.DictionaryArray
    start_ms: np.ndarray
    index: KeyIndex  # the row of a log id, built once for every block and part of the action log


@dataclass
class _Problems:
    """problem_details.csv, keyed by problem_id (the ids held only in `index`)."""

    problem_type: pa.Array
    skill_ids: pa.ListArray
    has_text: bool
    split_lists: int  # problems whose skill field listed several codes
    index: KeyIndex  # the row of a problem id, as _Details.index


def _assignment_details(path: Path) -> _Details:
    """One row per assignment log, read by its key (read_csv's `key`): the table grows with the release (2.24 M
    logs at 140,000 students), so only its three columns are parsed."""
    t = read_csv(path, {"assignment_log_id": pa.string(), "student_id": pa.string(), "assignment_start_time": pa.string()},
                 ids=("assignment_log_id", "student_id"), key="assignment_log_id")
    if t["assignment_log_id"].null_count:
        t = t.filter(pc.is_valid(t["assignment_log_id"]))
    require_unique(t["assignment_log_id"], path, "assignment_log_id")
    start_ms = to_utc_ms(t["assignment_start_time"], path, "assignment_start_time", text_only=True)
    return _Details(t["student_id"].combine_chunks().dictionary_encode(), start_ms, KeyIndex(t["assignment_log_id"]))


def _problem_details(path: Path) -> _Problems:
    has_text = "problem_text_bert_pca" in read_header(path)
    t = read_csv(path, {"problem_id": pa.string(), "problem_type": pa.string(), "problem_skill_code": pa.string()},
                 ids=("problem_id",))
    skills, _ = skill_code_lists(t["problem_skill_code"], path, "problem_skill_code")
    valid = pc.is_valid(t["problem_id"])
    t, skills = t.filter(valid), skills.filter(valid)
    require_unique(t["problem_id"], path, "problem_id")
    split = int(pc.sum(pc.greater(pc.list_value_length(skills), 1)).as_py() or 0)
    return _Problems(t["problem_type"].combine_chunks(), skills, has_text, split, KeyIndex(t["problem_id"]))


@dataclass
class _Joined:
    """The visits' assignment logs joined to assignment_details and their problems to problem_details."""

    log_row: np.ndarray  # per log code: row in assignment_details, -1 where absent
    log_student: np.ndarray  # per log code: student code, -1 where unknown
    prob_row: np.ndarray  # per problem code: row in problem_details, -1 where absent
    ptype: pa.Array  # per problem code: problem_type
    ungraded_type: np.ndarray  # per problem code: an ungraded open response


ACTION_ROW_DROPS = ("action_rows_no_action", "action_rows_no_timestamp", "action_rows_no_assignment_log",
                    "action_rows_no_problem")
RESPONSE_DROPS = ("responses_unknown_assignment_log", "responses_no_student", "responses_unknown_problem")
EXCLUSIONS = ("problems_started_never_answered", "ungraded_responses")


@dataclass
class _ActionLog:
    """action_logs.csv split into parts by student (the last part: rows of no known student), checked whole."""

    path: Path
    parts: CsvParts
    factor: float  # ms per unit of its timestamps


class _StudentRoute:
    """Each action row's part: the students, in id order, cut into `n` parts of as many students each; a row whose
    assignment log is unknown or has no student goes to part n. Also notes whether any log and any problem of the
    file join assignment_details and problem_details (if none does, the files do not belong together)."""

    def __init__(self, path: Path, details: _Details, problems: _Problems, n: int):
        self.path, self.n, self.checks = path, n, WholeLogChecks()
        students = details.student.dictionary
        part_of_student = sort_codes(students) * n // max(len(students), 1)
        codes = details.student.indices.fill_null(-1).to_numpy(zero_copy_only=False)
        self.part_of_log = np.where(codes >= 0, part_of_student[np.maximum(codes, 0)], n)
        self.logs, self.problems = details.index, problems.index
        self.unjoined = {"assignment_log_id": set(), "problem_id": set()}  # kept only while nothing joins

    def __call__(self, block: pa.RecordBatch) -> np.ndarray:
        self.checks.add(block)
        logs = normalise_ids(block["assignment_log_id"], self.path, "assignment_log_id")
        row = self._joined("assignment_log_id", self.logs, logs.dictionary)
        part = np.append(np.where(row >= 0, self.part_of_log[row], self.n), self.n)
        self._joined("problem_id", self.problems, normalise_ids(block["problem_id"], self.path, "problem_id").dictionary)
        return part[logs.indices.fill_null(-1).to_numpy(zero_copy_only=False)]

    def _joined(self, column: str, index: KeyIndex, values: pa.Array) -> np.ndarray:
        row = index.rows(values)
        unjoined = self.unjoined[column]
        if unjoined is not None:
            self.unjoined[column] = None if (row >= 0).any() else unjoined | set(values.drop_null().to_pylist())
        return row

    def check_joins(self) -> None:
        for column, table in (("assignment_log_id", ASSIGNMENT_DETAILS), ("problem_id", PROBLEM_DETAILS)):
            if self.unjoined[column] is not None:
                what = "assignment logs" if column == "assignment_log_id" else "problems"
                raise InputError(f"none of the {len(self.unjoined[column])} {what} appear in {table}", self.path, column)


def _split_action_log(path: Path, details: _Details, problems: _Problems, part_bytes: int | None) -> _ActionLog:
    """Read action_logs.csv once, a block at a time, into its parts (about one per `part_bytes` of the file; one
    without), checking what must hold over the whole file."""
    n = max(1, -(-path.stat().st_size // part_bytes)) if part_bytes and path.exists() else 1
    parts = CsvParts(path, ACTION_LOG_COLUMNS, ID_COLUMNS, n + 1)
    route = _StudentRoute(path, details, problems, n)
    parts.split(route, forms={"timestamp": NUMBER_FORM})
    factor = route.checks.unit(path)
    route.check_joins()
    return _ActionLog(path, parts, factor)


def _first_responses(action_log: _ActionLog, details: _Details, problems: _Problems, dropped: dict,
                     tables: SourceTables, counted: Callable[[], None]) -> Iterator[pa.Table]:
    """Per part of the action log, one event per visit (ktirt.sources.edm_actions) whose first action is a graded
    response or a help request, in the events' order; the counts (dropped, excluded, first actions) add up part
    after part, and `counted()` runs after the last."""
    n_rows = n_events = 0
    for rows in action_log.parts.parts():
        part_dropped: dict[str, int] = {}
        part_excluded: dict[str, int] = {}
        visits = read_visits(rows, action_log.path, action_log.factor, part_dropped, part_excluded)
        del rows
        heap_trimmed()  # the rows and read_visits' working arrays: the events are built on what is live
        joined = _join_details(visits, details, problems)
        sel = np.flatnonzero(_usable_visits(visits, joined, part_dropped, part_excluded))
        counts = np.bincount(visits.first_act[sel], minlength=len(FIRST_ACTIONS))
        for totals, more in ((dropped, part_dropped), (tables.excluded, part_excluded),
                             (tables.first_actions, dict(zip(FIRST_ACTIONS, counts.tolist())))):
            totals.update({k: totals.get(k, 0) + int(v) for k, v in more.items()})
        events = _events(visits, joined, problems, details, sel)
        n_rows, n_events = n_rows + visits.n_action_rows, n_events + events.num_rows
        del visits, joined, sel
        yield events
        del events
        heap_trimmed()
    counted()
    log.info("%s: %d action rows -> %d first-response events", action_log.path.name, n_rows, n_events)


def _events(visits: Visits, joined: _Joined, problems: _Problems, details: _Details, sel: np.ndarray) -> pa.Table:
    """The events of the visits `sel`, in the contract's schema and order."""
    lg, pr = visits.log[sel], visits.problem[sel]
    latency = visits.first_ts[sel] - visits.start[sel]
    has_start = visits.start[sel] != NEVER
    columns = {
        "user_id": pa.DictionaryArray.from_arrays(pa.array(joined.log_student[lg], pa.int32()), details.student.dictionary),
        "item_id": pa.DictionaryArray.from_arrays(pa.array(pr, pa.int32()), visits.prob_vals),
        "skill_ids": problems.skill_ids.take(pa.array(joined.prob_row[pr])),
        "timestamp": visits.first_ts[sel],
        "correct": (visits.first_act[sel] == CODE["correct_response"]).astype(np.int8),
        "action_sequence_id": pa.DictionaryArray.from_arrays(pa.array(lg, pa.int32()), visits.log_vals),
        "latency_ms": pa.array(np.where(has_start, latency, 0), pa.int64(), mask=~has_start),
        "help_requested": visits.help_requested[sel],
        "hint_count": np.minimum(visits.hint_count[sel], np.iinfo(np.int16).max).astype(np.int16),
        "attempt_count": np.minimum(visits.attempt_count[sel], np.iinfo(np.int16).max).astype(np.int16),
        "problem_type": joined.ptype.take(pa.array(pr)),
    }
    return events_table(columns)


def _join_details(visits: Visits, details: _Details, problems: _Problems) -> _Joined:
    """Join the assignment logs to their students and the problems to their types."""
    log_row, prob_row = details.index.rows(visits.log_vals), problems.index.rows(visits.prob_vals)
    student_codes = details.student.indices.fill_null(-1).to_numpy(zero_copy_only=False)
    log_student = np.where(log_row >= 0, student_codes[np.maximum(log_row, 0)], -1)
    ptype = problems.problem_type.take(pa.array(np.maximum(prob_row, 0)))
    ungraded_type = np.asarray(pc.equal(ptype, UNGRADED_TYPE).fill_null(False)) & (prob_row >= 0)
    return _Joined(log_row, log_student, prob_row, ptype, ungraded_type)


def _usable_visits(visits: Visits, joined: _Joined, dropped: dict, excluded: dict) -> np.ndarray:
    """Which answered visits become events: ungraded responses are excluded (not an error); visits whose log,
    student or problem is unknown are dropped, each counted under its first reason."""
    g_log, g_prob = visits.log, visits.problem
    ungraded = visits.answered & ((visits.first_act == CODE["open_response"]) | joined.ungraded_type[g_prob])
    excluded["ungraded_responses"] = int(ungraded.sum())
    ok = visits.answered & ~ungraded
    for reason, bad in (
        ("responses_unknown_assignment_log", joined.log_row[g_log] < 0),
        ("responses_no_student", joined.log_student[g_log] < 0),
        ("responses_unknown_problem", joined.prob_row[g_prob] < 0),
    ):
        dropped[reason] = int((ok & bad).sum())
        ok &= ~bad
    return ok


def _key_pairs(t: pa.Table) -> pa.ChunkedArray:
    return pc.binary_join_element_wise(t["assignment_log_id"], t["problem_id"], "\x1f")


def _score_tables(raw: Path, details: _Details, dropped: dict) -> list[pa.Table]:
    """The training scores and the evaluation rows (score null: withheld). A blank, NaN or non-0/1 training
    score is an unusable row, counted, never a withheld one; a key in both files is an error."""
    paths = raw / TRAINING_SCORES, raw / EVALUATION_SCORES
    if not any(present(p) for p in paths):
        raise InputError(f"no unit-test score files: neither {TRAINING_SCORES} nor {EVALUATION_SCORES} is there "
                         "(the EDM Cup release has both)", raw)
    key = {"assignment_log_id": pa.string(), "problem_id": pa.string()}
    ids = tuple(key)
    empty = pa.table({"assignment_log_id": pa.array([], pa.string()), "problem_id": pa.array([], pa.string()),
                      "score": pa.array([], pa.float64())})
    train, evaluation = empty, empty
    if present(paths[0]):
        train = read_csv(paths[0], key | {"score": pa.float64()}, allow_empty=True, ids=ids)
    if present(paths[1]):  # header-only when nothing is withheld (simulate.evaluation_fraction: 0)
        t = read_csv(paths[1], key, allow_empty=True, ids=ids)
        evaluation = t.append_column("score", pa.nulls(t.num_rows, pa.float64()))
    keys = [_key_pairs(train), _key_pairs(evaluation)]
    for path, t, pairs in zip(paths, (train, evaluation), keys):
        if not present(path):
            log.warning("%s not found: its unit-test rows are missing", path)
        require_unique(pairs, path, "assignment_log_id", what="(assignment_log_id, problem_id) rows")
        if t.num_rows and (details.index.rows_by_hash(t["assignment_log_id"]) < 0).all():
            raise InputError(
                f"none of the {t.num_rows} unit-test logs appear in {ASSIGNMENT_DETAILS}", path, "assignment_log_id")
    if train.num_rows + evaluation.num_rows == 0:
        raise InputError(f"no unit-test rows: {TRAINING_SCORES} and {EVALUATION_SCORES} list nothing", raw)
    both = pc.is_in(keys[1], value_set=keys[0].combine_chunks())
    if pc.any(both).as_py():
        example = str(keys[1].filter(both)[0]).replace("\x1f", ", ")
        raise InputError(f"{pc.sum(both).as_py()} (assignment_log_id, problem_id) keys are also in {TRAINING_SCORES}, "
                         f"e.g. '{example}': a response cannot be both scored and withheld", paths[1], "assignment_log_id")
    return [_usable_scores(train, paths[0], dropped), evaluation]


def _usable_scores(train: pa.Table, path: Path, dropped: dict) -> pa.Table:
    score = train["score"].to_numpy(zero_copy_only=False)
    blank = np.isnan(score)
    not_01 = ~blank & (score != 0) & (score != 1)
    dropped["unit_test_rows_no_score"] = int(blank.sum())
    dropped["unit_test_rows_score_not_0_1"] = int(not_01.sum())
    if train.num_rows and (blank | not_01).all():
        found = f"e.g. {score[not_01][0]:g}" if not_01.any() else "all blank"
        raise InputError(f"no usable score: scores must be 0 or 1 ({found})", path, "score")
    return train.filter(pa.array(~(blank | not_01)))


def _unit_tests(raw: Path, details: _Details, problems: _Problems, dropped: dict) -> tuple[pa.Table, dict[str, int]]:
    """The unit-test rows with their students, dates, skills and in-unit logs; also the counts of
    assignment_relationships rows whose logs match no assignment log. Sorted on the key columns before the
    skills and in-unit lists are built, so the table is never held twice (at 140,000 students it is 0.35 GiB)."""
    t = pa.concat_tables(_score_tables(raw, details, dropped)).combine_chunks()
    heap_trimmed()  # the files as read and their checks' hashes
    log_row = details.index.rows_by_hash(t["assignment_log_id"])
    prob_row = problems.index.rows_by_hash(t["problem_id"])
    student = np.full(len(log_row), -1)
    student_codes = details.student.indices.fill_null(-1).to_numpy(zero_copy_only=False)
    student[log_row >= 0] = student_codes[log_row[log_row >= 0]]
    start = np.where(log_row >= 0, details.start_ms[np.maximum(log_row, 0)], NAT)
    ok = np.ones(len(log_row), dtype=bool)
    for reason, bad in (
        ("unit_test_rows_unknown_assignment_log", log_row < 0),
        ("unit_test_rows_no_student", student < 0),
        ("unit_test_rows_no_timestamp", start == NAT),
        ("unit_test_rows_unknown_problem", prob_row < 0),
    ):
        dropped[reason] = int((ok & bad).sum())
        ok &= ~bad
    rows = np.flatnonzero(ok)
    kept = pa.array(rows)
    keys = {
        "user_id": details.student.dictionary.take(pa.array(student[rows])),
        "unit_test_id": t["assignment_log_id"].take(kept),
        "item_id": t["problem_id"].take(kept),
        "timestamp": pa.array(start[rows], pa.timestamp("ms", tz="UTC")),
    }
    order = unit_tests_order(keys)
    rows = rows[order]
    score = t["score"].to_numpy(zero_copy_only=False)[rows]
    ordered = pa.array(order)
    columns = {name: column.take(ordered) for name, column in keys.items()}
    del t, keys, kept, ordered, log_row, student, start, ok
    heap_trimmed()
    in_unit, references = _in_unit_logs(raw / ASSIGNMENT_RELATIONSHIPS, columns["unit_test_id"], details.index)
    columns |= {
        "skill_ids": problems.skill_ids.take(pa.array(prob_row[rows])),
        "correct": pa.array(np.nan_to_num(score).astype(np.int8), pa.int8(), mask=np.isnan(score)),
        "in_unit_ids": in_unit,
    }
    return unit_tests_table(columns), references


def _in_unit_logs(path: Path, unit_test_ids: pa.Array, logs: KeyIndex) -> tuple[pa.ListArray, dict[str, int]]:
    """For each unit-test row, the sorted in-unit assignment logs that precede it (empty if none listed); and
    how many relationship rows name a unit-test or in-unit log that is no assignment log (counted, not used
    to stop: a release may list logs it did not ship)."""
    columns = ("unit_test_assignment_log_id", "in_unit_assignment_log_id")
    t = read_csv(path, dict.fromkeys(columns, pa.string()), ids=columns)
    references = {f"relationship_rows_unknown_{name}": int((logs.rows_by_hash(t[column]) < 0).sum())
                  for name, column in zip(("unit_test_log", "in_unit_log"), columns)}
    # sorted, then each pair once (a hash group-by of the text pairs held 0.36 GiB more at 140,000 students)
    t = t.drop_null().sort_by([(column, "ascending") for column in columns])
    tests, in_unit = (t[column].combine_chunks() for column in columns)
    once = pa.array(_starts(tests) | _starts(in_unit))
    tests, in_unit = tests.filter(once), in_unit.filter(once)
    first = np.flatnonzero(_starts(tests))
    offsets = np.r_[first, len(tests), len(tests)].astype(np.int32)  # a trailing empty list for the unknown
    lists = pa.ListArray.from_arrays(pa.array(offsets), in_unit)
    row = hash_rows(unit_test_ids, tests.take(pa.array(first)))
    return lists.take(pa.array(np.where(row < 0, len(first), row))), references


def _starts(values: pa.Array) -> np.ndarray:
    """Whether each value differs from the one before it (the first does)."""
    changed = pc.not_equal(values.slice(1), values.slice(0, max(len(values) - 1, 0))).to_numpy(zero_copy_only=False)
    return np.r_[True, changed][:len(values)]


def item_text_embeddings(raw_dir: str | Path) -> tuple[list[str], np.ndarray] | None:
    """`problem_text_bert_pca` of every problem that has one, as (problem ids, float32 matrix); None when
    the source has no such column. Vectors of an odd length or that do not parse count as missing."""
    path = Path(raw_dir) / PROBLEM_DETAILS
    if not present(path) or "problem_text_bert_pca" not in read_header(path):
        return None
    t = read_csv(path, {"problem_id": pa.string(), "problem_text_bert_pca": pa.string()}, ids=("problem_id",),
                 drop_duplicates=False).drop_null()
    body = pc.replace_substring_regex(t["problem_text_bert_pca"], r"[\[\]\s]", "")
    parts = pc.split_pattern(body, ",")
    lengths = pc.list_value_length(parts).to_numpy(zero_copy_only=False)
    if not len(lengths):
        return None
    dim = int(np.bincount(lengths).argmax())
    keep = pa.array(lengths == dim)
    values = pc.list_flatten(parts.filter(keep))
    try:
        mat = values.cast(pa.float32()).to_numpy(zero_copy_only=False).reshape(-1, dim)
    except pa.ArrowInvalid as exc:
        raise InputError(f"a text vector does not parse ({str(exc).splitlines()[0]})", path, "problem_text_bert_pca") from None
    return t["problem_id"].filter(keep).to_pylist(), mat


def problem_types(raw_dir: str | Path) -> dict[str, str]:
    """problem_id -> problem_type from problem_details.csv (unit-test items have no event to carry it)."""
    path = Path(raw_dir) / PROBLEM_DETAILS
    if not present(path):
        return {}
    t = read_csv(path, {"problem_id": pa.string(), "problem_type": pa.string()}, ids=("problem_id",),
                 drop_duplicates=False).drop_null()
    return dict(zip(t["problem_id"].to_pylist(), t["problem_type"].to_pylist()))


def skill_descriptions(raw_dir: str | Path) -> dict[str, str]:
    """skill code -> description from problem_details.csv (`problem_skill_description`), for people who
    search skills by words; {} where the file or the column is absent."""
    path = Path(raw_dir) / PROBLEM_DETAILS
    if not present(path) or "problem_skill_description" not in read_header(path):
        return {}
    t = read_csv(path, {"problem_skill_code": pa.string(), "problem_skill_description": pa.string()},
                 drop_duplicates=False)
    return dict(zip(*described_codes(t["problem_skill_code"], t["problem_skill_description"], path, "problem_skill_code")))
