"""binary_metrics and auc: scikit-learn's figures, computed in a few bytes a response."""

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

from ktirt.evaluation import METRIC_CHUNK, auc, binary_metrics


@pytest.mark.parametrize("n", [2, 7, 1000, METRIC_CHUNK + 123])
@pytest.mark.parametrize("ties", [False, True])
def test_the_metrics_are_scikit_learns(n, ties):
    rng = np.random.default_rng(n)
    p = rng.random(n).astype(np.float32)
    if ties:  # many equal scores: a tie counts half
        p = np.round(p * 10) / 10
    y = (rng.random(n) < p).astype(np.float32)
    y[:2] = [0, 1]
    clipped = np.clip(p.astype(np.float64), 1e-6, 1 - 1e-6)
    got = binary_metrics(y, p)
    assert got["auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert got["acc"] == accuracy_score(y, clipped >= 0.5)
    assert got["logloss"] == pytest.approx(log_loss(y, clipped, labels=[0, 1]), rel=1e-9)


def test_auc_counts_ties_half_and_refuses_one_outcome():
    assert auc(np.array([0, 1, 0, 1]), np.array([0.5, 0.5, 0.2, 0.9])) == pytest.approx(0.875)  # (1 + 0.5 + 2) / 4
    assert auc(np.array([1, 0]), np.array([0.1, 0.9])) == 0.0
    with pytest.raises(ValueError, match="one outcome"):
        auc(np.ones(3), np.random.default_rng(0).random(3))
