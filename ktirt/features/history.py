"""Clickstream history features for Wide & Deep IRT, with strict time order: a target response (an event or
a unit-test score) sees only its student's events with an earlier timestamp, at most `history_len` of them.

Per history event (static, computed once for all events):
    correct, help requested, log(1 + hints), log(1 + attempts), latency decile (cut points from training
    students only) or a missing flag, and the item's success rate among training students' responses
    (leave-one-out for the event itself) or a missing flag.
Per history event, with the static ones: the item's text embedding (`problem_text_bert_pca`) or a missing flag.
Per (target, history event), computed in each batch: one context code (`pair_context`), the recency bucket
of the gap between them x shares a skill x same item.
Per target, over the whole earlier history: counts, mean correctness and mean residual, in all and on
the target's skills (`history_summary`; a multi-skill target averages its skills).
Everything is numpy/torch over whole arrays: no per-row Python loops.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import torch

LATENCY_BINS = 10
RECENCY_EDGES_S = np.array([60, 600, 3600, 86400, 7 * 86400])  # 1 min, 10 min, 1 h, 1 day, 1 week
N_STATIC = 4 + LATENCY_BINS + 1 + 2
ITEM_RATE = 4 + LATENCY_BINS + 1
N_SUMMARY = 6
SUMMARY_LOG_SKILL_EVENTS = 1  # history_summary's column log(1 + earlier events on the target's skills)
N_CONTEXTS = (len(RECENCY_EDGES_S) + 1) * 2 * 2
"""recency bucket x shares a skill x same item: how a history event stands to the target (pair_context)"""


@dataclass
class EventTable:
    """Events as arrays: user rank, time, item and skill codes, static features."""

    user: np.ndarray
    timestamp_ms: np.ndarray
    item: np.ndarray
    skills: np.ndarray
    """(n_events, K) every skill code of the event's item, -1 after its last"""
    correct: np.ndarray
    static: "StaticFeatures"
    """(n_events, N_STATIC) float32 when indexed"""
    user_start: np.ndarray
    """index of the first event of each event's user"""


@dataclass
class StaticFeatures:
    """The per-event features, held compactly: the dense ones as float32 and the latency decile as one byte
    (25 bytes an event where the model's matrix, with its one-hot latency, takes 68). Indexing rows gives
    that (len(rows), N_STATIC) float32 matrix, for a batch's events only."""

    dense: np.ndarray
    """(n_events, 6): correct, help requested, log(1 + hints), log(1 + attempts), item success rate, its
    missing flag"""
    latency: np.ndarray
    """(n_events,) int8: the latency decile, LATENCY_BINS where the latency is missing"""

    def __getitem__(self, rows) -> np.ndarray:
        dense, latency = self.dense[rows], self.latency[rows]
        out = np.zeros((len(latency), N_STATIC), dtype=np.float32)
        out[:, :4] = dense[:, :4]
        out[np.arange(len(latency)), 4 + latency] = 1.0
        out[:, ITEM_RATE:] = dense[:, 4:]
        return out

    @property
    def item_rate(self) -> np.ndarray:
        return self.dense[:, 4]


@dataclass
class TrainingStats:
    """What the static features need of the training students' events as a whole (`training_stats`, or gathered
    a batch at a time by ktirt/irt/target_blocks.py): latency cut points and each item's right answers and
    responses among them."""

    latency_cuts: np.ndarray
    item_right: np.ndarray
    """per item index: training responses answered right"""
    item_answered: np.ndarray
    """per item index: training responses"""

    @property
    def mean_correct(self) -> float:
        """The training responses' correct rate: the success rate of an item no other training response met (as
        float32, the way numpy's mean of the float32 outcomes gives it below 2**24 responses)."""
        n = self.item_answered.sum()
        return float(np.float32(self.item_right.sum()) / np.float32(n)) if n else 0.5


