"""Row of each of some ids (a block's, a part's) among a large set of ids (every assignment log of a release), asked
once per block or part of a file read in parts.

The ids are held as fixed-width bytes (numpy `S`, about 10 bytes an id) in the order of a 64-bit hash of each, and
found by binary search of the hashes, then one exact comparison of the bytes: a pandas Index of the same ids held
about 95 bytes an id (its values and its hash table) and answered a block's few thousand ids ten times slower;
Arrow's hash join (`hash_rows`) builds its hash of the keys anew at each call (0.6 s for 2.24 M logs, against
0.2 s here for 600,000 ids among them); and a binary search of the bytes themselves compared text twenty times an
id (2.3 s of prepare's CPU at EDM-Cup scale). Equality is exact, byte for byte of the UTF-8 text: a found hash
counts only where the bytes are equal, and where different keys share a hash each of them is compared.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


class KeyIndex:
    """Lookups into `keys` (strings, no nulls; the first row where one repeats)."""

    def __init__(self, keys: pa.Array | pa.ChunkedArray):
        values = _utf8_bytes(keys)  # held at the keys' own width; hashed padded to whole 64-bit words
        hashes = _hashes(values)
        order = np.argsort(hashes, kind="stable")  # keys of one hash in row order: a repeated key's first row first
        self.hashes, self.sorted = hashes[order], values[order]
        self.order = order.astype(np.int32 if len(values) < 2**31 else np.int64)

    def keys(self) -> pa.Array:
        """The keys, in row order (as text)."""
        by_row = np.empty_like(self.sorted)
        by_row[self.order] = self.sorted
        keys = pa.array(by_row, pa.binary())  # from numpy's fixed-width bytes pyarrow may give chunks: one array
        return (keys.combine_chunks() if isinstance(keys, pa.ChunkedArray) else keys).cast(pa.string())

    def rows(self, values: pa.Array | pa.ChunkedArray) -> np.ndarray:
        """Row in `keys` of each value (-1 where absent or null). A dictionary array's dictionary is searched, each
        value once: a caller whose ids repeat (a unit test's log on each of its problems, its in-unit logs on each of
        its rows) encodes them first, which took prepare's unit-test phase at 140,000 students from 19.7 to 14.7 s;
        encoding distinct ids would double the search's time (600,000 of them: 0.2 -> 0.4 s)."""
        arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
        if not pa.types.is_dictionary(arr.type):
            return self._distinct_rows(arr)
        found = self._distinct_rows(arr.dictionary)
        return np.append(found, -1)[arr.indices.fill_null(-1).to_numpy(zero_copy_only=False)]

    def _distinct_rows(self, values: pa.Array) -> np.ndarray:
        found = np.full(len(values), -1, np.int64)
        if not len(self.sorted) or not len(values):
            return found
        width = self.sorted.dtype.itemsize
        fits = np.asarray(pc.fill_null(pc.less_equal(pc.binary_length(_binary(values)), width), False))
        query = _utf8_bytes(_binary(values).filter(pa.array(fits))).astype(self.sorted.dtype)  # none cut short
        hashes = _hashes(query)
        by_hash = np.argsort(hashes)  # searched in order, each search starting where the one before ended
        first, end = np.empty(len(query), np.intp), np.empty(len(query), np.intp)
        first[by_hash] = np.searchsorted(self.hashes, hashes[by_hash], "left")
        end[by_hash] = np.searchsorted(self.hashes, hashes[by_hash], "right")
        pos = np.minimum(first, len(self.sorted) - 1)
        row = np.where((end > first) & (self.sorted[pos] == query), self.order[pos], -1)
        for i in np.flatnonzero((row < 0) & (end - first > 1)):  # different keys of one hash: each compared
            same = np.flatnonzero(self.sorted[first[i]:end[i]] == query[i])
            row[i] = self.order[first[i] + same[0]] if len(same) else -1
        found[np.flatnonzero(fits)] = row
        return found


def _hashes(values: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each fixed-width value (NUL-padded to whole 64-bit words), each word mixed in by
    splitmix64's finalizer; unsigned arithmetic wraps around. Keys of one hash are still told apart by their
    bytes (KeyIndex._distinct_rows), so the hash decides only how fast."""
    width = -(-values.dtype.itemsize // 8) * 8
    words = values.astype(f"S{width}").view(np.uint64).reshape(len(values), width // 8)
    h = np.zeros(len(values), np.uint64)
    for j in range(words.shape[1]):
        h ^= words[:, j]
        h ^= h >> np.uint64(30)
        h *= np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(27)
        h *= np.uint64(0x94D049BB133111EB)
        h ^= h >> np.uint64(31)
    return h


def hash_rows(values: pa.Array | pa.ChunkedArray, keys: pa.Array) -> np.ndarray:
    """Row of each value in `keys` (-1 where absent), by Arrow's hash join (its hash of `keys` built at each call)."""
    return pc.index_in(values, value_set=keys).fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


def _binary(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary.take(arr.indices)
    return arr.cast(pa.large_binary())


def _utf8_bytes(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Fixed-width bytes of each value (numpy pads with NUL bytes, which no id holds: ktirt.sources.rows drops
    the lines that do)."""
    arr = _binary(values)
    return np.array(arr.to_numpy(zero_copy_only=False), dtype=f"S{max(1, _longest(arr))}")


def _longest(arr: pa.Array) -> int:
    return int(pc.max(pc.binary_length(arr)).as_py() or 0)
