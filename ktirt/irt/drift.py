"""Item drift: did an item's difficulty change at the start of a time window?

Abilities, discriminations and guessing floors are held at the model's estimates; for each (item, window)
the difficulty b is re-estimated by maximum likelihood (Newton steps) twice: on the item's responses from
that window on, and on its responses before it (a change-point split at the window's start, which uses all
the data on both sides rather than one window's few). `difficulty_shift` = b_after - b_before, `z` = shift /
its standard error. A split is only tested when both sides have at least `min_responses` responses; the
others are reported with z = NaN and counted.

Thousands of windows are tested, so |z| > 3 alone flags items that never changed (precision 0.84 even with
the simulator's true abilities and item parameters). `drift_flag` therefore controls the false discovery
rate over *items* (`item_discoveries`): each window's p-value is Bonferroni-adjusted for the number of
windows its item was tested in (the splits of one item share responses, so this is conservative), an item's
p-value is its smallest, and Benjamini-Hochberg at level `fdr` picks the items; a picked item's windows are
flagged where their adjusted p-value passes the same cut, |z| > z_threshold and |shift| > min_shift.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
from scipy.stats import norm

from ktirt.models import three_pl

from ktirt.settings import WDIRTSettings, derive

DriftSettings = derive("DriftSettings", WDIRTSettings, {
    "window": "drift_window", "z_threshold": "drift_z", "min_shift": "drift_min_shift",
    "min_responses": "drift_min_responses", "fdr": "drift_fdr"}, doc="The wdirt.drift_* settings (`DriftSettings.of`).")


def difficulty_information(group: np.ndarray, n_groups: int, theta, a, b, c, y=None):
    """Per group, the Fisher information of its 3PL difficulty b from its responses (theta, a, b, c per response),
    and with outcomes `y` the score (the log-likelihood's gradient in b); else the score is None. The one place
    both the drift test's difficulty fits and the item bank's standard errors get it from."""
    p, s = three_pl.probability(theta, a, b, c)
    p = np.clip(p, 1e-6, 1 - 1e-6)
    dp = -(1 - c) * a * s * (1 - s)  # dP/db
    info = np.bincount(group, weights=dp**2 / (p * (1 - p)), minlength=n_groups)
    score = None if y is None else np.bincount(group, weights=(y - p) / (p * (1 - p)) * dp, minlength=n_groups)
    return info, score


def fit_difficulty(group: np.ndarray, n_groups: int, y, theta, a, c, b0: np.ndarray, iters: int = 12):
    """MLE of one difficulty per group with theta, a, c fixed (Fisher scoring); returns (b, standard error)."""
    return fit_difficulty_chunks(lambda: [(group, y, theta, a, c)], n_groups, b0, iters)


def fit_difficulty_chunks(chunks, n_groups: int, b0: np.ndarray, iters: int = 12):
    """fit_difficulty on responses given a chunk at a time: `chunks()` yields (group, y, theta, a, c) arrays, a
    fresh pass each call; each step sums every chunk's information and score."""
    b = b0.astype(np.float64).copy()
    for _ in range(iters):
        info, score = np.zeros(n_groups), np.zeros(n_groups)
        for group, y, theta, a, c in chunks():
            i, sc = difficulty_information(group, n_groups, theta, a, b[group], c, y)
            info, score = info + i, score + sc
        b = np.clip(b + score / np.maximum(info, 1e-9), -8, 8)
    return b, 1 / np.sqrt(np.maximum(info, 1e-9))


def drift_table(item: np.ndarray, timestamp_ms: np.ndarray, y: np.ndarray, theta: np.ndarray, a: np.ndarray,
                b: np.ndarray, c: np.ndarray, s: DriftSettings) -> pd.DataFrame:
    """One row per (item, window) with responses: item (index), window_start, window_end, n_window, n_before,
    n_after, difficulty_shift, z, drift_flag. `a`, `b`, `c` are per response (the item's model parameters)."""
    return flag_drift(drift_cells(item, timestamp_ms, y, theta, a, b, c, s), s)


def drift_cells(item: np.ndarray, timestamp_ms: np.ndarray, y: np.ndarray, theta: np.ndarray, a: np.ndarray,
                b: np.ndarray, c: np.ndarray, s: DriftSettings) -> pd.DataFrame:
    """drift_table before its flags: each item's rows depend on its own responses only, so the items can be
    taken a group at a time (`flag_drift` then runs once over all of them: its false discovery rate is over
    every item)."""
    ts = pd.to_datetime(timestamp_ms, unit="ms", utc=True)
    period = ts.tz_convert(None).to_period(s.window)
    codes, windows = pd.factorize(period, sort=True)
    n_w = len(windows)
    cell = item.astype(np.int64) * n_w + codes
    cells, cell_of = np.unique(cell, return_inverse=True)
    n_cell = np.bincount(cell_of, minlength=len(cells))
    cell_item, cell_window = cells // n_w, cells % n_w
    b_start = np.bincount(cell_of, weights=b, minlength=len(cells)) / np.maximum(n_cell, 1)
    sides = {side: _fit_side(side, item, codes, cells, cell_window, n_w, (y, theta, a, c), b_start)
             for side in ("before", "after")}
    (b_bef, se_bef, n_before), (b_aft, se_aft, n_after) = sides["before"], sides["after"]
    tested = (n_after >= s.min_responses) & (n_before >= s.min_responses)
    shift = np.where(tested, b_aft - b_bef, np.nan)
    start = windows.to_timestamp(how="start").tz_localize("UTC")
    end = (windows + 1).to_timestamp(how="start").tz_localize("UTC")
    return pd.DataFrame({
        "item": cell_item,
        "window_start": start[cell_window].astype("datetime64[ms, UTC]"),
        "window_end": end[cell_window].astype("datetime64[ms, UTC]"),
        "n_window": n_cell,
        "n_before": n_before,
        "n_after": n_after,
        "difficulty_shift": shift,
        "z": shift / np.sqrt(se_aft**2 + se_bef**2),
    })


def flag_drift(cells: pd.DataFrame, s: DriftSettings) -> pd.DataFrame:
    """`drift_cells`' rows (of every item) with their drift_flag (the module doc's rule)."""
    shift, z = cells["difficulty_shift"].to_numpy(), cells["z"].to_numpy()
    tested = ~np.isnan(shift)
    candidate = tested & (np.abs(z) > s.z_threshold) & (np.abs(shift) > s.min_shift)
    return cells.assign(drift_flag=item_discoveries(cells["item"].to_numpy(), np.where(tested, z, 0.0), tested,
                                                    candidate, s.fdr))


def _fit_side(side: str, item: np.ndarray, codes: np.ndarray, cells: np.ndarray, cell_window: np.ndarray, n_w: int,
              responses: tuple, b_start: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per (item, window k) cell: the difficulty and its standard error fitted on the item's responses before k
    (`side` "before") or from k on ("after"), and their number. One window's cells at a time: a response
    belongs to a cell of every window it is before / from on, so all windows at once held each response
    about as many times as its item has windows. Each cell's sums see the same responses in the same order
    either way, so the fit is the same to the bit."""
    y, theta, a, c = responses
    b = np.clip(b_start, -8, 8)  # a cell without responses on this side keeps its start
    se = np.full(len(cells), 1 / np.sqrt(1e-9))
    n = np.zeros(len(cells), np.int64)
    for k in range(1, n_w):
        m = np.flatnonzero(codes < k if side == "before" else codes >= k)
        want = item[m] * n_w + k
        tgt = np.minimum(np.searchsorted(cells, want), len(cells) - 1)
        ok = cells[tgt] == want
        rows, grp = m[ok], tgt[ok]
        if not len(rows):
            continue
        fit_b, fit_se = fit_difficulty(grp, len(cells), y[rows], theta[rows], a[rows], c[rows], b_start)
        mine = cell_window == k
        b[mine], se[mine] = fit_b[mine], fit_se[mine]
        n += np.bincount(grp, minlength=len(cells))
    return b, se, n


def item_discoveries(item: np.ndarray, z: np.ndarray, tested: np.ndarray, candidate: np.ndarray, fdr: float) -> np.ndarray:
    """Per (item, window) row: flagged, with the false discovery rate over items held at `fdr` (module doc)."""
    n_items = int(item.max()) + 1 if len(item) else 0
    windows = np.bincount(item[tested], minlength=n_items)
    p = np.where(candidate, np.minimum(1.0, windows[item] * 2 * norm.sf(np.abs(z))), 1.0)
    best = np.full(n_items, 1.0)
    np.minimum.at(best, item, p)
    hypotheses = np.sort(best[windows > 0])
    passing = np.flatnonzero(hypotheses <= fdr * np.arange(1, len(hypotheses) + 1) / max(len(hypotheses), 1))
    cut = hypotheses[passing[-1]] if len(passing) else -1.0
    return candidate & (p <= cut)


def drifting_item_ids(drift: pd.DataFrame | pa.Table) -> set[str]:
    """The ids of the items with at least one flagged window (`drift_flag` of item_drift.parquet): the one rule
    for "this item drifts" that the metrics, exports, join report and report page all read."""
    if isinstance(drift, pa.Table):
        drift = drift.select(["item_id", "drift_flag"]).to_pandas()
    return set(drift.loc[drift["drift_flag"].astype(bool), "item_id"].astype(str))


NO_CHANGE = np.iinfo(np.int64).max


def change_points(table: pd.DataFrame, n_items: int) -> np.ndarray:
    """Per item index: when its difficulty changed (ms since the epoch, the start of its flagged window with
    the largest |z|), or NO_CHANGE for items never flagged. `table` is drift_table's output."""
    flagged = table[table["drift_flag"]]
    out = np.full(n_items, NO_CHANGE, dtype=np.int64)
    if len(flagged):
        best = flagged.loc[flagged["z"].abs().groupby(flagged["item"]).idxmax()]
        out[best["item"].to_numpy()] = best["window_start"].astype("datetime64[ms, UTC]").astype("int64").to_numpy()
    return out
