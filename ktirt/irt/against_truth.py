"""WD-IRT's figures against the simulator's truth, each beside its ceiling: the same estimator given the true
abilities, item parameters and drifts (what no model of these responses can beat). Real data has no truth,
so none of these figures exist there."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.compute as pc
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import roc_auc_score

from ktirt.irt.drift import DriftSettings, drift_table, drifting_item_ids, fit_difficulty
from ktirt.irt.plot_tables import PLOT_COLUMNS, TRUE_REFERENCE
from ktirt.irt.targets import Targets
from ktirt.truth import event_probabilities, matched, target_item_truth, unit_test_probabilities

MIN_RESPONSES_FOR_RECOVERY = 20
"""items with fewer responses are left out of the recovery correlations (their estimate is mostly prior)"""


def against_truth(events, unit_tests, t: Targets, p, theta, calibrated_ability, params: pd.DataFrame,
                  model_difficulty: np.ndarray, drift: pd.DataFrame, ds: DriftSettings, truth: Path):
    """(metrics, difficulty plot table). `params` is the item bank; `model_difficulty` the predictive model's
    (training students only); `p`, `theta` per target; `calibrated_ability` the item bank's."""
    out = _oracle_aucs(events, unit_tests, t, truth)
    true = pd.read_parquet(truth / "items.parquet").set_index("item_id")
    m = params.merge(true, left_on="item_id", right_index=True, suffixes=("", "_true"), how="inner")
    plot = m.assign(reference=m["difficulty_true"], reference_kind=TRUE_REFERENCE)[list(PLOT_COLUMNS)].round(4)
    warm = m[m["n_responses"] >= MIN_RESPONSES_FOR_RECOVERY]
    w = params["item_id"].isin(warm["item_id"]).to_numpy()
    irt = "discrimination" in true.columns  # the skill_builder world's truth is BKT: no IRT parameters or drifts
    out |= _recovery(m, warm, irt)
    if len(warm) > 2:
        out["model_difficulty_spearman"] = round(float(spearmanr(model_difficulty[w], true["difficulty"].reindex(params["item_id"][w]))[0]), 6)
    out["recovery_items"] = len(warm)
    if irt:
        out |= _against_true_abilities(events, unit_tests, t, theta, calibrated_ability, params, true, w, drift, ds, truth)
    return out, plot


def _oracle_aucs(events, unit_tests, t: Targets, truth: Path) -> dict:
    """The ceiling of prediction: the true P(correct) of each test response, scored like a model."""
    out = {}
    # targets are the events in order, then the scored unit-test rows in order
    oracle = np.r_[matched(event_probabilities(events, truth), truth, "responses"),
                   unit_test_probabilities(unit_tests, truth)]
    for name, kind in (("in_unit", 0), ("unit_test", 1)):
        test = (t.split == 2) & (t.kind == kind) & np.isfinite(oracle)
        if test.any():
            out[f"{name}_oracle_auc"] = round(float(roc_auc_score(t.y[test], oracle[test])), 6)
    return out


def _recovery(m: pd.DataFrame, warm: pd.DataFrame, irt: bool) -> dict:
    """How well the item bank's parameters track the true ones (`m`: every item with both, `warm`: the well
    answered ones)."""
    out = {}
    for label, df in (("", warm), ("_all", m)):
        if len(df) > 2:
            out[f"difficulty_spearman{label}"] = round(float(spearmanr(df["difficulty"], df["difficulty_true"])[0]), 6)
            out[f"difficulty_pearson{label}"] = round(float(pearsonr(df["difficulty"], df["difficulty_true"])[0]), 6)
    if len(warm) > 2 and irt:
        out["discrimination_pearson"] = round(float(pearsonr(warm["discrimination"], warm["discrimination_true"])[0]), 6)
        g = warm[warm["guessing_true"] > 0]
        if len(g):
            out["guessing_mae"] = round(float((g["guessing"] - g["guessing_true"]).abs().mean()), 6)
    return out


def _against_true_abilities(events, unit_tests, t: Targets, theta, calibrated_ability, params: pd.DataFrame,
                            true: pd.DataFrame, w: np.ndarray, drift: pd.DataFrame, ds: DriftSettings, truth: Path) -> dict:
    """Abilities against the true ones, the recovery ceiling, and drift detection beside its ceiling."""
    tt = target_item_truth(events, unit_tests, truth)
    ability, a, b, c = tt.ability, tt.discrimination, tt.difficulty, tt.guessing
    has_truth = ~np.isnan(ability)
    ok = slice(None) if has_truth.all() else has_truth  # every target has its truth on a simulation: no copies
    # how well each ability tracks the true one: the deep part's (one-sided) and calibration's (whole history)
    out = {"theta_true_pearson": round(float(pearsonr(theta[ok], ability[ok])[0]), 6),
           "calibration_ability_true_pearson": round(float(pearsonr(calibrated_ability[ok], ability[ok])[0]), 6)}
    if w.sum() > 2 and has_truth.any():
        # ceiling of recovery: each item's difficulty before any drift, fitted to the same responses given the
        # true abilities, discriminations, guessing floors and drifts (a drift's shift moves the ability instead)
        undrifted = ability[ok] - (tt.difficulty_effective[ok] - tt.difficulty[ok])
        b_ceiling, _ = fit_difficulty(t.item[ok], len(params), t.y[ok].astype(np.float64), undrifted,
                                      a[ok], c[ok], np.zeros(len(params)), iters=30)
        del undrifted
        out["difficulty_spearman_ceiling"] = round(float(spearmanr(b_ceiling[w], true["difficulty"].reindex(params["item_id"][w]))[0]), 6)

    seen = set(pc.unique(events["item_id"]).to_pylist())
    true_drift = set(true.index[true["drift"]]) & seen
    out["drift_true_items"] = len(true_drift)
    out |= _precision_recall("drift", drifting_item_ids(drift), true_drift)
    inunit = (t.kind == 0) & has_truth
    if inunit.any():
        # ceiling of detection: the same test with the true abilities and item parameters
        dt = drift_table(t.item[inunit], t.timestamp_ms[inunit], t.y[inunit].astype(np.float64), ability[inunit],
                         a[inunit], b[inunit], c[inunit], ds)
        ids = params["item_id"].to_numpy()
        out |= _precision_recall("drift_ceiling", set(ids[dt.loc[dt["drift_flag"], "item"].to_numpy()]), true_drift)
    return out


def _precision_recall(name: str, flagged: set, true: set) -> dict:
    hits = len(flagged & true)
    return {f"{name}_precision": round(hits / len(flagged), 6) if flagged else 0.0,
            f"{name}_recall": round(hits / len(true), 6) if true else 0.0}
