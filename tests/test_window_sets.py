"""SAKT's windows built a batch of students at a time and held as shards (ktirt/kt/window_build.py,
window_sets.py): the same windows, floors and outcomes whatever the batching, shards read back exactly, and a run
over batches the same run as over the table."""

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

import ktirt.user_batches
from ktirt.evaluation import mean_floors
from ktirt.kt.sakt_run import SaktRun, run_sakt
from ktirt.kt.sakt_training import ModelVocab, window_tensors
from ktirt.kt.sequences import load_sequences, query_windows
from ktirt.kt.window_build import built_windows
from ktirt.kt.window_sets import widened
from ktirt.settings import ModelSettings, TrainSettings
from ktirt.user_batches import batches_of

MODEL = ModelSettings(emb_size=16, num_heads=2, num_blocks=1, dropout=0.0, seq_len=12, min_item_count=3)
TRAIN = TrainSettings(batch_size=16, lr=0.01, epochs=2, patience=2, seed=5, device="cpu", threads=1)


@pytest.fixture(scope="module")
def events_file(tiny_tables, tmp_path_factory):
    path = tmp_path_factory.mktemp("events") / "events.parquet"
    pq.write_table(tiny_tables.events, path, row_group_size=500)
    return path


def _vocab(v):
    return ModelVocab.of(v, MODEL)


def _whole(set_) -> dict:
    parts = list(set_.chunks())
    return widened({k: torch.cat([p[k] for p in parts]) for k in parts[0]})


def test_batches_and_shards_give_the_windows_of_the_whole_table(tiny_tables, split, events_file):
    events = tiny_tables.events
    seqs, vocab = load_sequences(events, split)
    mv = ModelVocab.of(vocab, MODEL)
    with built_windows(batches_of(events_file, rows=700), split, _vocab, 12, shard_windows=25, with_keys=True) as b:
        assert b.vocab.items == vocab.items and b.n_responses == events.num_rows
        assert len(b.sets["train"].shards) > 2 and any(not isinstance(s, dict) for s in b.sets["train"].shards)
        for name, stride in (("train", 12), ("val", 6), ("test", 6)):
            expected = window_tensors(seqs, query_windows(seqs, name, 12, stride), mv)
            got = _whole(b.sets[name])
            assert got.keys() == expected.keys()
            for k in expected:
                assert got[k].dtype == expected[k].dtype and torch.equal(got[k], expected[k]), (name, k)
        test = seqs.responses_of("test")
        np.testing.assert_array_equal(b.responses["test"].index, test)
        np.testing.assert_array_equal(b.responses["val"].correct, seqs.correct[seqs.responses_of("val")])
        tr = seqs.responses_of("train")
        floors = mean_floors(seqs.item[tr], seqs.skill[tr], seqs.correct[tr], seqs.item[test], seqs.skill[test])
        for ours, theirs in zip(b.floors.predict(b.responses["test"].item, b.responses["test"].skill), floors):
            np.testing.assert_array_equal(ours, theirs)
        assert len(np.unique(b.responses["test"].key_hash)) == len(test)
        assert set(b.masking_events["user_id"].to_pylist()) == set(split["test"])


def test_a_shard_read_back_and_an_epoch_order(tiny_tables, split):
    with built_windows(batches_of(tiny_tables.events), split, _vocab, 12, shard_windows=25) as one:
        whole = _whole(one.sets["train"])
        assert len(one.sets["train"].shards) == 1  # one batch: one shard, however many windows
    sizes = {}
    with built_windows(lambda: _student_batches(tiny_tables.events, 6), split, _vocab, 12, shard_windows=25) as b:
        train = b.sets["train"]
        assert len(train.shards) > 2
        rows = torch.tensor([0, len(train) - 1, int(train.sizes[0]) - 1, int(train.sizes[0]), 3])  # across shards
        got = train.take(rows)
        for k in whole:
            assert got[k].dtype == whole[k].dtype and torch.equal(got[k], whole[k][rows]), k
        order = train.order(torch.Generator().manual_seed(0))
        assert sorted(order.tolist()) == list(range(train.n_global))
        starts = np.r_[0, np.cumsum(train.global_sizes)]
        shard_of = np.searchsorted(starts, order.numpy(), side="right") - 1
        assert (np.diff(shard_of) != 0).sum() == len(train.shards) - 1  # each shard visited in one stretch
        sizes = train.global_sizes
    assert sizes.sum() == len(whole["score"])


def _student_batches(events, students: int):
    user = events["user_id"].to_numpy(zero_copy_only=False)
    starts = np.flatnonzero(np.r_[True, user[1:] != user[:-1]])
    cuts = [*starts[::students], len(user)]
    return [events.slice(lo, hi - lo) for lo, hi in zip(cuts[:-1], cuts[1:])]


def test_sakt_over_batches_is_the_run_over_the_table(tiny_tables, tiny_raw, split, events_file, monkeypatch):
    from ktirt.truth import truth_dir

    run = SaktRun(MODEL, TRAIN, truth_dir(tiny_raw))
    whole = run_sakt(tiny_tables.events, split, run)
    monkeypatch.setattr(ktirt.user_batches, "ROWS_PER_BATCH", 700)
    batched = run_sakt(events_file, split, run)
    assert batched.metrics == whole.metrics
    np.testing.assert_array_equal(batched.predictions, whole.predictions)


def test_sakt_trained_from_shards_on_disk(tiny_tables, split, events_file):
    small = TrainSettings(**(TRAIN.model_dump() | {"shard_windows": 25}))
    r = run_sakt(events_file, split, SaktRun(MODEL, small))
    assert r.metrics["test_auc"] > r.metrics["item_mean_auc"] - 0.05  # it learns, though shards reorder an epoch
    assert np.isfinite(r.predictions[r.test_index]).all()


def test_dkt_over_batches_writes_the_file_of_the_table(tiny_tables, split, events_file, monkeypatch, tmp_path):
    from ktirt.blend.dkt_run import PREDICTIONS, run_dkt
    from ktirt.settings import DKTSettings

    s = DKTSettings(hidden=8, seq_len=12, epochs=2, patience=1, seed=3, device="cpu", threads=1)
    run_dkt(tiny_tables.events, split, s).save(tmp_path / "whole")
    monkeypatch.setattr(ktirt.user_batches, "ROWS_PER_BATCH", 700)
    small = DKTSettings(**(s.model_dump() | {"shard_windows": 25}))
    batched = run_dkt(events_file, split, s)
    batched.save(tmp_path / "batched")
    assert (tmp_path / "batched" / PREDICTIONS).read_bytes() == (tmp_path / "whole" / PREDICTIONS).read_bytes()
    assert batched.predictions.num_rows == tiny_tables.events.num_rows
    sharded = run_dkt(events_file, split, small)
    assert np.isfinite(sharded.predictions["predicted"].to_numpy()).all()
