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
import pyarrow as pa
import pyarrow.compute as pc

from ktirt.errors import InputError
from ktirt.kt.vocab import Vocabulary, first_skill

SPLITS = ("train", "val", "test")


@dataclass
class Sequences:
    """Every student's responses in time order: flat arrays and per-student offsets."""

    users: np.ndarray
    offsets: np.ndarray
    item: np.ndarray
    skill: np.ndarray
    correct: np.ndarray
    timestamp_ms: np.ndarray
    split: np.ndarray
    """index into SPLITS, per student"""

    @property
    def user_of(self) -> np.ndarray:
        return np.repeat(np.arange(len(self.users)), np.diff(self.offsets))

    def responses_of(self, split: str) -> np.ndarray:
        """Global indices of the responses of one split's students."""
        return np.flatnonzero(self.split[self.user_of] == SPLITS.index(split))


def split_labels(users: np.ndarray, split: dict, events_path: str = "events") -> np.ndarray:
    """SPLITS index of each user; a user in no split, or an empty split, is an error."""
    label = np.full(len(users), -1)
    for k, name in enumerate(SPLITS):
        ids = split.get(name, [])
        if not ids:
            raise InputError(f"split '{name}' is empty", "split.json", name)
        label[np.asarray(pc.is_in(pa.array(users, pa.string()), value_set=pa.array(ids, pa.string())))] = k
    if (label < 0).any():
        missing = users[label < 0]
        raise InputError(f"{len(missing)} users are in no split, e.g. '{missing[0]}' (rerun the split stage)",
                         events_path, "user_id")
    return label


def load_sequences(events: pa.Table, split: dict, vocab: Vocabulary | None = None) -> tuple[Sequences, Vocabulary]:
    """Sequences of events.parquet (already sorted by user_id, timestamp), and the vocabulary: built from
    training users when `vocab` is None, else the given one (unknown ids then map to -1)."""
    user = events["user_id"].to_numpy(zero_copy_only=False).astype(object)
    boundaries = np.flatnonzero(np.r_[True, user[1:] != user[:-1]])
    users = user[boundaries]
    if len(np.unique(users)) != len(users):
        raise InputError("events are not sorted by user_id (rerun prepare)", "events.parquet", "user_id")
    labels = split_labels(users, split)
    offsets = np.r_[boundaries, len(user)]
    items = events["item_id"].combine_chunks()
    skills = first_skill(events["skill_ids"])
    is_train = np.repeat(labels == 0, np.diff(offsets))
    if vocab is None:
        vocab = Vocabulary.build(items, skills, is_train)
    seqs = Sequences(
        users=users,
        offsets=offsets,
        item=vocab.item_index(items),
        skill=vocab.skill_index(skills),
        correct=events["correct"].to_numpy().astype(np.int8),
        timestamp_ms=events["timestamp"].cast(pa.int64()).to_numpy(),
        split=labels,
    )
    return seqs, vocab


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
