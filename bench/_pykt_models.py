"""pyKT's models with pyKT's published default hyper-parameters (configs/kt_config.json of pykt-team/pykt-toolkit;
simpleKT's from its examples/wandb_simplekt_train.py; simpleKT itself is bench/_simplekt.py, written from the
paper, as pykt-toolkit on PyPI ships none), trained on expanded concept rows the way pyKT's
train_model does (Adam, batch 256, windows of 200, BCE over predicted positions, AKT's Rasch L2 added), with
early stopping on the validation students' question-level AUC, and scored question-level (_pykt_windows).

Each batch runs as length-sorted micro-batches cut to their longest window, gradients summed: every model
here is causal, so a window's trailing padding never reaches its real positions, and the summed gradient is
pyKT's padded batch's (tests/test_kt_benchmark.py checks it per model). Most windows are short on
skill-builder data, and AKT's attention is elementwise work on (batch, heads, 200, 200) tensors: its epoch
there took 55-90 s on 1 thread instead of about 6 minutes."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score
from tqdm import tqdm

from _pykt_windows import Expanded, late_fusion, question_windows, sliding_windows
from ktirt.early_stopping import EarlyStopping

log = logging.getLogger(__name__)

TRAIN_CONFIG = {"batch_size": 256, "num_epochs": 200, "seq_len": 200, "patience": 10}
"""pyKT's train_config; pyKT's train_model stops 10 epochs after the best validation AUC"""
DEFAULTS = {
    "dkt": {"learning_rate": 1e-3, "emb_size": 200, "dropout": 0.1},
    "sakt": {"learning_rate": 1e-3, "emb_size": 256, "num_attn_heads": 8, "dropout": 0.2, "num_en": 1},
    "akt": {"learning_rate": 1e-5, "d_model": 256, "n_blocks": 1, "dropout": 0.05, "d_ff": 256},
    "simplekt": {"learning_rate": 1e-4, "d_model": 256, "d_ff": 256, "num_attn_heads": 4, "n_blocks": 2,
                 "dropout": 0.1, "final_fc_dim": 256, "final_fc_dim2": 256},
}
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
"""pyKT's modules build their masks on this device, so the models must live there too"""


def build(name: str, ex: Expanded, seq_len: int) -> torch.nn.Module:
    hp = {k: v for k, v in DEFAULTS[name].items() if k != "learning_rate"}
    if name == "dkt":
        from pykt.models.dkt import DKT
        return DKT(ex.num_c, **hp)
    if name == "sakt":
        from pykt.models.sakt import SAKT
        return SAKT(ex.num_c, seq_len, **hp)
    if name == "akt":
        from pykt.models.akt import AKT
        return AKT(ex.num_c, ex.num_q, **hp)
    from _simplekt import SimpleKT  # pykt-toolkit 0.0.38 (PyPI's latest) has none
    return SimpleKT(ex.num_c, ex.num_q, seq_len=seq_len, **hp)


def forward(model, name: str, q, c, r):
    """Predictions for positions 1..L-1 of (B, L) windows, and the extra loss term (AKT's Rasch L2)."""
    if name == "dkt":
        y = model(c[:, :-1], r[:, :-1])
        return (y * F.one_hot(c[:, 1:], model.num_c)).sum(-1), 0.0
    if name == "sakt":
        return model(c[:, :-1], r[:, :-1], c[:, 1:]), 0.0
    if name == "akt":
        y, reg = model(c, r, q)
        return y[:, 1:], reg
    d = {"qseqs": q[:, :-1], "cseqs": c[:, :-1], "rseqs": r[:, :-1],
         "shft_qseqs": q[:, 1:], "shft_cseqs": c[:, 1:], "shft_rseqs": r[:, 1:]}
    return model(d)[:, 1:], 0.0


MICRO_BATCH = 256 if DEVICE.type == "cuda" else 32
"""windows per forward pass: small on the CPU (most windows are short, so little padding is computed), the whole
batch on a GPU (where a pass costs its kernel launches more than its padding); the gradient is the same"""


def micro_batches(index: np.ndarray, rows: np.ndarray, size: int = MICRO_BATCH):
    """`rows` of `index` in order of window length, in groups of `size`, each with the width its longest window
    needs (at least 2: position 0 is never predicted). A window's real positions are a prefix."""
    length = (index[rows] >= 0).sum(1)
    order = np.argsort(length, kind="stable")
    for lo in range(0, len(rows), size):
        part = order[lo:lo + size]
        yield rows[part], max(int(length[part].max()), 2)


