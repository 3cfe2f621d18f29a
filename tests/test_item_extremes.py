"""Item parameters that stay meaningful on any data (issue 25): skills and items whose responses are all wrong,
all right, a single one, or one student's get a finite difficulty within DIFFICULTY_BOUND logits and a standard
error above the median item's, on the synthetic tables and on the same responses read as an ASSISTments 2009
file. Before skill means had a prior, an all-wrong skill's mean and its items ran off together (39 logits on a
real file) with an SE that was the item prior's alone."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from conftest import events_as_assistments_2009
from ktirt.irt.wdirt_run import WDIRTSettings, run_wdirt
from ktirt.sources import load_source
from ktirt.sources.canonical import events_table
from ktirt.split import split_users

DIFFICULTY_BOUND = 10.0
FAST = dict(history_len=8, hidden=16, epochs=2, patience=1, batch_size=256, lr=0.02, seed=3, threads=1,
            drift_min_responses=5)
# item -> (its skill, the outcomes of its responses, one student answers them all)
EXTREMES = {
    "XW-SKILL-0": ("SKILL-ALL-WRONG", [0, 0, 0, 0, 0], False),  # a skill's only item, all wrong (the 39-logit case)
    "XR-SKILL-0": ("SKILL-ALL-RIGHT", [1, 1, 1, 1, 1, 1], False),  # a skill whose two items are all right
    "XR-SKILL-1": ("SKILL-ALL-RIGHT", [1, 1, 1], False),
    "X1-SKILL-0": ("SKILL-ONE-RESPONSE", [0], False),  # a skill answered once
    "XS-SKILL-0": ("SKILL-ONE-STUDENT", [1, 0, 1], True),  # a skill one student answers (three items)
    "XS-SKILL-1": ("SKILL-ONE-STUDENT", [1, 1], True),
    "XS-SKILL-2": ("SKILL-ONE-STUDENT", [0], True),
    "XW-ITEM": (None, [0] * 8, False),  # items of an ordinary skill: all wrong, all right, once, one student's
    "XR-ITEM": (None, [1] * 8, False),
    "X1-ITEM": (None, [1], False),
    "XS-ITEM": (None, [0, 0, 0], True),
}


def with_extremes(tables) -> pa.Table:
    """tables.events plus EXTREMES: each response copies a student's last event two hours on, as another item
    (of a new skill, or of the first skill of the events), in its own assignment log."""
    ev = tables.events.to_pandas()
    users = sorted(ev["user_id"].unique())
    last = ev.groupby("user_id").tail(1).set_index("user_id")
    ordinary = sorted(ev["skill_ids"].str[0].dropna().unique())[0]
    rows, k = [], 0
    for item, (skill, outcomes, one_student) in EXTREMES.items():
        for j, y in enumerate(outcomes):
            user = users[(7 * k + 3) % len(users)] if one_student else users[(7 * (k + j) + 3) % len(users)]
            row = last.loc[user].to_dict() | {"user_id": user, "item_id": item, "skill_ids": [skill or ordinary],
                                              "correct": y, "action_sequence_id": f"{item}-log-{j}"}
            row["timestamp"] += pd.Timedelta(hours=2, minutes=k + j)
            rows.append(row)
        k += len(outcomes)
    ev = pd.concat([ev, pd.DataFrame(rows)], ignore_index=True).sort_values(["user_id", "timestamp"], kind="stable")
    return events_table({f.name: pa.Array.from_pandas(ev[f.name], type=f.type) for f in tables.events.schema})


def _fit(events, unit_tests):
    split = split_users(events["user_id"].to_numpy(zero_copy_only=False), 0.6, 0.2, seed=3)
    return run_wdirt(events, unit_tests, split, WDIRTSettings(**FAST)).item_params


@pytest.fixture(scope="module", params=["synthetic", "assistments_2009"])
def item_params(request, tiny_tables, tmp_path_factory):
    events = with_extremes(tiny_tables)
    if request.param == "synthetic":
        return _fit(events, tiny_tables.unit_tests)
    folder = events_as_assistments_2009(events, tmp_path_factory.mktemp("a09") / "raw")
    tables = load_source("assistments_2009", folder)
    return _fit(tables.events, tables.unit_tests)


def test_every_difficulty_is_finite_and_bounded(item_params):
    for column in ("difficulty", "difficulty_current", "difficulty_se"):
        assert np.isfinite(item_params[column]).all(), column
    worst = item_params.loc[item_params["difficulty"].abs().idxmax()]
    assert worst["difficulty"] == pytest.approx(0, abs=DIFFICULTY_BOUND), (worst["item_id"], worst["difficulty"])
    assert item_params["difficulty_current"].abs().max() <= DIFFICULTY_BOUND


def test_extreme_items_are_said_to_be_uncertain(item_params):
    p = item_params.set_index("item_id")
    median = p.loc[p["n_responses"] > 0, "difficulty_se"].median()
    extreme = p.loc[list(EXTREMES), ["difficulty", "difficulty_se", "n_responses"]]
    assert (extreme["n_responses"] == [len(v[1]) for v in EXTREMES.values()]).all()
    low = extreme[extreme["difficulty_se"] <= median]
    assert low.empty, f"median item's SE {median:.3f}; not above it:\n{low}"


def test_all_wrong_items_are_harder_than_all_right_ones(item_params):
    """Shrunk, but still in the direction the data say."""
    b = item_params.set_index("item_id")["difficulty"]
    median = b.median()
    assert b["XW-SKILL-0"] > median and b["XW-ITEM"] > median
    assert b["XR-SKILL-0"] < median and b["XR-ITEM"] < median
