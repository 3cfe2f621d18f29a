"""WD-IRT's targets: every in-unit response and every scored unit-test row, each with its split, its item's
skills and the clickstream history behind it; and the batcher that turns target indices into model inputs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import torch

from ktirt.features.history import (EventTable, TrainingStats, as_event_index, history_end, history_summary,
                                    history_window, pair_context, residual_values, skill_prefix_sums, static_features,
                                    training_stats, user_starts)
from ktirt.irt.catalog import Catalog
from ktirt.split import SPLITS, split_labels

CHUNK = 32
"""training batches are shuffled runs of this many neighbouring targets (chunked_order)"""


@dataclass
class Targets:
    """Responses to predict: item, skills, time, outcome, split, and where each one's history lies among the
    events (its window is formed a batch at a time: `history`)."""

    kind: np.ndarray  # 0 = in-unit event, 1 = unit-test score
    student: np.ndarray  # student index (event users by rank, then users seen only in unit tests)
    item: np.ndarray
    skill: np.ndarray
    """the item's first skill (the mean baselines' fallback)"""
    skills: np.ndarray
    """(n, K) all of the item's skills, -1 padded"""
    timestamp_ms: np.ndarray
    y: np.ndarray
    split: np.ndarray
    history_end: np.ndarray
    """one past the last event of the target's history (int32)"""
    history_first: np.ndarray
    """the first event of the target's student (int32): no history reaches before it"""
    history_len: int
    summary: np.ndarray
    """(n, N_SUMMARY) whole-history summary (history_summary)"""
    source_row: np.ndarray  # row in events.parquet / unit_tests.parquet
    users: np.ndarray
    """user id of each student index"""

    def history(self, rows=slice(None)) -> np.ndarray:
        """(len(rows), history_len) event indices of the histories of targets `rows`, -1 where there is none.
        Formed when asked: held for every target they would be targets x history_len indices (1.1 GB at
        EDM-Cup scale), two numbers a target here."""
        return history_window(self.history_end[rows], self.history_first[rows], self.history_len)


def build_targets(events: pa.Table, unit_tests: pa.Table, split: dict, cat: Catalog, H: int) -> tuple[EventTable, Targets]:
    """The event table (features per event) and the targets, events first in file order, then the scored
    unit-test rows; each target's history holds the `H` events before it (-1 padded). The whole log as one
    block (ktirt/irt/target_blocks.py builds them a block of students at a time)."""
    first = run_starts(events["user_id"])
    distinct = events["user_id"].take(pa.array(np.flatnonzero(first))).to_numpy(zero_copy_only=False)
    labels = split_labels(distinct, split)
    item = cat.index(events["item_id"])
    stats = training_stats(events, item, labels[np.cumsum(first) - 1] == 0, len(cat.items))
    scored = unit_tests.filter(pc.is_valid(unit_tests["correct"]))
    rows = np.flatnonzero(np.asarray(pc.is_valid(unit_tests["correct"])))
    return block_targets(events, scored, rows, split, cat, H, stats, StudentNumbers(0, len(distinct)))


@dataclass
class StudentNumbers:
    """Where a block's students are numbered from: its event users (in file order) from `first`, the students met
    only in unit tests from `first_test_only` (after every event user of the log), each in the order first met."""

    first: int
    first_test_only: int
    first_event_row: int = 0
    """the block's first row in events.parquet"""


