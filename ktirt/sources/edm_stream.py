"""EDM Cup's action log read in one pass, where each assignment log's rows lie together (the simulator writes them
so, as does an export ordered by log): the visits (ktirt.sources.edm_actions) are formed as the file is parsed, a
run of whole logs at a time, and only the usable ones (one per event: a fifth of the rows) go to disk, to their
student's part. Splitting every row to its part on disk, reading the parts back and finding their duplicates
(ktirt.sources.csv_parts) was about half of prepare's time at EDM-Cup scale.

The one pass gives the same visits as the split: a visit's rows, and an exact duplicate and its original (which
share a log), all lie in one run of a log. What it relies on is checked as it goes: where the file breaks it (a
log met again after its run ended, a blank log or one not in assignment_details, a timestamp unit the first block
mistook, no problem in problem_details) `stream_visits` raises NotStreamable and the caller splits the file.
Memory is the blocks being parsed, the run of the log a block ends in, and the visits of one block.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ktirt.errors import InputError
from ktirt.events import sort_codes
from ktirt.read_ahead import started
from ktirt.sources.canonical import add_counts
from ktirt.sources.csv_parts import column_types, ledgered_blocks
from ktirt.sources.edm_actions import ACTION_LOG_COLUMNS, Visits, WholeLogChecks, action_lut, grouped_visits
from ktirt.sources.edm_details import Details, Problems, StudentCut
from ktirt.sources.edm_visits import Joined, problems_joined, usable_visits
from ktirt.sources.ids import normalise_ids
from ktirt.sources.rows import float_codes, hashed_codes, repeated_hashes, repeats_among
from ktirt.sources.tables import Ledger, warn_duplicates
from ktirt.sources.timestamps import NUMBER_FORM, in_unit, unit_factor


class NotStreamable(Exception):
    """The action log breaks what the one pass relies on (the message says what): split it instead."""


VISIT = np.dtype([("log", np.int32), ("problem", np.int32), ("start", np.int64), ("first_ts", np.int64),
                  ("first_act", np.int8), ("hint_count", np.int32), ("attempt_count", np.int32),
                  ("help_requested", np.bool_)])
"""a usable visit as written to its part's file: its log and problem as rows of assignment_details and
problem_details"""


@dataclass
class Ranks:
    """The order of every assignment log, problem and student id (as text), for sorting a part's events without
    ranking the whole release's ids again for each part."""

    log: np.ndarray
    problem: np.ndarray
    student: np.ndarray

    def event_keys(self, visits: Visits, joined: Joined, sel: np.ndarray) -> dict[str, np.ndarray]:
        """sort_events' keys of the visits `sel`, as integers in the order of the ids."""
        lg = visits.log[sel]
        return {"user_id": self.student[joined.log_student[lg]], "item_id": self.problem[visits.problem[sel]],
                "timestamp": visits.first_ts[sel], "action_sequence_id": self.log[lg]}


@dataclass
class StreamedVisits:
    """The usable visits of the whole action log on disk, a file per part of students (StudentCut), and what the
    one pass counted."""

    folder: tempfile.TemporaryDirectory
    files: list[Path]
    joined: Joined  # every log and problem (a visit's codes are their rows)
    log_vals: pa.Array  # assignment_details' log ids, by row
    prob_vals: pa.Array  # problem_details' problem ids, by row
    ranks: Ranks
    n_action_rows: int  # read, less the exact duplicates
    factor: float
    dropped: dict[str, int]
    excluded: dict[str, int]

    def parts(self) -> Iterator[Visits]:
        """Each part's usable visits, in part order; the folder is removed after the last."""
        try:
            for file in self.files:
                rec = np.fromfile(file, VISIT) if file.exists() else np.zeros(0, VISIT)
                file.unlink(missing_ok=True)
                field = {name: np.ascontiguousarray(rec[name]) for name in VISIT.names}  # gathered from at random
                del rec
                yield Visits(0, field["log"], field["problem"], self.log_vals, self.prob_vals, field["start"],
                             field["first_ts"], field["first_act"], np.ones(len(field["log"]), bool),
                             field["hint_count"], field["attempt_count"], field["help_requested"])
        finally:
            self.folder.cleanup()


def stream_visits(path: Path, details: Details, problems: Problems, cut: StudentCut, ledger: Ledger) -> StreamedVisits:
    """Read action_logs.csv once into its usable visits by part (`cut`), checking what must hold over the whole file
    (an InputError as the split would raise it); NotStreamable where the file must be split instead."""
    stream = _Stream(path, details, problems, cut)
    blocks = ledgered_blocks(path, column_types(path, ACTION_LOG_COLUMNS), {"timestamp": NUMBER_FORM}, ledger)
    try:
        for block in blocks:
            stream.add(block)
        visits = stream.end()
    except BaseException:
        stream.folder.cleanup()
        raise
    finally:
        blocks.close()  # stops the segments still being parsed
        stream.close()
    ledger.duplicate_rows[path.name] = stream.duplicates
    warn_duplicates(path, stream.duplicates)
    return visits


