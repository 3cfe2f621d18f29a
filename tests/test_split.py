"""User-level split: disjoint, complete, deterministic."""

import json

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
