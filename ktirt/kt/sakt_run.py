"""One SAKT experiment end to end: sequences -> windows -> fit -> test-student metrics beside the floors
(item-mean, skill-mean) and, on simulated data, the ceiling (oracle AUC from the true probabilities)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import torch

from ktirt import distributed
from ktirt.early_stopping import EpochCallback
from ktirt.errors import InputError
from ktirt.io import atomic_path, read_checkpoint, read_events, write_csv
from ktirt.evaluation import binary_metrics, calibration, require_both_outcomes, roc_points
from ktirt.kt.sakt_training import ModelVocab, TrainSettings, fit, predict, predict_all, window_tensors
from ktirt.kt.window_build import Batches, BuiltWindows, built_windows
from ktirt.leakage import future_masking, shuffle_fold, shuffled_control
from ktirt.kt.sequences import N_CLICK_CODES, N_PRACTICE_CODES, Sequences, load_sequences, query_windows
from ktirt.user_batches import batches_of
from ktirt.vocab import Vocabulary
from ktirt.models.sakt import SAKT, SAKTConfig
from ktirt.runtime import resolve_device, seed_everything
from ktirt.settings import ModelSettings
from ktirt.truth import matched, true_probabilities

log = logging.getLogger(__name__)
CHECKPOINT = "model.pt"


@dataclass
class SaktRun:
    """The model and train sections of params.yaml (ktirt.settings), and where the simulator's truth may be."""

    model: ModelSettings
    train: TrainSettings
    truth: Path | None = None
    """the simulator's truth (ktirt.truth.truth_dir), for the oracle; None for real data"""


@dataclass
class SaktResult:
    model: SAKT
    vocab: Vocabulary
    model_vocab: ModelVocab
    metrics: dict
    history: pd.DataFrame
    roc: pd.DataFrame
    calibration: pd.DataFrame
    test_index: np.ndarray = field(repr=False)
    """the test responses (global indices into the events)"""
    test_p: np.ndarray = field(repr=False)
    n_responses: int = 0
    timings: dict = field(default_factory=dict)
    """seconds and throughput: for the log and `logs/`, never the tracked metrics (ktirt/timings.py)"""

    @property
    def predictions(self) -> np.ndarray:
        """P(correct) per row of the events: the test responses', NaN on every other."""
        p = np.full(self.n_responses, np.nan)
        p[self.test_index] = self.test_p
        return p

    def save(self, model_dir: str | Path, plots_dir: str | Path) -> None:
        save_checkpoint(self.model, self.vocab, self.model_vocab, Path(model_dir) / CHECKPOINT)
        for name, df in (("roc", self.roc), ("calibration", self.calibration)):  # training: logged by the stage (DVCLive)
            write_csv(df, Path(plots_dir) / f"{name}.csv")


def run_sakt(events: pa.Table | str | Path, split: dict, run: SaktRun, on_epoch: EpochCallback | None = None) -> SaktResult:
    """Train, then score the test students. `events`: the table, or events.parquet's path, read a batch of
    whole students at a time (its windows on disk past `train.shard_windows`: ktirt/kt/window_build.py). Under
    torchrun this is one rank of N (ktirt/distributed.py): it trains on its shard of the students, and every
    rank ends with the same model and metrics (the stage's rank 0 saves them)."""
    ts = run.train
    seed_everything(ts.seed, ts.threads)
    device = distributed.join(resolve_device(ts.device))
    result = _run(batches_of(events), split, run, device, on_epoch, masking=True)
    if ts.shuffled_control:  # shuffling outcomes across students needs the whole table
        whole = events if isinstance(events, pa.Table) else read_events(events)
        result.metrics |= _shuffled_control(whole, split, run, device)
    return result


def _shuffled_control(events: pa.Table, split: dict, run: SaktRun, device: torch.device) -> dict:
    """`train.shuffled_control`: the same settings trained once more with every split's outcomes shuffled, each
    among its own students' (ktirt/leakage.py), scored against the shuffled test outcomes; its test AUC must be
    near 0.5."""
    log.info("shuffled-label control: SAKT trained again with every split's outcomes shuffled")
    seed_everything(run.train.seed, run.train.threads)
    shuffled = shuffle_fold(events, split, run.train.seed)
    again = _run(batches_of(shuffled), split, replace(run, truth=None), device, None)
    control = shuffled_control(again.metrics["test_auc"])
    log.log(logging.INFO if control["ok"] else logging.WARNING, "shuffled-label control: test AUC %.4f (%s 0.5 ± %g)",
            control["auc"], "within" if control["ok"] else "OUTSIDE", control["tolerance"])
    return {"shuffled_label_test_auc": control["auc"], "shuffled_label_ok": control["ok"]}


