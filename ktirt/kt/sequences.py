"""Per-student response sequences and the windows models read them through.

Two windowings of the same sequences:
- `pykt_windows`: pyKT's files. A history longer than L is cut into consecutive windows that overlap by one
  response (stride L - 1): pyKT predicts positions 1..L-1 of a window from the ones before, so the overlap
  lets every response after a student's first be a target exactly once. `selectmasks` marks, for every
  response, the one window that owns it (position 0 of a continuation window is context, 0); -1 pads.
- `query_windows`: our SAKT. Position p of a window is the response predicted from the interactions before
  it; a start token stands in before a student's first response, so every response is predicted. Windows
  advance by `stride` and score only their last `stride` positions (the first window scores all), so each
  response is scored exactly once with at least L - stride earlier responses as context (or its whole
  history), sliding rather than restarting at window edges.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from ktirt.errors import InputError
from ktirt.split import SPLITS, split_labels
from ktirt.vocab import Vocabulary, padded_index, skill_lists

MAX_SKILLS = 8
"""Skills kept per response (the first MAX_SKILLS of its list); ASSISTments 2009 problems carry up to 4."""
LATENCY_BANDS_MS = (3_000, 10_000, 30_000, 120_000)
N_CLICK_CODES = 2 * 3 * (len(LATENCY_BANDS_MS) + 2)
PRACTICE_BANDS = (1, 2, 3, 4, 6, 10, 20)
ACCURACY_BANDS = (1 / 3, 2 / 3)
N_PRACTICE_CODES = 9 * (len(ACCURACY_BANDS) + 2) * (len(PRACTICE_BANDS) + 1)


@dataclass
class Sequences:
    """Every student's responses in time order: flat arrays and per-student offsets."""

    users: np.ndarray
    offsets: np.ndarray
    item: np.ndarray
    correct: np.ndarray
    timestamp_ms: np.ndarray
    split: np.ndarray
    """index into SPLITS, per student"""
    skills: np.ndarray
    """(n, K) every skill of each response (vocabulary index), -1 padded"""
    click: np.ndarray
    """clickstream code of each response (help x attempts x latency band, `click_codes`), 0..N_CLICK_CODES-1"""
    practice: np.ndarray
    """(n, K, 2) the student's practice on each skill of the response (`practice_codes`): before it, after it"""

    @property
    def skill(self) -> np.ndarray:
        """The primary skill of each response (its first): pyKT's one concept per row, the skill-mean floor."""
        return self.skills[:, 0]

    @property
    def user_of(self) -> np.ndarray:
        return np.repeat(np.arange(len(self.users)), np.diff(self.offsets))

    def responses_of(self, split: str) -> np.ndarray:
        """Global indices of the responses of one split's students."""
        return np.flatnonzero(self.split[self.user_of] == SPLITS.index(split))


def load_sequences(events: pa.Table, split: dict, vocab: Vocabulary | None = None,
                   skill_width: int | None = None) -> tuple[Sequences, Vocabulary]:
    """Sequences of events.parquet (already sorted by user_id, timestamp), and the vocabulary: built from
    training users when `vocab` is None, else the given one (unknown ids then map to -1). `skill_width`: the
    skill matrix's width (default: the longest list here, at most MAX_SKILLS), fixed when batches of students
    must give matrices of one width."""
    user = events["user_id"].to_numpy(zero_copy_only=False).astype(object)
    boundaries = np.flatnonzero(np.r_[True, user[1:] != user[:-1]])
    users = user[boundaries]
    if len(np.unique(users)) != len(users):
        raise InputError("events are not sorted by user_id (rerun prepare)", "events.parquet", "user_id")
    labels = split_labels(users, split)
    offsets = np.r_[boundaries, len(user)]
    items = events["item_id"].combine_chunks()
    skills = skill_lists(events["skill_ids"])
    is_train = np.repeat(labels == 0, np.diff(offsets))
    if vocab is None:
        vocab = Vocabulary.build(items, skills, is_train)
    skill_matrix = padded_index(skills, vocab.skill_index, MAX_SKILLS, width=skill_width)
    seqs = Sequences(
        users=users,
        offsets=offsets,
        item=vocab.item_index(items),
        correct=events["correct"].to_numpy().astype(np.int8),
        timestamp_ms=events["timestamp"].cast(pa.int64()).to_numpy(),
        split=labels,
        skills=skill_matrix,
        click=click_codes(events),
        practice=practice_codes(offsets, skill_matrix, events["correct"].to_numpy().astype(np.int8)),
    )
    return seqs, vocab


