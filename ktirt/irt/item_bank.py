"""The published item bank: the wide part calibrated on every student's responses (not only training
students'), a drifted item split at its change point, each difficulty with its standard error. This is what
item_params.parquet holds; the predictive model, calibrated on training students only, is what predicts."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd

from ktirt.irt.calibration import calibrate_items
from ktirt.irt.catalog import Catalog
from ktirt.irt.drift import NO_CHANGE, difficulty_information
from ktirt.irt.fit import wide_values
from ktirt.irt.targets import Targets
from ktirt.models.wdirt import WideDeepIRT


def item_bank(model: WideDeepIRT, t: Targets, cat: Catalog, change: np.ndarray, log_opportunity: np.ndarray,
              prior_strength: float) -> tuple[WideDeepIRT, pd.DataFrame, np.ndarray]:
    """(the calibrated bank, the item_params table, each target's calibrated ability); `change` per item: when
    its difficulty changed (NO_CHANGE: never)."""
    bank = copy.deepcopy(model)
    after = t.timestamp_ms >= change[t.item]
    curves = calibrate_items(bank, t.student, log_opportunity, t.item, t.y, prior_strength, after_change=after)
    ability = curves.ability(t.student, log_opportunity)
    b, a, c = wide_values(bank)
    n_responses = np.bincount(t.item, minlength=len(cat.items))
    se = _difficulty_se(t.item[~after], ability[~after], a, b, c, len(cat.items), prior_strength)
    changed = change != NO_CHANGE
    params = pd.DataFrame({
        "item_id": cat.items, "skill_id": cat.item_skill_name, "skill_ids": cat.skill_ids(), "difficulty": b, "discrimination": a, "guessing": c,
        "difficulty_se": se, "n_responses": n_responses, "cold": n_responses == 0, "problem_type": cat.types,
        "difficulty_current": b + np.where(changed, curves.difficulty_shift, 0.0),
        "drift_start": pd.to_datetime(np.where(changed, change, 0), unit="ms", utc=True).where(changed).astype("datetime64[ms, UTC]"),
    })
    return bank, params, ability


def _difficulty_se(item, theta, a, b, c, n_items, strength) -> np.ndarray:
    """Standard error of each difficulty from the Fisher information of its responses (plus the prior)."""
    info, _ = difficulty_information(item, n_items, theta, a[item], b[item], c[item])
    return 1 / np.sqrt(info + strength)
