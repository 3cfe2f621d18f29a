"""pyKT's view of the events: multi-skill problems expanded into one row per concept (as pyKT's preprocessing
does), cut into windows for training, and question-level scoring windows.

Question-level scoring follows pyKT's `evaluate_question` (late fusion, mean): each concept row of a problem
is predicted from the rows of the student's *earlier* problems only (never from the problem's other
concepts, whose response is the one being predicted), and the problem's prediction is the mean over its
concepts. A problem's first concept row already has only earlier problems before it, so ordinary windows
score it; each further concept row gets a window of its own: the earlier problems' rows, then that row."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ktirt.vocab import NO_SKILL


@dataclass
class Expanded:
    event: np.ndarray
    """row of events.parquet each expanded row comes from"""
    q: np.ndarray
    c: np.ndarray
    r: np.ndarray
    rank: np.ndarray
    """the concept's place in its problem's skill list (0 = first)"""
    user_start: np.ndarray
    """per expanded row: the first expanded row of its student"""
    num_q: int
    num_c: int

    @classmethod
    def build(cls, events: pa.Table) -> "Expanded":
        skills = events["skill_ids"].combine_chunks()
        filled = pc.if_else(pc.greater(pc.list_value_length(skills), 0), skills, pa.scalar([NO_SKILL], skills.type))
        event = pc.list_parent_indices(filled).to_numpy()
        concepts = pc.list_flatten(filled).to_numpy(zero_copy_only=False)
        c_codes, c_vocab = pd.factorize(concepts, sort=True)
        q_codes, q_vocab = pd.factorize(events["item_id"].to_numpy(zero_copy_only=False), sort=True)
        first_of_event = np.r_[True, event[1:] != event[:-1]]
        starts = np.flatnonzero(first_of_event)
        rank = np.arange(len(event)) - np.repeat(starts, np.diff(np.r_[starts, len(event)]))
        user = events["user_id"].to_numpy(zero_copy_only=False)[event]
        new_user = np.flatnonzero(np.r_[True, user[1:] != user[:-1]])
        user_start = np.repeat(new_user, np.diff(np.r_[new_user, len(event)]))
        r = events["correct"].to_numpy().astype(np.int64)[event]
        return cls(event, q_codes[event].astype(np.int64), c_codes.astype(np.int64), r, rank, user_start,
                   len(q_vocab), len(c_vocab))

    def rows_of(self, event_rows: np.ndarray) -> np.ndarray:
        return np.flatnonzero(np.isin(self.event, event_rows))


def sliding_windows(ex: Expanded, rows: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Windows of `length` over each student's expanded rows among `rows` (whole students), overlapping by one
    row so every row but a student's first is predicted exactly once (pyKT's windows). Returns (index, target):
    (n, length) expanded-row indices (-1 pads) and where a position is predicted."""
    rows = np.sort(rows)
    block = np.flatnonzero(np.r_[True, ex.user_start[rows][1:] != ex.user_start[rows][:-1]])
    first = rows[block]
    n = np.diff(np.r_[block, len(rows)])
    last = first + n
    count = np.maximum(1, -(-(n - 1) // (length - 1)))
    win_start = np.repeat(first, count) + (np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)) * (length - 1)
    index = win_start[:, None] + np.arange(length)[None, :]
    valid = index < np.repeat(last, count)[:, None]
    target = valid & (np.arange(length)[None, :] >= 1)
    return np.where(valid, index, -1), target


def question_windows(ex: Expanded, scored_events: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Windows that predict every concept row of the scored problems once, from earlier problems only."""
    rows = ex.rows_of(scored_events)
    all_rows = np.flatnonzero(np.isin(ex.user_start, np.unique(ex.user_start[rows])))
    index, target = sliding_windows(ex, all_rows, length)
    safe = np.maximum(index, 0)
    target &= (ex.rank[safe] == 0) & np.isin(ex.event[safe], scored_events)
    extra = rows[ex.rank[rows] > 0]
    context_end = extra - ex.rank[extra]
    context_start = np.maximum(ex.user_start[extra], context_end - (length - 1))
    m = context_end - context_start
    pos = np.arange(length)[None, :]
    x_index = np.where(pos < m[:, None], context_start[:, None] + pos, -1)
    x_index[np.arange(len(extra)), m] = extra
    x_target = pos == m[:, None]
    return np.r_[index, x_index], np.r_[target, x_target]


def late_fusion(ex: Expanded, index: np.ndarray, target: np.ndarray, p: np.ndarray, n_events: int) -> np.ndarray:
    """Per row of events.parquet, the mean prediction over its concept rows (NaN where none was predicted).
    `p` holds the predictions at `target` positions, in row-major order."""
    event = ex.event[index[target]]
    total = np.bincount(event, weights=p, minlength=n_events)
    count = np.bincount(event, minlength=n_events)
    with np.errstate(invalid="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)
