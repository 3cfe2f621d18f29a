"""Windowing: pyKT's files and our query windows cover every response exactly once, none dropped."""

import numpy as np
import pyarrow as pa
import pytest

from ktirt.errors import InputError
from ktirt.kt.sequences import load_sequences, pykt_windows, query_windows


def toy_events(lengths, item_of=lambda u, i: f"I{(u + i) % 5}"):
    rows = [(f"U{u}", item_of(u, i), i) for u, n in enumerate(lengths) for i in range(n)]
    users, items, t = zip(*rows)
    return pa.table({
        "user_id": list(users), "item_id": list(items),
        "skill_ids": pa.array([["S1"] if int(x[1:]) % 2 else [] for x in items], pa.list_(pa.string())),
        "timestamp": pa.array(np.array(t, dtype=np.int64), pa.timestamp("ms", tz="UTC")),
        "correct": pa.array(np.array(t, dtype=np.int8) % 2),
    })


LENGTHS = [1, 2, 6, 7, 8, 13, 25]
SPLIT = {"seed": 0, "train": ["U0", "U1", "U2", "U3"], "val": ["U4"], "test": ["U5", "U6"]}


@pytest.mark.parametrize("L", [2, 3, 7])
def test_pykt_selectmasks_own_every_response_once(L):
    seqs, _ = load_sequences(toy_events(LENGTHS), SPLIT)
    w = pykt_windows(seqs, np.arange(len(LENGTHS)), L)
    assert w.index.shape[1] == L
    owned = w.index[w.score]
    assert sorted(owned.tolist()) == list(range(sum(LENGTHS)))  # each response exactly once, none dropped
    # pyKT scores positions 1.. of a window: every response but a student's first is a target exactly once
    targets = w.index[:, 1:][w.score[:, 1:]]
    firsts = seqs.offsets[:-1]
    assert sorted(targets.tolist()) == sorted(set(range(sum(LENGTHS))) - set(firsts.tolist()))
    # windows are consecutive: each continuation window starts with its predecessor's last response
    for a, b in zip(w.index[:-1], w.index[1:]):
        if b[0] >= 0 and seqs.user_of[b[0]] == seqs.user_of[a[0]]:
            assert b[0] == a[-1]


@pytest.mark.parametrize("L, stride", [(4, 4), (4, 2), (6, 3), (5, 1)])
def test_query_windows_score_once_with_context(L, stride):
    seqs, _ = load_sequences(toy_events(LENGTHS), SPLIT)
    for split in ("train", "val", "test"):
        w = query_windows(seqs, split, L, stride)
        scored = np.sort(w.index[w.score])
        assert scored.tolist() == seqs.responses_of(split).tolist()
        pos = np.nonzero(w.score)[1]
        history = w.index[w.score] - seqs.offsets[seqs.user_of[w.index[w.score]]]
        assert (np.minimum(history, L - stride) <= pos).all()  # context: its whole history or >= L - stride


def test_bad_splits_are_refused():
    events = toy_events(LENGTHS)
    with pytest.raises(InputError, match="users are in no split, e.g. 'U6'"):
        load_sequences(events, {**SPLIT, "test": ["U5"]})
    with pytest.raises(InputError, match="split 'val' is empty"):
        load_sequences(events, {**SPLIT, "val": []})


def test_vocabulary_puts_training_items_first():
    events = toy_events([5, 5, 5], item_of=lambda u, i: f"I{u}{i}")
    seqs, vocab = load_sequences(events, {"seed": 0, "train": ["U0"], "val": ["U1"], "test": ["U2"]})
    assert vocab.items[: vocab.n_train_items] == [f"I0{i}" for i in range(5)]
    assert (seqs.item[seqs.responses_of("test")] >= vocab.n_train_items).all()
