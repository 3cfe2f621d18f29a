"""Statistics of a column read a batch at a time, in memory that does not grow with the column, equal to the
last bit to what numpy or pandas give over the whole column: a stage that streams the log publishes the numbers
it published when it held the log.

Quantiles (`ExactQuantiles`, `np.quantile`'s linear interpolation) take two passes. The first counts the values in 2**20 bins of their order-preserving 64-bit pattern (a bin spans a
256th of a power of two); the bins holding the order statistics the quantiles need are then known, and the
second pass keeps only the distinct values in those bins, with their counts."""

from __future__ import annotations

import numpy as np

BIN_BITS = 20
"""the bins' count as a power of two (8 MB of counts)"""


def _ordered_bins(values: np.ndarray) -> np.ndarray:
    """The bin of each float: the top BIN_BITS of its bit pattern flipped so that unsigned order is numeric order."""
    bits = np.ascontiguousarray(values, dtype=np.float64).view(np.uint64)
    key = np.where(bits >> np.uint64(63), ~bits, bits | np.uint64(1 << 63))
    return (key >> np.uint64(64 - BIN_BITS)).astype(np.int64)


class ExactQuantiles:
    """`np.quantile(finite values, qs)`: feed every batch to `count`, then every batch again to `collect`, then
    read `values()` (None when no value is finite). Non-finite values are left out, as a caller's mask would."""

    def __init__(self, qs: tuple[float, ...]):
        self.qs = np.asarray(qs, dtype=np.float64)
        self.counts = np.zeros(1 << BIN_BITS, dtype=np.int64)
        self.kept: dict[int, list[tuple[np.ndarray, np.ndarray]]] | None = None

    def count(self, values: np.ndarray) -> None:
        v = values[np.isfinite(values)]
        self.counts += np.bincount(_ordered_bins(v), minlength=len(self.counts))

    @property
    def n(self) -> int:
        return int(self.counts.sum())

    def _ranks(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per quantile: the ranks (0-based) of the two order statistics it interpolates, and the weight of the
        second, computed as numpy computes them."""
        virtual = (self.n - 1) * self.qs
        below = np.floor(virtual)
        above = np.minimum(below + 1, self.n - 1)
        return below.astype(np.int64), above.astype(np.int64), virtual - below

    def collect(self, values: np.ndarray) -> None:
        if self.kept is None:
            below, above, _ = self._ranks()
            ends = np.cumsum(self.counts)
            self.kept = {int(b): [] for b in np.searchsorted(ends, np.r_[below, above], side="right")}
        v = values[np.isfinite(values)]
        bins = _ordered_bins(v)
        for b, parts in self.kept.items():
            distinct, counts = np.unique(v[bins == b], return_counts=True)
            if len(distinct):
                parts.append((distinct, counts))

    def values(self) -> np.ndarray | None:
        if not self.n:
            return None
        below, above, weight = self._ranks()
        first = np.r_[0, np.cumsum(self.counts)[:-1]]  # rank of each bin's smallest value
        out = []
        for lo, hi, w in zip(below, above, weight):
            pair = np.array([self._at(int(lo), first), self._at(int(hi), first)])
            out.append(np.quantile(pair, w))  # numpy's own interpolation between the two, same weight
        return np.array(out)

    def _at(self, rank: int, first: np.ndarray) -> float:
        """The value of the given rank, from the distinct values kept in its bin."""
        b = int(np.searchsorted(first + self.counts, rank, side="right"))
        parts = self.kept[b]
        distinct = np.concatenate([d for d, _ in parts])
        counts = np.concatenate([c for _, c in parts])
        order = np.argsort(distinct, kind="stable")
        ends = np.cumsum(counts[order])  # repeats of one value across batches simply add up
        return float(distinct[order][np.searchsorted(ends, rank - first[b], side="right")])


class GroupMeans:
    """`pandas.Series.groupby(labels).mean()` over rows fed a batch at a time, in order: pandas sums each group in
    the column's own float type with Kahan's compensation, row after row, NaN left out; the same sums are carried
    here from batch to batch (each batch's rows taken a round at a time: every group's j-th row at once).
    `labels`: group numbers 0..n_groups-1. (Where only one group has rows, pandas averages it in float64 instead:
    a float32 column's mean may then differ in its last bits.)"""

    def __init__(self, n_groups: int, dtype=np.float64):
        self.dtype = np.dtype(dtype)
        self.sum = np.zeros(n_groups, self.dtype)
        self.compensation = np.zeros(n_groups, self.dtype)
        self.n = np.zeros(n_groups, np.int64)

    def add(self, labels: np.ndarray, values: np.ndarray) -> None:
        values = np.asarray(values).astype(self.dtype)
        ok = ~np.isnan(values)
        order = np.argsort(labels[ok], kind="stable")
        label, value = labels[ok][order], values[ok][order]
        counts = np.bincount(label, minlength=len(self.sum))
        starts = np.r_[0, np.cumsum(counts)[:-1]]
        with np.errstate(invalid="ignore"):  # inf - inf: the NaN compensation pandas resets
            for j in range(int(counts.max(initial=0))):
                g = np.flatnonzero(counts > j)
                y = value[starts[g] + j] - self.compensation[g]
                t = self.sum[g] + y
                c = (t - self.sum[g]) - y
                self.compensation[g] = np.where(np.isnan(c), 0, c)  # so an infinity stays one
                self.sum[g] = t
        self.n += counts

    def means(self) -> np.ndarray:
        """Per group, its mean in the column's type (NaN where it had no value)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.n > 0, self.sum / np.maximum(self.n, 1), np.nan).astype(self.dtype)