def _padding_l2(model, name: str, n_positions: int):
    """AKT's Rasch L2 over cut-off padding: pyKT pads with question 0, so each padded position adds that
    question's squared difficulty (kept so the loss is pyKT's own)."""
    if name != "akt" or n_positions == 0:
        return 0.0
    return model.l2 * n_positions * model.difficult_param.weight[0].pow(2).sum()


def batch_loss_backward(model, name: str, ex: Expanded, index: np.ndarray, target: np.ndarray,
                        size: int = MICRO_BATCH) -> float:
    """Backpropagate pyKT's loss for one batch of windows (mean BCE over predicted positions + AKT's L2),
    micro-batch by micro-batch; returns the loss."""
    n_predicted = int(target[:, 1:].sum())
    total = 0.0
    for rows, width in micro_batches(index, np.arange(len(index)), size):
        q, c, r = _batch(ex, index[rows, :width])
        p, extra = forward(model, name, q, c, r)
        sm = torch.as_tensor(target[rows, 1:width]).to(DEVICE)
        bce = F.binary_cross_entropy(p[sm].double(), r[:, 1:][sm].double(), reduction="sum") / max(n_predicted, 1)
        loss = bce + extra + _padding_l2(model, name, len(rows) * (index.shape[1] - width))
        loss.backward()
        total += float(loss.detach())
    return total


def _batch(ex: Expanded, index: np.ndarray):
    pad = index < 0
    safe = np.maximum(index, 0)
    q, c, r = (torch.as_tensor(np.where(pad, 0, a[safe])).to(DEVICE) for a in (ex.q, ex.c, ex.r))
    return q, c, r


def predict(model, name: str, ex: Expanded, index: np.ndarray, target: np.ndarray, batch: int = 256) -> np.ndarray:
    """Predictions at the `target` positions, row-major (as `late_fusion` reads them)."""
    model.eval()
    out = np.full((len(index), index.shape[1] - 1), np.nan)
    with torch.no_grad():
        for rows, width in micro_batches(index, np.arange(len(index)), batch):
            p, _ = forward(model, name, *_batch(ex, index[rows, :width]))
            out[rows, :width - 1] = p.cpu().numpy()
    return out[target[:, 1:]]


def score(model, name: str, ex: Expanded, scored_events: np.ndarray, n_events: int, seq_len: int) -> np.ndarray:
    """Question-level prediction per row of events.parquet (NaN outside `scored_events`)."""
    index, target = question_windows(ex, scored_events, seq_len)
    return late_fusion(ex, index, target, predict(model, name, ex, index, target), n_events)


@dataclass
class Fit:
    epochs: int
    best_epoch: int
    best_val_auc: float
    train_seconds: float
    sequences_seen: int


def train(name: str, ex: Expanded, train_events: np.ndarray, val_events: np.ndarray, y: np.ndarray, n_events: int,
          max_epochs: int, patience: int, seed: int, seq_len: int = TRAIN_CONFIG["seq_len"], lr: float | None = None):
    """Fit one pyKT model (at its published learning rate unless `lr` is given); returns it (best validation
    epoch's weights) and its Fit record."""
    torch.manual_seed(seed)
    model = build(name, ex, seq_len).to(DEVICE)
    opt = torch.optim.Adam(model.parameters(), lr=lr or DEFAULTS[name]["learning_rate"])
    index, target = sliding_windows(ex, ex.rows_of(train_events), seq_len)
    gen = torch.Generator().manual_seed(seed)
    stop, seconds, seen, epoch = EarlyStopping(patience), 0.0, 0, 0
    bs = TRAIN_CONFIG["batch_size"]
    for epoch in range(1, max_epochs + 1):
        model.train()
        t0 = time.perf_counter()
        order = torch.randperm(len(index), generator=gen).numpy()
        for lo in tqdm(range(0, len(order), bs), desc=f"{name} epoch {epoch}", leave=False, mininterval=5, disable=None):
            i = order[lo:lo + bs]
            opt.zero_grad()
            batch_loss_backward(model, name, ex, index[i], target[i])
            opt.step()
        seconds += time.perf_counter() - t0
        seen += len(order)
        p_val = score(model, name, ex, val_events, n_events, seq_len)[val_events]
        auc = float(roc_auc_score(y[val_events], p_val))
        log.info("pyKT %s epoch %d: val AUC %.4f (%.1f s)", name, epoch, auc, time.perf_counter() - t0)
        if stop.step(epoch, auc, model):
            break
    stop.restore(model)
    return model, Fit(epoch, stop.best_epoch, stop.best_score, seconds, seen)
