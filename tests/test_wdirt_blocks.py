"""WD-IRT a block of students at a time (ktirt/irt/target_blocks.py): the blocks hold the targets the whole table
gives, the calibration over blocks is the one over arrays, and a run over many blocks scores like a run over one."""

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from ktirt.catalog import item_text, item_types
from ktirt.features.history import N_CONTEXTS, N_STATIC, N_SUMMARY
from ktirt.io import write_parquet
from ktirt.irt.calibration import calibrate, calibrate_items
from ktirt.irt.catalog import Catalog
from ktirt.irt.target_blocks import BlockResponses, LogSource, TargetBlocks, gather
from ktirt.irt.targets import build_targets
from ktirt.irt.wdirt_run import WDIRTSettings, run_wdirt
from ktirt.models.wdirt import WDIRTConfig, WideDeepIRT

FAST = dict(history_len=8, hidden=16, epochs=3, patience=2, batch_size=256, lr=0.02, seed=3, threads=1,
            drift_min_responses=5, prior_strength=1.0)
ROWS = 300  # events a block: the tiny world's 1,660 events in several blocks


@pytest.fixture(scope="module")
def files(tiny_tables, tmp_path_factory):
    folder = tmp_path_factory.mktemp("blocks")
    write_parquet(tiny_tables.events, folder / "events.parquet")
    write_parquet(tiny_tables.unit_tests, folder / "unit_tests.parquet")
    return folder / "events.parquet", folder / "unit_tests.parquet"


@pytest.fixture(scope="module")
def blocks(files, tiny_tables, split, tmp_path_factory):
    source = LogSource(*files, ROWS)
    cat, stats, n_users = gather(source, split, item_types(tiny_tables.items), item_text(tiny_tables.items))
    return TargetBlocks.build(source, split, cat, stats, n_users, 6, tmp_path_factory.mktemp("targets"))


def test_blocks_hold_the_targets_of_the_whole_table(blocks, tiny_tables, split):
    events, unit_tests = tiny_tables.events, tiny_tables.unit_tests
    cat = Catalog(events, unit_tests, item_types(tiny_tables.items), item_text(tiny_tables.items))
    assert blocks.cat.items == cat.items and blocks.cat.types == cat.types
    assert np.array_equal(blocks.cat.item_skills, cat.item_skills)
    ev, whole = build_targets(events, unit_tests, split, cat, 6)
    assert len(blocks) > 3 and sum(blocks.sizes) == len(whole.y)
    t = blocks.targets()
    # each block holds its students' events, then their unit-test scores: the whole table's targets, reordered
    mine = np.lexsort((t.source_row, t.kind))
    theirs = np.lexsort((whole.source_row, whole.kind))
    for name in ("kind", "student", "item", "skills", "timestamp_ms", "y", "split", "summary", "source_row"):
        assert np.array_equal(getattr(t, name)[mine], getattr(whole, name)[theirs]), name
    assert list(blocks.users) == list(whole.users)
    # a history is a block's own events: the same events as in the whole table's
    start = 0
    for k in range(len(blocks)):
        block_ev, bt = blocks.load(k)
        h = bt.history()
        first_event = int(np.searchsorted(ev.user, bt.student[bt.kind == 0].min())) if (bt.kind == 0).any() else 0
        events_in = bt.source_row[bt.kind == 0]
        assert np.array_equal(events_in, np.arange(first_event, first_event + len(events_in)))
        rows = np.flatnonzero(bt.kind == 0)
        whole_h = whole.history(events_in)
        assert np.array_equal(np.where(h[rows] >= 0, h[rows] + first_event, -1), whole_h)
        start += blocks.sizes[k]


def test_the_calibration_over_blocks_is_the_one_over_arrays(blocks):
    t = blocks.targets()
    for k in range(len(blocks)):
        blocks.put(k, "theta", np.zeros(blocks.sizes[k], np.float32))
    train = t.split == 0
    responses = BlockResponses(blocks, "train", lambda k: np.flatnonzero(blocks.fields(k, "split")[0] == 0))

    def model():
        cat = blocks.cat
        torch.manual_seed(0)
        return WideDeepIRT(WDIRTConfig(n_items=len(cat.items), n_skills=len(cat.skills), n_features=N_STATIC,
                                       n_contexts=N_CONTEXTS, n_summary=N_SUMMARY, text_dim=cat.text.shape[1]),
                           torch.as_tensor(cat.item_skills),
                           torch.as_tensor(cat.guessable), torch.as_tensor(cat.text))

    arrays = calibrate_items(model(), t.student[train], t.summary[train, 1], t.item[train], t.y[train], 1.0,
                             skill_prior_strength=1.0)
    by_block = calibrate(model(), responses, responses.n_students, 1.0, skill_prior_strength=1.0)
    # the same sums added in another grouping: the fit stops within its tolerance (1e-9 on the loss) of the other
    assert by_block.loss == pytest.approx(arrays.loss, rel=1e-7)
    np.testing.assert_allclose(by_block.intercept, arrays.intercept, atol=1e-4)


def test_a_run_over_many_blocks_scores_like_a_run_over_one(files, tiny_tables, split):
    one = run_wdirt(tiny_tables.events, tiny_tables.unit_tests, split, WDIRTSettings(**FAST))
    many = run_wdirt(*files, split, WDIRTSettings(**FAST, block_events=ROWS))
    # the events' predictions line up with events.parquet, row for row
    keys = ["user_id", "item_id", "timestamp"]
    assert many.event_predictions.select(keys).equals(pq.read_table(files[0], columns=keys))
    assert list(many.item_params["item_id"]) == list(one.item_params["item_id"])
    for name in ("in_unit_auc", "unit_test_auc"):  # another batch order: the same fit up to its noise
        assert many.metrics[name] == pytest.approx(one.metrics[name], abs=0.02), name
    for name in ("items", "items_in_events", "unit_test_scores", "in_unit_test_responses", "in_unit_item_mean_auc",
                 "unit_test_item_mean_auc", "item_coverage_of_events"):
        assert many.metrics[name] == one.metrics[name], name