def _run(batches: Batches, split: dict, run: SaktRun, device: torch.device, on_epoch: EpochCallback | None,
         masking: bool = False) -> SaktResult:
    with built_windows(batches, split, lambda v: ModelVocab.of(v, run.model), run.model.seq_len, run.train.shard_windows,
                       with_keys=run.truth is not None) as b:
        mv = b.mv
        cfg = SAKTConfig.of(run.model, n_items=mv.n_items, n_skills=mv.n_skills, n_diff=mv.n_diff,
                            n_clicks=N_CLICK_CODES + 1, n_practice=N_PRACTICE_CODES + 1)
        model = SAKT(cfg).to(device)
        distributed.reseed_for_rank(run.train.seed)
        val, test = b.responses["val"], b.responses["test"]
        require_both_outcomes(val.correct, "validation")
        require_both_outcomes(test.correct, "test")
        log.info("SAKT on %s: %d items (%d with own embedding), %d skills; %d train windows in %d shard(s); device %s",
                 "CPU" if device.type == "cpu" else device, len(b.vocab.items), mv.n_items - 1, mv.n_skills - 1,
                 b.sets["train"].n_global, len(b.sets["train"].shards), device)
        hist = fit(model, b.sets["train"], b.sets["val"], (val.index, val.correct), run.train, run.model.item_prior,
                   on_epoch)
        pt = predict_all(model, b.sets["test"], test.index, device)
    if np.isnan(pt).any():
        raise RuntimeError("a test response was not scored exactly once")  # guards the windowing invariant
    y = test.correct
    metrics = _test_metrics(b, hist, run.truth, pt, split["test"])
    if masking:
        metrics |= _future_masking(model, b.vocab, mv, b.masking_events, split, run.train.seed)
    timings = {"train_seconds": round(hist.train_seconds, 2),
               "train_seqs_per_s": round(hist.examples_seen / max(hist.train_seconds, 1e-9), 1)}
    return SaktResult(model, b.vocab, mv, metrics, hist.frame(), roc_points(y, pt), calibration(y, pt), test.index, pt,
                      b.n_responses, timings)


