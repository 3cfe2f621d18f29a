"""EDM Cup 2023's unit tests -> unit_tests.parquet, a part of students at a time.

The two score files and assignment_relationships.csv are split (ktirt.sources.csv_parts) by the student of each
row's assignment log, the cut the action log's parts use (edm_details.StudentCut): a part's rows sorted within it
are sorted across the parts, and the table is never held whole (built whole, it was 0.35 GiB at 140,000 students
and its phase peaked at 1.01 GiB, level with the action log's parts, growing about 0.5 GiB per 100,000 students;
in parts, 0.73 GiB, the rest the logs' index and the writer's row group). What must hold over
a whole file (one id form, some log known, some usable score) is checked as the files are split, before any part
is built; a key once in a file and never in both holds per part, since a key's rows share their log and so their
part (a key holding a null goes to the last part, with the logs of no known student), and is counted over every
part before the run stops, naming the first such key of the first part that has one. So where an input breaks
several rules, the whole-file ones are reported first.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ktirt.errors import InputError
from ktirt.heap import heap_trimmed
from ktirt.sources.canonical import unit_tests_order, unit_tests_table
from ktirt.sources.csv_parts import CsvParts
from ktirt.sources.edm_details import ASSIGNMENT_DETAILS, Details, Problems, StudentCut
from ktirt.sources.files import present
from ktirt.sources.ids import IdForms, normalise_ids
from ktirt.sources.key_index import hash_rows
from ktirt.sources.tables import NAT, repeated_values

log = logging.getLogger(__name__)

ASSIGNMENT_RELATIONSHIPS = "assignment_relationships.csv"
TRAINING_SCORES = "training_unit_test_scores.csv"
EVALUATION_SCORES = "evaluation_unit_test_scores.csv"
KEY = {"assignment_log_id": pa.string(), "problem_id": pa.string()}
SCORE_COLUMNS = (KEY | {"score": pa.float64()}, KEY)
"""the columns read of the training scores and of the evaluation rows (whose scores are withheld)"""
RELATION_COLUMNS = ("unit_test_assignment_log_id", "in_unit_assignment_log_id")
DROPS = ("unit_test_rows_no_score", "unit_test_rows_score_not_0_1", "unit_test_rows_unknown_assignment_log",
         "unit_test_rows_no_student", "unit_test_rows_no_timestamp", "unit_test_rows_unknown_problem")
"""unusable unit-test rows, by the first reason each meets"""


class _LogRoute:
    """CsvParts' route for a file keyed by an assignment log: each row goes to its log's part (StudentCut). With
    `keyed`, a row with a null in any of `ids` goes to part n, as a key that holds a null is one value wherever it
    lies (the rule that finds repeated keys), and such a row is unusable in any part. Gathers what must hold over
    the whole file: the id forms of `ids` (ktirt.sources.ids.IdForms), how many rows name a known log, and with
    `score`, how many rows carry a usable score (0 or 1) and the first that does not."""

    def __init__(self, path: Path, column: str, ids: tuple[str, ...], cut: StudentCut, keyed: bool = False,
                 score: bool = False):
        self.path, self.column, self.cut, self.keyed, self.score = path, column, cut, keyed, score
        self.forms = {c: IdForms() for c in ids}
        self.known = self.usable = 0
        self.not_01: float | None = None

    def __call__(self, block: pa.RecordBatch) -> np.ndarray:
        for column, forms in self.forms.items():
            forms.add(block[column])
        if self.score:
            score = block["score"].to_numpy(zero_copy_only=False)
            ok = (score == 0) | (score == 1)
            self.usable += int(ok.sum())
            wrong = score[~ok & ~np.isnan(score)]
            if self.not_01 is None and len(wrong):
                self.not_01 = float(wrong[0])
        logs = normalise_ids(block[self.column], self.path, self.column)
        rows = self.cut.logs.rows(pc.dictionary_encode(logs))  # a unit test's log on each of its rows: found once
        self.known += int((rows >= 0).sum())
        part = self.cut.parts(rows)
        if self.keyed:
            for column in self.forms:
                part[np.asarray(block[column].is_null())] = self.cut.n
        return part

    def check_forms(self) -> None:
        for column, forms in self.forms.items():
            forms.check(self.path, column)


class UnitTestFiles:
    """The score files and assignment_relationships.csv, split by `cut` (made inside the source's `reading`
    ledger, which counts their duplicate rows), then built into unit-test rows a part at a time (`parts`)."""

    def __init__(self, raw: Path, cut: StudentCut):
        self.scores = _ScoreFiles(raw, cut)
        route = _LogRoute(raw / ASSIGNMENT_RELATIONSHIPS, RELATION_COLUMNS[0], RELATION_COLUMNS, cut)
        self.relationships = CsvParts(route.path, dict.fromkeys(RELATION_COLUMNS, pa.string()), RELATION_COLUMNS,
                                      cut.n + 1)
        self.relationships.split(route)
        route.check_forms()

    def parts(self, details: Details, problems: Problems, dropped: dict, references: dict) -> Iterator[pa.Table]:
        """unit_tests.parquet's rows a part of students at a time (the cut's parts, then an empty one for the rows
        of no known student), in the table's order; `dropped` (unusable rows, DROPS) and `references`
        (relationship rows naming no assignment log) add up part after part."""
        dropped |= dict.fromkeys(DROPS, 0)
        references |= {"relationship_rows_unknown_unit_test_log": 0, "relationship_rows_unknown_in_unit_log": 0}
        for (train, evaluation), relationships in _in_step(self.scores.parts(), self.relationships.parts()):
            t = pa.concat_tables([_usable_scores(train, dropped), evaluation]).combine_chunks()
            del train, evaluation
            part = _part(t, relationships, details, problems, dropped, references)
            del t, relationships
            heap_trimmed()  # the part's rows as read and its working arrays: the next part starts low
            yield part
            del part
        self.scores.check_keys()


def _in_step(*iterators: Iterator) -> Iterator[list]:
    """The iterators' items side by side, each run to its end (so that what a generator does after its last
    item, such as removing its folder, is done), all of the same length."""
    end = object()
    while True:
        items = [next(it, end) for it in iterators]
        if all(item is end for item in items):
            return
        if any(item is end for item in items):
            raise RuntimeError("the files were split into different numbers of parts")
        yield items


def _key_pairs(t: pa.Table) -> pa.ChunkedArray:
    return pc.binary_join_element_wise(t["assignment_log_id"], t["problem_id"], "\x1f")


@dataclass
class _Repeats:
    """Keys found where they must not be (summed over the parts), with the first of them."""

    count: int = 0
    example: str | None = None

    def add(self, keys: pa.Array | pa.ChunkedArray) -> None:
        self.count += len(keys)
        if self.example is None and len(keys):
            self.example = str(keys[0]).replace("\x1f", ", ")


class _ScoreFiles:
    """training_unit_test_scores.csv and evaluation_unit_test_scores.csv, split by `cut` (either may be missing,
    not both). A blank, NaN or non-0/1 training score is an unusable row, counted, never a withheld one; a key in
    both files is an error."""

    def __init__(self, raw: Path, cut: StudentCut):
        self.cut, self.paths = cut, (raw / TRAINING_SCORES, raw / EVALUATION_SCORES)
        if not any(present(p) for p in self.paths):
            raise InputError(f"no unit-test score files: neither {TRAINING_SCORES} nor {EVALUATION_SCORES} is there "
                             "(the EDM Cup release has both)", raw)
        self.splits: list[CsvParts | None] = []
        self.repeats = [_Repeats(), _Repeats(), _Repeats()]  # within each file, then in both
        routes = [self._split(path, columns) for path, columns in zip(self.paths, SCORE_COLUMNS)]
        for path, parts, route in zip(self.paths, self.splits, routes):
            if parts and parts.rows and not route.known:
                raise InputError(f"none of its {parts.rows} rows' assignment logs appear in {ASSIGNMENT_DETAILS}", path,
                                 "assignment_log_id")
        if sum(parts.rows for parts in self.splits if parts) == 0:
            raise InputError(f"no unit-test rows: {TRAINING_SCORES} and {EVALUATION_SCORES} list nothing", raw)
        train = routes[0]
        if train and self.splits[0].rows and not train.usable:
            found = f"e.g. {train.not_01:g}" if train.not_01 is not None else "all blank"
            raise InputError(f"no usable score: scores must be 0 or 1 ({found})", self.paths[0], "score")

    def _split(self, path: Path, columns: dict[str, pa.DataType]) -> _LogRoute | None:
        if not present(path):
            log.warning("%s not found: its unit-test rows are missing", path)
            self.splits.append(None)
            return None
        parts = CsvParts(path, columns, tuple(KEY), self.cut.n + 1)
        route = _LogRoute(path, "assignment_log_id", tuple(KEY), self.cut, keyed=True, score="score" in columns)
        parts.split(route, allow_empty=True)  # header-only when nothing is withheld (simulate.evaluation_fraction: 0)
        route.check_forms()
        self.splits.append(parts)
        return route

    def parts(self) -> Iterator[tuple[pa.Table, pa.Table]]:
        """Per part, the training rows (with their scores) and the evaluation rows (score null: withheld); the
        keys that repeat within a file or appear in both are tallied for `check_keys`."""
        files = [parts.parts() if parts else itertools.repeat(pa.schema(columns).empty_table(), self.cut.n + 1)
                 for parts, columns in zip(self.splits, SCORE_COLUMNS)]
        for train, evaluation in _in_step(*files):
            keys = [_key_pairs(train), _key_pairs(evaluation)]
            for repeats, pairs in zip(self.repeats, keys):
                repeats.add(repeated_values(pairs))
            self.repeats[2].add(keys[1].filter(pc.is_in(keys[1], value_set=keys[0].combine_chunks())))
            yield train, evaluation.append_column("score", pa.nulls(evaluation.num_rows, pa.float64()))

    def check_keys(self) -> None:
        """A key once in each file, and in one file only: stop naming the first that is not."""
        for path, repeats in zip(self.paths, self.repeats):
            if repeats.count:
                raise InputError(f"{repeats.count} duplicate (assignment_log_id, problem_id) rows, e.g. '{repeats.example}'",
                                 path, "assignment_log_id")
        both = self.repeats[2]
        if both.count:
            raise InputError(f"{both.count} (assignment_log_id, problem_id) keys are also in {TRAINING_SCORES}, "
                             f"e.g. '{both.example}': a response cannot be both scored and withheld", self.paths[1],
                             "assignment_log_id")


def _usable_scores(train: pa.Table, dropped: dict) -> pa.Table:
    score = train["score"].to_numpy(zero_copy_only=False)
    blank = np.isnan(score)
    not_01 = ~blank & (score != 0) & (score != 1)
    dropped["unit_test_rows_no_score"] += int(blank.sum())
    dropped["unit_test_rows_score_not_0_1"] += int(not_01.sum())
    return train.filter(pa.array(~(blank | not_01)))


def _part(t: pa.Table, relationships: pa.Table, details: Details, problems: Problems, dropped: dict,
          references: dict) -> pa.Table:
    """One part's unit-test rows with their students, dates, skills and in-unit logs. Sorted on the key columns
    before the skills and in-unit lists are built, so the rows are never held twice."""
    log_row, prob_row = (index.rows(pc.dictionary_encode(t[column]))  # each log and problem found once
                         for index, column in ((details.index, "assignment_log_id"), (problems.index, "problem_id")))
    student = details.students_of(log_row)
    start = np.where(log_row >= 0, details.start_ms[np.maximum(log_row, 0)], NAT)
    ok = np.ones(len(log_row), dtype=bool)
    for reason, bad in (
        ("unit_test_rows_unknown_assignment_log", log_row < 0),
        ("unit_test_rows_no_student", student < 0),
        ("unit_test_rows_no_timestamp", start == NAT),
        ("unit_test_rows_unknown_problem", prob_row < 0),
    ):
        dropped[reason] += int((ok & bad).sum())
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
    columns = {name: column.take(pa.array(order)) for name, column in keys.items()}
    del keys, kept
    columns |= {
        "skill_ids": problems.skill_ids.take(pa.array(prob_row[rows])),
        "correct": pa.array(np.nan_to_num(score).astype(np.int8), pa.int8(), mask=np.isnan(score)),
        "in_unit_ids": _in_unit_logs(relationships, columns["unit_test_id"], details, references),
    }
    return unit_tests_table(columns)


def _in_unit_logs(t: pa.Table, unit_test_ids: pa.Array, details: Details, references: dict) -> pa.ListArray:
    """For each unit-test row, the sorted in-unit assignment logs that precede it (empty if none listed); and
    adds to `references` the relationship rows that name a unit-test or in-unit log that is no assignment log
    (counted, not used to stop: a release may list logs it did not ship)."""
    for name, column in zip(("unit_test_log", "in_unit_log"), RELATION_COLUMNS):
        known = details.index.rows(pc.dictionary_encode(t[column]))
        references[f"relationship_rows_unknown_{name}"] += int((known < 0).sum())
    # sorted, then each pair once (a hash group-by of the text pairs held 0.36 GiB more at 140,000 students)
    t = t.drop_null().sort_by([(column, "ascending") for column in RELATION_COLUMNS])
    tests, in_unit = (t[column].combine_chunks() for column in RELATION_COLUMNS)
    once = pa.array(_starts(tests) | _starts(in_unit))
    tests, in_unit = tests.filter(once), in_unit.filter(once)
    first = np.flatnonzero(_starts(tests))
    offsets = np.r_[first, len(tests), len(tests)].astype(np.int32)  # a trailing empty list for the unknown
    lists = pa.ListArray.from_arrays(pa.array(offsets), in_unit)
    row = hash_rows(unit_test_ids, tests.take(pa.array(first)))
    return lists.take(pa.array(np.where(row < 0, len(first), row)))


def _starts(values: pa.Array) -> np.ndarray:
    """Whether each value differs from the one before it (the first does)."""
    changed = pc.not_equal(values.slice(1), values.slice(0, max(len(values) - 1, 0))).to_numpy(zero_copy_only=False)
    return np.r_[True, changed][:len(values)]
