"""EDM Cup 2023 (ASSISTments clickstream) -> canonical events and unit-test scores.

One event per first response to a problem within an assignment log, by the ASSISTments convention:
`correct = 1` only when the first action after `problem_started` is `correct_response`; asking for a
hint, the answer, an explanation, a video or a live tutor first counts as incorrect. Ungraded open
responses are not events. The simulator writes the same files, and this module cannot tell them apart.
The action log's vocabulary and its grouping into visits live in ktirt.sources.edm_actions, the lookup tables
and the cut of the students into parts in ktirt.sources.edm_details, the unit tests in
ktirt.sources.edm_unit_tests.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ktirt.errors import InputError
from ktirt.events import sort_events
from ktirt.heap import heap_trimmed
from ktirt.read_ahead import read_ahead, started
from ktirt.sources.canonical import SourceTables, add_counts, events_table
from ktirt.sources.csv_parts import CsvParts
from ktirt.sources.edm_actions import (ACTION_LOG_COLUMNS, ACTIONS, CODE, FIRST_ACTIONS, ID_COLUMNS, NEVER, Visits,
                                       WholeLogChecks, read_visits)
from ktirt.sources.edm_stream import NotStreamable, Ranks, StreamedVisits, stream_visits
from ktirt.sources.edm_visits import ACTION_ROW_DROPS, EXCLUSIONS, RESPONSE_DROPS, Joined, join_details, usable_visits
from ktirt.sources.edm_details import (ASSIGNMENT_DETAILS, PROBLEM_DETAILS, Details, Problems, StudentCut,
                                       read_assignment_details, read_problem_details)
from ktirt.sources.edm_unit_tests import UnitTestFiles
from ktirt.sources.encoding import scan_ahead
from ktirt.sources.files import check_raw_folder, present
from ktirt.sources.ids import described_codes, normalise_ids
from ktirt.sources.key_index import KeyIndex
from ktirt.sources.tables import Ledger, current_ledger, read_csv, read_header, reading
from ktirt.sources.timestamps import NUMBER_FORM

log = logging.getLogger(__name__)
__all__ = ["ACTIONS", "FIRST_ACTIONS", "item_text_embeddings", "load", "problem_types", "skill_descriptions"]

ACTION_LOGS = "action_logs.csv"

def load(raw_dir: str | Path, part_bytes: int | None = None) -> SourceTables:
    """The canonical tables of an EDM Cup 2023 folder. Without `part_bytes` the events are one table; with it,
    parts of whole students in the events' order, about one per `part_bytes` of action log, each read as it is
    consumed (SourceTables.event_parts), then the unit tests in parts of the same students
    (SourceTables.unit_test_parts): memory is one part, whatever the release's size."""
    raw = Path(raw_dir)
    check_raw_folder(raw)
    dropped = dict.fromkeys(ACTION_ROW_DROPS + RESPONSE_DROPS, 0)
    excluded = dict.fromkeys(EXCLUSIONS, 0)
    if (raw / ACTION_LOGS).is_file():
        scan_ahead(raw / ACTION_LOGS)  # its encoding, found while the lookup tables are read
    with reading() as ledger:
        problems = started(_problem_details, raw / PROBLEM_DETAILS, ledger)  # on the second core meanwhile
        details = read_assignment_details(raw / ASSIGNMENT_DETAILS)
        problems = problems.result()
        heap_trimmed()  # what reading them freed (0.27 GiB at 140,000 students): the split starts from what is held
        cut = StudentCut(details, _n_parts(raw / ACTION_LOGS, part_bytes))
        # split on another thread while the action log is read (then only its blocks in flight are held, where beside
        # the event parts it raised prepare's peak at 140,000 students); an error there is raised after the events'
        unit_test_files = started(_unit_test_files, raw, cut, ledger)
        action_log = _read_action_log(raw / ACTION_LOGS, details, problems, cut)
    tables = SourceTables(None, None, {}, excluded, {}, dict.fromkeys(FIRST_ACTIONS, 0), {})

    tables.events = _first_responses(action_log, details, problems, dropped, tables)
    tables.unit_tests = _unit_tests(unit_test_files, action_log, details, problems, dropped, ledger, tables)
    return tables if part_bytes else tables.whole()


def _problem_details(path: Path, ledger: Ledger) -> Problems:
    with reading(ledger):
        return read_problem_details(path)


def _unit_test_files(raw: Path, cut: StudentCut, ledger: Ledger) -> UnitTestFiles:
    with reading(ledger):
        return UnitTestFiles(raw, cut)


