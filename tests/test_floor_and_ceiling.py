"""Both engines against their own floor and ceiling on a world where beating the floor is a fair ask.

The floor is the item-mean baseline each run reports (`item_mean_auc`: every test response predicted by its item's
correct rate among training students), the ceiling the simulator's true probabilities on the same responses
(`oracle_auc`). On the tiny world (tests/conftest.py's TINY: 48 training students of ~20 responses) a learner has
too little history per student to beat the item mean, and SAKT does not (tests/test_sakt.py says by how much).
Here students answer about 40 problems each and there are 144 training students, so the student's history carries
what the item mean cannot: their ability. Measured with these settings: SAKT 0.703, WD-IRT 0.747 in-unit and 0.730
on unit tests, against floors 0.632 / 0.632 / 0.644 and ceilings 0.794 / 0.794 / 0.777 (1,913 and 327 test
responses)."""

import pytest

from conftest import simulated_tables
from ktirt.irt.wdirt_run import WDIRTSettings, run_wdirt
from ktirt.kt.sakt_run import SaktRun, run_sakt
from ktirt.truth import truth_dir
from test_sakt import MODEL, TRAIN
from test_wdirt import FAST

LEARNING = dict(n_students=240, n_items=44, units_per_class=3, assignments_per_unit=3)
"""TINY (its default drift) with three times the students, each in three units of three problem sets"""
ABOVE_CEILING = 0.01
"""how far above the truth's own AUC chance may carry a model on ~2,000 responses before it reads as a leak"""


@pytest.fixture(scope="module")
def learning(tmp_path_factory):
    raw, tables, split = simulated_tables(tmp_path_factory.mktemp("learning") / "synthetic", **LEARNING)
    sakt = run_sakt(tables.events, split, SaktRun(MODEL, TRAIN, truth_dir(raw)))
    wdirt = run_wdirt(tables.events, tables.unit_tests, split, WDIRTSettings(**FAST), truth=truth_dir(raw))
    return {"sakt": sakt.metrics, "wdirt": wdirt.metrics}


@pytest.mark.parametrize("engine, auc, floor, ceiling", [
    ("sakt", "test_auc", "item_mean_auc", "oracle_auc"),
    ("wdirt", "in_unit_auc", "in_unit_item_mean_auc", "in_unit_oracle_auc"),
    ("wdirt", "unit_test_auc", "unit_test_item_mean_auc", "unit_test_oracle_auc"),
])
def test_each_engine_beats_the_item_mean_and_stays_under_the_truth(learning, engine, auc, floor, ceiling):
    m = learning[engine]
    assert m[floor] < m[ceiling]  # the world leaves room between them
    assert m[floor] <= m[auc] <= m[ceiling] + ABOVE_CEILING, (m[floor], m[auc], m[ceiling])


def test_a_truth_of_another_simulation_stops_the_oracle_with_one_error(tmp_path):
    """A truth covers every response its simulation wrote; one that misses a response belongs to another run (a
    --truth or data/interim/truth left from another world), and an oracle over whichever rows match would be a
    plausible wrong number."""
    import numpy as np
    import pyarrow.parquet as pq

    from ktirt.errors import InputError
    from ktirt.truth import event_probabilities, matched

    raw, tables, _ = simulated_tables(tmp_path / "synthetic", n_students=30)
    truth = truth_dir(raw)
    p = event_probabilities(tables.events, truth)
    assert matched(p, truth, "responses") is p and np.isfinite(p).all()
    responses = pq.read_table(truth / "responses.parquet")
    pq.write_table(responses.slice(0, responses.num_rows // 2), truth / "responses.parquet")
    with pytest.raises(InputError, match=r"responses\.parquet: no true response for [\d,]+ of [\d,]+ responses"):
        matched(event_probabilities(tables.events, truth), truth, "responses")
