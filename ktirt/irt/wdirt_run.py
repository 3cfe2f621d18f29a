"""One Wide & Deep IRT experiment: targets with their histories -> fit on training students -> abilities for
every response -> item parameters (with standard errors), drift, and metrics beside the item-mean floor and,
on simulated data, the oracle and the true item parameters. Each step lives in its own module of ktirt/irt/;
this one runs them in order."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import weakref
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from ktirt import distributed
from ktirt.early_stopping import EpochCallback
from ktirt.evaluation import MeanFloors, binary_metrics, require_both_outcomes
from ktirt.features.history import N_CONTEXTS, N_STATIC, N_SUMMARY
from ktirt.io import atomic_path, parquet_parts, write_csv, write_parquet
from ktirt.irt.against_truth import against_truth
from ktirt.irt.calibration import align_theta_chunks, calibrate
from ktirt.irt.catalog import Catalog
from ktirt.irt.drift import DriftSettings, change_points, drift_cells, drifting_item_ids, flag_drift
from ktirt.irt.fit import fit_wdirt, probabilities, theta_all, wide_values
from ktirt.irt.item_bank import item_bank
from ktirt.irt.model_files import EVENT_PREDICTIONS, ITEM_DRIFT, ITEM_PARAMS, MODEL
from ktirt.irt.plot_tables import difficulty_plot_of_counts, drift_plot_table, event_coverage
from ktirt.irt.target_blocks import (BlockBatcher, BlockResponses, LogSource, TargetBlocks,
                                      by_item_groups, gather, item_order)
from ktirt.models.wdirt import WDIRTConfig, WideDeepIRT
from ktirt.runtime import resolve_device, seed_everything
from ktirt.settings import WDIRTSettings  # the wdirt section of params.yaml
from ktirt.timings import Phases

log = logging.getLogger(__name__)


@dataclass
class WDIRTResult:
    model: WideDeepIRT
    item_params: pd.DataFrame
    drift: pd.DataFrame
    metrics: dict
    history: pd.DataFrame
    difficulty_plot: pd.DataFrame
    drift_plot: pd.DataFrame
    item_bank: WideDeepIRT | None = field(default=None, repr=False)
    """the wide part calibrated on every student's responses: what item_params holds (not saved; `model`,
    calibrated on training students only, is what predicts)"""
    event_predictions_file: Path | None = None
    """per event of events.parquet, in its order: user_id, item_id, timestamp, theta, predicted (a temporary
    parquet file, removed with the result: written a block at a time, never held whole)"""
    timings: dict = field(default_factory=dict)
    """seconds: for the log and `logs/`, never the tracked metrics (ktirt/timings.py)"""

    def __post_init__(self):
        if self.event_predictions_file is not None:
            weakref.finalize(self, self.event_predictions_file.unlink, missing_ok=True)

    @property
    def event_predictions(self) -> pa.Table | None:
        return None if self.event_predictions_file is None else pq.read_table(self.event_predictions_file)

    def save(self, model_dir: str | Path, plots_dir: str | Path) -> None:
        model_dir = Path(model_dir)
        with atomic_path(model_dir / MODEL) as tmp:
            torch.save({"state_dict": self.model.state_dict(), "config": self.model.cfg.to_dict()}, tmp)
        write_parquet(pa.Table.from_pandas(self.item_params, preserve_index=False), model_dir / ITEM_PARAMS)
        write_parquet(pa.Table.from_pandas(self.drift, preserve_index=False), model_dir / ITEM_DRIFT)
        if self.event_predictions_file is not None:
            with atomic_path(model_dir / EVENT_PREDICTIONS) as tmp:
                shutil.copyfile(self.event_predictions_file, tmp)
        for name, df in (("difficulty", self.difficulty_plot), ("drift", self.drift_plot)):  # training: DVCLive
            write_csv(df, Path(plots_dir) / f"{name}.csv")


def run_wdirt(events: pa.Table | str | Path, unit_tests: pa.Table | str | Path, split: dict, s: WDIRTSettings,
              types: dict[str, str] | None = None, text=None, truth: Path | None = None,
              on_epoch: EpochCallback | None = None) -> WDIRTResult:
    """Fit, calibrate, test for drift and score. `events` and `unit_tests`: the tables, or their parquet files (read
    a block of about `s.block_events` events' students at a time; the targets are kept on disk in the meantime,
    under the system's temporary folder, TMPDIR). Under torchrun this is one rank of N (ktirt/distributed.py):
    it trains on its shard of the students, the calibrations sum over its shard of the responses, and every
    rank ends with the same model, tables and metrics (the stage's rank 0 saves them)."""
    seed_everything(s.seed, s.threads)
    device = distributed.join(resolve_device(s.device))
    with tempfile.TemporaryDirectory(prefix="ktirt-wdirt-") as folder:
        return _run(LogSource(events, unit_tests, s.block_events), split, s, types, text, truth, device, on_epoch,
                    Path(folder))


def _run(source: LogSource, split: dict, s: WDIRTSettings, types: dict[str, str] | None, text, truth: Path | None,
         device: torch.device, on_epoch: EpochCallback | None, folder: Path) -> WDIRTResult:
    phase = Phases("WD-IRT")
    with phase("features"):
        cat, stats, n_users = gather(source, split, types or {}, text)
        blocks = TargetBlocks.build(source, split, cat, stats, n_users, s.history_len, folder)
    model = _new_model(cat, s).to(device)
    distributed.reseed_for_rank(s.seed)
    log.info("WD-IRT: %d items, %d skills, %d targets in %d blocks, history %d; device %s", len(cat.items),
             len(cat.skills), sum(blocks.sizes), len(blocks), s.history_len, device)
    _require_both_outcomes(blocks)
    with phase("train"):
        hist = fit_wdirt(model, BlockBatcher(blocks, device), s, on_epoch)
    model = model.cpu()
    with phase("theta"):
        theta_all(model, BlockBatcher(blocks, torch.device("cpu")))
    with phase("calibration"):
        _calibrate_predictive(model, blocks, s)
    ds = DriftSettings.of(s)
    model_b = wide_values(model)[0]
    with phase("drift"):
        drift, change = _drift(model, blocks, cat, ds)
    with phase("item_bank"):
        bank, params = item_bank(model, blocks, cat, change, s)
    metrics = _metrics(blocks, hist, params, drift, source, text)
    n, right = _item_counts(blocks, len(cat.items))
    diff_plot = difficulty_plot_of_counts(params, n, right)
    if truth is not None:
        with phase("against_truth"):
            extra, diff_plot = against_truth(source, blocks, params, model_b, drift, ds, truth)
        metrics |= extra
    timings = phase.profile | {"train_seconds": round(hist.train_seconds, 2),
                               "train_targets_per_s": round(hist.examples_seen / max(hist.train_seconds, 1e-9), 1)}
    return WDIRTResult(model, params, drift, metrics, hist.frame(), diff_plot, drift_plot_table(drift, ds), bank,
                       _event_predictions(source, blocks), timings)


def _item_counts(blocks: TargetBlocks, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """Each item's responses and right answers over every target (the observed difficulty's)."""
    n, right = np.zeros(n_items, np.int64), np.zeros(n_items)
    for k in range(len(blocks)):
        item, y = blocks.fields(k, "item", "y")
        n += np.bincount(item, minlength=n_items)
        right += np.bincount(item, weights=y, minlength=n_items)
    return n, right


def _event_predictions(source: LogSource, blocks: TargetBlocks) -> Path:
    """Per event of events.parquet, in its order: user_id, item_id, timestamp, theta and P(correct), written to a
    temporary parquet file a block at a time."""
    def parts():
        for k, events in enumerate(source.event_blocks(["user_id", "item_id", "timestamp"])):
            kind, theta, p = blocks.fields(k, "kind", "theta", "p")
            in_unit = kind == 0
            yield events.append_column("theta", pa.array(theta[in_unit], pa.float32())) \
                .append_column("predicted", pa.array(p[in_unit], pa.float32()))

    fd, path = tempfile.mkstemp(prefix="ktirt-wdirt-", suffix=".parquet")
    os.close(fd)
    with parquet_parts(path, atomic=False) as add:
        for part in parts():
            add(part)
    return Path(path)


def _new_model(cat: Catalog, s: WDIRTSettings) -> WideDeepIRT:
    cfg = WDIRTConfig(n_items=len(cat.items), n_skills=len(cat.skills), n_features=N_STATIC, n_contexts=N_CONTEXTS,
                      n_summary=N_SUMMARY, text_dim=cat.text.shape[1], hidden=s.hidden, dropout=s.dropout,
                      discrimination=s.discrimination)
    return WideDeepIRT(cfg, torch.as_tensor(cat.item_skills), torch.as_tensor(cat.guessable), torch.as_tensor(cat.text))


def _calibrate_predictive(model: WideDeepIRT, blocks: TargetBlocks, s: WDIRTSettings) -> None:
    """The predictive model: its wide part calibrated on training students only, its deep theta mapped onto it;
    each target's mapped theta and P(correct) are kept per block (fields `theta`, `p`)."""
    train = BlockResponses(blocks, "train", lambda k: np.flatnonzero(blocks.fields(k, "split")[0] == 0))
    calibrate(model, train, train.n_students, s.prior_strength, skill_prior_strength=s.skill_prior_strength,
              max_sweeps=s.calibration_sweeps)
    scale, shift = align_theta_chunks(model, train.thetas)
    for k in range(len(blocks)):
        theta, item = blocks.fields(k, "theta", "item")
        theta = scale * theta + shift
        blocks.put(k, "theta", theta)
        blocks.put(k, "p", probabilities(model, theta, item))


def _drift(model: WideDeepIRT, blocks: TargetBlocks, cat: Catalog, ds: DriftSettings):
    """item_drift's table (in-unit responses, the predictive model's parameters) and each item's change point."""
    b, a, c = wide_values(model)
    cells = [drift_cells(it, ts, y.astype(np.float64), theta.astype(np.float64), a[it], b[it], c[it], ds)
             for it, ts, y, theta in by_item_groups(blocks, ("timestamp_ms", "y", "theta"), _in_unit(blocks))]
    drift = flag_drift(item_order(cells), ds)
    change = change_points(drift, len(cat.items))
    drift.insert(0, "item_id", np.asarray(cat.items, dtype=object)[drift.pop("item").to_numpy()])
    return drift, change


def _in_unit(blocks: TargetBlocks):
    return lambda k: np.flatnonzero(blocks.fields(k, "kind")[0] == 0)


def _metrics(blocks: TargetBlocks, hist, params: pd.DataFrame, drift: pd.DataFrame, source: LogSource, text) -> dict:
    n_scores = sum(int(blocks.fields(k, "kind")[0].sum()) for k in range(len(blocks)))
    if not n_scores:
        log.info("no unit-test scores in this source: WD-IRT fits on in-unit responses only (no unit-test AUC)")
    n_responses = params["n_responses"].to_numpy()
    metrics = {"val_auc": round(hist.best_val_auc, 6), "unit_test_scores": n_scores, "has_text_embeddings": int(text is not None)}
    metrics |= _auc_block(blocks, "in_unit", 0)
    metrics |= _auc_block(blocks, "unit_test", 1)
    return metrics | {
        "items": len(params), "items_cold": int((n_responses == 0).sum()),
        "items_in_events": len(blocks.items_in_events),
        "item_coverage_of_events": event_coverage((b["item_id"] for b in source.event_blocks(["user_id", "item_id"])),
                                                  params),
        "drift_windows_tested": int(drift["z"].notna().sum()),
        "drift_windows_too_few_responses": int(drift["z"].isna().sum()),
        "drift_flagged_items": len(drifting_item_ids(drift)),
        "best_epoch": hist.best_epoch, "epochs": len(hist.epoch),
    }


def _require_both_outcomes(blocks: TargetBlocks) -> None:
    """Validation and test AUCs are defined: each split's responses hold both outcomes."""
    outcomes = {(1, 0): [], (2, 0): [], (2, 1): []}  # (split, kind): the outcomes met
    for k in range(len(blocks)):
        y, split, kind = blocks.fields(k, "y", "split", "kind")
        for (sp, kd), seen in outcomes.items():
            seen.append(np.unique(y[(split == sp) & (kind == kd)]))
    seen = {key: np.unique(np.concatenate(v)) for key, v in outcomes.items()}
    require_both_outcomes(seen[1, 0], "validation", "in-unit responses")
    require_both_outcomes(seen[2, 0], "test", "in-unit responses")
    if len(seen[2, 1]):
        require_both_outcomes(seen[2, 1], "test", "unit-test scores", "unit_tests.parquet")


def _auc_block(blocks: TargetBlocks, name: str, kind: int) -> dict:
    """The test AUC of targets of `kind` beside the item-mean floor's (item rates over training students)."""
    floors, y, p, item_p = MeanFloors(), [], [], []
    fields = ("kind", "split", "y", "item", "skill", "p")
    for k in range(len(blocks)):
        kk, split, yk, item, skill, _ = blocks.fields(k, *fields)
        train = (split == 0) & (kk == kind)
        if train.any():
            floors.add(item[train], skill[train], yk[train])
    if not floors.totals:
        return {}
    for k in range(len(blocks)):
        kk, split, yk, item, skill, pk = blocks.fields(k, *fields)
        test = (split == 2) & (kk == kind)
        y.append(yk[test])
        p.append(pk[test])
        item_p.append(floors.predict(item[test], skill[test])[1])
    y = np.concatenate(y)
    if not len(y):
        return {}
    return {f"{name}_auc": round(binary_metrics(y, np.concatenate(p))["auc"], 6),
            f"{name}_item_mean_auc": round(binary_metrics(y, np.concatenate(item_p))["auc"], 6),
            f"{name}_test_responses": len(y)}
