"""Reading events.parquet a batch of whole students at a time (ktirt/user_batches.py): the stages that read it so
(split, pykt_adapt) give the same bytes as from the table held whole."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest
from conftest import params_file, run_stage

from ktirt.errors import InputError
from ktirt.io import event_users, write_parquet
from ktirt.kt.sequences import load_sequences
from ktirt.split import split_users
from ktirt.user_batches import user_batches
from ktirt.vocab import Vocabulary


@pytest.fixture(scope="module")
def events_file(tiny_tables, tmp_path_factory):
    path = tmp_path_factory.mktemp("batches") / "events.parquet"
    write_parquet(tiny_tables.events, path, row_group_size=100)
    return path


@pytest.mark.parametrize("rows", [1, 7, 100, 10**6])
def test_batches_hold_whole_students_in_file_order(events_file, tiny_tables, rows):
    batches = list(user_batches(events_file, rows=rows))
    assert pa.concat_tables(batches).equals(tiny_tables.events)
    users = [b["user_id"].to_pylist() for b in batches]
    assert all(len(set(u)) >= 1 for u in users)
    seen = [set(u) for u in users]
    assert all(not (a & b) for i, a in enumerate(seen) for b in seen[i + 1:])  # no student in two batches


def test_a_student_seen_again_after_another_stops_with_one_line(tiny_tables, tmp_path):
    ev = tiny_tables.events
    first = ev["user_id"][0].as_py()
    rows = np.flatnonzero(ev["user_id"].to_numpy(zero_copy_only=False) == first)
    moved = pa.concat_tables([ev.slice(len(rows)), ev.slice(0, 1)])  # one of the first student's rows at the end
    write_parquet(moved, tmp_path / "events.parquet")
    with pytest.raises(InputError, match="not sorted by user_id"):
        list(user_batches(tmp_path / "events.parquet", rows=50))


def test_vocabulary_from_batches_is_the_one_built_whole(events_file, tiny_tables):
    users = tiny_tables.events["user_id"].to_numpy(zero_copy_only=False)
    split = split_users(users, 0.6, 0.2, seed=3)
    _, whole = load_sequences(tiny_tables.events, split)
    batched = Vocabulary.from_batches(user_batches(events_file, ["user_id", "item_id", "skill_ids"], rows=37),
                                      split["train"])
    assert (batched.items, batched.skills, batched.n_train_items, batched.n_train_skills) == \
        (whole.items, whole.skills, whole.n_train_items, whole.n_train_skills)
    assert batched.item_train_count.tolist() == whole.item_train_count.tolist()
    assert event_users(events_file).tolist() == sorted(set(users.tolist()))


def test_pykt_adapt_writes_the_same_bytes_a_batch_at_a_time(events_file, tiny_tables, tmp_path, monkeypatch):
    import ktirt.user_batches as ub

    split = split_users(tiny_tables.events["user_id"].to_numpy(zero_copy_only=False), 0.6, 0.2, seed=3)
    (tmp_path / "split.json").write_text(json.dumps(split))
    params = params_file(tmp_path, pykt={"seq_len": 20, "folds": 5})
    outputs = {}
    for rows in (10**6, 45):
        monkeypatch.setattr(ub, "ROWS_PER_BATCH", rows)
        out = tmp_path / str(rows)
        r = run_stage("pykt_adapt", "--params", params, "--events", str(events_file), "--split",
                      str(tmp_path / "split.json"), "--out", str(out / "pykt"), "--metrics", str(out / "m.json"))
        assert r.returncode == 0, r.stderr
        outputs[rows] = {f: (out / "pykt" / f).read_bytes() for f in ("train_valid_sequences.csv", "test_sequences.csv",
                                                                      "keyid2idx.json")}
        outputs[rows]["metrics"] = (out / "m.json").read_bytes()
    assert outputs[45] == outputs[10**6]
    assert json.loads(outputs[45]["metrics"])["responses"] == tiny_tables.events.num_rows
