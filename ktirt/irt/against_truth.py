"""WD-IRT's figures against the simulator's truth, each beside its ceiling: the same estimator given the true
abilities, item parameters and drifts (what no model of these responses can beat). Real data has no truth,
so none of these figures exist there."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import pearsonr, spearmanr

from ktirt.evaluation import auc
from ktirt.irt.drift import DriftSettings, drift_cells, drifting_item_ids, fit_difficulty_chunks, flag_drift
from ktirt.irt.plot_tables import PLOT_COLUMNS, TRUE_REFERENCE
from ktirt.irt.target_blocks import LogSource, TargetBlocks, by_item_groups, item_order, with_unit_tests
from ktirt.truth import (RESPONSE_KEYS, UNIT_TEST_KEYS, event_probabilities, matched, target_item_truth,
                         unit_test_probabilities)

MIN_RESPONSES_FOR_RECOVERY = 20
"""items with fewer responses are left out of the recovery correlations (their estimate is mostly prior)"""


def against_truth(source: LogSource, blocks: TargetBlocks, params: pd.DataFrame, model_difficulty: np.ndarray,
                  drift: pd.DataFrame, ds: DriftSettings, truth: Path):
    """(metrics, difficulty plot table). `params` is the item bank; `model_difficulty` the predictive model's
    (training students only); per target, the blocks hold `p` and `theta` (the predictive model's) and
    `ability` (the item bank's)."""
    true = pd.read_parquet(truth / "items.parquet").set_index("item_id")
    irt = "discrimination" in true.columns  # the skill_builder world's truth is BKT: no IRT parameters or drifts
    _truth_by_block(source, blocks, truth, irt)
    out = _oracle_aucs(blocks)
    m = params.merge(true, left_on="item_id", right_index=True, suffixes=("", "_true"), how="inner")
    plot = m.assign(reference=m["difficulty_true"], reference_kind=TRUE_REFERENCE)[list(PLOT_COLUMNS)].round(4)
    warm = m[m["n_responses"] >= MIN_RESPONSES_FOR_RECOVERY]
    w = params["item_id"].isin(warm["item_id"]).to_numpy()
    out |= _recovery(m, warm, irt)
    if len(warm) > 2:
        out["model_difficulty_spearman"] = round(float(spearmanr(model_difficulty[w], true["difficulty"].reindex(params["item_id"][w]))[0]), 6)
    out["recovery_items"] = len(warm)
    if irt:
        out |= _against_true_abilities(blocks, params, true, w, drift, ds)
    return out, plot


_TRUE_FIELDS = ("true_ability", "true_discrimination", "true_difficulty", "true_difficulty_effective", "true_guessing")


def _truth_by_block(source: LogSource, blocks: TargetBlocks, truth: Path, irt: bool) -> None:
    """Each target's true P(correct) (field `oracle`) and, for an IRT world, the truth behind it (_TRUE_FIELDS),
    kept per block: the truth of a block's students is read with it."""
    for k, (events, scored, _) in enumerate(with_unit_tests(source, RESPONSE_KEYS, [*UNIT_TEST_KEYS, "correct"])):
        oracle = np.r_[matched(event_probabilities(events, truth), truth, "responses"), unit_test_probabilities(scored, truth)]
        if len(oracle) != blocks.sizes[k]:
            raise RuntimeError(f"block {k}: {len(oracle)} truths for {blocks.sizes[k]} targets")
        blocks.put(k, "oracle", oracle)
        if irt:
            tt = target_item_truth(events, scored, truth)
            for name, values in zip(_TRUE_FIELDS, (tt.ability, tt.discrimination, tt.difficulty, tt.difficulty_effective,
                                                   tt.guessing)):
                blocks.put(k, name, values)


def _oracle_aucs(blocks: TargetBlocks) -> dict:
    """The ceiling of prediction: the true P(correct) of each test response, scored like a model."""
    out = {}
    for name, kind in (("in_unit", 0), ("unit_test", 1)):
        y, oracle = [], []
        for k in range(len(blocks)):
            split, kk, yk, ok = blocks.fields(k, "split", "kind", "y", "oracle")
            test = (split == 2) & (kk == kind) & np.isfinite(ok)
            y.append(yk[test])
            oracle.append(ok[test])
        y = np.concatenate(y)
        if len(y):
            out[f"{name}_oracle_auc"] = round(float(auc(y, np.concatenate(oracle))), 6)
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


def _against_true_abilities(blocks: TargetBlocks, params: pd.DataFrame, true: pd.DataFrame, w: np.ndarray,
                            drift: pd.DataFrame, ds: DriftSettings) -> dict:
    """Abilities against the true ones, the recovery ceiling, and drift detection beside its ceiling."""
    def pairs(estimate: str):
        return lambda: ((x[h], a[h]) for x, a, h in (_with_truth(blocks, k, estimate) for k in range(len(blocks))))

    # how well each ability tracks the true one: the deep part's (one-sided) and calibration's (whole history)
    out = {"theta_true_pearson": round(pearson(pairs("theta")), 6),
           "calibration_ability_true_pearson": round(pearson(pairs("ability")), 6)}
    if w.sum() > 2:
        # ceiling of recovery: each item's difficulty before any drift, fitted to the same responses given the
        # true abilities, discriminations, guessing floors and drifts (a drift's shift moves the ability instead)
        b_ceiling, _ = fit_difficulty_chunks(lambda: (_undrifted(blocks, k) for k in range(len(blocks))), len(params),
                                             np.zeros(len(params)), iters=30)
        out["difficulty_spearman_ceiling"] = round(float(spearmanr(b_ceiling[w], true["difficulty"].reindex(params["item_id"][w]))[0]), 6)

    seen = set(params["item_id"].to_numpy()[blocks.items_in_events])
    true_drift = set(true.index[true["drift"]]) & seen
    out["drift_true_items"] = len(true_drift)
    out |= _precision_recall("drift", drifting_item_ids(drift), true_drift)

    def in_unit_with_truth(k: int) -> np.ndarray:
        kind, ability = blocks.fields(k, "kind", "true_ability")
        return np.flatnonzero((kind == 0) & ~np.isnan(ability))

    if not any(len(in_unit_with_truth(k)) for k in range(len(blocks))):
        return out
    names = ("timestamp_ms", "y", "true_ability", "true_discrimination", "true_difficulty", "true_guessing")
    # ceiling of detection: the same test with the true abilities and item parameters
    cells = [drift_cells(it, ts, y.astype(np.float64), ability, a, b, c, ds)
             for it, ts, y, ability, a, b, c in by_item_groups(blocks, names, in_unit_with_truth)]
    dt = flag_drift(item_order(cells), ds)
    ids = params["item_id"].to_numpy()
    return out | _precision_recall("drift_ceiling", set(ids[dt.loc[dt["drift_flag"], "item"].to_numpy()]), true_drift)


def _with_truth(blocks: TargetBlocks, k: int, estimate: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Block k's `estimate` per target, its true ability, and which targets have one."""
    x, ability = blocks.fields(k, estimate, "true_ability")
    return x, ability, ~np.isnan(ability)


def _undrifted(blocks: TargetBlocks, k: int) -> tuple[np.ndarray, ...]:
    """fit_difficulty_chunks' chunk of block k: its targets with a truth, each with the true ability less the
    drift's shift, the true discrimination and guessing floor."""
    item, y, ability, a, b, b_eff, c = blocks.fields(k, "item", "y", "true_ability", "true_discrimination",
                                                     "true_difficulty", "true_difficulty_effective", "true_guessing")
    h = ~np.isnan(ability)
    return item[h], y[h].astype(np.float64), ability[h] - (b_eff[h] - b[h]), a[h], c[h]


def pearson(pairs) -> float:
    """Pearson's correlation of the (x, y) arrays `pairs()` yields (a fresh pass each call), in two passes: the
    means, then the centred sums."""
    n = sx = sy = 0.0
    for x, y in pairs():
        n, sx, sy = n + len(x), sx + np.sum(x, dtype=np.float64), sy + np.sum(y, dtype=np.float64)
    mx, my = sx / n, sy / n
    xx = yy = xy = 0.0
    for x, y in pairs():
        dx, dy = x.astype(np.float64) - mx, y.astype(np.float64) - my
        xx, yy, xy = xx + dx @ dx, yy + dy @ dy, xy + dx @ dy
    return float(xy / np.sqrt(xx * yy))


def _precision_recall(name: str, flagged: set, true: set) -> dict:
    hits = len(flagged & true)
    return {f"{name}_precision": round(hits / len(flagged), 6) if flagged else 0.0,
            f"{name}_recall": round(hits / len(true), 6) if true else 0.0}