def latency_cuts(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The latency deciles' cut points from the training latencies' distinct `values` (sorted) and their `counts`:
    what np.quantile (linear) gives on the latencies themselves, without holding them."""
    n = int(counts.sum())
    if not n:
        return np.zeros(LATENCY_BINS - 1)
    ends = np.cumsum(counts)  # the sorted latencies' positions 0..n-1: value k covers ends[k-1]..ends[k]-1
    at = np.linspace(0, 1, LATENCY_BINS + 1)[1:-1] * (n - 1)
    lo = np.floor(at)
    lo_value = values[np.searchsorted(ends, lo, side="right")]
    hi_value = values[np.searchsorted(ends, np.minimum(lo + 1, n - 1), side="right")]
    return np.array([np.quantile([a, b], f) for a, b, f in zip(lo_value, hi_value, at - lo)])


def training_stats(events: pa.Table, item: np.ndarray, is_train: np.ndarray, n_items: int) -> TrainingStats:
    """TrainingStats of the events `is_train` marks, from the table at once."""
    lat = events["latency_ms"].to_numpy(zero_copy_only=False).astype(np.float64)[is_train]
    values, counts = np.unique(lat[np.isfinite(lat)], return_counts=True)
    correct = events["correct"].to_numpy().astype(np.float64)
    return TrainingStats(latency_cuts(values, counts), np.bincount(item[is_train], correct[is_train], n_items),
                         np.bincount(item[is_train], minlength=n_items).astype(np.float64))


def static_features(events: pa.Table, item: np.ndarray, is_train: np.ndarray, stats: TrainingStats) -> StaticFeatures:
    """The per-event features; latency cut points and item success rates come from training events only
    (`stats`, over all of them; `is_train` marks these events' training ones)."""
    n = events.num_rows
    correct = events["correct"].to_numpy().astype(np.float32)
    out = np.zeros((n, 6), dtype=np.float32)
    out[:, 0] = correct
    out[:, 1] = events["help_requested"].to_numpy(zero_copy_only=False).astype(np.float32)
    out[:, 2] = np.log1p(events["hint_count"].to_numpy().astype(np.float32))
    out[:, 3] = np.log1p(events["attempt_count"].to_numpy().astype(np.float32))
    lat = events["latency_ms"].to_numpy(zero_copy_only=False).astype(np.float64)  # nulls -> NaN
    have = np.isfinite(lat)
    latency = np.where(have, np.searchsorted(stats.latency_cuts, np.nan_to_num(lat), side="right"), LATENCY_BINS).astype(np.int8)
    del lat, have
    # item success rate among training responses, leaving the event itself out
    s_loo = stats.item_right[item] - np.where(is_train, correct, 0)
    c_loo = stats.item_answered[item] - is_train
    rate = np.divide(s_loo, c_loo, out=np.full(n, np.nan), where=c_loo > 0)
    out[:, 4] = np.nan_to_num(rate, nan=stats.mean_correct)
    out[:, 5] = ~np.isfinite(rate)
    return StaticFeatures(out, latency)


def user_starts(user: np.ndarray) -> np.ndarray:
    first = np.r_[True, user[1:] != user[:-1]]
    return np.maximum.accumulate(np.where(first, np.arange(len(user)), 0))


def history_end(events: EventTable, user: np.ndarray, timestamp_ms: np.ndarray) -> np.ndarray:
    """For targets (user rank, time): one past the last event of that user strictly before that time."""
    key = events.user.astype(np.int64) * (1 << 42) + events.timestamp_ms - events.timestamp_ms.min()
    q = user.astype(np.int64) * (1 << 42) + timestamp_ms - events.timestamp_ms.min()
    return np.searchsorted(key, q, side="left")


SKILL_SUM_BLOCK = 1 << 20
"""events whose sort keys skill_prefix_sums holds at once (a block of whole students)"""


def skill_prefix_sums(events: EventTable, values: np.ndarray, user: np.ndarray, skills: np.ndarray,
                      timestamp_ms: np.ndarray, block: int | None = None) -> np.ndarray:
    """For targets (user rank, skill codes (n_targets, K) padded with -1, time): the count and the sums of
    `values` (n_events, k) over that user's events on each of those skills strictly before that time, averaged
    over the target's skills (an earlier event counts on every skill it shares); returns (n_targets, 1 + k).
    Each sum is one student's, so the students are taken a block of about `block` events at a time: the sort
    keys and running sums then take memory per block (SKILL_SUM_BLOCK unless `block`), not per log, and the sums
    are the same."""
    n_of = (skills >= 0).sum(1)
    if (n_of == 0).any():
        raise ValueError("skill_prefix_sums: every target needs at least one skill code")
    out = np.zeros((len(user), 1 + values.shape[1]))
    by_user = np.argsort(user, kind="stable")
    n_users = int(max(events.user.max(initial=-1), user.max(initial=-1))) + 1
    first_event = np.searchsorted(events.user, np.arange(n_users + 1))
    first_target = np.searchsorted(user[by_user], np.arange(n_users + 1))
    step = block or SKILL_SUM_BLOCK
    cuts = np.unique(np.r_[events.user[::step], n_users]) if len(events.user) else np.array([0, n_users])
    for lo_user, hi_user in zip(np.r_[0, cuts[1:-1]], cuts[1:]):
        ev = slice(first_event[lo_user], first_event[hi_user])
        rows = by_user[first_target[lo_user] : first_target[hi_user]]
        out[rows] = _skill_prefix_sums(events.user[ev], events.timestamp_ms[ev], events.skills[ev], values[ev],
                                       user[rows], skills[rows], timestamp_ms[rows])
    return out


def _skill_prefix_sums(ev_user, ev_ts, ev_skills, values, user, skills, timestamp_ms) -> np.ndarray:
    """skill_prefix_sums over some students' events and targets."""
    times = np.unique(ev_ts)  # time ranks keep the composite key inside int64
    n_skills = int(max(ev_skills.max(initial=0), skills.max(initial=0))) + 1
    row, k = np.nonzero(ev_skills >= 0)  # one row per (event, skill)
    key = (ev_user[row].astype(np.int64) * n_skills + ev_skills[row, k]) * (1 << 32) \
        + np.searchsorted(times, ev_ts[row])
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    run = running_sums(np.c_[np.ones(len(order)), values[row[order]]], sorted_key >> 32)
    t_row, t_k = np.nonzero(skills >= 0)  # row-major: each target's skills are consecutive
    group = (user[t_row].astype(np.int64) * n_skills + skills[t_row, t_k]) * (1 << 32)
    lo = np.searchsorted(sorted_key, group, "left")
    hi = np.searchsorted(sorted_key, group + np.searchsorted(times, timestamp_ms[t_row]), "left")
    per_skill = sum_of_run(run, lo, hi)
    n_of = (skills >= 0).sum(1)
    if not len(n_of):
        return np.zeros((0, 1 + values.shape[1]))
    return np.add.reduceat(per_skill, np.r_[0, np.cumsum(n_of)[:-1]], axis=0) / n_of[:, None]


def history_summary(events: EventTable, end: np.ndarray, first: np.ndarray, skill_sums: np.ndarray) -> np.ndarray:
    """Per target, over the student's whole earlier history (not only the window): log(1 + events),
    log(1 + events on the target's skill), and the mean correctness and mean residual (correct minus the
    item's success rate) overall and on the skill. A mean cannot count, and a window forgets: this does both.
    Formed SKILL_SUM_BLOCK targets at a time (its float64 temporaries then follow the block)."""
    run = running_sums(residual_values(events), events.user)
    out = np.empty((len(end), 2 + run.shape[1] + skill_sums.shape[1] - 1), np.float32)
    for lo in range(0, len(end), SKILL_SUM_BLOCK):
        at = slice(lo, lo + SKILL_SUM_BLOCK)
        n = (end[at] - first[at]).astype(np.float64)
        mean_all = sum_of_run(run, first[at], end[at]) / np.maximum(n, 1)[:, None]
        n_sk = skill_sums[at, 0]
        mean_sk = skill_sums[at, 1:] / np.maximum(n_sk, 1)[:, None]
        out[at] = np.c_[np.log1p(n), np.log1p(n_sk), mean_all, mean_sk]
    return out


def running_sums(values: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Inclusive running sums of `values` (n, k) down each run of equal `group` (rows sorted by it), restarting
    at every run: a student's sums add only their own values. One running sum down the whole file would carry
    every earlier student's values in its rounding, so one student's later answers would move another's
    features (and, through training, every prediction) in the last bits. Taken a block of whole runs (about
    SKILL_SUM_BLOCK rows) at a time: pandas' temporaries then follow the block, and the sums are the same."""
    out = np.empty(values.shape, np.float64)
    run_starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]]) if len(group) else np.zeros(0, np.int64)
    cuts = np.unique(np.r_[run_starts[np.searchsorted(run_starts, np.arange(0, len(group), SKILL_SUM_BLOCK), "right") - 1],
                           len(group)])
    for lo, hi in zip(cuts[:-1], cuts[1:]):
        out[lo:hi] = pd.DataFrame(values[lo:hi]).groupby(group[lo:hi], sort=False).cumsum().to_numpy(np.float64)
    return out


