"""WD-IRT's targets on disk, a block of whole students at a time, so the engine's memory follows a block and not
the log.

Every figure of a target (its history window, its summary, the features of its history's events) is one
student's, so blocks of whole students can be built and used one at a time, given what the log says as a whole:
the item catalog and the training students' latency cut points and item success rates. Those come from a first
pass over the events a batch at a time (`gather`); the second (`TargetBlocks.build`) writes each block's event
table and targets as .npy files to a temporary folder. The phases after it read a block at a time, or the few
per-target fields they need. With the log in one block (any log of up to `wdirt.block_events` events) the targets are
the ones `build_targets` gives on the whole table, in the same order.
"""

from __future__ import annotations

import dataclasses
from functools import cached_property
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import torch

from ktirt.events import UNIT_TESTS_SCHEMA
from ktirt.distributed import all_sum
from ktirt.features.history import SUMMARY_LOG_SKILL_EVENTS, EventTable, StaticFeatures, TrainingStats, latency_cuts
from ktirt.irt import newton_calibration as nc
from ktirt.io import iter_parquet
from ktirt.irt.catalog import Catalog
from ktirt.irt.targets import Batcher, StudentNumbers, Targets, run_starts, block_targets
from ktirt.split import split_labels
from ktirt.user_batches import batches_of
from ktirt.vocab import first_occurrences

UNIT_TEST_COLUMNS = ["user_id", "item_id", "skill_ids", "timestamp", "correct"]
EVENT_COLUMNS = ["user_id", "item_id", "skill_ids", "problem_type", "timestamp", "correct", "help_requested",
                 "hint_count", "attempt_count", "latency_ms"]
_EVENT_FIELDS = ("user", "timestamp_ms", "item", "skills", "correct", "user_start")
_TARGET_FIELDS = tuple(f.name for f in dataclasses.fields(Targets) if f.name not in ("history_len", "users"))


class LogSource:
    """The events and unit tests, as tables in memory (one block) or as the parquet files (read `rows` at a time)."""

    def __init__(self, events: pa.Table | str | Path, unit_tests: pa.Table | str | Path, rows: int):
        self.events, self.unit_tests, self.rows = events, unit_tests, rows

    def event_blocks(self, columns: list[str] = EVENT_COLUMNS) -> Iterator[pa.Table]:
        """The events, blocks of whole students of at least half of `rows` events each (a last smaller one joins the
        one before), in file order: a log of up to `rows` events is one block."""
        ready, pending = None, []
        for batch in batches_of(self.events, self.rows, columns)():
            pending.append(batch)
            if sum(t.num_rows for t in pending) >= self.rows // 2:
                if ready is not None:
                    yield ready
                ready, pending = pa.concat_tables(pending), []
        if pending or ready is not None:
            yield pa.concat_tables(([ready] if ready is not None else []) + pending)

    def unit_test_tables(self, columns: list[str] = UNIT_TEST_COLUMNS) -> Iterator[pa.Table]:
        if isinstance(self.unit_tests, pa.Table):
            yield self.unit_tests.select(columns)
        else:
            for batch in iter_parquet(self.unit_tests, "prepare", UNIT_TESTS_SCHEMA, columns, self.rows):
                yield pa.Table.from_batches([batch])


def gather(source: LogSource, split: dict, types: dict[str, str], text) -> tuple[Catalog, TrainingStats, int]:
    """The first pass: (the catalog, the training events' statistics, the number of students with events)."""
    firsts, test_firsts, latencies, sums, n_users = None, None, [], [], 0
    columns = ["user_id", "item_id", "skill_ids", "problem_type", "correct", "latency_ms"]
    for block in source.event_blocks(columns):
        starts = run_starts(block["user_id"])
        user = np.cumsum(starts) - 1
        labels = split_labels(block["user_id"].filter(pa.array(starts)).to_numpy(zero_copy_only=False), split)
        n_users += int(starts.sum())
        train = block.filter(pa.array(labels[user] == 0))
        lat = train["latency_ms"].to_numpy(zero_copy_only=False).astype(np.float64)
        latencies.append(np.unique(lat[np.isfinite(lat)], return_counts=True))
        sums.append(train.group_by("item_id", use_threads=False).aggregate([("correct", "sum"), ("correct", "count")]))
        firsts = _first_rows(firsts, block.select(["item_id", "skill_ids", "problem_type"]))
        latencies, sums = [_merged_counts(latencies)], [_merged_sums(sums)]
    for table in source.unit_test_tables(["item_id", "skill_ids"]):
        test_firsts = _first_rows(test_firsts, table)
    rows = [t.select(["item_id", "skill_ids"]) for t in (firsts, test_firsts) if t is not None]
    cat = Catalog.of_first_rows(pa.concat_tables(rows), firsts.select(["item_id", "problem_type"]), types, text)
    right, answered = np.zeros(len(cat.items)), np.zeros(len(cat.items))
    s = sums[0]
    at = cat.index(s["item_id"])
    right[at] = s["correct_sum"].to_numpy(zero_copy_only=False)
    answered[at] = s["correct_count"].to_numpy(zero_copy_only=False)
    return cat, TrainingStats(latency_cuts(*latencies[0]), right, answered), n_users