def predict_events(model: SAKT, vocab: Vocabulary, mv: ModelVocab, events: pa.Table, split: dict,
                   users) -> np.ndarray:
    """P(correct) of every response of `users` (students of `split`) from a trained model, NaN on every other
    row of `events`: how a leakage check asks the model again about rewritten events."""
    user = events["user_id"].to_numpy(zero_copy_only=False).astype(str)
    rows = np.flatnonzero(np.isin(user, np.asarray(list(users), dtype=str)))
    seqs, _ = load_sequences(events.take(pa.array(rows)), split, vocab)
    L = model.cfg.seq_len
    out = np.full(events.num_rows, np.nan)
    out[rows] = predict(model, window_tensors(seqs, query_windows(seqs, None, L, max(1, L // 2)), mv), len(rows))
    return out


def _future_masking(model: SAKT, vocab: Vocabulary, mv: ModelVocab, events: pa.Table, split: dict, seed: int) -> dict:
    """metrics/sakt.json's leakage check (ktirt/leakage.py): rewriting test students' later responses moves none
    of their earlier predictions (1/0), the largest move, and how many predictions were compared."""
    check = future_masking(lambda ev: predict_events(model, vocab, mv, ev, split, split["test"]), events,
                           split["test"], seed)
    return {"future_masking_ok": check["ok"], "future_masking_max_change": check["max_change"],
            "future_masking_checked": check["checked"]}


def _test_metrics(b: BuiltWindows, hist, truth: Path | None, pt: np.ndarray, test_users: list) -> dict:
    """metrics/sakt.json: the test students' figures beside the floors and, with the truth, the ceiling."""
    test, mv = b.responses["test"], b.mv
    y = test.correct
    m = binary_metrics(y, pt)
    metrics = {
        "val_auc": round(hist.best_val_auc, 6),
        "test_auc": round(m["auc"], 6),
        "test_acc": round(m["acc"], 6),
        "test_logloss": round(m["logloss"], 6),
    }
    metrics |= _floor_aucs(b.floors, test, y)
    if truth is not None:
        oracle = matched(true_probabilities(truth, test_users, test.key_hash), truth, "test responses")
        metrics["oracle_auc"] = round(binary_metrics(y, oracle)["auc"], 6)
        del oracle  # a test response's worth of memory, not held into the checks after
        metrics["auc_share_of_oracle"] = round(m["auc"] / metrics["oracle_auc"], 6)
    metrics |= {
        "best_epoch": hist.best_epoch,
        "epochs": len(hist.epoch),
        "test_responses": len(test.index),
        "items_with_own_embedding": mv.n_items - 1,
        "items_with_own_difficulty": mv.n_diff - 1,
    }
    return metrics | _no_difficulty_auc(mv, test.item, y, pt)


def _floor_aucs(floors, test, y: np.ndarray) -> dict:
    """The item-mean and skill-mean floors' test AUCs; their predictions (one number a test response each) are
    let go here rather than held beside the oracle's."""
    skill_p, item_p = floors.predict(test.item.astype(np.int64), test.skill.astype(np.int64))
    return {"item_mean_auc": round(binary_metrics(y, item_p)["auc"], 6),
            "skill_mean_auc": round(binary_metrics(y, skill_p)["auc"], 6)}


def _no_difficulty_auc(mv: ModelVocab, item: np.ndarray, y: np.ndarray, p: np.ndarray) -> dict:
    """How SAKT does on test responses to items it predicts without a difficulty of their own (unseen in
    training, or every item when `model.item_difficulty` is off and the item is below `min_item_count`)."""
    none = (item < 0) | (mv.diff[np.maximum(item, 0)] == 0)
    out = {"test_responses_no_item_difficulty": int(none.sum())}
    if len(np.unique(y[none])) == 2:
        out["test_auc_no_item_difficulty"] = round(binary_metrics(y[none], p[none])["auc"], 6)
    return out


def save_checkpoint(model: SAKT, vocab: Vocabulary, mv: ModelVocab, path: Path) -> None:
    """Weights, architecture and both vocabularies: enough to reload and predict without params.yaml."""
    with atomic_path(path) as tmp:
        torch.save({"state_dict": model.state_dict(), "config": model.cfg.to_dict(), "vocab": vocab.to_json(),
                    "model_vocab": mv.options()}, tmp)


def load_checkpoint(path: str | Path, map_location="cpu") -> tuple[SAKT, Vocabulary, ModelVocab]:
    ck = read_checkpoint(path, "train_sakt", ("state_dict", "config", "vocab"), map_location)
    vocab = Vocabulary.from_json(ck["vocab"])
    mv = ModelVocab.build(vocab, **ck["model_vocab"])
    cfg = SAKTConfig(**ck["config"])
    if (cfg.n_items, cfg.n_skills, cfg.n_diff) != (mv.n_items, mv.n_skills, mv.n_diff):
        raise InputError(f"checkpoint vocabulary ({mv.n_items} items, {mv.n_skills} skills, {mv.n_diff} difficulties) "
                         f"does not match its weights ({cfg.n_items}, {cfg.n_skills}, {cfg.n_diff})", path)
    model = SAKT(cfg)
    model.load_state_dict(ck["state_dict"])
    return model.eval(), vocab, mv


def check_vocabulary(vocab: Vocabulary, events: pa.Table, split: dict, path: str | Path) -> Sequences:
    """Sequences of `events` under a checkpoint's vocabulary; refuses events whose training items differ
    from the ones the checkpoint was trained on (a checkpoint from another dataset or split)."""
    seqs, fresh = load_sequences(events, split)
    check_training_items(fresh, vocab, path)
    seqs, _ = load_sequences(events, split, vocab)
    return seqs


def check_training_items(fresh: Vocabulary, vocab: Vocabulary, path: str | Path) -> None:
    """Refuses a checkpoint (`vocab`, from `path`) whose training items differ from those of the events' own
    vocabulary (`fresh`): a checkpoint from another dataset or split."""
    if fresh.items[: fresh.n_train_items] != vocab.items[: vocab.n_train_items]:
        raise InputError("checkpoint vocabulary does not match these events' training items "
                         "(retrain, or use the checkpoint of this dataset and split)", path)
