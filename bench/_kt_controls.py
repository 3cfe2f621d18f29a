"""The leakage controls every model of bench/kt_benchmark.py goes through on every fold (ktirt/leakage.py):

- future masking: the fold's trained model asked again with the test students' later responses rewritten; no
  earlier prediction may move (ktirt's WD-IRT is trained anew for it, bench/_kt_runners.py);
- shuffled labels: the same model and settings trained once more on the fold with every split's outcomes (and
  unit-test scores) permuted among its own students' responses (ktirt/leakage.py: why the test students' too),
  scored against the test students' shuffled outcomes; its test AUC must lie within 0.5 ± the tolerance. Its
  AUC on the multi-skill problems alone is recorded beside it (where a model reading its problem's outcome
  would show most).

A fold whose control fails marks its model failed in the results (kt_benchmark.py's `merge`)."""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
import pyarrow.compute as pc
from sklearn.metrics import roc_auc_score

from _kt_data import BenchData
from _pykt_windows import Expanded
from ktirt.leakage import future_masking, shuffle_fold, shuffled_control

log = logging.getLogger(__name__)


def shuffled_data(data: BenchData, split: dict, seed: int) -> BenchData:
    """The fold's data with each split's outcomes permuted among its own students' (unit-test scores too, where
    the source has them)."""
    tests = shuffle_fold(data.unit_tests, split, seed + 1) if data.unit_tests.num_rows else data.unit_tests
    return replace(data, events=shuffle_fold(data.events, split, seed), unit_tests=tests)


def run_controls(run_one, name: str, data: BenchData, ex: Expanded | None, split: dict, settings: dict,
                 scored: np.ndarray, again, seed: int, tolerance: float) -> dict:
    """Both controls of one model on one fold. `run_one(name, data, ex, split, settings)` trains and scores it
    (-> predictions, record, again); `again` is the trained model's."""
    masking = future_masking(again, data.events, split["test"], seed)
    return verdict(name, masking, shuffled_labels(run_one, name, data, ex, split, settings, scored, seed, tolerance))


def shuffled_labels(run_one, name: str, data: BenchData, ex: Expanded | None, split: dict, settings: dict,
                    scored: np.ndarray, seed: int, tolerance: float) -> dict:
    """The shuffled-label control: the model trained and scored on the shuffled fold (its AUC against the
    shuffled test outcomes, overall and on the multi-skill problems)."""
    shuffled = shuffled_data(data, split, seed)
    p, info, _ = run_one(name, shuffled, Expanded.build(shuffled.events) if ex is not None else None, split, settings)
    y = shuffled.events["correct"].to_numpy().astype(int)[scored]
    control = shuffled_control(roc_auc_score(y, p[scored]), tolerance) | {"epochs": info["epochs"],
                                                                          "scored_against": "shuffled test outcomes"}
    multi = pc.greater(pc.list_value_length(data.events["skill_ids"]), 1).to_numpy(zero_copy_only=False)[scored]
    if len(np.unique(y[multi])) == 2:
        control["multi_skill_auc"] = round(float(roc_auc_score(y[multi], p[scored][multi])), 6)
    return control


def verdict(name: str, masking: dict, control: dict) -> dict:
    """Both controls' record: ok when both pass; logged."""
    ok = int(masking["ok"] and control["ok"])
    (log.info if ok else log.error)("%s: future masking %s (largest change %.2g over %d predictions), shuffled-label "
                                    "test AUC %.4f (%s)", name, "passed" if masking["ok"] else "FAILED",
                                    masking["max_change"], masking["checked"], control["auc"],
                                    "passed" if control["ok"] else f"FAILED: outside 0.5 ± {control['tolerance']}")
    return {"ok": ok, "future_masking": masking, "shuffled_labels": control}
