"""Statistics over a column fed a batch at a time equal, bit for bit, numpy's and pandas' over the whole column."""

import numpy as np
import pandas as pd
import pytest

from ktirt.streaming_stats import ExactQuantiles, GroupMeans


def _batches(values: np.ndarray, rng) -> list[np.ndarray]:
    return np.array_split(values, int(rng.integers(1, 8)))


@pytest.mark.parametrize("kind", ["lognormal", "whole seconds", "signed", "one value", "nothing finite"])
def test_exact_quantiles_are_numpys(kind):
    rng = np.random.default_rng(len(kind))
    for n in (1, 2, 7, 5000):
        x = {"lognormal": lambda: rng.lognormal(9, 1.5, n), "whole seconds": lambda: np.round(rng.lognormal(9, 1.5, n), -3),
             "signed": lambda: rng.normal(0, 1, n), "one value": lambda: np.full(n, 5000.0),
             "nothing finite": lambda: np.full(n, np.nan)}[kind]()
        x[rng.random(n) < 0.1] = np.nan
        x[rng.random(n) < 0.02] = np.inf
        q = ExactQuantiles((1 / 3, 2 / 3))
        parts = _batches(x, rng)
        for p in parts:
            q.count(p)
        for p in parts:
            q.collect(p)
        finite = x[np.isfinite(x)]
        if not len(finite):
            assert q.values() is None
        else:
            assert np.array_equal(q.values(), np.quantile(finite, (1 / 3, 2 / 3))), (kind, n)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_group_means_are_pandas_to_the_last_bit(dtype):
    rng = np.random.default_rng(3)
    for n, groups in ((2, 2), (300, 4), (20_000, 37)):  # one group only: pandas sums it in float64 instead
        labels = rng.integers(0, groups, n)
        values = rng.random(n).astype(dtype)
        values[rng.random(n) < 0.1] = np.nan
        values[rng.random(n) < 0.001] = np.inf  # pandas keeps an infinity one (its compensation reset)
        means = GroupMeans(groups, dtype)
        for part in _batches(np.arange(n), rng):
            means.add(labels[part], values[part])
        want = pd.Series(values).groupby(labels).mean()
        got = means.means()[want.index.to_numpy()]
        assert got.dtype == want.dtype and np.array_equal(got, want.to_numpy(), equal_nan=True)
        # a plain float64 sum is not pandas' figure: the test can tell them apart
        plain = pd.Series(values.astype(np.float64)).groupby(labels).sum() / pd.Series(values).groupby(labels).count()
        if n == 20_000 and dtype == np.float32:
            assert not np.array_equal(plain.to_numpy().astype(dtype), want.to_numpy())
