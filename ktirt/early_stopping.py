"""Early stopping, shared by both engines: keep the weights of the epoch with the best validation score and
stop after `patience` epochs without improvement. The first epoch's weights are always kept, so training
never ends without a best state (a NaN score never counts as an improvement)."""

from __future__ import annotations

import copy
import math
from typing import Callable

import torch

EpochCallback = Callable[[int, dict], None]
"""Called after each epoch with its number and values ({"train_loss": ..., "val_auc": ...}): how a stage logs
training live (DVCLive) without the library knowing about DVC."""


class EarlyStopping:
    def __init__(self, patience: int):
        self.patience = patience
        self.best_epoch = 0
        self.best_score = float("nan")
        self.best_state: dict | None = None
        self._bad = 0

    def step(self, epoch: int, score: float, model: torch.nn.Module) -> bool:
        """Record one epoch's validation score; True when training should stop."""
        if self.best_state is None or _rank(score) > _rank(self.best_score):
            self.best_epoch, self.best_score, self._bad = epoch, score, 0
            self.best_state = copy.deepcopy(model.state_dict())
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
