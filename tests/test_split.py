"""User-level split: disjoint, complete, deterministic."""

import json

import pyarrow.parquet as pq
import pytest

from ktirt.errors import SettingsError
from ktirt.split import split_users


def test_disjoint_and_complete():
    users = [f"U{i:04d}" for i in range(1000)] * 3
    s = split_users(users, 0.7, 0.15, seed=7)
    parts = [set(s[k]) for k in ("train", "val", "test")]
    assert sum(map(len, parts)) == 1000 and set.union(*parts) == set(users)
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert [len(p) for p in parts] == [700, 150, 150]


def test_same_seed_same_bytes_other_seed_other_split():
    users = [f"U{i}" for i in range(500)]
    a, b = (json.dumps(split_users(users, 0.6, 0.2, seed=3)) for _ in range(2))
    assert a == b
    assert split_users(users, 0.6, 0.2, seed=4)["test"] != split_users(users, 0.6, 0.2, seed=3)["test"]
    # the input order does not matter
    assert json.dumps(split_users(users[::-1], 0.6, 0.2, seed=3)) == a


@pytest.mark.parametrize("train, val", [(0.8, 0.2), (0.9, 0.3), (0.0, 0.5), (-0.1, 0.2), (0.7, -0.1)])
def test_ratios_must_leave_a_test_set(train, val):
    with pytest.raises(SettingsError, match=r"^split\.(train|val)"):
        split_users(["a", "b", "c", "d"], train, val, seed=1)


def test_a_split_with_too_few_validation_or_test_students_stops(tmp_path, tiny_tables):
    """TINY's 80 students at 0.7 / 0.15 leave 12 validation and 12 test students: below split.min_students
    (20), one line naming the share to raise; at 5 the split is written."""
    from conftest import params_file, run_stage

    events = tmp_path / "events.parquet"
    pq.write_table(tiny_tables.events, events)
    for folder, split in (("default", {}), ("small", {"min_students": 5}), ("tiny_test", {"min_students": 5, "train": 0.9, "val": 0.09})):
        (tmp_path / folder).mkdir()
        out = tmp_path / folder / "split.json"
        r = run_stage("split", "--params", params_file(tmp_path / folder, split=split), "--events", str(events), "--out", str(out))
        if folder == "small":
            assert r.returncode == 0, r.stderr
            assert min(len(json.loads(out.read_text())[k]) for k in ("val", "test")) == 12
            continue
        errors = [line for line in r.stderr.splitlines() if line.startswith("Error:")]
        assert r.returncode != 0 and len(errors) == 1 and "Traceback" not in r.stderr and not out.exists()
        expect = {"default": "split.val: leaves 12 val students of 80, fewer than split.min_students (20)",
                  "tiny_test": "split.train + split.val: leaves 1 test students of 80, fewer than split.min_students (5)"}
        assert expect[folder] in errors[0], errors[0]