def _unit_tests(files: Future, action_log: _ActionLog, details: Details, problems: Problems, dropped: dict,
                ledger: Ledger, tables: SourceTables) -> Iterator[pa.Table]:
    """The unit tests in the action log's parts of students (`files`: their files as split, UnitTestFiles), built
    only once every event part has been read (so that they are never held beside one); after the last, the
    source's final counts."""
    if not action_log.read:
        raise RuntimeError("the unit tests come after the event parts: read those first")
    files = files.result()
    references: dict[str, int] = {}
    rows = 0
    for part in read_ahead(files.parts(details, problems, dropped, references)):  # the next built while one is written
        rows += part.num_rows
        yield part
    tables.features = {"has_unit_tests": int(rows > 0), "has_text_embeddings": int(problems.has_text), "has_timestamps": 1}
    tables.dropped = dropped | ledger.dropped()
    tables.reading = {"multi_skill_from_lists": problems.split_lists} | references | ledger.facts()


@dataclass
class _ActionLog:
    """action_logs.csv, read once and checked whole: its usable visits by part where each log's rows lie together
    (`streamed`: ktirt.sources.edm_stream), else its rows split into parts by student (`parts`; the last part:
    rows of no known student)."""

    path: Path
    factor: float  # ms per unit of its timestamps
    cut: StudentCut  # the students of each part
    parts: CsvParts | None = None
    streamed: StreamedVisits | None = None
    read: bool = False  # every part has been read


class _StudentRoute:
    """Each action row's part: its student's (StudentCut; part n for a row whose assignment log is unknown or has
    no student). Also notes whether any log and any problem of the file join assignment_details and
    problem_details (if none does, the files do not belong together)."""

    def __init__(self, path: Path, cut: StudentCut, problems: Problems):
        self.path, self.cut, self.checks = path, cut, WholeLogChecks()
        self.logs, self.problems = cut.logs, problems.index
        self.unjoined = {"assignment_log_id": set(), "problem_id": set()}  # kept only while nothing joins

    def __call__(self, block: pa.RecordBatch) -> np.ndarray:
        self.checks.add(block)
        logs = normalise_ids(block["assignment_log_id"], self.path, "assignment_log_id")
        row = self._joined("assignment_log_id", self.logs, logs.dictionary)
        part = np.append(self.cut.parts(row), self.cut.n)
        if self.unjoined["problem_id"] is not None:  # looked up only until one problem joins
            self._joined("problem_id", self.problems,
                         normalise_ids(block["problem_id"], self.path, "problem_id").dictionary)
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


def _n_parts(path: Path, part_bytes: int | None) -> int:
    """About one part per `part_bytes` of action log, the nearest count (one without)."""
    return max(1, round(path.stat().st_size / part_bytes)) if part_bytes and path.exists() else 1


def _read_action_log(path: Path, details: Details, problems: Problems, cut: StudentCut) -> _ActionLog:
    """Read action_logs.csv once, a block at a time, checking what must hold over the whole file: into its usable
    visits by part of students (`cut`) where each log's rows lie together, else into its rows by part."""
    try:
        streamed = stream_visits(path, details, problems, cut, current_ledger())
        heap_trimmed()  # what the pass freed: the parts start from what is held
        return _ActionLog(path, streamed.factor, cut, streamed=streamed)
    except NotStreamable as exc:
        log.info("%s: split by student, not read in one pass: %s", path.name, exc)
    parts = CsvParts(path, ACTION_LOG_COLUMNS, ID_COLUMNS, cut.n + 1)
    route = _StudentRoute(path, cut, problems)
    parts.split(route, forms={"timestamp": NUMBER_FORM})
    factor = route.checks.unit(path)
    route.check_joins()
    return _ActionLog(path, factor, cut, parts=parts)


