"""One model on one fold: a prediction for every row of events.parquet that the model scores (NaN elsewhere), its
training record, and `again`: the fold's trained model asked about the test students of another events table
(their later responses rewritten, ktirt/leakage.py's future-masking check). ktirt's engines are called only
through their public run APIs (run_sakt, run_wdirt), so the benchmark measures whatever the library's SAKT and WD-IRT are today."""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

import numpy as np
import torch

from _kt_data import BenchData
from _pykt_windows import Expanded

PYKT_MODELS = ("dkt", "akt", "simplekt", "sakt")
KTIRT_MODELS = ("ktirt_sakt", "ktirt_wdirt")
MODELS = KTIRT_MODELS + PYKT_MODELS
Again = Callable[[object], np.ndarray]


def run_ktirt_sakt(data: BenchData, split: dict, settings: dict) -> tuple[np.ndarray, dict, Again]:
    from ktirt.kt.sakt_run import SaktRun, predict_events, run_sakt
    from ktirt.settings import ModelSettings, TrainSettings

    run = SaktRun(model=ModelSettings.from_dict(settings["model"]), train=TrainSettings.from_dict(settings["train"]))
    result = run_sakt(data.events, split, run)
    p = np.asarray(result.predictions, dtype=float)
    if len(p) != data.events.num_rows:
        raise RuntimeError(f"run_sakt returned {len(p)} predictions for {data.events.num_rows} events")
    m = result.metrics | result.timings

    def again(events):
        return predict_events(result.model, result.vocab, result.model_vocab, events, split, split["test"])

    return p, {"epochs": m["epochs"], "best_epoch": m["best_epoch"], "best_val_auc": m["val_auc"],
               "train_seconds": m["train_seconds"], "train_seqs_per_s": m["train_seqs_per_s"]}, again


def run_ktirt_wdirt(data: BenchData, split: dict, settings: dict) -> tuple[np.ndarray, dict, Again]:
    """WD-IRT's `again` trains it anew on the other table (seeded, so the same model where the test students'
    responses do not reach training): its theta and calibrations have no public call to ask a fitted model."""
    from ktirt.catalog import item_text, item_types
    from ktirt.irt.wdirt_run import WDIRTSettings, run_wdirt

    s = WDIRTSettings.from_dict(settings["wdirt"])
    result = run_wdirt(data.events, data.unit_tests, split, s, item_types(data.items), item_text(data.items), None)
    p = result.event_predictions["predicted"].to_numpy().astype(float)
    m = result.metrics | result.timings
    # a "sequence" here is one training student's history, read once per epoch
    seqs = len(split["train"]) * m["epochs"] / max(m["train_seconds"], 1e-9)

    def again(events):
        return run_ktirt_wdirt(replace(data, events=events), split, settings)[0]

    return p, {"epochs": m["epochs"], "best_epoch": m["best_epoch"], "best_val_auc": m["val_auc"],
               "train_seconds": m["train_seconds"], "train_seqs_per_s": round(seqs, 1)}, again


def run_pykt(name: str, data: BenchData, ex: Expanded, split: dict, settings: dict) -> tuple[np.ndarray, dict, Again]:
    import _pykt_models as pm
    from _kt_data import scored_rows

    users = data.users
    train_events = np.flatnonzero(np.isin(users, split["train"]))
    val_events, test_events = scored_rows(users, split["val"]), scored_rows(users, split["test"])
    y = data.events["correct"].to_numpy().astype(int)
    torch.set_num_threads(settings["threads"])
    model, fit = pm.train(name, ex, train_events, val_events, y, data.events.num_rows, settings["max_epochs"],
                          settings["patience"], settings["seed"], lr=settings["hyper_parameters"]["learning_rate"])
    p = pm.score(model, name, ex, test_events, data.events.num_rows, pm.TRAIN_CONFIG["seq_len"])

    def again(events):
        return pm.score(model, name, Expanded.build(events), test_events, events.num_rows, pm.TRAIN_CONFIG["seq_len"])

    return p, {"epochs": fit.epochs, "best_epoch": fit.best_epoch, "best_val_auc": round(fit.best_val_auc, 6),
               "train_seconds": round(fit.train_seconds, 2),
               "train_seqs_per_s": round(fit.sequences_seen / max(fit.train_seconds, 1e-9), 1),
               "micro_batch": pm.MICRO_BATCH}, again
