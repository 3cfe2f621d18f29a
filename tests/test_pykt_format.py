"""pyKT's own KTDataset reads our files unchanged."""

import json
import shutil

import pandas as pd
import pytest
import torch

from ktirt.kt.pykt_format import TEST, TRAIN_VALID, write_pykt
from ktirt.kt.sequences import load_sequences

data_loader = pytest.importorskip("pykt.datasets.data_loader")


@pytest.fixture(scope="module")
def pykt_dir(tiny_tables, tmp_path_factory):
    from ktirt.split import split_users

    split = split_users(tiny_tables.events["user_id"].to_numpy(zero_copy_only=False), 0.6, 0.2, seed=3)
    seqs, vocab = load_sequences(tiny_tables.events, split)
    out = tmp_path_factory.mktemp("pykt") / "pykt"
    counts = write_pykt([seqs], seqs.split, vocab, out, seq_len=20, folds=5, seed=3)
    return out, seqs, counts


def test_files_and_config(pykt_dir, tiny_tables):
    out, seqs, counts = pykt_dir
    config = json.loads((out / "data_config.json").read_text())["ktirt"]
    n_items = len(set(tiny_tables.events["item_id"].to_pylist()))  # every item answered, the test students' too
    assert config["num_q"] == counts["num_q"] == n_items and config["maxlen"] == 20
    tv = pd.read_csv(out / TRAIN_VALID)
    assert set(tv["fold"]) == {0, 1, 2, 3, 4}
    assert set(pd.read_csv(out / TEST)["fold"]) == {-1}
    key = json.loads((out / "keyid2idx.json").read_text())
    assert sorted(key["questions"].values()) == list(range(counts["num_q"]))


def test_ktdataset_loads_our_files(pykt_dir, tmp_path, monkeypatch):
    out, seqs, counts = pykt_dir
    # CPU-only torch: pyKT builds torch.cuda tensors, and caches a .pkl beside the CSV; patch, and use a copy
    monkeypatch.setattr(data_loader, "LongTensor", torch.LongTensor)
    monkeypatch.setattr(data_loader, "FloatTensor", torch.FloatTensor)
    copy = tmp_path / "pykt"
    shutil.copytree(out, copy)
    train = data_loader.KTDataset(str(copy / TRAIN_VALID), ["questions", "concepts"], {1, 2, 3, 4})
    val = data_loader.KTDataset(str(copy / TRAIN_VALID), ["questions", "concepts"], {0})
    test = data_loader.KTDataset(str(copy / TEST), ["questions", "concepts"], {-1})
    assert len(train) + len(val) + len(test) == counts["windows"]
    targets = sum(int(d.dori["smasks"].sum()) for d in (train, val, test))
    assert targets == counts["responses"] - counts["sequences"]  # every response but each student's first
    item = train[0]
    assert item["qseqs"].shape[0] == 19 and item["smasks"].dtype == torch.bool