def practice_codes(offsets: np.ndarray, skills: np.ndarray, correct: np.ndarray) -> np.ndarray:
    """(n, K, 2) codes of a student's practice on each skill of each response, before it ([..., 0]) and
    after it ([..., 1]): attempts so far (banded by PRACTICE_BANDS) x the share of them right (none, or banded
    by ACCURACY_BANDS) x the last two outcomes on the skill (each none, wrong or right); 0..N_PRACTICE_CODES-1,
    -1 where the slot has no skill. Counting is what attention
    cannot do (softmax averages), and mastery-learning data turns on it."""
    row, slot = np.nonzero(skills >= 0)
    user = np.searchsorted(offsets, row, side="right") - 1
    df = pd.DataFrame({"user": user, "skill": skills[row, slot], "y": correct[row]})
    g = df.groupby(["user", "skill"], sort=False)
    n_before = g.cumcount().to_numpy()
    last = g["y"].shift(1).fillna(-1).to_numpy().astype(np.int64) + 1
    second = g["y"].shift(2).fillna(-1).to_numpy().astype(np.int64) + 1
    y = df["y"].to_numpy()
    right_before = g["y"].cumsum().to_numpy() - y
    out = np.full((*skills.shape, 2), -1, dtype=np.int64)
    out[row, slot, 0] = _practice_code(n_before, right_before, second, last)
    out[row, slot, 1] = _practice_code(n_before + 1, right_before + y, last, y + 1)
    return out


def _practice_code(n: np.ndarray, right: np.ndarray, second: np.ndarray, last: np.ndarray) -> np.ndarray:
    """attempts band x accuracy band (none, or the share right so far by ACCURACY_BANDS) x second-last x last"""
    accuracy = np.where(n > 0, 1 + np.searchsorted(ACCURACY_BANDS, right / np.maximum(n, 1), side="right"), 0)
    band = np.searchsorted(PRACTICE_BANDS, n, side="right")
    return (band * (len(ACCURACY_BANDS) + 2) + accuracy) * 9 + second * 3 + last


def click_codes(events: pa.Table) -> np.ndarray:
    """One code per response for what the student did on it besides the answer: help requested (2) x
    attempts (1, 2, 3+) x first-response latency band (unknown, <3 s, <10 s, <30 s, <2 min, longer).
    All 0 for a table without those columns (a bare sequence table)."""
    if not {"help_requested", "attempt_count", "latency_ms"} <= set(events.column_names):
        return np.zeros(events.num_rows, dtype=np.int64)
    help_ = events["help_requested"].to_numpy(zero_copy_only=False).astype(np.int64)
    attempts = np.clip(events["attempt_count"].to_numpy(zero_copy_only=False).astype(np.int64), 1, 3) - 1
    latency = events["latency_ms"].combine_chunks()
    known = np.asarray(latency.is_valid())
    band = np.where(known, 1 + np.searchsorted(LATENCY_BANDS_MS, latency.fill_null(0).to_numpy(), side="right"), 0)
    return (help_ * 3 + attempts) * (len(LATENCY_BANDS_MS) + 2) + band


@dataclass
class Windows:
    index: np.ndarray
    """(n_windows, L) global response index per position, -1 where padded"""
    score: np.ndarray
    """(n_windows, L) True where this window owns the response's prediction"""


def _window_starts(offsets: np.ndarray, users: np.ndarray, length: int, stride: int):
    n = np.diff(offsets)[users]
    count = np.maximum(1, -(-np.maximum(n - length, 0) // stride) + 1)
    user = np.repeat(users, count)
    k = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    return user, offsets[user] + k * stride, offsets[user + 1], k


def query_windows(seqs: Sequences, split: str | None, length: int, stride: int) -> Windows:
    """Windows over one split's students (every student's with `split=None`)."""
    users = np.arange(len(seqs.users)) if split is None else np.flatnonzero(seqs.split == SPLITS.index(split))
    user, start, end, k = _window_starts(seqs.offsets, users, length, stride)
    index = start[:, None] + np.arange(length)[None, :]
    valid = index < end[:, None]
    score = valid & ((k[:, None] == 0) | (np.arange(length)[None, :] >= length - stride))
    return Windows(np.where(valid, index, -1), score)


def pykt_windows(seqs: Sequences, users: np.ndarray, length: int) -> Windows:
    user, start, end, k = _window_starts(seqs.offsets, users, length, length - 1)
    index = start[:, None] + np.arange(length)[None, :]
    valid = index < end[:, None]
    score = valid & ((k[:, None] == 0) | (np.arange(length)[None, :] >= 1))
    return Windows(np.where(valid, index, -1), score)