def sum_of_run(run: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Sums over rows start..end-1 from `running_sums`, where `start` is the first row of its run; 0 where empty."""
    if not len(run):
        return np.zeros((len(start), run.shape[1]))
    return np.where((end > start)[:, None], run[np.maximum(end - 1, 0)], 0.0)


def residual_values(events: EventTable) -> np.ndarray:
    """Per event: correct, and correct minus the item's (training) success rate."""
    return np.c_[events.correct, events.correct - events.static.item_rate]


def as_event_index(index: np.ndarray) -> np.ndarray:
    """Event indices as int32 (half of int64's memory), refusing a log with more events than int32 indexes."""
    if len(index) and int(index.max()) >= np.iinfo(np.int32).max:
        raise ValueError("more events than int32 indexes")
    return index.astype(np.int32)


def history_window(end: np.ndarray, user_first: np.ndarray, length: int) -> np.ndarray:
    """(n_targets, length) event indices of each target's history (int32: `as_event_index`'s), -1 where there
    is none: the `length` events before `end`, none before the student's first, `user_first`."""
    idx = as_event_index(end)[:, None] - np.int32(length) + np.arange(length, dtype=np.int32)[None, :]
    return np.where(idx >= as_event_index(user_first)[:, None], idx, np.int32(-1))


def pair_context(hist: torch.Tensor, target_ms: torch.Tensor, target_item: torch.Tensor,
                 target_skills: torch.Tensor, ts: torch.Tensor, item: torch.Tensor, skills: torch.Tensor) -> torch.Tensor:
    """(B, H) context code of each (target, history event) pair, 0..N_CONTEXTS-1: recency bucket of the gap
    x shares a skill x same item. Skill codes are (., K), -1 padded."""
    safe = hist.clamp(min=0)
    gap_s = (target_ms[:, None] - ts[safe]).float() / 1000.0
    bucket = torch.bucketize(gap_s, torch.as_tensor(RECENCY_EDGES_S, dtype=torch.float32))
    mine = target_skills[:, None, :, None]  # (B, 1, K, 1) against the history's (B, H, 1, K)
    shared = ((skills[safe][:, :, None, :] == mine) & (mine >= 0)).flatten(2).any(-1)
    same_item = item[safe] == target_item[:, None]
    return bucket * 4 + shared.long() * 2 + same_item.long()


def text_matrix(item_ids: list[str], text: tuple[list[str], np.ndarray] | None) -> np.ndarray:
    """(n_items, dim + 1): each item's text embedding and a missing flag (all missing without a source)."""
    if text is None:
        return np.concatenate([np.zeros((len(item_ids), 0), np.float32), np.ones((len(item_ids), 1), np.float32)], axis=1)
    ids, mat = text
    pos = pc.index_in(pa.array(item_ids, pa.string()), value_set=pa.array(ids, pa.string())).fill_null(-1).to_numpy(zero_copy_only=False)
    out = np.zeros((len(item_ids), mat.shape[1] + 1), dtype=np.float32)
    have = pos >= 0
    out[have, :-1] = mat[pos[have]]
    out[~have, -1] = 1.0
    return out
