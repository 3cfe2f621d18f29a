"""Reading source CSVs with pyarrow: only the needed columns, typed on read, and one clear error
(file and column) for a missing file, a missing column, an empty table or a value that does not parse."""

from __future__ import annotations

import csv
import difflib
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ktirt.errors import InputError
from ktirt.sources.encoding import detect_encoding
from ktirt.sources.timestamps import NAT, to_utc_ms

__all__ = ["NAT", "STRING_DICT", "codes", "read_csv", "read_header", "require_unique", "to_utc_ms"]

STRING_DICT = pa.dictionary(pa.int32(), pa.string())
_NULLS = ["", "NA", "N/A", "NaN", "nan", "NULL", "null", "None"]


def read_header(path: Path) -> list[str]:
    """Column names; a UTF-8 byte-order mark is not part of the first one, even before a quoted name."""
    if not path.is_file():
        raise InputError("file not found", path)
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as f:
        header = next(csv.reader(f), None)
    if not header:
        raise InputError("file is empty (no header row)", path)
    return [h.strip() for h in header]


def read_csv(path: Path, columns: dict[str, pa.DataType], allow_empty: bool = False) -> pa.Table:
    """Read `columns` (name -> Arrow type) of a CSV; other columns are never converted.

    The whole file is decoded in one encoding, detected from all its bytes (ktirt.sources.encoding).
    A header with no rows is an error unless `allow_empty` (a file that may legitimately list nothing).
    """
    path = Path(path)
    header = read_header(path)
    missing = [c for c in columns if c not in header]
    if missing:
        hint = difflib.get_close_matches(missing[0], header, n=1)
        extra = f" (did you mean '{hint[0]}'?)" if hint else f" (columns found: {', '.join(header[:12])})"
        raise InputError("missing column" + extra, path, missing[0])
    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(encoding=detect_encoding(path), block_size=1 << 24),
            convert_options=pacsv.ConvertOptions(
                include_columns=list(columns),
                column_types=columns,
                null_values=_NULLS,
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )
    except pa.ArrowInvalid as exc:
        raise _conversion_error(path, header, exc) from None
    if table.num_rows == 0 and not allow_empty:
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
