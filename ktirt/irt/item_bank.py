"""The published item bank: the wide part calibrated on every student's responses (not only training
students'), a drifted item split at its change point, each difficulty with its standard error. This is what
item_params.parquet holds; the predictive model, calibrated on training students only, is what predicts."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd

from ktirt.irt.calibration import calibrate
from ktirt.irt.catalog import Catalog
from ktirt.irt.drift import NO_CHANGE, difficulty_information
from ktirt.irt.fit import wide_values
from ktirt.irt.target_blocks import BlockResponses, TargetBlocks
from ktirt.models.wdirt import WideDeepIRT
from ktirt.settings import WDIRTSettings


def item_bank(model: WideDeepIRT, blocks: TargetBlocks, cat: Catalog, change: np.ndarray, s: WDIRTSettings
              ) -> tuple[WideDeepIRT, pd.DataFrame]:
    """(the calibrated bank, the item_params table); each target's calibrated ability is kept per block (field
    `ability`). `change` per item: when its difficulty changed (NO_CHANGE: never); `s`: the wdirt settings (the
    priors' strengths)."""
    bank = copy.deepcopy(model)
    responses = BlockResponses(blocks, "bank", lambda k: np.arange(blocks.sizes[k]), change, with_theta=False)
    curves = calibrate(bank, responses, responses.n_students, s.prior_strength,
                       skill_prior_strength=s.skill_prior_strength, max_sweeps=s.calibration_sweeps)
    b, a, c = wide_values(bank)
    n_responses, info = np.zeros(len(cat.items), np.int64), np.zeros(len(cat.items))
    for k in range(len(blocks)):
        r = responses.block(k)
        ability = curves.ability(r.student, r.log_opportunity)
        blocks.put(k, "ability", ability)
        n_responses += np.bincount(r.item, minlength=len(cat.items))
        it, before = r.item[~r.after], ability[~r.after]
        info += difficulty_information(it, len(cat.items), before, a[it], b[it], c[it])[0]
    skills, weight = bank.item_skills.numpy(), bank.item_skill_weight.numpy().astype(np.float64)
    se = difficulty_se(info, skills, weight, s.prior_strength, s.skill_prior_strength)
    changed = change != NO_CHANGE
    params = pd.DataFrame({
        "item_id": cat.items, "skill_id": cat.item_skill_name, "skill_ids": cat.skill_ids(), "difficulty": b, "discrimination": a, "guessing": c,
        "difficulty_se": se, "n_responses": n_responses, "cold": n_responses == 0, "problem_type": cat.types,
        "difficulty_current": b + np.where(changed, curves.difficulty_shift, 0.0),
        "drift_start": pd.to_datetime(np.where(changed, change, 0), unit="ms", utc=True).where(changed).astype("datetime64[ms, UTC]"),
    })
    return bank, params


def difficulty_se(info: np.ndarray, skills: np.ndarray, weight: np.ndarray, strength: float,
                  skill_strength: float) -> np.ndarray:
    """Standard error of each difficulty b_i = (its skills' mean) + offset_i: the offset's, given the skill means
    (its responses' Fisher information `info` plus its prior), and the skill means' own, which only their items'
    responses and the skill prior inform. So an item whose skill has little data is said to be uncertain even
    where its offset's prior alone would look sure (issue 25: 0.577, the item prior's, on a 39-logit item).

    Gaussian approximation, the other parameters held at their estimates: item j tells its skill mean what
    its responses say through its offset's prior, precision info_j k / (info_j + k); and
    var b_i = 1 / (info_i + k) + (k / (info_i + k))^2 sum_s w_is^2 / (skill precision_s)."""
    own = info + strength
    told = np.divide(info * strength, own, out=np.array(info, np.float64), where=own > 0)
    skill_precision = skill_strength + np.bincount(skills.ravel(), (weight**2 * told[:, None]).ravel(),
                                                   int(skills.max(initial=0)) + 1)
    share = np.divide(strength, own, out=np.zeros_like(own), where=own > 0)
    with np.errstate(divide="ignore"):
        return np.sqrt(1 / own + share**2 * (weight**2 / skill_precision[skills]).sum(1))