def _first_rows(held: pa.Table | None, rows: pa.Table) -> pa.Table:
    """Each item's first row of `held` (the earlier batches' first rows) followed by `rows`."""
    both = rows if held is None else pa.concat_tables([held, rows])
    return both.take(pa.array(first_occurrences(both["item_id"])[1], pa.int64()))


def _merged_counts(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    values, where = np.unique(np.concatenate([v for v, _ in parts]), return_inverse=True)
    return values, np.bincount(where, np.concatenate([c for _, c in parts]).astype(np.float64), len(values)).astype(np.int64)


def _merged_sums(parts: list[pa.Table]) -> pa.Table:
    if len(parts) == 1:
        return parts[0]
    both = pa.concat_tables(parts)
    return both.group_by("item_id", use_threads=False).aggregate([("correct_sum", "sum"), ("correct_count", "sum")]) \
        .rename_columns({"correct_sum_sum": "correct_sum", "correct_count_sum": "correct_count"})


class TargetBlocks:
    """The blocks' event tables and targets, as .npy files under `folder` (block k in folder/k/); `users`: each
    student's id by student index."""

    def __init__(self, folder: Path, cat: Catalog, history_len: int):
        self.folder, self.cat, self.history_len = Path(folder), cat, history_len
        self.sizes: list[int] = []
        self.users = np.zeros(0, dtype=object)

    @classmethod
    def build(cls, source: LogSource, split: dict, cat: Catalog, stats: TrainingStats, n_users: int, H: int,
              folder: Path) -> TargetBlocks:
        """The second pass: every block's event table and targets, written to `folder`."""
        blocks = cls(folder, cat, H)
        numbers = StudentNumbers(0, n_users)
        event_users, test_only = [], []
        for block, scored, scored_rows in with_unit_tests(source):
            ev, t = block_targets(block, scored, scored_rows, split, cat, H, stats, numbers)
            n_event_users = int(ev.user[-1]) + 1 if len(ev.user) else 0
            event_users.append(t.users[:n_event_users])
            test_only.append(t.users[n_event_users:])
            blocks._save(len(blocks.sizes), ev, t)
            blocks.sizes.append(len(t.y))
            numbers = StudentNumbers(numbers.first + n_event_users, numbers.first_test_only + len(test_only[-1]),
                                     numbers.first_event_row + len(ev.user))
        blocks.users = np.concatenate(event_users + test_only) if event_users else blocks.users
        return blocks

    def _save(self, k: int, ev: EventTable, t: Targets) -> None:
        d = self.folder / str(k)
        d.mkdir(parents=True)
        for name in _EVENT_FIELDS:
            np.save(d / f"event_{name}.npy", getattr(ev, name))
        np.save(d / "event_dense.npy", ev.static.dense)
        np.save(d / "event_latency.npy", ev.static.latency)
        for name in _TARGET_FIELDS:
            np.save(d / f"{name}.npy", getattr(t, name))

    def __len__(self) -> int:
        return len(self.sizes)

    def load(self, k: int) -> tuple[EventTable, Targets]:
        """Block k's event table and targets."""
        d = self.folder / str(k)
        ev = {name: np.load(d / f"event_{name}.npy") for name in _EVENT_FIELDS}
        static = StaticFeatures(np.load(d / "event_dense.npy"), np.load(d / "event_latency.npy"))
        t = Targets(**{name: np.load(d / f"{name}.npy", allow_pickle=False) for name in _TARGET_FIELDS},
                    history_len=self.history_len, users=self.users)
        return EventTable(static=static, **ev), t

    def fields(self, k: int, *names: str) -> tuple[np.ndarray, ...]:
        """Some per-target arrays of block k: Targets fields, or ones written with `put`."""
        return tuple(np.load(self.folder / str(k) / f"{name}.npy") for name in names)

    def put(self, k: int, name: str, values: np.ndarray) -> None:
        """Keep a per-target array of block k (`fields` reads it back)."""
        np.save(self.folder / str(k) / f"{name}.npy", values)

    def concat(self, *names: str) -> tuple[np.ndarray, ...]:
        """Per-target arrays over every block, in target order (for figures that need every target at once)."""
        parts = [self.fields(k, *names) for k in range(len(self))]
        return tuple(np.concatenate([p[i] for p in parts]) for i in range(len(names)))

    @cached_property
    def items_in_events(self) -> np.ndarray:
        """The items (indices, sorted) that in-unit responses met: found once for the metrics and the figures
        against the truth."""
        met = [np.unique(item[kind == 0]) for kind, item in (self.fields(k, "kind", "item") for k in range(len(self)))]
        return np.unique(np.concatenate(met)) if met else np.zeros(0, np.int64)

    def targets(self) -> Targets:
        """Every target's Targets fields but its history's (history_end, history_first), in memory: for tests that
        compare the blocks with build_targets' one table (the run itself never holds them)."""
        keep = [n for n in _TARGET_FIELDS if n not in ("history_end", "history_first")]
        values = dict(zip(keep, self.concat(*keep)))
        empty = np.zeros(len(values["y"]), np.int32)
        return Targets(**values, history_end=empty, history_first=empty, history_len=self.history_len, users=self.users)


def with_unit_tests(source: LogSource, event_columns: list[str] = EVENT_COLUMNS,
                    unit_test_columns: list[str] = UNIT_TEST_COLUMNS) -> Iterator[tuple[pa.Table, pa.Table, np.ndarray]]:
    """Each block of events with its students' scored unit-test rows and their rows in unit_tests.parquet (both
    tables sorted by user_id): the rows up to the block's last student; the last block also takes those after it
    (students met only in unit tests). The blocks are TargetBlocks' (the same cuts, whatever the columns)."""
    tables = source.unit_test_tables(unit_test_columns)
    held, row = None, 0
    blocks = iter(source.event_blocks(event_columns))
    block = next(blocks, None)
    while block is not None:
        after = next(blocks, None)
        last = block["user_id"][-1].as_py() if after is not None and block.num_rows else None
        parts = []
        while True:
            held = held if held is not None and held.num_rows else next(tables, None)
            if held is None:
                break
            users = held["user_id"].to_numpy(zero_copy_only=False)
            cut = len(users) if last is None else int(np.searchsorted(users, last, side="right"))
            parts.append(held.slice(0, cut))
            held = held.slice(cut)
            if held.num_rows:
                break
        mine = pa.concat_tables(parts) if parts else UNIT_TESTS_SCHEMA.empty_table().select(unit_test_columns)
        valid = np.asarray(pc.is_valid(mine["correct"]))
        yield block, mine.filter(pa.array(valid)), row + np.flatnonzero(valid)
        row += mine.num_rows
        block = after


class BlockBatcher:
    """Batcher over the blocks: targets are numbered over every block in turn; a batch's targets lie in one block,
    whose event table and targets are loaded when a batch first asks for it (one block held at a time)."""

    def __init__(self, blocks: TargetBlocks, device):
        self.blocks, self.device = blocks, device
        self.offsets = np.r_[0, np.cumsum(blocks.sizes)].astype(np.int64)
        self._held: tuple[int, Batcher] | None = None

    def block(self, k: int) -> Batcher:
        if self._held is None or self._held[0] != k:
            self._held = None  # let the previous block go before the next is read
            self._held = (k, Batcher(*self.blocks.load(k), self.device))
        return self._held[1]

    def __call__(self, idx: torch.Tensor):
        k = int(np.searchsorted(self.offsets, int(idx[0]), side="right")) - 1
        local = idx - int(self.offsets[k])
        if len(idx) and (int(local.min()) < 0 or int(local.max()) >= self.blocks.sizes[k]):
            raise ValueError("a batch's targets span two blocks")
        return self.block(k)(local)

    def rows(self, k: int, local: np.ndarray) -> np.ndarray:
        """Target numbers of block k's targets `local`."""
        return local + self.offsets[k]


class BlockResponses:
    """A calibration's responses (ktirt/irt/newton_calibration.py's Responses) from the blocks: each block's
    targets that `keep(k)` picks, as student, log(1 + earlier responses on the skill), item, outcome and whether
    it came after its item's change point (`change`, per item; none without), and (`with_theta`, for the theta
    alignment's `thetas`) the deep part's theta; written once beside the block in compact types and read back a
    block at a time on every pass."""

    FIELDS = ("student", "log_opportunity", "item", "y", "after", "theta")

    def __init__(self, blocks: TargetBlocks, name: str, keep, change: np.ndarray | None = None, with_theta: bool = True):
        self.blocks, self.name, self.n_students = blocks, name, 0
        n = 0
        for k in range(len(blocks)):
            student, summary, item, y, ts = blocks.fields(k, "student", "summary", "item", "y", "timestamp_ms")
            rows = keep(k)
            after = np.zeros(len(rows), bool) if change is None else ts[rows] >= change[item[rows]]
            values = (student[rows].astype(np.int32), summary[rows, SUMMARY_LOG_SKILL_EVENTS], item[rows].astype(np.int32),
                      y[rows], after)
            if with_theta:
                values += (blocks.fields(k, "theta")[0][rows],)
            for field, v in zip(self.FIELDS, values):
                blocks.put(k, f"{name}_{field}", v)
            n += len(rows)
            self.n_students = max(self.n_students, int(student[rows].max(initial=-1)) + 1)
        self._n = n

    def block(self, k: int) -> nc.Responses:
        """Block k's responses (all ranks'), in the solver's types."""
        student, log_opportunity, item, y, after = self.blocks.fields(k, *(f"{self.name}_{f}" for f in self.FIELDS[:5]))
        return nc.Responses(student.astype(np.int64), log_opportunity.astype(np.float64), item.astype(np.int64),
                            y.astype(np.float64), after)

    def chunks(self) -> Iterator[nc.Responses]:
        """This rank's responses, a block (in chunks of newton_calibration.CHUNK) at a time."""
        for k in range(len(self.blocks)):
            yield from self.block(k).of_this_rank().chunks()

    @cached_property
    def total(self) -> int:
        return int(all_sum(sum(len(c.y) for c in self.chunks())))

    def thetas(self) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(theta, item, y) of every block's responses in turn (calibration.align_theta_chunks' chunks)."""
        for k in range(len(self.blocks)):
            yield self.blocks.fields(k, *(f"{self.name}_{f}" for f in ("theta", "item", "y")))


ITEM_GROUP_ROWS = 1 << 20
"""responses a per-item figure (the drift test) takes at once: the items are split into groups (item index modulo
the number of groups) of at most about this many responses (groups of 4 M made the drift test the 140,000-student
step's peak: 2.10 GiB against the features' 1.87)"""


def by_item_groups(blocks: TargetBlocks, names: tuple[str, ...], keep, rows: int = ITEM_GROUP_ROWS
                   ) -> Iterator[tuple[np.ndarray, ...]]:
    """The per-target fields `names` of the targets `keep(k)` picks in each block, for one group of items at a
    time (every response of an item in one group, in target order): for figures computed item by item."""
    n = sum(len(keep(k)) for k in range(len(blocks)))
    groups = max(1, -(-n // rows))
    for g in range(groups):
        parts = []
        for k in range(len(blocks)):
            values = blocks.fields(k, "item", *names)
            at = keep(k)
            at = at[values[0][at] % groups == g]
            parts.append([v[at] for v in values])
        yield tuple(np.concatenate([p[i] for p in parts]) for i in range(len(names) + 1))


def item_order(tables: list[pd.DataFrame]) -> pd.DataFrame:
    """Per-item tables of by_item_groups' groups as one table in item order (each item's rows kept in theirs)."""
    if len(tables) == 1:
        return tables[0]
    return pd.concat(tables).sort_values("item", kind="stable").reset_index(drop=True)
