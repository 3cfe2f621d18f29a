"""Fitting WD-IRT's predictive model on training students (the shared epoch loop), and reading abilities and
probabilities out of it."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score

from ktirt import distributed
from ktirt.early_stopping import EpochCallback
from ktirt.irt.targets import CHUNK, Batcher, Targets, chunked_order
from ktirt.models.wdirt import WideDeepIRT
from ktirt.training import History, fit_epochs

VALIDATION_BATCH = 4096


def fit_wdirt(model: WideDeepIRT, batcher: Batcher, t: Targets, s, on_epoch: EpochCallback | None = None) -> History:
    """Adam on binary cross-entropy over training students' targets plus the priors (spread over
    them), early-stopped on validation students' in-unit AUC. `s`: the wdirt settings. Under torchrun each rank
    trains on its shard of the students, and the validation AUC is over every rank's predictions."""
    train = np.flatnonzero(t.split == 0)
    owned = distributed.shard_mask(t.student[train]) if distributed.world_size() > 1 else None
    held = torch.as_tensor(train if owned is None else train[owned])
    if owned is not None:
        distributed.log_shard("training students", t.users[np.unique(t.student[train[owned]])])
    val = np.flatnonzero((t.split == 1) & (t.kind == 0))
    val_mine = np.flatnonzero(distributed.shard_mask(t.student[val]))
    gen = torch.Generator().manual_seed(s.seed)
    wide = [model.skill_difficulty, model.item_offset, model.item_log_discrimination, model.item_guess_logit]
    deep = [p for p in model.parameters() if all(p is not w for w in wide)]
    # the per-item parameters each see a small share of every batch: they get a larger step
    opt = torch.optim.Adam([{"params": deep, "lr": s.lr}, {"params": wide, "lr": s.lr * s.wide_lr_factor}])

    def batch_loss(rows: torch.Tensor) -> tuple[torch.Tensor, int]:
        inputs, item, y = batcher(held[rows])
        p = model.probability(model.theta(*inputs), item).clamp(1e-6, 1 - 1e-6)
        prior = model.prior_penalty(s.prior_strength, s.skill_prior_strength)
        return F.binary_cross_entropy(p, y) + prior / len(train), len(rows)

    def validate() -> float:
        pv = np.full(len(val), np.nan, np.float32)
        with torch.no_grad():
            for lo in range(0, len(val_mine), VALIDATION_BATCH):
                at = val_mine[lo : lo + VALIDATION_BATCH]
                inputs, item, _ = batcher(torch.as_tensor(val[at]))
                pv[at] = model.probability(model.theta(*inputs), item).cpu().numpy()
        return float(roc_auc_score(t.y[val], distributed.fill_in(pv)))

    return fit_epochs(model, opt, lambda: chunked_order(np.arange(len(train)), CHUNK, gen), s.batch_size, batch_loss,
                      validate, s.epochs, s.patience, on_epoch, lr_setting="wdirt.lr", owned=owned)


def theta_all(model: WideDeepIRT, batcher: Batcher, student: np.ndarray, batch: int = 8192) -> np.ndarray:
    """The deep part's ability behind each target (`student`: each target's). Under torchrun each rank
    computes its students' and every rank gets all of them."""
    model.eval()
    rows = np.flatnonzero(distributed.shard_mask(student))
    out = np.full(len(student), np.nan, dtype=np.float32)
    with torch.no_grad():
        for lo in range(0, len(rows), batch):
            idx = rows[lo : lo + batch]
            inputs, _, _ = batcher(torch.as_tensor(idx))
            out[idx] = model.theta(*inputs).cpu().numpy()
    return distributed.fill_in(out)


def probabilities(model: WideDeepIRT, theta: np.ndarray, item: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model.probability(torch.as_tensor(theta), torch.as_tensor(item)).numpy()


def wide_values(model: WideDeepIRT) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per item: difficulty, discrimination and guessing floor, as float64 arrays."""
    with torch.no_grad():
        return tuple(f().numpy().astype(np.float64) for f in (model.difficulty, model.discrimination, model.guessing))
