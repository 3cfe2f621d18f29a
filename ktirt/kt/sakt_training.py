"""Training and scoring our SAKT on query windows: seeded, early-stopped on validation AUC, one
prediction per response."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from ktirt import distributed
from ktirt.evaluation import auc
from ktirt.early_stopping import EpochCallback
from ktirt.kt.sequences import Sequences, Windows
from ktirt.kt.window_sets import WindowSet, widened
from ktirt.vocab import Vocabulary
from ktirt.models.sakt import INPUTS, SAKT, START
from ktirt.training import History, adam, fit_epochs
from ktirt.settings import ModelSettings, TrainSettings  # the model and train sections of params.yaml


@dataclass
class ModelVocab:
    """pyKT indices -> model indices. Items seen at least `min_item_count` times in training get an
    embedding of their own (`item`, 1..; the rest 0: their skills alone); with `item_difficulty`, every
    item seen in training gets a difficulty of its own (`diff`, 1..; unseen items 0). Skills shift by one
    (0 = none); `clickstream`, `multi_skill` and `practice` say which inputs the model reads."""

    item: np.ndarray
    n_items: int
    n_skills: int
    min_item_count: int
    diff: np.ndarray
    n_diff: int
    item_difficulty: bool
    multi_skill: bool
    clickstream: bool
    practice: bool

    @classmethod
    def of(cls, vocab: Vocabulary, m: ModelSettings) -> "ModelVocab":
        """The vocabulary the model.* settings ask for."""
        return cls.build(vocab, m.min_item_count, m.item_difficulty, m.multi_skill, m.clickstream, m.practice)

    @classmethod
    def build(cls, vocab: Vocabulary, min_item_count: int, item_difficulty: bool, multi_skill: bool, clickstream: bool,
              practice: bool) -> "ModelVocab":
        item = _dense_index(vocab.item_train_count >= max(min_item_count, 1))
        diff = _dense_index(vocab.item_train_count >= 1) if item_difficulty else item
        return cls(item, int(item.max(initial=0)) + 1, len(vocab.skills) + 1, min_item_count, diff,
                   int(diff.max(initial=0)) + 1, item_difficulty, multi_skill, clickstream, practice)

    def options(self) -> dict:
        """What `build` needs besides the vocabulary (saved in checkpoints)."""
        return {"min_item_count": self.min_item_count, "item_difficulty": self.item_difficulty,
                "multi_skill": self.multi_skill, "clickstream": self.clickstream, "practice": self.practice}


def _dense_index(selected: np.ndarray) -> np.ndarray:
    """1..n for the selected entries in order, 0 for the others."""
    out = np.zeros(len(selected), dtype=np.int64)
    out[selected] = 1 + np.arange(int(selected.sum()))
    return out


def window_tensors(seqs: Sequences, w: Windows, mv: ModelVocab, mastery: bool = False) -> dict[str, torch.Tensor]:
    """Model inputs for query windows: key p is the response before query p (start token at a student's first).
    With `mastery`, also `m_practice`: the practice after the previous response, which mastery queries ask with
    (scoring only: training and evaluation never read it)."""
    idx = w.index
    pad = idx < 0
    safe = np.maximum(idx, 0)
    prev = np.maximum(safe - 1, 0)
    first = np.isin(safe, seqs.offsets[:-1])
    is_start = ~pad & first
    prev_ok = ~pad & ~first
    known_item = seqs.item >= 0
    skills = seqs.skills if mv.multi_skill else seqs.skills[:, :1]

    def lookup(table, i, ok):
        return np.where(ok & known_item[i], table[np.maximum(seqs.item[i], 0)], 0)

    def skills_of(i, ok):
        return np.where(ok[..., None] & (skills[i] >= 0), skills[i] + 1, 0)

    def practice_of(i, ok, when):
        codes = seqs.practice[:, : skills.shape[1], when][i]
        return np.where(ok[..., None] & (codes >= 0) & mv.practice, codes + 1, 0)

    t = {
        "k_item": lookup(mv.item, prev, prev_ok),
        "k_diff": lookup(mv.diff, prev, prev_ok),
        "k_skill": skills_of(prev, prev_ok),
        "k_resp": np.where(prev_ok, seqs.correct[prev], np.where(is_start, START, -1)),
        "k_click": np.where(prev_ok & mv.clickstream, seqs.click[prev] + 1, 0),
        "q_item": lookup(mv.item, safe, ~pad),
        "q_diff": lookup(mv.diff, safe, ~pad),
        "q_skill": skills_of(safe, ~pad),
        "q_practice": practice_of(safe, ~pad, 0),
        "target": np.where(pad, 0, seqs.correct[safe]).astype(np.float32),
        "score": w.score,
        "index": idx,
    }
    if mastery:
        t["m_practice"] = practice_of(prev, prev_ok, 1)
    return {k: torch.as_tensor(np.ascontiguousarray(v)) for k, v in t.items()}


def _forward(model: SAKT, batch: dict, device) -> torch.Tensor:
    return model({k: batch[k].to(device) for k in INPUTS})


def _sets(windows: dict | WindowSet) -> WindowSet:
    return windows if isinstance(windows, WindowSet) else WindowSet.in_memory(windows)


def scored(model: SAKT, windows: dict | WindowSet, batch_size: int, device) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(response index, probability) of every scored position, `batch_size` windows at a time, shard by shard."""
    model.eval()
    with torch.no_grad():
        for tensors in _sets(windows).chunks():
            for lo in range(0, len(tensors["score"]), batch_size):
                b = widened({k: v[lo : lo + batch_size] for k, v in tensors.items()})
                p = torch.sigmoid(_forward(model, b, device)).cpu().numpy()
                s = b["score"].numpy()
                yield b["index"].numpy()[s], p[s]


def predict(model: SAKT, windows: dict | WindowSet, n_responses: int, batch_size: int = 256, device=None) -> np.ndarray:
    """Probability for every scored response (NaN elsewhere), indexed by global response index."""
    out = np.full(n_responses, np.nan)
    for index, p in scored(model, windows, batch_size, device or next(model.parameters()).device):
        out[index] = p
    return out


def predict_at(model: SAKT, windows: dict | WindowSet, idx: np.ndarray, batch_size: int = 256, device=None) -> np.ndarray:
    """`predict` at the responses `idx` (global indices) only: memory grows with them, not the log."""
    ascending = bool((idx[1:] >= idx[:-1]).all())
    order = None if ascending else np.argsort(idx, kind="stable")  # the splits' indices come in order
    ordered = idx if ascending else idx[order]
    out = np.full(len(idx), np.nan)
    for index, p in scored(model, windows, batch_size, device or next(model.parameters()).device):
        pos = np.minimum(np.searchsorted(ordered, index), max(len(idx) - 1, 0))
        hit = ordered[pos] == index if len(idx) else np.zeros(len(index), bool)
        out[pos[hit] if ascending else order[pos[hit]]] = p[hit]
    return out


def predict_all(model: SAKT, windows: dict | WindowSet, idx: np.ndarray, device=None) -> np.ndarray:
    """`predict_at` over every rank's windows (each rank holds its shard's, ktirt/distributed.py): every rank
    gets all of them. One process: `predict_at`."""
    return distributed.fill_in(predict_at(model, windows, idx, device=device))


def fit(model: SAKT, train: dict | WindowSet, val: dict | WindowSet, val_targets: tuple[np.ndarray, np.ndarray],
        s: TrainSettings, prior: float, on_epoch: EpochCallback | None = None, *, lr_setting: str = "train.lr") -> History:
    """Adam on binary cross-entropy over scored positions, plus the item scalars' Gaussian prior of
    precision `prior` (spread over the epoch's targets), in the shared epoch loop (ktirt/training.py). Any model
    of SAKT's inputs trains here (DKT too, with its settings `s` and the name of its learning rate, `lr_setting`).
    `train` and `val` are window tensors or WindowSets (ktirt/kt/window_sets.py: shards, and under torchrun this
    rank's windows of them); the validation AUC is over every rank's predictions."""
    device = next(model.parameters()).device
    gen = torch.Generator().manual_seed(s.seed)
    train, val_idx, val_y = _sets(train), *val_targets
    n_targets = max(int(distributed.all_sum(train.targets)), 1)

    def batch_loss(sel: torch.Tensor) -> tuple[torch.Tensor, int]:
        b = train.take(sel)
        mask = b["score"].to(device)
        loss = F.binary_cross_entropy_with_logits(_forward(model, b, device)[mask], b["target"].to(device)[mask])
        if prior:
            loss = loss + model.prior_penalty(prior) / n_targets
        return loss, int(mask.sum())

    def validate() -> float:
        return float(auc(val_y, predict_all(model, val, val_idx, device)))

    return fit_epochs(model, adam(model.parameters(), s.lr), lambda: train.order(gen),
                      s.batch_size, batch_loss, validate, s.epochs, s.patience, on_epoch, min_delta=s.min_delta,
                      lr_setting=lr_setting, owned=train.owned)
