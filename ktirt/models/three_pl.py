"""The 3PL item response function that WD-IRT's wide part is, and the transforms from its free parameters:

    P = c + (1 - c) * sigmoid(a * (theta - b)),   a = softplus(ell) / log 2,   c = GUESS_CEILING * sigmoid(g)

(a = 1 at ell = 0, a guessing floor below one half). Written here once on numpy arrays, for the block-Newton
calibration and the drift test; the torch model (ktirt/models/wdirt.py) writes the same lines on tensors for
autograd with these constants, and a test (tests/test_wdirt.py) checks the two agree."""

from __future__ import annotations

import math

import numpy as np

LOG2 = math.log(2.0)
GUESS_CEILING = 0.5
GUESS_PRIOR_LOGIT = math.log(0.4 / 0.6)
"""c = GUESS_CEILING * sigmoid(GUESS_PRIOR_LOGIT) = 0.2, the usual prior mean for a guessing floor"""


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + np.tanh(0.5 * x))


def discrimination(ell: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, ell) / LOG2


def guessing(g: np.ndarray, guessable: np.ndarray) -> np.ndarray:
    """The guessing floor; 0 for items whose type cannot be guessed (guessable False)."""
    return GUESS_CEILING / (1 + np.exp(-g)) * guessable


def probability(theta, a, b, c) -> tuple[np.ndarray, np.ndarray]:
    """(P(correct), s = sigmoid(a (theta - b))) per response; s is what the derivatives need."""
    s = sigmoid(a * (theta - b))
    return c + (1 - c) * s, s
