"""One blend: the stacker fitted on the validation students' responses, applied to every response, and its test
AUC beside each model's on the same responses, the equal-weight average of the members' logits, the item-mean
floor and, on simulated data, the oracle. Responses that some member did not predict are not blended (counted)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa

from ktirt.blend.stacker import Stacker, logit
from ktirt.evaluation import MeanFloors, binary_metrics, require_both_outcomes
from ktirt.exports.tables import typed_table
from ktirt.settings import BlendSettings
from ktirt.split import SPLITS, split_labels
from ktirt.truth import matched, response_hashes, true_probabilities
from ktirt.vocab import first_skill

log = logging.getLogger(__name__)


Batch = tuple[pa.Table, dict[str, np.ndarray]]
"""whole students' events (user_id, item_id, timestamp, skill_ids, correct, action_sequence_id) and every model's
P(correct) of each of their rows"""


@dataclass
class BlendRun:
    parts: Callable[[], Iterator[pa.Table]]
    """data/exports/blend_predictions.parquet a batch of students at a time: events.parquet's keys and rows, p_blend"""
    metrics: dict
    stacker: Stacker

    @property
    def table(self) -> pa.Table:
        return pa.concat_tables(self.parts())


def response_splits(events: pa.Table, split: dict) -> np.ndarray:
    """SPLITS index of every response's student."""
    users, inverse = np.unique(events["user_id"].to_numpy(zero_copy_only=False).astype(str), return_inverse=True)
    return split_labels(users.astype(object), split)[inverse]


def log_item_count(events: pa.Table, train: np.ndarray) -> np.ndarray:
    """log(1 + the responses training students gave to each response's item)."""
    items = events["item_id"].to_numpy(zero_copy_only=False)
    return _log_count(items, pd.Series(items[train]).value_counts())


def _log_count(items: np.ndarray, counts: pd.Series) -> np.ndarray:
    return np.log1p(pd.Series(items).map(counts).fillna(0).to_numpy(dtype=np.float64))


def run_blend(events: pa.Table, split: dict, predicted: dict[str, np.ndarray], s: BlendSettings,
              truth: Path | None = None) -> BlendRun:
    """`predicted`: every model's P(correct) of every response of `events`, in its order (ktirt.blend.members)."""
    return blend_batches(lambda: [(events, predicted)], split, s, truth)


def blend_batches(batches: Callable[[], Iterable[Batch]], split: dict, s: BlendSettings, truth: Path | None = None) -> BlendRun:
    """The blend over `batches` (a fresh pass each call): the training students' item counts and floor rates in a
    first pass, the validation and test responses in a second, the stacker fitted on the validation ones; the
    blended table is a third pass, made as it is written."""
    members = tuple(s.members)
    counts, floors = _train_counts(batches, split)
    val, test, not_blended = _Responses(), _Responses(), 0
    for events, predicted in batches():
        where = response_splits(events, split)
        blended = np.isfinite(np.column_stack([predicted[m] for m in members])).all(1)
        count = _log_count(events["item_id"].to_numpy(zero_copy_only=False), counts) if s.item_count else None
        val.add(events, predicted, count, blended & (where == SPLITS.index("val")))
        test.add(events, predicted, count, blended & (where == SPLITS.index("test")), floors, hashes=truth is not None)
        not_blended += int((~blended).sum())
    val, test = val.done(), test.done()
    require_both_outcomes(val.y, "validation")
    require_both_outcomes(test.y, "test")
    stacker = Stacker.fit(val.predicted, val.count, val.y, members, s.item_count, s.l2)
    figures = _figures(val, test, stacker, members, split, truth)
    metrics = {"responses": {"val": len(val.y), "test": len(test.y), "not_blended": not_blended}} | figures
    metrics["weights"] = stacker.weights()
    t = metrics["test_auc"]
    log.info("blend of %s, fitted on %d validation responses: test AUC %.4f on %d responses (%s; item-mean %.4f%s)",
             ", ".join(members), len(val.y), t["blend"], len(test.y), ", ".join(f"{m} {t[m]:.4f}" for m in members),
             t["item_mean"], f", oracle {t['oracle']:.4f}" if "oracle" in t else "")
    return BlendRun(lambda: _blended(batches, stacker, counts), metrics, stacker)


