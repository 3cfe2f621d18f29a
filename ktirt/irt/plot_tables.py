"""What train_wdirt reports beside the item bank: the tables behind its two plots, and how much of the events the
bank covers. Each says what it shows when the data cannot give it (no simulator truth, no window tested) rather
than writing a header-only CSV, which `dvc plots show` silently leaves out."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:
    from ktirt.irt.drift import DriftSettings

PLOT_COLUMNS = ("item_id", "difficulty", "reference", "reference_kind", "n_responses")
TRUE_REFERENCE = "simulator truth"
OBSERVED_REFERENCE = "observed -logit(correct rate), no truth"
NOT_A_NUMBER = "NaN"
"""written, not left blank: Vega skips a cell that does not parse, but draws a blank one at 0"""


def observed_difficulty_plot(params: pd.DataFrame, item: np.ndarray, y: np.ndarray) -> pd.DataFrame:
    """Without truth, each answered item's difficulty beside -logit of its smoothed correct rate over the same
    responses the bank is calibrated on: the classical difficulty, which the bank should rank much alike."""
    return difficulty_plot_of_counts(params, np.bincount(item, minlength=len(params)),
                                     np.bincount(item, weights=y, minlength=len(params)))


def difficulty_plot_of_counts(params: pd.DataFrame, n: np.ndarray, right: np.ndarray) -> pd.DataFrame:
    """observed_difficulty_plot from each item's responses `n` and right answers `right`."""
    observed = np.log((n - right + 0.5) / (right + 0.5))
    df = pd.DataFrame({"item_id": params["item_id"].to_numpy(), "difficulty": params["difficulty"].to_numpy(),
                       "reference": observed, "reference_kind": OBSERVED_REFERENCE, "n_responses": n})
    drawable = (n > 0) & np.isfinite(df["difficulty"].to_numpy(np.float64))  # a blank cell is drawn at 0
    return df[drawable].round(4).reset_index(drop=True)


def drift_plot_table(drift: pd.DataFrame, ds: DriftSettings) -> pd.DataFrame:
    """Per item its window of largest |z|; when no window could be tested, one row whose note says why."""
    tested = drift.dropna(subset=["z"])
    if len(tested):
        worst = tested.loc[tested["z"].abs().groupby(tested["item_id"]).idxmax()]
        return worst[["item_id", "difficulty_shift", "z", "drift_flag"]].round(4)
    note = (f"no drift window tested: none of {len(drift):,} (item, {ds.window}-window) cells had "
            f"wdirt.drift_min_responses={ds.min_responses} responses both before and from its start "
            "(data without clock time falls in one window)")
    return pd.DataFrame({"item_id": ["(none tested)"], "difficulty_shift": [NOT_A_NUMBER], "z": [NOT_A_NUMBER],
                         "drift_flag": [False], "note": [note]})


def event_coverage(event_items, params: pd.DataFrame) -> float:
    """Share of events whose item_id has a finite difficulty in the bank, matched by id rather than by the
    catalog's own index, so an item the catalog lost or mislabelled lowers it. `event_items`: the events'
    item_id column, or those of their batches one after another."""
    ok = params.loc[np.isfinite(params["difficulty"].to_numpy(np.float64)), "item_id"].astype(str).tolist()
    ok = pa.array(ok, pa.string())
    hits = n = 0
    for items in [event_items] if isinstance(event_items, (pa.Array, pa.ChunkedArray)) else event_items:
        n += len(items)
        hits += pc.sum(pc.is_in(items, value_set=ok)).as_py() or 0
    return round(hits / n, 6) if n else 0.0
