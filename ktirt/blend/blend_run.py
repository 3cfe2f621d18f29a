"""One blend: the stacker fitted on the validation students' responses, applied to every response, and its test
AUC beside each model's on the same responses, the equal-weight average of the members' logits, the item-mean
floor and, on simulated data, the oracle. Responses that some member did not predict are not blended (counted)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from ktirt.blend.stacker import Stacker, logit
from ktirt.evaluation import binary_metrics, item_mean_floor, require_both_outcomes
from ktirt.exports.tables import typed_table
from ktirt.settings import BlendSettings
from ktirt.split import SPLITS, split_labels
from ktirt.truth import event_probabilities, matched
from ktirt.vocab import first_skill

log = logging.getLogger(__name__)


@dataclass
class BlendRun:
    table: pa.Table
    """data/exports/blend_predictions.parquet: events.parquet's keys and rows, and p_blend"""
    metrics: dict
    stacker: Stacker


def response_splits(events: pa.Table, split: dict) -> np.ndarray:
    """SPLITS index of every response's student."""
    users, inverse = np.unique(events["user_id"].to_numpy(zero_copy_only=False).astype(str), return_inverse=True)
    return split_labels(users.astype(object), split)[inverse]


def log_item_count(events: pa.Table, train: np.ndarray) -> np.ndarray:
    """log(1 + the responses training students gave to each response's item)."""
    items = events["item_id"].to_numpy(zero_copy_only=False)
    counts = pd.Series(items[train]).value_counts()
    return np.log1p(pd.Series(items).map(counts).fillna(0).to_numpy(dtype=np.float64))


def run_blend(events: pa.Table, split: dict, predicted: dict[str, np.ndarray], s: BlendSettings,
              truth: Path | None = None) -> BlendRun:
    """`predicted`: every model's P(correct) of every response of `events`, in its order (ktirt.blend.members)."""
    y = events["correct"].to_numpy().astype(np.int8)
    where = response_splits(events, split)
    logits = {name: logit(p) for name, p in predicted.items()}
    members = tuple(s.members)
    blended = np.isfinite(np.column_stack([predicted[m] for m in members])).all(1)
    val = np.flatnonzero(blended & (where == SPLITS.index("val")))
    test = np.flatnonzero(blended & (where == SPLITS.index("test")))
    require_both_outcomes(y[val], "validation")
    require_both_outcomes(y[test], "test")
    count = log_item_count(events, where == SPLITS.index("train"))
    stacker = Stacker.fit(logits, count, y, val, members, s.item_count, s.l2)
    p_blend = _sigmoid(stacker.decision(logits, count))
    figures = _figures(events, y, where, predicted, p_blend, members, val, test, truth)
    metrics = {"responses": {"val": len(val), "test": len(test), "not_blended": int((~blended).sum())}} | figures
    metrics["weights"] = stacker.weights()
    table = typed_table("blend_predictions", {"user_id": events["user_id"], "item_id": events["item_id"],
                                              "timestamp": events["timestamp"], "p_blend": p_blend.astype(np.float32)})
    t = metrics["test_auc"]
    log.info("blend of %s, fitted on %d validation responses: test AUC %.4f on %d responses (%s; item-mean %.4f%s)",
             ", ".join(members), len(val), t["blend"], len(test), ", ".join(f"{m} {t[m]:.4f}" for m in members),
             t["item_mean"], f", oracle {t['oracle']:.4f}" if "oracle" in t else "")
    return BlendRun(table, metrics, stacker)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


def _figures(events: pa.Table, y: np.ndarray, where: np.ndarray, predicted: dict[str, np.ndarray], p_blend: np.ndarray,
             members: tuple[str, ...], val: np.ndarray, test: np.ndarray, truth: Path | None) -> dict:
    """AUCs on the same validation and test responses: the blend, every model (member or not), the members'
    equal-weight average of logits; on test, the item-mean floor and the oracle too."""
    average = _sigmoid(np.mean([logit(predicted[m]) for m in members], axis=0))
    scored = {"blend": p_blend, **predicted, "average": average}
    out = {}
    for name, rows in (("val_auc", val), ("test_auc", test)):
        out[name] = {k: round(binary_metrics(y[rows], v[rows])["auc"], 6) for k, v in scored.items()
                     if np.isfinite(v[rows]).all()}
    train = np.flatnonzero(where == SPLITS.index("train"))
    items = events["item_id"].to_numpy(zero_copy_only=False)
    skills = first_skill(events["skill_ids"]).to_numpy(zero_copy_only=False)
    floor = item_mean_floor(items[train], skills[train], y[train], items[test], skills[test])
    out["test_auc"]["item_mean"] = round(binary_metrics(y[test], floor)["auc"], 6)
    if truth is not None:
        oracle = matched(event_probabilities(events, truth)[test], truth, "test responses")
        out["test_auc"]["oracle"] = round(binary_metrics(y[test], oracle)["auc"], 6)
    best = max(out["test_auc"][m] for m in members)
    out["gain_over_best_member"] = round(out["test_auc"]["blend"] - best, 6)
    return out
