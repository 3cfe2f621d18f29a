"""Reading source CSVs with pyarrow: only the needed columns, typed on read, and one clear error
(file and column) for a missing file, a missing column, an empty table or a value that does not parse."""

from __future__ import annotations

import csv
import difflib
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ktirt.errors import InputError

STRING_DICT = pa.dictionary(pa.int32(), pa.string())
_NULLS = ["", "NA", "N/A", "NaN", "nan", "NULL", "null", "None"]


def read_header(path: Path, encoding: str = "utf8") -> list[str]:
    if not path.is_file():
        raise InputError("file not found", path)
    with open(path, newline="", encoding="utf-8" if encoding == "utf8" else encoding, errors="replace") as f:
        header = next(csv.reader(f), None)
    if not header:
        raise InputError("file is empty (no header row)", path)
    return [h.strip().lstrip("\ufeff") for h in header]


def read_csv(path: Path, columns: dict[str, pa.DataType]) -> pa.Table:
    """Read `columns` (name -> Arrow type) of a CSV; other columns are never converted.

    Tries UTF-8 first and falls back to latin-1, the encoding several ASSISTments releases use.
    """
    path = Path(path)
    header = read_header(path)
    missing = [c for c in columns if c not in header]
    if missing:
        hint = difflib.get_close_matches(missing[0], header, n=1)
        extra = f" (did you mean '{hint[0]}'?)" if hint else f" (columns found: {', '.join(header[:12])})"
        raise InputError("missing column" + extra, path, missing[0])
    for encoding in ("utf8", "latin-1"):
        try:
            table = pacsv.read_csv(
                path,
                read_options=pacsv.ReadOptions(encoding=encoding, block_size=1 << 24),
                convert_options=pacsv.ConvertOptions(
                    include_columns=list(columns),
                    column_types=columns,
                    null_values=_NULLS,
                    strings_can_be_null=True,
                    quoted_strings_can_be_null=True,
                ),
            )
            break
        except pa.ArrowInvalid as exc:
            if encoding == "utf8" and "UTF8" in str(exc):
                continue
            raise _conversion_error(path, header, exc) from None
    if table.num_rows == 0:
        raise InputError("table has a header but no rows", path)
    return table


def _conversion_error(path: Path, header: list[str], exc: Exception) -> InputError:
    text = str(exc)
    m = re.search(r"CSV column #(\d+)", text)
    column = header[int(m.group(1))] if m and int(m.group(1)) < len(header) else None
    value = re.search(r"invalid value '([^']*)'", text)
    detail = f"value '{value.group(1)}' does not parse" if value else text.splitlines()[0]
    return InputError(detail, path, column)


def codes(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, pa.Array]:
    """Dense integer codes (-1 for null) and the distinct values of a string column."""
    # combine_chunks unifies the per-block dictionaries of a CSV read into one
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if not pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_encode()
    idx = arr.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    return idx, arr.dictionary


def require_unique(values: pa.ChunkedArray | pa.Array, path: Path, column: str, what: str = "keys") -> None:
    """Lookup tables must have one row per key, or joins silently multiply rows."""
    counts = pc.value_counts(values)
    dup = counts.filter(pc.greater(counts.field("counts"), 1))
    if len(dup):
        example = str(dup.field("values")[0]).replace("\x1f", ", ")
        raise InputError(f"{len(dup)} duplicate {what}, e.g. '{example}'", path, column)


def to_utc_ms(values: pa.ChunkedArray | pa.Array, path: Path, column: str) -> np.ndarray:
    """Timestamps as int64 ms since the epoch (UTC), NaT as the int64 minimum.

    Accepts unix seconds (the EDM Cup action logs) or date-time strings (naive ones are taken as UTC).
    """
    arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    if pa.types.is_floating(arr.type) or pa.types.is_integer(arr.type):
        sec = arr.to_numpy(zero_copy_only=False).astype(np.float64)
        out = np.full(len(sec), np.iinfo(np.int64).min, dtype=np.int64)
        ok = np.isfinite(sec)
        out[ok] = np.round(sec[ok] * 1000.0).astype(np.int64)
        return out
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(pa.string())
    try:
        return to_utc_ms(pc.cast(arr, pa.float64()), path, column)  # numbers written as text
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    try:
        ts = pd.to_datetime(pd.Series(arr.to_pandas(), dtype=object), utc=True, format="mixed")
    except (ValueError, TypeError) as exc:
        raise InputError(f"timestamps do not parse ({str(exc).splitlines()[0]})", path, column) from None
    return ts.dt.tz_convert(None).to_numpy(dtype="datetime64[ms]").view(np.int64)


NAT = np.iinfo(np.int64).min
