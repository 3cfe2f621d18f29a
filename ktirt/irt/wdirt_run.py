"""One Wide & Deep IRT experiment: targets with their histories -> fit on training students -> abilities for
every response -> item parameters (with standard errors), drift, and metrics beside the item-mean floor and,
on simulated data, the oracle and the true item parameters. Each step lives in its own module of ktirt/irt/;
this one runs them in order."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import torch

from ktirt import distributed
from ktirt.early_stopping import EpochCallback
from ktirt.evaluation import binary_metrics, item_mean_floor, require_both_outcomes
from ktirt.features.history import N_CONTEXTS, N_STATIC, N_SUMMARY, SUMMARY_LOG_SKILL_EVENTS
from ktirt.io import atomic_path, read_events, read_unit_tests, write_csv, write_parquet
from ktirt.irt.against_truth import against_truth
from ktirt.irt.calibration import align_theta, calibrate_items
from ktirt.irt.catalog import Catalog
from ktirt.irt.drift import DriftSettings, change_points, drift_table, drifting_item_ids
from ktirt.irt.fit import fit_wdirt, probabilities, theta_all, wide_values
from ktirt.irt.item_bank import item_bank
from ktirt.irt.model_files import EVENT_PREDICTIONS, ITEM_DRIFT, ITEM_PARAMS, MODEL
from ktirt.irt.plot_tables import drift_plot_table, event_coverage, observed_difficulty_plot
from ktirt.irt.target_blocks import BLOCK_EVENTS, BlockBatcher, LogSource, TargetBlocks, gather
from ktirt.irt.targets import Targets
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
    theta: np.ndarray = field(repr=False)
    item_bank: WideDeepIRT | None = field(default=None, repr=False)
    """the wide part calibrated on every student's responses: what item_params holds (not saved; `model`,
    calibrated on training students only, is what predicts)"""
    event_predictions: pa.Table | None = field(default=None, repr=False)
    """per event of events.parquet, in its order: user_id, item_id, timestamp, theta, predicted"""
    timings: dict = field(default_factory=dict)
    """seconds: for the log and `logs/`, never the tracked metrics (ktirt/timings.py)"""

    def save(self, model_dir: str | Path, plots_dir: str | Path) -> None:
        model_dir = Path(model_dir)
        with atomic_path(model_dir / MODEL) as tmp:
            torch.save({"state_dict": self.model.state_dict(), "config": self.model.cfg.to_dict()}, tmp)
        write_parquet(pa.Table.from_pandas(self.item_params, preserve_index=False), model_dir / ITEM_PARAMS)
        write_parquet(pa.Table.from_pandas(self.drift, preserve_index=False), model_dir / ITEM_DRIFT)
        if self.event_predictions is not None:
            write_parquet(self.event_predictions, model_dir / EVENT_PREDICTIONS)
        for name, df in (("difficulty", self.difficulty_plot), ("drift", self.drift_plot)):  # training: DVCLive
            write_csv(df, Path(plots_dir) / f"{name}.csv")


def run_wdirt(events: pa.Table | str | Path, unit_tests: pa.Table | str | Path, split: dict, s: WDIRTSettings,
              types: dict[str, str] | None = None, text=None, truth: Path | None = None,
              on_epoch: EpochCallback | None = None, block_events: int = BLOCK_EVENTS) -> WDIRTResult:
    """Fit, calibrate, test for drift and score. `events` and `unit_tests`: the tables, or their parquet files (read
    a block of about `block_events` events' students at a time; the targets are kept on disk in the meantime,
    under the system's temporary folder, TMPDIR). Under torchrun this is one rank of N (ktirt/distributed.py):
    it trains on its shard of the students, the calibrations sum over its shard of the responses, and every
    rank ends with the same model, tables and metrics (the stage's rank 0 saves them)."""
    seed_everything(s.seed, s.threads)
    device = distributed.join(resolve_device(s.device))
    with tempfile.TemporaryDirectory(prefix="ktirt-wdirt-") as folder:
        return _run(LogSource(events, unit_tests, block_events), split, s, types, text, truth, device, on_epoch,
                    Path(folder))


def _run(source: LogSource, split: dict, s: WDIRTSettings, types: dict[str, str] | None, text, truth: Path | None,
         device: torch.device, on_epoch: EpochCallback | None, folder: Path) -> WDIRTResult:
    phase = Phases("WD-IRT")
    with phase("features"):
        cat, stats, n_users = gather(source, split, types or {}, text)
        blocks = TargetBlocks.build(source, split, cat, stats, n_users, s.history_len, folder)
    model = _new_model(cat, s).to(device)
    distributed.reseed_for_rank(s.seed)
    data = BlockBatcher(blocks, device)
    t = blocks.targets()
    log.info("WD-IRT: %d items, %d skills, %d targets (%d unit-test scores) in %d blocks, history %d; device %s",
             len(cat.items), len(cat.skills), len(t.y), int(t.kind.sum()), len(blocks), s.history_len, device)
    _require_both_outcomes(t)
    with phase("train"):
        hist = fit_wdirt(model, data, s, on_epoch)
    model = model.cpu()
    data = BlockBatcher(blocks, torch.device("cpu"))
    with phase("theta"):
        theta_all(model, data)
    del data
    theta = blocks.concat("theta")[0]
    items_in_events = int(len(np.unique(t.item[t.kind == 0])))
    events = source.events if isinstance(source.events, pa.Table) else read_events(source.events)
    unit_tests = source.unit_tests if isinstance(source.unit_tests, pa.Table) else read_unit_tests(source.unit_tests)
    log_opportunity = t.summary[:, SUMMARY_LOG_SKILL_EVENTS]
    with phase("calibration"):
        theta = _calibrate_predictive(model, t, theta, log_opportunity, s)
    p = probabilities(model, theta, t.item)
    ds = DriftSettings.of(s)
    model_b = wide_values(model)[0]
    with phase("drift"):
        drift, change = _drift(model, t, theta, cat, ds)
    with phase("item_bank"):
        bank, params, ability = item_bank(model, t, cat, change, log_opportunity, s)
    metrics = _metrics(t, p, hist, params, drift, events, text, items_in_events)
    diff_plot = observed_difficulty_plot(params, t.item, t.y)
    if truth is not None:
        with phase("against_truth"):
            extra, diff_plot = against_truth(events, unit_tests, t, p, theta, ability, params, model_b, drift, ds, truth)
        metrics |= extra
    inunit = t.kind == 0
    event_predictions = events.select(["user_id", "item_id", "timestamp"]).append_column(
        "theta", pa.array(theta[inunit], pa.float32())).append_column("predicted", pa.array(p[inunit], pa.float32()))
    timings = phase.profile | {"train_seconds": round(hist.train_seconds, 2),
                               "train_targets_per_s": round(hist.examples_seen / max(hist.train_seconds, 1e-9), 1)}
    return WDIRTResult(model, params, drift, metrics, hist.frame(), diff_plot, drift_plot_table(drift, ds), theta, bank,
                       event_predictions, timings)


def _new_model(cat: Catalog, s: WDIRTSettings) -> WideDeepIRT:
    cfg = WDIRTConfig(n_items=len(cat.items), n_skills=len(cat.skills), n_features=N_STATIC, n_contexts=N_CONTEXTS,
                      n_summary=N_SUMMARY, text_dim=cat.text.shape[1], hidden=s.hidden, dropout=s.dropout,
                      discrimination=s.discrimination)
    return WideDeepIRT(cfg, torch.as_tensor(cat.item_skills), torch.as_tensor(cat.guessable), torch.as_tensor(cat.text))


def _calibrate_predictive(model: WideDeepIRT, t: Targets, theta: np.ndarray, log_opportunity: np.ndarray,
                          s: WDIRTSettings) -> np.ndarray:
    """The predictive model: its wide part calibrated on training students only, its deep theta mapped onto it;
    returns every target's mapped theta."""
    train = t.split == 0
    calibrate_items(model, t.student[train], log_opportunity[train], t.item[train], t.y[train], s.prior_strength,
                    skill_prior_strength=s.skill_prior_strength)
    scale, shift = align_theta(model, theta[train], t.item[train], t.y[train])
    return scale * theta + shift


def _drift(model: WideDeepIRT, t: Targets, theta: np.ndarray, cat: Catalog, ds: DriftSettings):
    """item_drift's table (in-unit responses, the predictive model's parameters) and each item's change point."""
    inunit = t.kind == 0
    it = t.item[inunit]
    b, a, c = wide_values(model)
    drift = drift_table(it, t.timestamp_ms[inunit], t.y[inunit].astype(np.float64), theta[inunit].astype(np.float64),
                        a[it], b[it], c[it], ds)
    change = change_points(drift, len(cat.items))
    drift.insert(0, "item_id", np.asarray(cat.items, dtype=object)[drift.pop("item").to_numpy()])
    return drift, change


def _metrics(t: Targets, p: np.ndarray, hist, params: pd.DataFrame, drift: pd.DataFrame, events: pa.Table, text,
             items_in_events: int) -> dict:
    n_scores = int(t.kind.sum())
    if not n_scores:
        log.info("no unit-test scores in this source: WD-IRT fits on in-unit responses only (no unit-test AUC)")
    n_responses = params["n_responses"].to_numpy()
    metrics = {"val_auc": round(hist.best_val_auc, 6), "unit_test_scores": n_scores, "has_text_embeddings": int(text is not None)}
    metrics |= _auc_block(t, p, "in_unit", 0)
    metrics |= _auc_block(t, p, "unit_test", 1)
    return metrics | {
        "items": len(params), "items_cold": int((n_responses == 0).sum()),
        "items_in_events": items_in_events, "item_coverage_of_events": event_coverage(events["item_id"], params),
        "drift_windows_tested": int(drift["z"].notna().sum()),
        "drift_windows_too_few_responses": int(drift["z"].isna().sum()),
        "drift_flagged_items": len(drifting_item_ids(drift)),
        "best_epoch": hist.best_epoch, "epochs": len(hist.epoch),
    }


def _require_both_outcomes(t: Targets) -> None:
    """Validation and test AUCs are defined: each split's responses hold both outcomes."""
    require_both_outcomes(t.y[(t.split == 1) & (t.kind == 0)], "validation", "in-unit responses")
    require_both_outcomes(t.y[(t.split == 2) & (t.kind == 0)], "test", "in-unit responses")
    if ((t.split == 2) & (t.kind == 1)).any():
        require_both_outcomes(t.y[(t.split == 2) & (t.kind == 1)], "test", "unit-test scores", "unit_tests.parquet")


def _auc_block(t: Targets, p: np.ndarray, name: str, kind: int) -> dict:
    test = (t.split == 2) & (t.kind == kind)
    train = (t.split == 0) & (t.kind == kind)
    if not test.any() or not train.any():
        return {}
    y = t.y[test]
    item_p = item_mean_floor(t.item[train], t.skill[train], t.y[train], t.item[test], t.skill[test])
    return {f"{name}_auc": round(binary_metrics(y, p[test])["auc"], 6),
            f"{name}_item_mean_auc": round(binary_metrics(y, item_p)["auc"], 6),
            f"{name}_test_responses": int(test.sum())}