def _first_responses(action_log: _ActionLog, details: Details, problems: Problems, dropped: dict,
                     tables: SourceTables) -> Iterator[pa.Table]:
    """Per part of the action log, one event per visit (ktirt.sources.edm_actions) whose first action is a graded
    response or a help request, in the events' order; the counts (dropped, excluded, first actions) add up part
    after part (a log read in one pass counted its dropped and excluded rows as it was read); the first actions
    are those of the events."""
    streamed, counts = action_log.streamed, (dropped, tables.excluded, tables.first_actions)
    n_rows, n_events = (streamed.n_action_rows if streamed else 0), 0
    usable = _usable_of_parts(action_log, details, problems)
    if streamed:
        add_counts(counts, (streamed.dropped, streamed.excluded))
    # a log split by student: part k + 1 read back, checked for duplicates and grouped on the second core while part
    # k's events are built. A streamed log's parts are only read from disk: their events are built here (built
    # ahead, or two at a time, more parts were held at once, for no time saved: docs/PERFORMANCE_HISTORY.md)
    for visits, joined, sel, part_counts in (usable if streamed else read_ahead(usable)):
        first = np.bincount(visits.first_act[sel], minlength=len(FIRST_ACTIONS))
        add_counts(counts, (*part_counts, dict(zip(FIRST_ACTIONS, first.tolist()))))
        events = _events(visits, joined, problems, details, sel, streamed.ranks if streamed else None)
        n_rows, n_events = n_rows + visits.n_action_rows, n_events + events.num_rows
        del visits, joined, sel
        yield events
        del events
        # freed memory given back once a part, here: after each step of a part (reading back, the duplicate
        # check, the visits) the next step faulted the pages straight back in (prepare 11.7 -> 10.8 s at EDM-Cup
        # scale, for a peak 0.2 GiB higher and as flat: docs/PERFORMANCE_HISTORY.md)
        heap_trimmed()
    action_log.read = True
    log.info("%s: %d action rows -> %d first-response events", action_log.path.name, n_rows, n_events)


def _events(visits: Visits, joined: Joined, problems: Problems, details: Details, sel: np.ndarray,
            ranks: Ranks | None = None) -> pa.Table:
    """The events of the visits `sel`, in the contract's schema and order: the visits are put in that order
    first, from the four key columns (`ranks`: the ids' order, where the visits' codes are rows of the whole
    lookup tables), so that the text columns (skill lists, problem types) are gathered once, in order, not
    gathered and then reordered (a copy of every event's text)."""
    keys = ranks.event_keys(visits, joined, sel) if ranks else _event_keys(visits, joined, details, sel)
    sel = sel[sort_events(keys)]
    pr = visits.problem[sel]
    latency = visits.first_ts[sel] - visits.start[sel]
    has_start = visits.start[sel] != NEVER
    columns = _event_keys(visits, joined, details, sel) | {
        "skill_ids": problems.skill_ids.take(pa.array(joined.prob_row[pr])),
        "correct": (visits.first_act[sel] == CODE["correct_response"]).astype(np.int8),
        "latency_ms": pa.array(np.where(has_start, latency, 0), pa.int64(), mask=~has_start),
        "help_requested": visits.help_requested[sel],
        "hint_count": np.minimum(visits.hint_count[sel], np.iinfo(np.int16).max).astype(np.int16),
        "attempt_count": np.minimum(visits.attempt_count[sel], np.iinfo(np.int16).max).astype(np.int16),
        "problem_type": joined.ptype.take(pa.array(pr)),
    }
    return events_table(columns, ordered=True)


def _event_keys(visits: Visits, joined: Joined, details: Details, sel: np.ndarray) -> dict:
    """The columns of the visits `sel` that order the events (ktirt.events.sort_events)."""
    lg, pr = visits.log[sel], visits.problem[sel]
    return {
        "user_id": pa.DictionaryArray.from_arrays(pa.array(joined.log_student[lg], pa.int32()), details.student.dictionary),
        "item_id": pa.DictionaryArray.from_arrays(pa.array(pr, pa.int32()), visits.prob_vals),
        "timestamp": visits.first_ts[sel],
        "action_sequence_id": pa.DictionaryArray.from_arrays(pa.array(lg, pa.int32()), visits.log_vals),
    }


def _usable_of_parts(action_log: _ActionLog, details: Details,
                     problems: Problems) -> Iterator[tuple[Visits, Joined, np.ndarray, tuple[dict, dict]]]:
    """Each part's visits, joined, the usable ones among them and the part's counts (dropped, excluded). A log
    split by student is read here: `_first_responses` reads them one part ahead (ktirt/read_ahead.py), so part
    k + 1 is read back, checked for duplicates and grouped on the second core while part k's events are built."""
    if action_log.streamed is not None:
        for visits in action_log.streamed.parts():  # usable only, counted as they were read
            yield visits, action_log.streamed.joined, np.arange(len(visits.log)), ({}, {})
        return
    for rows in action_log.parts.parts():
        part_dropped: dict[str, int] = {}
        part_excluded: dict[str, int] = {}
        visits = read_visits(rows, action_log.path, action_log.factor, part_dropped, part_excluded)
        del rows  # freed, not given back: the next step reuses its pages (_first_responses gives back once a part)
        joined = join_details(visits, details, problems)
        sel = np.flatnonzero(usable_visits(visits, joined, part_dropped, part_excluded))
        yield visits, joined, sel, (part_dropped, part_excluded)
        del visits, joined


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
