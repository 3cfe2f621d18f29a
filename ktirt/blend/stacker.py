"""The stacker: a logistic regression on the members' logits, fitted on the responses it is given (the run gives it
the validation students': no member trained on them) and applied to any. With `blend.item_count` it also reads
log(1 + the item's responses by training students) and that times each logit, so a member may count for more
on items the members saw often. Small and L2-penalised on purpose: a few weights fitted on thousands of
responses cannot over-fit them, and each weight says how much its member counts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression

P_CLIP = 1e-6
"""probabilities are clipped to [P_CLIP, 1 - P_CLIP] before their logit: a member's 0 or 1 stays finite"""


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), P_CLIP, 1 - P_CLIP)
    return np.log(p / (1 - p))


@dataclass
class Stacker:
    members: tuple[str, ...]
    item_count: bool
    model: LogisticRegression

    @classmethod
    def fit(cls, predicted: dict[str, np.ndarray], log_count: np.ndarray | None, y: np.ndarray, members: tuple[str, ...],
            item_count: bool, l2: float) -> "Stacker":
        """Fitted on the responses given alone (the run gives the validation students'): nothing of any other
        response reaches the weights. `predicted`: each member's P(correct); `log_count` is read with item_count."""
        stacker = cls(tuple(members), item_count, LogisticRegression(C=1.0 / l2, max_iter=1000))
        stacker.model.fit(stacker.features(predicted, log_count), y)
        return stacker

    def features(self, predicted: dict[str, np.ndarray], log_count: np.ndarray | None) -> np.ndarray:
        """(n, features): each member's logit, then (with item_count) the log count and its product with each; filled
        a column at a time, so nothing but the matrix and one column's logits is held."""
        k = len(self.members)
        x = np.empty((len(predicted[self.members[0]]), k * 2 + 1 if self.item_count else k))
        for i, m in enumerate(self.members):
            x[:, i] = logit(predicted[m])
            if self.item_count:
                x[:, k + 1 + i] = x[:, i] * log_count
        if self.item_count:
            x[:, k] = log_count
        return x

    def names(self) -> list[str]:
        """The features' names, in `features`' order."""
        extra = ["item_count", *(f"{m}_x_item_count" for m in self.members)] if self.item_count else []
        return [*self.members, *extra]

    def decision(self, predicted: dict[str, np.ndarray], log_count: np.ndarray | None) -> np.ndarray:
        """The blend's logit of every response (NaN where a member has none), DECISION_CHUNK responses at a time."""
        n = len(predicted[self.members[0]])
        out = np.full(n, np.nan)
        for lo in range(0, n, DECISION_CHUNK):
            part = slice(lo, lo + DECISION_CHUNK)
            x = self.features({m: predicted[m][part] for m in self.members}, None if log_count is None else log_count[part])
            ok = np.isfinite(x).all(1)
            out[part][ok] = self.model.decision_function(x[ok])
        return out

    def weights(self) -> dict[str, float]:
        """Each feature's weight and the intercept, rounded for metrics/blend.json."""
        w = dict(zip(self.names(), self.model.coef_[0].tolist())) | {"intercept": float(self.model.intercept_[0])}
        return {k: round(v, 6) for k, v in w.items()}


DECISION_CHUNK = 1 << 20
"""responses `Stacker.decision` scores at once: its features' matrix is a few times their bytes"""
