"""The blend's recurrent member: DKT (ktirt/models/dkt.py) trained on the training students' windows, early-stopped
on the validation students', then asked for every response of every student, on SAKT's windows and with SAKT's
training loop (`ktirt.kt.sakt_training.fit`, which runs the shared epoch loop, `ktirt.training.fit_epochs`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch

from ktirt.early_stopping import EpochCallback
from ktirt.evaluation import require_both_outcomes
from ktirt.io import atomic_path, write_parquet
from ktirt.kt.sakt_training import ModelVocab, fit, predict, window_tensors
from ktirt.kt.sequences import N_CLICK_CODES, load_sequences, query_windows
from ktirt.models.dkt import DKT, DKTConfig
from ktirt.runtime import resolve_device, seed_everything
from ktirt.settings import DKTSettings
from ktirt.vocab import Vocabulary

log = logging.getLogger(__name__)


CHECKPOINT = "model.pt"
PREDICTIONS = "predictions.parquet"
"""models/dkt/'s files: the weights (with architecture and vocabularies), every response's prediction"""


@dataclass
class DKTResult:
    model: DKT
    vocab: Vocabulary
    model_vocab: ModelVocab
    predictions: pa.Table = field(repr=False)
    """every response of events.parquet, in its order: user_id, item_id, timestamp, predicted (from the responses
    before it)"""
    metrics: dict
    timings: dict = field(default_factory=dict)
    """seconds and throughput: for the log and `logs/`, never the tracked metrics (ktirt/timings.py)"""

    def save(self, model_dir: str | Path, plots_dir: str | Path | None = None) -> None:
        """The checkpoint and the predictions (no plots: the blend's figures are DKT's, in metrics/blend.json)."""
        with atomic_path(Path(model_dir) / CHECKPOINT) as tmp:
            torch.save({"state_dict": self.model.state_dict(), "config": self.model.cfg.to_dict(),
                        "vocab": self.vocab.to_json(), "model_vocab": self.model_vocab.options()}, tmp)
        write_parquet(self.predictions, Path(model_dir) / PREDICTIONS)


def run_dkt(events: pa.Table, split: dict, s: DKTSettings, on_epoch: EpochCallback | None = None) -> DKTResult:
    """Train DKT and predict every response. Its inputs are SAKT's (skills, the difficulty index of every item
    seen in training, outcome, clickstream); SAKT's item embeddings and practice codes are not read."""
    seed_everything(s.seed, s.threads)
    device = resolve_device(s.device)
    seqs, vocab = load_sequences(events, split)
    mv = ModelVocab.build(vocab, min_item_count=0, item_difficulty=True, multi_skill=True, clickstream=True,
                          practice=False)
    model = DKT(DKTConfig.of(s, n_skills=mv.n_skills, n_diff=mv.n_diff, n_clicks=N_CLICK_CODES + 1)).to(device)
    L, n = s.seq_len, len(seqs.item)
    val_idx = seqs.responses_of("val")
    require_both_outcomes(seqs.correct[val_idx], "validation")
    train = window_tensors(seqs, query_windows(seqs, "train", L, L), mv)
    val = window_tensors(seqs, query_windows(seqs, "val", L, max(1, L // 2)), mv)
    log.info("DKT: %d skills, %d items with a difficulty, %d training windows; device %s", mv.n_skills - 1,
             mv.n_diff - 1, len(train["score"]), device)
    hist = fit(model, train, val, (val_idx, seqs.correct[val_idx]), n, s, s.item_prior, on_epoch, lr_setting="dkt.lr")
    predicted = predict(model, window_tensors(seqs, query_windows(seqs, None, L, max(1, L // 2)), mv), n, device=device)
    if np.isnan(predicted).any():
        raise RuntimeError("a response was not scored exactly once")  # guards the windowing invariant
    table = events.select(["user_id", "item_id", "timestamp"]).append_column("predicted", pa.array(predicted, pa.float32()))
    metrics = {"val_auc": round(hist.best_val_auc, 6), "best_epoch": hist.best_epoch, "epochs": len(hist.epoch),
               "items_with_difficulty": mv.n_diff - 1}
    timings = {"train_seconds": round(hist.train_seconds, 2),
               "train_seqs_per_s": round(hist.examples_seen / max(hist.train_seconds, 1e-9), 1)}
    return DKTResult(model.cpu(), vocab, mv, table, metrics, timings)
