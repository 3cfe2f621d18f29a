"""Fitting WD-IRT's predictive model on training students (the shared epoch loop), and reading abilities and
probabilities out of it."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ktirt import distributed
from ktirt.evaluation import auc
from ktirt.early_stopping import EpochCallback
from ktirt.irt.target_blocks import BlockBatcher
from ktirt.irt.targets import CHUNK, chunked_order
from ktirt.models.wdirt import WideDeepIRT
from ktirt.training import History, adam, fit_epochs

VALIDATION_BATCH = 4096


def fit_wdirt(model: WideDeepIRT, data: BlockBatcher, s, on_epoch: EpochCallback | None = None) -> History:
    """Adam on binary cross-entropy over training students' targets plus the priors (spread over
    them), early-stopped on validation students' in-unit AUC. `s`: the wdirt settings. An epoch walks the blocks
    (in a shuffled order when there are several), each block's training targets in shuffled runs of neighbours
    (chunked_order). Under torchrun each rank trains on its shard of the students, and the validation AUC is over
    every rank's predictions."""
    blocks = data.blocks
    n_train = sum(int((blocks.fields(k, "split")[0] == 0).sum()) for k in range(len(blocks)))
    owned = _training_shard(blocks) if distributed.world_size() > 1 else None
    held = None if owned is None else torch.as_tensor(np.flatnonzero(owned))
    gen = torch.Generator().manual_seed(s.seed)
    wide = [model.skill_difficulty, model.item_offset, model.item_log_discrimination, model.item_guess_logit]
    deep = [p for p in model.parameters() if all(p is not w for w in wide)]
    # the per-item parameters each see a small share of every batch: they get a larger step
    opt = adam([{"params": deep, "lr": s.lr}, {"params": wide, "lr": s.lr * s.wide_lr_factor}], s.lr)

    def order() -> list[torch.Tensor]:
        parts = [chunked_order(data.rows(k, np.flatnonzero(blocks.fields(k, "split")[0] == 0)), CHUNK, gen)
                 for k in range(len(blocks))]
        return parts if len(parts) == 1 else [parts[k] for k in torch.randperm(len(parts), generator=gen).tolist()]

    def batch_loss(rows: torch.Tensor) -> tuple[torch.Tensor, int]:
        inputs, item, y = data(rows if held is None else held[rows])
        p = model.probability(model.theta(*inputs), item).clamp(1e-6, 1 - 1e-6)
        prior = model.prior_penalty(s.prior_strength, s.skill_prior_strength)
        return F.binary_cross_entropy(p, y) + prior / n_train, len(rows)

    def validate() -> float:
        y, pv = [], []
        for k in range(len(blocks)):
            split, kind, student, yk = blocks.fields(k, "split", "kind", "student", "y")
            val = np.flatnonzero((split == 1) & (kind == 0))
            y.append(yk[val])
            pv.append(_predicted(model, data, k, val, distributed.shard_mask(student[val])))
        return float(auc(np.concatenate(y), distributed.fill_in(np.concatenate(pv))))

    return fit_epochs(model, opt, order, s.batch_size, batch_loss, validate, s.epochs, s.patience, on_epoch,
                      min_delta=s.min_delta, lr_setting="wdirt.lr", owned=owned)


def _training_shard(blocks) -> np.ndarray:
    """Per target, whether it is one of this rank's students' training targets (logged once)."""
    owned, students = [], []
    for k in range(len(blocks)):
        split, student = blocks.fields(k, "split", "student")
        train = np.flatnonzero(split == 0)
        mine = np.zeros(len(split), bool)
        mine[train] = distributed.shard_mask(student[train])
        owned.append(mine)
        students.append(np.unique(student[mine]))
    distributed.log_shard("training students", blocks.users[np.concatenate(students)])
    return np.concatenate(owned)


def _predicted(model: WideDeepIRT, data: BlockBatcher, k: int, rows: np.ndarray, mine: np.ndarray) -> np.ndarray:
    """P(correct) of block k's targets `rows`, NaN where another rank predicts them (`mine`)."""
    out = np.full(len(rows), np.nan, np.float32)
    at_mine = np.flatnonzero(mine)
    with torch.no_grad():
        for lo in range(0, len(at_mine), VALIDATION_BATCH):
            at = at_mine[lo : lo + VALIDATION_BATCH]
            inputs, item, _ = data(torch.as_tensor(data.rows(k, rows[at])))
            out[at] = model.probability(model.theta(*inputs), item).cpu().numpy()
    return out


def theta_all(model: WideDeepIRT, data: BlockBatcher, batch: int = 8192) -> None:
    """The deep part's ability behind each target, kept per block as its `theta` field. Under torchrun each rank
    computes its students' and every rank gets all of them."""
    model.eval()
    blocks = data.blocks
    for k in range(len(blocks)):
        rows = np.flatnonzero(distributed.shard_mask(blocks.fields(k, "student")[0]))
        out = np.full(blocks.sizes[k], np.nan, dtype=np.float32)
        with torch.no_grad():
            for lo in range(0, len(rows), batch):
                idx = rows[lo : lo + batch]
                inputs, _, _ = data(torch.as_tensor(data.rows(k, idx)))
                out[idx] = model.theta(*inputs).cpu().numpy()
        blocks.put(k, "theta", distributed.fill_in(out))


def probabilities(model: WideDeepIRT, theta: np.ndarray, item: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model.probability(torch.as_tensor(theta), torch.as_tensor(item)).numpy()


def wide_values(model: WideDeepIRT) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per item: difficulty, discrimination and guessing floor, as float64 arrays."""
    with torch.no_grad():
        return tuple(f().numpy().astype(np.float64) for f in (model.difficulty, model.discrimination, model.guessing))
