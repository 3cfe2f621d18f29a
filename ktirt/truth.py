"""The simulator's ground truth, lined up with the canonical tables, for oracle figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)

TRUTH_DIR = "_truth"


def truth_dir(raw_dir: str | Path) -> Path | None:
    """`raw_dir/_truth` when the raw data is simulated, else None (real data has no truth)."""
    d = Path(raw_dir) / TRUTH_DIR
    return d if (d / "responses.parquet").exists() else None


def event_probabilities(events: pa.Table, truth: Path) -> np.ndarray:
    """True P(correct) behind each row of events.parquet (NaN where the truth has no such response)."""
    keys = ["action_sequence_id", "item_id", "user_id"]
    ev = events.select(keys).to_pandas()
    tr = pd.read_parquet(truth / "responses.parquet", columns=[*keys, "p_correct"])
    return ev.merge(tr, on=keys, how="left", validate="many_to_one")["p_correct"].to_numpy()


def unit_test_probabilities(unit_tests: pa.Table, truth: Path) -> np.ndarray:
    """True P(correct) behind each scored row of unit_tests.parquet, in the order of those rows."""
    keys = ["unit_test_id", "item_id", "user_id"]
    scored = unit_tests.filter(pa.compute.is_valid(unit_tests["correct"]))
    if scored.num_rows == 0:  # e.g. the skill_builder world, which has no unit tests (nor their truth)
        return np.empty(0)
    ut = scored.select(keys).to_pandas()
    tr = pd.read_parquet(truth / "unit_test_responses.parquet", columns=[*keys, "p_correct"])
    return ut.merge(tr, on=keys, how="left", validate="many_to_one")["p_correct"].to_numpy()


def target_item_truth(events: pa.Table, unit_tests: pa.Table, truth: Path) -> pd.DataFrame:
    """For every event, then every scored unit-test row (WD-IRT's target order): the student's true ability
    at that moment and the item's true discrimination, difficulty (before any drift), difficulty in effect
    then (after a drift, shifted) and guessing floor. The ability is the 3PL inverted at the true P(solve)
    and the difficulty in effect (so it includes learning)."""
    items = pd.read_parquet(truth / "items.parquet", columns=["item_id", "difficulty", "discrimination", "guessing"])
    keys = ["action_sequence_id", "item_id", "user_id"]
    ev = events.select(keys).to_pandas().merge(
        pd.read_parquet(truth / "responses.parquet", columns=[*keys, "p_solve", "difficulty_effective"]),
        on=keys, how="left", validate="many_to_one")
    ut_keys = ["unit_test_id", "item_id", "user_id"]
    scored = unit_tests.filter(pa.compute.is_valid(unit_tests["correct"]))
    ut = scored.select(ut_keys).to_pandas().merge(
        pd.read_parquet(truth / "unit_test_responses.parquet", columns=[*ut_keys, "p_correct"]),
        on=ut_keys, how="left", validate="many_to_one")
    ut = ut.merge(items, on="item_id", how="left").rename(columns={"p_correct": "p_solve", "difficulty": "difficulty_effective"})
    df = pd.concat([ev[["item_id", "p_solve", "difficulty_effective"]], ut[["item_id", "p_solve", "difficulty_effective"]]],
                   ignore_index=True).merge(items, on="item_id", how="left")
    a, c = df["discrimination"].to_numpy(), df["guessing"].to_numpy()
    q = np.clip((df["p_solve"].to_numpy() - c) / (1 - c), 1e-9, 1 - 1e-9)
    df["ability"] = df["difficulty_effective"].to_numpy() + np.log(q / (1 - q)) / a
    return df[["ability", "discrimination", "difficulty", "difficulty_effective", "guessing"]]
