"""Leakage controls any knowledge-tracing model can be put through, given how it trains or predicts.

- **Shuffled labels** (`shuffle_fold`): every outcome permuted, the training students' among all of their
  responses, the validation students' among theirs and the test students' among theirs; the model trains on
  the shuffled fold and is scored against the test students' shuffled outcomes, which are also the history it
  reads. No outcome then relates to anything the model may read, so its test AUC must sit at 0.5 (within
  noise); above it, the model reads the outcome it predicts (its own, or its problem's) some other way.
  The test outcomes are shuffled too because a model trained on noise still leans on the real test history it
  reads: with the test students' real outcomes, DKT, SAKT and simpleKT scored 0.43 to 0.64 on single runs of
  the skill_builder world (their outputs track the previous answer, the student's correct rate and same-skill
  runs, which really predict the next answer there), and replacing that history by shuffled outcomes brought
  every such run to 0.495-0.503. Each side's permutation pools its responses rather than shuffling within
  each student (a student's own correct rate is real signal), and moves whole responses: a multi-skill
  problem's skill rows keep one outcome, so a model that lets a skill row see its problem's outcome learns
  to copy it and is caught. The validation students choose the epoch; with their real outcomes, early
  stopping would pick the epoch whose noise happens to agree with real signal.
- **Future masking** (`future_masking`): a student's later responses are rewritten (outcome flipped,
  clickstream changed, item and time kept) and the model predicts again; every prediction up to and including
  the first rewritten response must stay as it was. It catches a model that reads a response's own outcome,
  a later one, or another skill row of the same problem.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SHUFFLED_AUC_TOLERANCE = 0.02
"""a shuffled-label control passes when its test AUC is within 0.5 ± this"""
MASKING_TOLERANCE = 1e-5
"""largest change of an earlier prediction that float32 rounding explains"""
REWRITTEN = ("correct", "latency_ms", "hint_count", "attempt_count", "help_requested")


def shuffle_outcomes(events: pa.Table, users, seed: int) -> pa.Table:
    """`events` (or unit-test scores: any table with user_id and correct) with `users`' known `correct` values
    permuted among all their responses (seeded); every other row, and a missing score, untouched."""
    user = events["user_id"].to_numpy(zero_copy_only=False).astype(str)
    known = pc.is_valid(events["correct"]).to_numpy(zero_copy_only=False)
    rows = np.flatnonzero(np.isin(user, np.asarray(list(users), dtype=str)) & known)
    i = events.schema.get_field_index("correct")
    field = events.schema.field(i)
    correct = pc.fill_null(events["correct"], 0).to_numpy().copy()
    correct[rows] = correct[rows][np.random.default_rng(seed).permutation(len(rows))]
    return events.set_column(i, field, pa.array(correct, field.type, mask=~known))


SHUFFLED_PARTS = ("train", "val", "test")


def shuffle_fold(table: pa.Table, split: dict, seed: int) -> pa.Table:
    """The shuffled-label control's data: each split's students' outcomes permuted among theirs
    (`shuffle_outcomes`): training, validation and test students apart, so no outcome crosses a split."""
    for i, part in enumerate(SHUFFLED_PARTS):
        table = shuffle_outcomes(table, split[part], seed + 2 * i)
    return table


def rewrite_later_responses(events: pa.Table, users, seed: int) -> tuple[pa.Table, np.ndarray]:
    """`events` (sorted by user, time) with each of `users`' responses from a random cut on rewritten: outcome
    flipped and, where the columns exist, latency, hints, attempts and help changed. The cut falls after a
    student's first response and strictly after the time of the response before it (responses at one time may
    see each other). Returns the table and, per row, whether its prediction must not change: the rows before
    each cut and the cut's own row."""
    user = events["user_id"].to_numpy(zero_copy_only=False).astype(str)
    ts = events["timestamp"].cast(pa.int64()).to_numpy()
    starts = np.flatnonzero(np.r_[True, user[1:] != user[:-1]])
    ends = np.r_[starts[1:], len(user)]
    chosen = np.isin(user[starts], np.asarray(list(users), dtype=str))
    rng = np.random.default_rng(seed)
    later, keep = np.zeros(len(user), bool), np.zeros(len(user), bool)
    for lo, hi in zip(starts[chosen], ends[chosen]):
        cuts = lo + 1 + np.flatnonzero(ts[lo + 1 : hi] > ts[lo : hi - 1])
        if len(cuts):
            k = cuts[rng.integers(len(cuts))]
            later[k:hi] = True
            keep[lo : k + 1] = True
    return _rewrite(events, later), keep


def _rewrite(events: pa.Table, later: np.ndarray) -> pa.Table:
    """Every column of REWRITTEN that `events` has, changed on the `later` rows."""
    mask = pa.array(later)
    for name in REWRITTEN:
        if name not in events.column_names:
            continue
        col, i = events[name], events.schema.get_field_index(name)
        if name == "correct":
            new = pc.subtract(pa.scalar(1, col.type), col)
        elif name == "help_requested":
            new = pc.invert(col)
        elif name == "latency_ms":
            new = pc.add(pc.multiply(pc.fill_null(col, 1_000), 7), 45_000)
        else:
            new = pc.add(col, pa.scalar(1, col.type))
        events = events.set_column(i, events.schema.field(i), pc.if_else(mask, new.cast(col.type), col))
    return events


def future_masking(predict: Callable[[pa.Table], np.ndarray], events: pa.Table, users, seed: int,
                   tolerance: float = MASKING_TOLERANCE) -> dict:
    """Rewrite `users`' later responses (`rewrite_later_responses`) and compare `predict`'s two answers (one
    P(correct) per row of the table it is given, NaN where it predicts nothing) on the rows that must not
    change. ok: 1 when none moved by more than `tolerance`; the largest change; how many predictions compared."""
    changed, keep = rewrite_later_responses(events, users, seed)
    before, after = np.asarray(predict(events), float), np.asarray(predict(changed), float)
    both = keep & np.isfinite(before) & np.isfinite(after)
    if (np.isfinite(before[keep]) != np.isfinite(after[keep])).any():
        return {"ok": 0, "max_change": 1.0, "checked": int(both.sum())}  # a prediction appeared or vanished
    delta = float(np.abs(before[both] - after[both]).max(initial=0.0))
    return {"ok": int(bool(both.any()) and delta <= tolerance), "max_change": round(delta, 9), "checked": int(both.sum())}


def shuffled_control(auc: float, tolerance: float = SHUFFLED_AUC_TOLERANCE) -> dict:
    """The shuffled-label control's verdict on the test AUC of a model trained on shuffled labels."""
    return {"auc": round(float(auc), 6), "ok": int(abs(float(auc) - 0.5) <= tolerance), "tolerance": tolerance}