@dataclass
class _Coded:
    """Rows of one block as codes: their log and problem as rows of the lookup tables (an unknown problem past
    them; -1: blank), their action's code for the visits and its name's for the duplicate rule, their raw time."""

    rows: pa.RecordBatch  # as parsed, for the exact duplicate check
    log: np.ndarray
    problem: np.ndarray
    act: np.ndarray
    act_name: np.ndarray
    ts: np.ndarray

    def sliced(self, start: int, stop: int | None = None) -> _Coded:
        stop = len(self.log) if stop is None else stop
        return _Coded(self.rows.slice(start, stop - start), *(a[start:stop] for a in
                      (self.log, self.problem, self.act, self.act_name, self.ts)))


class _Stream:
    """The one pass: each block coded, cut after its last log's first row (that log's run may go on in the next
    block), and the whole runs before the cut made into visits."""

    def __init__(self, path: Path, details: Details, problems: Problems, cut: StudentCut):
        self.path, self.details, self.problems, self.cut = path, details, problems, cut
        self.checks = WholeLogChecks()
        self.seen = np.zeros(len(details.student), bool)  # logs whose run has ended
        self.unknown_problems: dict[str, int] = {}  # codes past problem_details' rows
        self.action_names: dict[str, int] = {}
        self.any_problem_joined = False
        self.factor: float | None = None  # the unit guessed from the first block with a time
        self.carry: list[_Coded] = []
        self.n_rows = self.duplicates = 0
        self.dropped: dict[str, int] = {}
        self.excluded: dict[str, int] = {}
        self.folder = tempfile.TemporaryDirectory(prefix="ktirt-visits-")
        self.files = [Path(self.folder.name) / f"part-{k:05d}.visits" for k in range(cut.n)]
        self.handles: dict[int, object] = {}
        # every log is in assignment_details (_coded), so its row is not held; a visit's codes are rows of the tables
        n_logs = len(details.student)
        self.joined = Joined(np.broadcast_to(np.int32(0), n_logs), details.students_of(np.arange(n_logs)),
                             **problems_joined(np.arange(len(problems.problem_type)), problems))
        self.ids = started(_ids_and_ranks, details, problems)  # while the first blocks are parsed

    def add(self, block: pa.RecordBatch) -> None:
        self.checks.add(block)
        self.n_rows += block.num_rows
        coded = self._coded(block)
        if self.factor is None and np.isfinite(coded.ts).any():
            ts = coded.ts[np.isfinite(coded.ts)]
            try:
                self.factor = unit_factor(ts.min(), ts.max(), self.path, "timestamp")
            except InputError:
                raise NotStreamable("no one timestamp unit fits the first block") from None
        starts = np.flatnonzero(coded.log[1:] != coded.log[:-1]) + 1
        if not len(starts):
            self.carry.append(coded)
            return
        self._visits(self.carry + [coded.sliced(0, starts[-1])])
        self.carry = [coded.sliced(starts[-1])]

    def end(self) -> StreamedVisits:
        if self.carry:
            self._visits(self.carry)
            self.carry = []
        if not self.n_rows:
            raise NotStreamable("no rows")
        factor = self.checks.unit(self.path)  # the whole file's checks: an error here is the split's
        if self.factor is not None and factor != self.factor:
            raise NotStreamable("the first block's timestamps suggested another unit")
        if not self.any_problem_joined:
            raise NotStreamable("no problem in problem_details")
        log_vals, prob_vals, ranks = self.ids.result()
        return StreamedVisits(self.folder, self.files, self.joined, log_vals, prob_vals, ranks,
                              self.n_rows - self.duplicates, factor, self.dropped, self.excluded)

    def close(self) -> None:
        for handle in self.handles.values():
            handle.close()
        self.handles = {}

    def _coded(self, block: pa.RecordBatch) -> _Coded:
        logs = normalise_ids(block["assignment_log_id"], self.path, "assignment_log_id")
        log_row = self.cut.logs.rows(logs.dictionary)
        if logs.null_count or (log_row < 0).any():
            raise NotStreamable("a row without an assignment log, or with one not in assignment_details")
        # refused in the block as the split refuses them (until a problem joins), then by the whole file's checks
        problems = normalise_ids(block["problem_id"], self.path, "problem_id", refuse=not self.any_problem_joined)
        prob_row = self.problems.index.rows(problems.dictionary)
        self.any_problem_joined |= bool((prob_row >= 0).any())
        n_known, n_unknown = len(self.problems.problem_type), len(self.unknown_problems)
        for i in np.flatnonzero(prob_row < 0):  # an unknown problem: a code of its own, its visits counted
            prob_row[i] = n_known + self.unknown_problems.setdefault(problems.dictionary[i].as_py(),
                                                                     len(self.unknown_problems))
        if len(self.unknown_problems) > n_unknown:  # the new codes join no problem
            codes = np.arange(n_known + len(self.unknown_problems))
            self.joined = replace(self.joined, **problems_joined(np.where(codes < n_known, codes, -1), self.problems))
        actions = block["action"]
        names = actions.dictionary.to_pylist()
        name_code = np.array([self.action_names.setdefault(a, len(self.action_names)) for a in names] + [-1])
        act_idx = actions.indices.fill_null(-1).to_numpy(zero_copy_only=False)
        return _Coded(block, log_row[logs.indices.to_numpy(zero_copy_only=False)],
                      np.append(prob_row, -1)[problems.indices.fill_null(-1).to_numpy(zero_copy_only=False)],
                      action_lut(names)[act_idx], name_code[act_idx],
                      block["timestamp"].to_numpy(zero_copy_only=False).astype(np.float64, copy=False))

    def _visits(self, pieces: list[_Coded]) -> None:
        """The visits of whole runs of logs (`pieces`, in file order), their usable ones written to their parts."""
        log, problem, act, act_name, ts = (np.concatenate([getattr(p, f) for p in pieces])
                                           for f in ("log", "problem", "act", "act_name", "ts"))
        runs = log[np.flatnonzero(np.r_[True, log[1:] != log[:-1]])]
        if self.seen[runs].any() or len(np.unique(runs)) < len(runs):
            raise NotStreamable("an assignment log's rows are not all together")
        self.seen[runs] = True
        keep = self._not_repeated(pieces, hashed_codes([log, float_codes(ts), problem, act_name]))
        if keep is not None:
            log, problem, act, act_name, ts = (a[keep] for a in (log, problem, act, act_name, ts))
        dropped = {"action_rows_no_action": int((act_name < 0).sum())}
        excluded: dict[str, int] = {}
        fields = grouped_visits(log, problem, act, in_unit(ts, self.factor or 1.0), dropped, excluded)
        visits = Visits(len(log), log_vals=None, prob_vals=None, **fields)
        sel = np.flatnonzero(usable_visits(visits, self.joined, dropped, excluded))
        add_counts((self.dropped, self.excluded), (dropped, excluded))
        self._write(visits, sel)

    def _not_repeated(self, pieces: list[_Coded], h: np.ndarray) -> np.ndarray | None:
        """Which rows to keep (None: all) once the exact duplicates are out (counted): only the rows whose hash of
        their codes repeats are compared, on every column as parsed."""
        candidates = repeated_hashes(h)
        if not len(candidates):
            return None
        bounds = np.cumsum([0] + [len(p.log) for p in pieces])
        piece = np.searchsorted(bounds, candidates, "right") - 1
        rows = pa.concat_tables([_decoded(pieces[k].rows.take(pa.array(candidates[piece == k] - bounds[k])))
                                 for k in np.unique(piece)])
        repeated = candidates[repeats_among(rows)]
        self.duplicates += len(repeated)
        keep = np.ones(len(h), bool)
        keep[repeated] = False
        return keep

    def _write(self, visits: Visits, sel: np.ndarray) -> None:
        part = self.cut.parts(visits.log[sel])
        order = np.argsort(part, kind="stable")
        sel, part = sel[order], part[order]
        rec = np.empty(len(sel), VISIT)
        for name in VISIT.names:
            rec[name] = getattr(visits, name)[sel]
        bounds = np.searchsorted(part, np.arange(self.cut.n + 1))
        for k in np.flatnonzero(np.diff(bounds)):
            if k not in self.handles:
                self.handles[k] = open(self.files[k], "wb")
            rec[bounds[k]:bounds[k + 1]].tofile(self.handles[k])


def _ids_and_ranks(details: Details, problems: Problems) -> tuple[pa.Array, pa.Array, Ranks]:
    """Every assignment log's and problem's id, by row, and the order of those and of the students' ids."""
    log_vals, prob_vals = details.index.keys(), problems.index.keys()
    ranks = (sort_codes(ids).astype(np.int32) for ids in (log_vals, prob_vals, details.student.dictionary))
    return log_vals, prob_vals, Ranks(*ranks)  # int32: held per log while the parts are made


def _decoded(rows: pa.RecordBatch) -> pa.Table:
    """The rows with dictionary columns as their text, so that rows of different blocks compare."""
    table = pa.Table.from_batches([rows])
    for i, field in enumerate(table.schema):
        if pa.types.is_dictionary(field.type):
            table = table.set_column(i, field.name, pc.cast(table.column(i), field.type.value_type))
    return table
