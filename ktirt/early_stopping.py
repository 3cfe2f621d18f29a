"""Early stopping, shared by both engines: keep the weights of the epoch with the best validation score and
stop after `patience` epochs without an improvement by more than `min_delta` over the last such improvement
(Keras' rule; a validation AUC over a few hundred students wanders by about 0.0005 from epoch to epoch once
training has converged, and with min_delta 0 each such step up restarted the patience: SAKT's default run went
on 8 epochs past its plateau). The first epoch's weights are always kept, so training never ends without a best
state (a NaN score never counts as an improvement)."""

from __future__ import annotations

import copy
import math
from typing import Callable

import torch

EpochCallback = Callable[[int, dict], None]
"""Called after each epoch with its number and values ({"train_loss": ..., "val_auc": ...}): how a stage logs
training live (DVCLive) without the library knowing about DVC."""


class EarlyStopping:
    def __init__(self, patience: int, min_delta: float = 0.0):
        self.patience, self.min_delta = patience, min_delta
        self.best_epoch = 0
        self.best_score = float("nan")
        self.best_state: dict | None = None
        self._bar: float | None = None  # the score of the last improvement by more than min_delta
        self._bad = 0

    def step(self, epoch: int, score: float, model: torch.nn.Module) -> bool:
        """Record one epoch's validation score; True when training should stop. The best epoch's weights are
        kept even when it beat the one before by less than min_delta."""
        if self.best_state is None or _rank(score) > _rank(self.best_score):
            self.best_epoch, self.best_score = epoch, score
            self.best_state = copy.deepcopy(model.state_dict())
        if self._bar is None or _rank(score) > _rank(self._bar) + self.min_delta:
            self._bar, self._bad = score, 0
            return False
        self._bad += 1
        return self._bad >= self.patience

    def restore(self, model: torch.nn.Module) -> None:
        """Load the best epoch's weights back into `model`."""
        if self.best_state is None:
            raise RuntimeError("early stopping restored before any epoch was scored")
        model.load_state_dict(self.best_state)


def _rank(score: float) -> float:
    """NaN ranks below every score: a NaN epoch is kept only while nothing better exists."""
    return -math.inf if math.isnan(score) else score
