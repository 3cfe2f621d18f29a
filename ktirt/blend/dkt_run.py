"""The blend's recurrent member: DKT (ktirt/models/dkt.py) trained on the training students' windows, early-stopped
on the validation students', then asked for every response of every student, on SAKT's windows and with SAKT's
training loop (`ktirt.kt.sakt_training.fit`, which runs the shared epoch loop, `ktirt.training.fit_epochs`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import pyarrow as pa
import torch

from ktirt.early_stopping import EpochCallback
from ktirt.evaluation import require_both_outcomes
from ktirt.io import atomic_path, write_parquet_parts
from ktirt.kt.sakt_training import ModelVocab, fit
from ktirt.kt.sequences import N_CLICK_CODES
from ktirt.kt.window_build import built_windows, every_prediction
from ktirt.models.dkt import DKT, DKTConfig
from ktirt.runtime import resolve_device, seed_everything
from ktirt.settings import DKTSettings
from ktirt.user_batches import batches_of
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
    prediction_parts: Callable[[], Iterable[pa.Table]] = field(repr=False)
    """every response of events.parquet, in its order, a batch of students at a time: user_id, item_id,
    timestamp, predicted (from the responses before it)"""
    metrics: dict
    timings: dict = field(default_factory=dict)
    """seconds and throughput: for the log and `logs/`, never the tracked metrics (ktirt/timings.py)"""

    @property
    def predictions(self) -> pa.Table:
        """`prediction_parts` as one table (for callers that hold the log anyway)."""
        return pa.concat_tables(self.prediction_parts())

    def save(self, model_dir: str | Path, plots_dir: str | Path | None = None) -> None:
        """The checkpoint and the predictions, written a batch at a time (no plots: the blend's figures are DKT's,
        in metrics/blend.json)."""
        write_parquet_parts(self.prediction_parts(), Path(model_dir) / PREDICTIONS)  # on the training device
        with atomic_path(Path(model_dir) / CHECKPOINT) as tmp:
            torch.save({"state_dict": self.model.cpu().state_dict(), "config": self.model.cfg.to_dict(),
                        "vocab": self.vocab.to_json(), "model_vocab": self.model_vocab.options()}, tmp)


def run_dkt(events: pa.Table | str | Path, split: dict, s: DKTSettings, on_epoch: EpochCallback | None = None) -> DKTResult:
    """Train DKT and predict every response. Its inputs are SAKT's (skills, the difficulty index of every item
    seen in training, outcome, clickstream); SAKT's item embeddings and practice codes are not read. `events`: the
    table, or events.parquet's path, read a batch of whole students at a time (ktirt/kt/window_build.py)."""
    seed_everything(s.seed, s.threads)
    device = resolve_device(s.device)
    batches = batches_of(events)
    model_vocab = lambda v: ModelVocab.build(v, min_item_count=0, item_difficulty=True, multi_skill=True,  # noqa: E731
                                             clickstream=True, practice=False)
    with built_windows(batches, split, model_vocab, s.seq_len, s.shard_windows, test=False) as b:
        mv = b.mv
        model = DKT(DKTConfig.of(s, n_skills=mv.n_skills, n_diff=mv.n_diff, n_clicks=N_CLICK_CODES + 1)).to(device)
        val = b.responses["val"]
        require_both_outcomes(val.correct, "validation")
        log.info("DKT: %d skills, %d items with a difficulty, %d training windows; device %s", mv.n_skills - 1,
                 mv.n_diff - 1, b.sets["train"].n_global, device)
        hist = fit(model, b.sets["train"], b.sets["val"], (val.index, val.correct), s, s.item_prior, on_epoch,
                   lr_setting="dkt.lr")
    metrics = {"val_auc": round(hist.best_val_auc, 6), "best_epoch": hist.best_epoch, "epochs": len(hist.epoch),
               "items_with_difficulty": mv.n_diff - 1}
    timings = {"train_seconds": round(hist.train_seconds, 2),
               "train_seqs_per_s": round(hist.examples_seen / max(hist.train_seconds, 1e-9), 1)}
    return DKTResult(model, b.vocab, mv, lambda: _prediction_parts(model, batches, split, b, s.seq_len), metrics, timings)


def _prediction_parts(model: DKT, batches, split: dict, b, L: int) -> Iterator[pa.Table]:
    """Each batch's rows with DKT's prediction of every response."""
    for table, predicted in every_prediction(model, batches, split, b, L):
        yield table.select(["user_id", "item_id", "timestamp"]).append_column("predicted", pa.array(predicted, pa.float32()))