def _train_counts(batches: Callable[[], Iterable[Batch]], split: dict) -> tuple[pd.Series, MeanFloors]:
    """The training responses' count per item, and their floors (item-mean, by first skill, overall)."""
    counts, floors = pd.Series(dtype=np.int64), MeanFloors()
    for events, _ in batches():
        train = response_splits(events, split) == SPLITS.index("train")
        items = events["item_id"].to_numpy(zero_copy_only=False)[train]
        counts = counts.add(pd.Series(items).value_counts(), fill_value=0)
        floors.add(items, first_skill(events["skill_ids"]).to_numpy(zero_copy_only=False)[train],
                   events["correct"].to_numpy().astype(np.int8)[train])
    return counts, floors


@dataclass
class _Responses:
    """One split's blended responses, kept for the stacker and the AUCs: outcome, every model's P(correct) (as its
    table holds it: float32), the log item count (with blend.item_count); for the test split the item-mean floor's
    prediction (a number: the items' and skills' ids would be Python strings, ten times its memory) and, for the
    oracle, the keys' hashes. About 13 bytes a validation response and 29 a test one with three members."""

    y: list = field(default_factory=list)
    predicted: dict = field(default_factory=dict)
    count: list = field(default_factory=list)
    floor: list = field(default_factory=list)
    hashes: list = field(default_factory=list)

    def add(self, events: pa.Table, predicted: dict, count: np.ndarray | None, rows: np.ndarray,
            floors: MeanFloors | None = None, hashes: bool = False) -> None:
        self.y.append(events["correct"].to_numpy().astype(np.int8)[rows])
        for m, p in predicted.items():
            self.predicted.setdefault(m, []).append(p[rows])
        if count is not None:
            self.count.append(count[rows])
        if floors is not None:
            self.floor.append(floors.predict(events["item_id"].to_numpy(zero_copy_only=False)[rows],
                                             first_skill(events["skill_ids"]).to_numpy(zero_copy_only=False)[rows])[1])
        if hashes:
            self.hashes.append(response_hashes(events.filter(pa.array(rows))))

    def done(self) -> "_Responses":
        """The parts joined, a field at a time, each field's parts let go as it is joined."""
        def cat(parts: list, empty: np.ndarray | None = None) -> np.ndarray | None:
            joined = np.concatenate(parts) if parts else empty
            parts.clear()
            return joined
        return _Responses(cat(self.y, np.zeros(0, np.int8)), {m: cat(v) for m, v in self.predicted.items()},
                          cat(self.count), cat(self.floor), cat(self.hashes))


def _blended(batches: Callable[[], Iterable[Batch]], stacker: Stacker, counts: pd.Series) -> Iterator[pa.Table]:
    """Each batch's rows with p_blend (NaN where a member predicted none)."""
    for events, predicted in batches():
        count = _log_count(events["item_id"].to_numpy(zero_copy_only=False), counts) if stacker.item_count else None
        p_blend = _sigmoid(stacker.decision(predicted, count))
        yield typed_table("blend_predictions", {"user_id": events["user_id"], "item_id": events["item_id"],
                                                "timestamp": events["timestamp"], "p_blend": p_blend.astype(np.float32)})


def _scores(r: _Responses, stacker: Stacker, members: tuple[str, ...]) -> Iterator[tuple[str, np.ndarray]]:
    """Each score the figures compare, one at a time (each is 8 bytes a response): the blend, every model, the
    members' equal-weight average of logits."""
    yield "blend", _sigmoid(stacker.decision(r.predicted, r.count))
    yield from r.predicted.items()
    average = np.zeros(len(r.y))
    for m in members:
        average += logit(r.predicted[m])
    yield "average", _sigmoid(average / len(members))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


def _figures(val: _Responses, test: _Responses, stacker: Stacker, members: tuple[str, ...], split: dict,
             truth: Path | None) -> dict:
    """AUCs on the same validation and test responses: the blend, every model (member or not), the members'
    equal-weight average of logits; on test, the item-mean floor and the oracle too."""
    out = {}
    for name, r in (("val_auc", val), ("test_auc", test)):
        out[name] = {k: round(binary_metrics(r.y, v)["auc"], 6) for k, v in _scores(r, stacker, members)
                     if np.isfinite(v).all()}
    out["test_auc"]["item_mean"] = round(binary_metrics(test.y, test.floor)["auc"], 6)
    if truth is not None:
        oracle = matched(true_probabilities(truth, split["test"], test.hashes), truth, "test responses")
        out["test_auc"]["oracle"] = round(binary_metrics(test.y, oracle)["auc"], 6)
    best = max(out["test_auc"][m] for m in members)
    out["gain_over_best_member"] = round(out["test_auc"]["blend"] - best, 6)
    return out