def block_targets(events: pa.Table, scored: pa.Table, scored_rows: np.ndarray, split: dict, cat: Catalog, H: int,
                  stats: TrainingStats, numbers: StudentNumbers) -> tuple[EventTable, Targets]:
    """build_targets of one block of whole students: their events and their scored unit-test rows (`scored`, rows
    `scored_rows` of unit_tests.parquet); event indices are the block's own, students are numbered by `numbers`."""
    first = run_starts(events["user_id"])
    user_rank = np.cumsum(first) - 1
    distinct = events["user_id"].take(pa.array(np.flatnonzero(first))).to_numpy(zero_copy_only=False)
    labels = split_labels(distinct, split)
    ts = events["timestamp"].cast(pa.int64()).to_numpy()
    item = cat.index(events["item_id"])
    ev = EventTable(user_rank, ts, item, cat.item_skills[item], events["correct"].to_numpy().astype(np.float32),
                    static_features(events, item, labels[user_rank] == 0, stats), user_starts(user_rank))

    ut_rank = pc.index_in(scored["user_id"], value_set=pa.array(distinct, pa.string())).fill_null(-1).to_numpy(zero_copy_only=False)
    ut_ts = scored["timestamp"].cast(pa.int64()).to_numpy()
    ut_label = np.full(len(ut_rank), -1)
    for k, name in enumerate(SPLITS):
        ut_label[np.asarray(pc.is_in(scored["user_id"], value_set=pa.array(split[name], pa.string())))] = k
    has_events = ut_rank >= 0
    ut_end = np.where(has_events, history_end(ev, np.maximum(ut_rank, 0), ut_ts), 0)
    user_first_idx = np.r_[np.flatnonzero(first), len(first)]
    ut_first = np.where(has_events, user_first_idx[np.maximum(ut_rank, 0)], 0)
    ut_item = cat.index(scored["item_id"])
    test_only, test_only_users = pd.factorize(scored["user_id"].to_numpy(zero_copy_only=False)[~has_events])
    ut_student = ut_rank + numbers.first
    ut_student[~has_events] = numbers.first_test_only + test_only

    ev_end = history_end(ev, user_rank, ts)
    vals = residual_values(ev)
    ev_skill_sums = skill_prefix_sums(ev, vals, user_rank, ev.skills, ts)
    ut_skill_sums = skill_prefix_sums(ev, vals, np.maximum(ut_rank, 0), cat.item_skills[ut_item], ut_ts) * has_events[:, None]
    summary = np.r_[history_summary(ev, ev_end, ev.user_start, ev_skill_sums), history_summary(ev, ut_end, ut_first, ut_skill_sums)]
    t = Targets(
        kind=np.r_[np.zeros(len(item), np.int8), np.ones(len(ut_item), np.int8)],
        student=np.r_[user_rank + numbers.first, ut_student],
        item=np.r_[item, ut_item],
        skill=cat.item_skill[np.r_[item, ut_item]],
        skills=cat.item_skills[np.r_[item, ut_item]],
        timestamp_ms=np.r_[ts, ut_ts],
        y=np.r_[ev.correct, scored["correct"].to_numpy().astype(np.float32)],
        split=np.r_[labels[user_rank], ut_label].astype(np.int8),
        history_end=as_event_index(np.r_[ev_end, ut_end]),
        history_first=as_event_index(np.r_[ev.user_start, ut_first]),
        history_len=H,
        summary=summary,
        source_row=np.r_[np.arange(len(item)) + numbers.first_event_row, scored_rows],
        users=np.r_[distinct, np.asarray(test_only_users, dtype=object)],
    )
    return ev, t


def run_starts(ids: pa.ChunkedArray) -> np.ndarray:
    """True where a row's id differs from the row before (and on the first row), compared as integer codes:
    millions of ids as Python strings would take several times the table's memory."""
    codes = pc.index_in(ids, value_set=pc.unique(ids)).to_numpy()
    return np.r_[len(codes) > 0, codes[1:] != codes[:-1]][: len(codes)]


class Batcher:
    """Turns target indices into model inputs; all arrays live as torch tensors once."""

    def __init__(self, ev: EventTable, t: Targets, device):
        self.device = device
        self.static = ev.static
        self.summary = torch.as_tensor(t.summary)
        self.ev_item = torch.as_tensor(ev.item)
        self.ev_skills = torch.as_tensor(ev.skills)
        self.ev_ts = torch.as_tensor(np.array(ev.timestamp_ms))
        self.history = t.history
        self.item = torch.as_tensor(t.item)
        self.skills = torch.as_tensor(t.skills)
        self.ts = torch.as_tensor(t.timestamp_ms)
        self.y = torch.as_tensor(t.y)

    def __call__(self, idx: torch.Tensor):
        """Model inputs of targets `idx`: the distinct events of their histories once (neighbouring targets of
        one student share most of theirs), each history slot's row among them and its context code."""
        h = torch.as_tensor(self.history(idx.numpy()))
        mask = h >= 0
        events, local = torch.unique(h.clamp(min=0), return_inverse=True)
        context = pair_context(h, self.ts[idx], self.item[idx], self.skills[idx], self.ev_ts, self.ev_item, self.ev_skills)
        d = self.device
        inputs = (torch.as_tensor(self.static[events.numpy()]), self.ev_item[events], local, context, mask, self.summary[idx])
        return tuple(x.to(d) for x in inputs), self.item[idx].to(d), self.y[idx].to(d)


def chunked_order(rows: np.ndarray, chunk: int, gen: torch.Generator) -> torch.Tensor:
    """`rows` (targets in student and time order) cut into runs of `chunk` neighbours, the runs shuffled: a
    batch still mixes many students, and its targets share most of their history events (Batcher)."""
    starts = np.arange(0, len(rows), chunk)
    shuffled = starts[torch.randperm(len(starts), generator=gen).numpy()]
    return torch.as_tensor(np.concatenate([rows[s : s + chunk] for s in shuffled]) if len(rows) else rows)
