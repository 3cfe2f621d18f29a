"""Fitting WD-IRT's predictive model on training students (the shared epoch loop), and reading abilities and
probabilities out of it."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score

from ktirt.early_stopping import EpochCallback
from ktirt.irt.targets import CHUNK, Batcher, Targets, chunked_order
from ktirt.models.wdirt import WideDeepIRT
from ktirt.training import History, fit_epochs

VALIDATION_BATCH = 4096


def fit_wdirt(model: WideDeepIRT, batcher: Batcher, t: Targets, s, on_epoch: EpochCallback | None = None) -> History:
    """Adam on binary cross-entropy over training students' targets plus the difficulty prior (spread over
    them), early-stopped on validation students' in-unit AUC. `s`: the wdirt settings."""
    train = np.flatnonzero(t.split == 0)
    val = np.flatnonzero((t.split == 1) & (t.kind == 0))
    gen = torch.Generator().manual_seed(s.seed)
    wide = [model.skill_difficulty, model.item_offset, model.item_log_discrimination, model.item_guess_logit]
    deep = [p for p in model.parameters() if all(p is not w for w in wide)]
    # the per-item parameters each see a small share of every batch: they get a larger step
    opt = torch.optim.Adam([{"params": deep, "lr": s.lr}, {"params": wide, "lr": s.lr * s.wide_lr_factor}])

    def batch_loss(idx: torch.Tensor) -> tuple[torch.Tensor, int]:
        inputs, item, y = batcher(idx)
        p = model.probability(model.theta(*inputs), item).clamp(1e-6, 1 - 1e-6)
        return F.binary_cross_entropy(p, y) + model.prior_penalty(s.prior_strength) / len(train), len(idx)

    def validate() -> float:
        with torch.no_grad():
            pv = []
            for lo in range(0, len(val), VALIDATION_BATCH):
                inputs, item, _ = batcher(torch.as_tensor(val[lo : lo + VALIDATION_BATCH]))
                pv.append(model.probability(model.theta(*inputs), item).cpu().numpy())
        return float(roc_auc_score(t.y[val], np.concatenate(pv)))

    return fit_epochs(model, opt, lambda: chunked_order(train, CHUNK, gen), s.batch_size, batch_loss, validate,
                      s.epochs, s.patience, on_epoch, lr_setting="wdirt.lr")


def theta_all(model: WideDeepIRT, batcher: Batcher, n: int, batch: int = 8192) -> np.ndarray:
    """The deep part's ability behind each of the `n` targets."""
    model.eval()
    out = np.empty(n, dtype=np.float32)
    with torch.no_grad():
        for lo in range(0, n, batch):
            idx = torch.arange(lo, min(n, lo + batch))
            inputs, _, _ = batcher(idx)
            out[lo : lo + len(idx)] = model.theta(*inputs).cpu().numpy()
    return out


def probabilities(model: WideDeepIRT, theta: np.ndarray, item: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model.probability(torch.as_tensor(theta), torch.as_tensor(item)).numpy()


def wide_values(model: WideDeepIRT) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per item: difficulty, discrimination and guessing floor, as float64 arrays."""
    with torch.no_grad():
        return tuple(f().numpy().astype(np.float64) for f in (model.difficulty, model.discrimination, model.guessing))
