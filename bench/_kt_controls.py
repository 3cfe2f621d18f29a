"""The leakage controls every model of bench/kt_benchmark.py goes through on every fold (ktirt/leakage.py):

- future masking: the fold's trained model asked again with the test students' later responses rewritten; no
  earlier prediction may move (ktirt's WD-IRT is trained anew for it, bench/_kt_runners.py);
- shuffled labels: the same model and settings trained once more on the fold with the training students'
  outcomes (and unit-test scores) permuted among their responses, and the validation students' among theirs
  (early stopping on real outcomes would pick the epoch whose noise agrees with them: ktirt/leakage.py),
  scored on the real test outcomes; its test AUC must lie within 0.5 ± the tolerance.

A fold whose control fails marks its model failed in the results (kt_benchmark.py's `merge`)."""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
from sklearn.metrics import roc_auc_score

from _kt_data import BenchData
from _pykt_windows import Expanded
from ktirt.leakage import future_masking, shuffle_fold, shuffled_control

log = logging.getLogger(__name__)


def shuffled_data(data: BenchData, split: dict, seed: int) -> BenchData:
    """The fold's data with the training students' outcomes permuted among theirs and the validation students'
    among theirs (unit-test scores too, where the source has them); the test students' kept."""
    tests = shuffle_fold(data.unit_tests, split, seed + 1) if data.unit_tests.num_rows else data.unit_tests
    return replace(data, events=shuffle_fold(data.events, split, seed), unit_tests=tests)


def run_controls(run_one, name: str, data: BenchData, ex: Expanded | None, split: dict, settings: dict,
                 scored: np.ndarray, again, seed: int, tolerance: float) -> dict:
    """Both controls of one model on one fold. `run_one(name, data, ex, split, settings)` trains and scores it
    (-> predictions, record, again); `again` is the trained model's."""
    masking = future_masking(again, data.events, split["test"], seed)
    shuffled = shuffled_data(data, split, seed)
    p, info, _ = run_one(name, shuffled, Expanded.build(shuffled.events) if ex is not None else None, split, settings)
    y = data.events["correct"].to_numpy().astype(int)[scored]
    control = shuffled_control(roc_auc_score(y, p[scored]), tolerance) | {"epochs": info["epochs"]}
    ok = int(masking["ok"] and control["ok"])
    (log.info if ok else log.error)("%s: future masking %s (largest change %.2g over %d predictions), shuffled-label "
                                    "test AUC %.4f (%s)", name, "passed" if masking["ok"] else "FAILED",
                                    masking["max_change"], masking["checked"], control["auc"],
                                    "passed" if control["ok"] else f"FAILED: outside 0.5 ± {tolerance}")
    return {"ok": ok, "future_masking": masking, "shuffled_labels": control}
