"""One model on one fold: a prediction for every row of events.parquet that the model scores (NaN elsewhere), its
training record, and `again`: the fold's trained model asked about the test students of another events table
(their later responses rewritten, ktirt/leakage.py's future-masking check). ktirt's engines are called only
through their public run APIs (run_sakt, run_wdirt), so the benchmark measures whatever the library's SAKT and WD-IRT are today."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Callable

import numpy as np
import torch

from _kt_data import BenchData
from _pykt_windows import Expanded

PYKT_MODELS = ("dkt", "akt", "simplekt", "sakt")
KTIRT_MODELS = ("ktirt_sakt", "ktirt_wdirt", "ktirt_dkt", "ktirt_blend")
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
    # run_sakt scores the test students; the validation students' predictions are the blend's to fit on
    val = predict_events(result.model, result.vocab, result.model_vocab, data.events, split, split["val"])
    return _on_sakt_windows(result, np.where(np.isnan(p), val, p), split)


def _on_sakt_windows(result, p: np.ndarray, split: dict) -> tuple[np.ndarray, dict, Again]:
    """(predictions, record, again) of a model trained on SAKT's windows (SAKT, ktirt's DKT), asked again
    about the test students through those windows."""
    from ktirt.kt.sakt_run import predict_events

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
        return cached("ktirt_wdirt", replace(data, events=events), split, settings)[0]

    return p, {"epochs": m["epochs"], "best_epoch": m["best_epoch"], "best_val_auc": m["val_auc"],
               "train_seconds": m["train_seconds"], "train_seqs_per_s": round(seqs, 1)}, again


def run_ktirt_dkt(data: BenchData, split: dict, settings: dict) -> tuple[np.ndarray, dict, Again]:
    """ktirt's DKT, the blend's recurrent member (ktirt/blend/dkt_run.py); asked again through SAKT's windows."""
    from ktirt.blend.dkt_run import run_dkt
    from ktirt.settings import DKTSettings

    result = run_dkt(data.events, split, DKTSettings.from_dict(settings["dkt"]))
    return _on_sakt_windows(result, result.predictions["predicted"].to_numpy().astype(float), split)


def run_ktirt_blend(data: BenchData, split: dict, settings: dict) -> tuple[np.ndarray, dict, Again]:
    """The blend stage's stacker (ktirt/blend) over its members, each trained on the fold here with the same
    settings as its own row (a member's run is reused when the same process ran it on the same fold and data),
    fitted on the fold's validation students. Asked again, it asks every member again and stacks their answers."""
    from ktirt.blend.blend_run import log_item_count, response_splits, run_blend
    from ktirt.settings import BlendSettings
    from ktirt.split import SPLITS

    s = BlendSettings.from_dict(settings["blend"])
    runs = {m: member_run(m, data, split, settings) for m in s.members}
    blend = run_blend(data.events, split, {m: r[0] for m, r in runs.items()}, s)
    p = blend.table["p_blend"].to_numpy().astype(float)

    def again(events):
        count = log_item_count(events, response_splits(events, split) == SPLITS.index("train"))
        z = blend.stacker.decision({m: r[2](events) for m, r in runs.items()}, count)
        return 1 / (1 + np.exp(-z))

    m = blend.metrics
    return p, {"epochs": max(r[1]["epochs"] for r in runs.values()), "best_epoch": None,
               "best_val_auc": m["val_auc"]["blend"], "train_seconds": round(sum(r[1]["train_seconds"] for r in runs.values()), 2),
               "weights": m["weights"]}, again


MEMBERS = {"sakt": ("ktirt_sakt", ("model", "train")), "wdirt": ("ktirt_wdirt", ("wdirt",)), "dkt": ("ktirt_dkt", ("dkt",))}
_RUNS: dict = {}
"""member runs of this process, by (model, outcomes' digest, test students, settings): a model's own row and its
leakage control train on the same data the blend's members and the blend's control do, so each trains once"""


def member_run(member: str, data: BenchData, split: dict, settings: dict):
    """One blend member's (predictions, record, again) on this fold and data, run once per process."""
    name, sections = MEMBERS[member]
    own = {k: settings[k] for k in sections}
    return cached(name, data, split, own)


def cached(name: str, data: BenchData, split: dict, settings: dict):
    """ktirt model `name` trained and scored on this fold and data, once per process (see _RUNS). The outcomes
    tell the benchmark's tables of one fold apart (real, shuffled, rewritten later responses)."""
    digest = hashlib.sha256(data.events["correct"].combine_chunks().to_numpy(zero_copy_only=False).tobytes()).hexdigest()
    key = (name, data.events.num_rows, digest, tuple(split["test"]), repr(sorted(settings.items())))
    if key not in _RUNS:
        _RUNS[key] = KTIRT_RUNNERS[name](data, split, settings)
    return _RUNS[key]


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
               "micro_batch": pm.MICRO_BATCH, "device": str(pm.DEVICE)}, again


KTIRT_RUNNERS = {"ktirt_sakt": run_ktirt_sakt, "ktirt_wdirt": run_ktirt_wdirt, "ktirt_dkt": run_ktirt_dkt,
                 "ktirt_blend": run_ktirt_blend}
