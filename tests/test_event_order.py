"""The events' row order (ktirt/events.py: sort_events) comes from np.lexsort over fewer, packed keys
(packed_keys): the order must be exactly the one the unpacked keys give, ties kept in their rows' order. A part's
visits are numbered in the order they first appear (edm_actions._factorized_runs), as pd.factorize numbers them."""

import numpy as np
import pandas as pd
import pytest

from ktirt.events import packed_keys
from ktirt.sources.edm_actions import _factorized_runs

I64 = np.iinfo(np.int64)


@pytest.mark.parametrize("seed", range(5))
def test_packed_keys_give_lexsorts_order(seed):
    rng = np.random.default_rng(seed)
    for _ in range(100):
        n = int(rng.integers(0, 400))
        keys = [rng.integers(-5, int(rng.choice([2, 1000, 1 << 40, 1 << 61])), n) for _ in range(int(rng.integers(1, 5)))]
        assert np.array_equal(np.lexsort(keys), np.lexsort(packed_keys(keys)))


def test_keys_too_wide_to_pack_and_other_kinds_are_kept():
    rng = np.random.default_rng(7)
    wide = rng.choice(np.array([I64.min, -1, 0, 5, I64.max]), 500)  # a span of 2^64: packing it would wrap
    small = rng.integers(0, 3, 500)
    flags = rng.random(500) < 0.5
    for keys in ([small, wide, small], [wide, small], [flags, small], [small, wide]):
        assert np.array_equal(np.lexsort(keys), np.lexsort(packed_keys(keys)))
    times = rng.random(500)
    assert packed_keys([small, times])[1] is times  # floats are not packed
    assert len(packed_keys([small, small, small])) == 1


def test_unsigned_64_bit_keys_are_sorted_as_they_are():
    keys = [np.array([2**63 + 5, 2**63 + 1, 3], np.uint64), np.array([1, 0, 1])]
    assert np.array_equal(np.lexsort(keys), np.lexsort(packed_keys(keys)))


@pytest.mark.parametrize("seed", range(4))
def test_visits_grouped_by_runs_get_pd_factorizes_codes(seed):
    """edm_actions._factorized_runs == pd.factorize, including keys met again after other keys (a revisit)."""
    rng = np.random.default_rng(seed)
    keys = rng.integers(0, [5, 1 << 40][seed % 2], rng.integers(0, 2000))
    key = np.repeat(keys, rng.integers(1, 6, len(keys)))
    codes, uniq = _factorized_runs(key)
    want_codes, want_uniq = pd.factorize(key)
    assert np.array_equal(codes, want_codes) and np.array_equal(uniq, want_uniq)
