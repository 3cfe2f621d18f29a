"""Rows of a raw table that must not be counted as they stand: exact duplicates and lines with NUL bytes.

An exact duplicate (every column equal, as read) is one row written twice by an export or a careless
concatenation; kept, it would double a student's hints and attempts, or a response. It is removed once and
counted. A line holding NUL bytes is what a disk or transfer fault leaves; what it held is unknown, so it is
removed before parsing and counted as corrupt. Both work on whole columns (hashes of every row, then an
exact check of the few rows whose hashes repeat), so a 25 M-row action log costs a few seconds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ktirt.errors import InputError

_P = np.int64(-0x61C8864680B583EB)  # odd (0x9E3779B97F4A7C15 as int64): h * _P + code keeps every bit of h in play


def _column_codes(column: pa.Array) -> np.ndarray:
    """One 64-bit value per row that is equal exactly where the values are (nulls equal to each other)."""
    if pa.types.is_dictionary(column.type):
        return _filled(column.indices, -1)
    if pa.types.is_floating(column.type):
        return float_codes(_filled(column, np.nan))
    if pa.types.is_integer(column.type):
        signed = column.cast(pa.int64()) if pa.types.is_unsigned_integer(column.type) else column
        return _filled(signed, np.iinfo(np.int64).min)
    return _column_codes(column.dictionary_encode())


def float_codes(values: np.ndarray) -> np.ndarray:
    """One 64-bit value per float (NaN: missing), equal exactly where the values are: one NaN, and -0.0 == 0.0."""
    values = values.astype(np.float64, copy=False)
    return np.where(np.isnan(values), np.nan, values + 0.0).view(np.int64)


def _filled(column: pa.Array, null) -> np.ndarray:
    """The column's values, `null` where missing (its own values, not a copy, when none is)."""
    if column.null_count:
        column = column.cast(pa.int64()) if isinstance(null, int) and pa.types.is_integer(column.type) else column
        column = column.fill_null(null)
    return column.to_numpy(zero_copy_only=False)


def _row_hashes(table: pa.Table) -> np.ndarray:
    """A 64-bit hash of every row (hashed_codes), chunk by chunk. A chunk's codes must be the column's: numbers are
    their own codes and a dictionary column's chunks share one dictionary (unified), and text is dictionary-encoded
    as one column, whose chunks then share one dictionary (encoded a chunk at a time, one value had a code per
    chunk, and a row repeated in another block of a large file went unseen)."""
    h = np.zeros(table.num_rows, np.int64)  # integer arrays wrap around on overflow
    for column in table.columns:
        h *= _P
        start = 0
        if not _has_codes(column.type):
            column = pc.dictionary_encode(column)
        for chunk in column.chunks:
            h[start:start + len(chunk)] += _column_codes(chunk)
            start += len(chunk)
    return h


def hashed_codes(codes: list[np.ndarray]) -> np.ndarray:
    """A 64-bit hash of every row given its columns' codes (h = h * P + code, column after column): rows with equal
    codes have equal hashes."""
    h = np.zeros(len(codes[0]) if codes else 0, np.int64)  # integer arrays wrap around on overflow
    for code in codes:
        h *= _P
        h += code
    return h


def repeated_hashes(h: np.ndarray) -> np.ndarray:
    """Positions of the rows whose hash another row shares: the only candidates to repeat a row exactly."""
    ordered = np.sort(h)
    repeated = ordered[1:][ordered[1:] == ordered[:-1]]
    return np.flatnonzero(np.isin(h, repeated)) if len(repeated) else np.zeros(0, np.int64)


def duplicate_rows(table: pa.Table) -> np.ndarray:
    """Positions of the rows that repeat an earlier row exactly (every column equal). Dictionary columns must
    share one dictionary across chunks (Table.unify_dictionaries). Plain text columns (a file read in parts
    carries the columns read only for this rule so: ktirt/sources/csv_parts.py) are not hashed: a repeated row
    repeats the other columns, so only the rows whose hash of those repeats are compared in full."""
    if table.num_rows < 2:
        return np.zeros(0, np.int64)
    hashed = [c for c, kind in zip(table.column_names, table.schema.types) if _has_codes(kind)]
    candidates = repeated_hashes(_row_hashes(table.select(hashed) if hashed else table))
    if not len(candidates):
        return candidates
    return candidates[repeats_among(table.take(pa.array(candidates)))]


def repeats_among(rows: pa.Table) -> np.ndarray:
    """Which of `rows` repeat an earlier one of them exactly, every column compared (a mask): the exact check, on
    the few rows whose hashes repeat."""
    taken = rows.combine_chunks()
    exact = pd.DataFrame({i: _column_codes(c.chunk(0)) for i, c in enumerate(taken.columns) if c.num_chunks})
    return exact.duplicated(keep="first").to_numpy()


def _has_codes(kind: pa.DataType) -> bool:
    """A column whose values are their own codes, or whose dictionary gives them (no hashing of text)."""
    return pa.types.is_dictionary(kind) or pa.types.is_floating(kind) or pa.types.is_integer(kind)


def kept(n: int, dropped: np.ndarray) -> np.ndarray:
    """A mask of `n` rows, False at the positions `dropped` (say, duplicate_rows')."""
    keep = np.ones(n, bool)
    keep[dropped] = False
    return keep


def without_corrupt_lines(data: bytes, path) -> tuple[bytes, int]:
    """`data` (a whole CSV file) less every line holding a NUL byte, and how many lines that was."""
    b = np.frombuffer(data, np.uint8)
    nul = np.flatnonzero(b == 0)
    if not len(nul):
        return data, 0
    newlines = np.flatnonzero(b == 10)
    line = np.unique(np.searchsorted(newlines, nul))  # the line of each NUL: how many newlines come before it
    if line[0] == 0:
        raise InputError("the header line holds NUL bytes (a damaged file): restore the file", path)
    start = newlines[line - 1] + 1
    end = np.where(line < len(newlines), newlines[np.minimum(line, len(newlines) - 1)] + 1, len(b))
    delta = np.zeros(len(b) + 1, np.int32)
    np.add.at(delta, start, 1)
    np.add.at(delta, end, -1)
    keep = np.cumsum(delta[:-1]) == 0
    return b[keep].tobytes(), len(line)
