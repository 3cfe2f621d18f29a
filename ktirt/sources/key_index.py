"""Row of each of some ids (a block's, a part's) among a large set of ids (every assignment log of a release), asked
once per block or part of a file read in parts.

The ids are held sorted as fixed-width bytes (numpy `S`, about 10 bytes an id) and found by binary search: a pandas
Index of the same ids held about 95 bytes an id (its values and its hash table) and answered a block's few thousand
ids ten times slower, and Arrow's hash join (`hash_rows`) builds its hash of the keys anew at each call (0.6 s for
2.24 M logs, against 0.2 s here for 600,000 ids among them). Equality is exact, byte for byte of the UTF-8 text.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


class KeyIndex:
    """Lookups into `keys` (strings, no nulls; the first row where one repeats)."""

    def __init__(self, keys: pa.Array | pa.ChunkedArray):
        values = _utf8_bytes(keys)
        self.order = np.argsort(values, kind="stable").astype(np.int32 if len(values) < 2**31 else np.int64)
        self.sorted = values[self.order]

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
        query = _utf8_bytes(_binary(values).filter(pa.array(fits))).astype(self.sorted.dtype)  # no value cut short
        by_value = np.argsort(query)  # searched in order (200,000 values among 2.24 M keys: 133 -> 50 ms)
        pos = np.empty(len(query), np.intp)
        pos[by_value] = np.minimum(np.searchsorted(self.sorted, query[by_value]), len(self.sorted) - 1)
        found[np.flatnonzero(fits)] = np.where(self.sorted[pos] == query, self.order[pos], -1)
        return found


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
