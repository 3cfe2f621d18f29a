"""Scoring predictions against outcomes, and the floors every model figure is shown beside."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ktirt.errors import InputError


def require_both_outcomes(y: np.ndarray, students: str, responses: str = "responses",
                          path: str = "events.parquet") -> None:
    """AUC needs correct and wrong responses: a split with one outcome is an error before training, not a NaN
    in the metrics after it (a misread action or score is the usual cause)."""
    y = np.asarray(y)
    if len(y) == 0 or y.min() == y.max():
        state = "none" if len(y) == 0 else f"all {'correct' if y[0] else 'wrong'}"
        raise InputError(f"{students} students' {responses}: {state}, AUC undefined (check correct_rate in "
                         "metrics/prepare.json, or split.val and split.seed)", path, "correct")


def binary_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """AUC, accuracy at 0.5 and log loss (p clipped to [1e-6, 1 - 1e-6]), as scikit-learn's roc_auc_score,
    accuracy_score and log_loss give them (tests/test_evaluation.py), in a few bytes a response: sklearn's
    held about 70 (280 MB at 4 M test responses, which a stage's peak then grew with)."""
    n, right, loss = len(y), 0, 0.0
    if not n:
        raise ValueError("binary_metrics: no responses")
    for lo in range(0, n, METRIC_CHUNK):
        yc = np.asarray(y[lo : lo + METRIC_CHUNK]) > 0.5
        pc = np.clip(np.asarray(p[lo : lo + METRIC_CHUNK], np.float64), 1e-6, 1 - 1e-6)
        right += int(np.count_nonzero((pc >= 0.5) == yc))
        loss -= float(np.sum(np.log(np.where(yc, pc, 1 - pc))))
    return {"auc": auc(y, p), "acc": right / n, "logloss": loss / n}


METRIC_CHUNK = 1 << 20
"""responses binary_metrics takes at once"""


def auc(y: np.ndarray, p: np.ndarray) -> float:
    """ROC AUC with ties counted half (scikit-learn's roc_auc_score) as the Mann-Whitney statistic: over the
    positives, the negatives scored below each plus half those scored the same, over positives x negatives.
    Holds the scores sorted once by outcome (their own bytes), where roc_auc_score held about 65 bytes a
    response; the counts are exact integers, so the one division is the only rounding."""
    positive = np.asarray(y) > 0.5
    pos, neg = np.sort(np.asarray(p)[positive]), np.sort(np.asarray(p)[~positive])
    del positive
    if not len(pos) or not len(neg):
        raise ValueError("auc: only one outcome in y (AUC undefined)")
    below = ties = 0
    for lo in range(0, len(pos), METRIC_CHUNK):
        chunk = pos[lo : lo + METRIC_CHUNK]
        left = np.searchsorted(neg, chunk, "left")
        below += int(left.sum())
        ties += int((np.searchsorted(neg, chunk, "right") - left).sum())
    return (2 * below + ties) / (2 * len(pos) * len(neg))


def mean_baseline(keys_train: np.ndarray, y_train: np.ndarray, keys_eval: np.ndarray,
                  fallback: np.ndarray | float) -> np.ndarray:
    """Each evaluated response predicted by its key's correct rate among training responses
    (the fallback where the key never occurs in training)."""
    rate = pd.Series(y_train, dtype=float).groupby(keys_train).mean()
    p = pd.Series(keys_eval).map(rate).to_numpy(dtype=float)
    fb = np.broadcast_to(np.asarray(fallback, dtype=float), p.shape)
    return np.where(np.isnan(p), fb, p)


def mean_floors(item_train: np.ndarray, skill_train: np.ndarray, y_train: np.ndarray, item_eval: np.ndarray,
                skill_eval: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The floors (skill-mean, item-mean): each evaluated response predicted by its skill's correct rate among
    training responses, else the overall rate; and by its item's, else that skill-mean."""
    skill_p = mean_baseline(skill_train, y_train, skill_eval, float(np.mean(y_train)))
    return skill_p, mean_baseline(item_train, y_train, item_eval, skill_p)


class MeanFloors:
    """`mean_floors` from training responses seen a batch at a time (a stage that never holds the log): their
    correct sums and counts per item, per skill and in all, kept as running totals by key (any id: a vocabulary
    index or the id itself; a null key is left out, as pandas' groupby leaves it)."""

    def __init__(self):
        self.totals: dict[str, pd.DataFrame] = {}

    def add(self, item_train: np.ndarray, skill_train: np.ndarray, y_train: np.ndarray) -> None:
        for name, keys in (("item", item_train), ("skill", skill_train), ("all", np.zeros(len(y_train), np.int8))):
            part = pd.Series(y_train, dtype=float).groupby(keys).agg(["sum", "count"])
            held = self.totals.get(name)
            self.totals[name] = part if held is None else pd.concat([held, part]).groupby(level=0).sum()

    def predict(self, item_eval: np.ndarray, skill_eval: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(skill-mean, item-mean) of the evaluated responses, as mean_floors gives them."""
        rate = {k: t["sum"] / t["count"] for k, t in self.totals.items()}
        overall = float(rate["all"].iloc[0]) if len(rate.get("all", ())) else float("nan")
        skill_p = pd.Series(skill_eval).map(rate["skill"]).to_numpy(dtype=float)
        skill_p = np.where(np.isnan(skill_p), overall, skill_p)
        item_p = pd.Series(item_eval).map(rate["item"]).to_numpy(dtype=float)
        return skill_p, np.where(np.isnan(item_p), skill_p, item_p)


def item_mean_floor(item_train: np.ndarray, skill_train: np.ndarray, y_train: np.ndarray, item_eval: np.ndarray,
                    skill_eval: np.ndarray) -> np.ndarray:
    """The floor every engine's metrics show: the item-mean baseline of `mean_floors`."""
    return mean_floors(item_train, skill_train, y_train, item_eval, skill_eval)[1]


def roc_points(y: np.ndarray, p: np.ndarray, n: int = 200) -> pd.DataFrame:
    """The ROC curve thinned to about `n` points (enough to draw, small enough for git)."""
    from sklearn.metrics import roc_curve  # here: importing sklearn.metrics costs every stage that scores ~0.5 s

    fpr, tpr, _ = roc_curve(y, p)
    keep = np.unique(np.r_[0, np.linspace(0, len(fpr) - 1, n).astype(int), len(fpr) - 1])
    return pd.DataFrame({"fpr": fpr[keep].round(5), "tpr": tpr[keep].round(5)})


def calibration(y: np.ndarray, p: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Mean predicted vs observed correct rate by decile of the prediction."""
    decile = pd.qcut(p, bins, labels=False, duplicates="drop")
    df = pd.DataFrame({"decile": decile, "predicted": p, "observed": y}).groupby("decile").mean()
    return df.reset_index().round(5)
