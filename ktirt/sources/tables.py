"""Reading source CSVs with pyarrow: only the needed columns kept, typed on read, and one clear error
(file and column) for a missing or unreadable file, a missing or repeated column, an empty table or a value
that does not parse. Every table is read the same way: one encoding per file (ktirt.sources.encoding), lines
with NUL bytes and exact duplicate rows removed and counted (ktirt.sources.rows), id columns under the one id
rule (ktirt.sources.ids). What the reading found is kept in the adapter's `Ledger` for the metrics."""

from __future__ import annotations

import csv
import difflib
import logging
import re
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ktirt.errors import InputError
from ktirt.sources.encoding import scan
from ktirt.sources.files import check_file
from ktirt.sources.ids import normalise_ids
from ktirt.sources.rows import duplicate_rows, kept, without_corrupt_lines
from ktirt.sources.timestamps import NAT, to_utc_ms

__all__ = ["NAT", "NULL_VALUES", "STRING_DICT", "Ledger", "codes", "read_csv", "read_header", "reading", "require_unique", "to_utc_ms"]

log = logging.getLogger(__name__)
STRING_DICT = pa.dictionary(pa.int32(), pa.string())
BYTES_DICT = pa.dictionary(pa.int32(), pa.binary())
NULL_VALUES = ["", "NA", "N/A", "NaN", "nan", "NULL", "null", "None"]
"""what every source CSV reader reads as a missing value"""
_DATE_TEXT = re.compile(r"^\s*\d{1,4}[-/]\d{1,2}[-/]\d{1,4}")


@dataclass
class Ledger:
    """What reading one source's raw files found, per file name: the encoding chosen, exact duplicate rows
    and corrupt (NUL) lines removed. Numbers for metrics/prepare.json, never silent."""

    encodings: dict[str, str] = field(default_factory=dict)
    duplicate_rows: dict[str, int] = field(default_factory=dict)
    corrupt_rows: dict[str, int] = field(default_factory=dict)

    def duplicates(self, table: pa.Table, name: str) -> np.ndarray:
        """Positions of `table`'s rows that repeat an earlier row exactly, added to file `name`'s count."""
        repeated = duplicate_rows(table)
        self.duplicate_rows[name] = self.duplicate_rows.get(name, 0) + len(repeated)
        return repeated

    def dropped(self) -> dict[str, int]:
        """The `dropped` counts: rows removed from any raw table, by reason."""
        return {"duplicate_rows": sum(self.duplicate_rows.values()), "corrupt_rows": sum(self.corrupt_rows.values())}

    def facts(self) -> dict[str, int]:
        """Per-file detail for the sanity block: files not in UTF-8 (each named), tables with removed rows."""
        out = {"files_not_utf8": sum(e != "utf8" for e in self.encodings.values())}
        out |= {f"read_as_{e}_{Path(n).stem}": 1 for n, e in sorted(self.encodings.items()) if e != "utf8"}
        out |= {f"duplicate_rows_{Path(n).stem}": k for n, k in sorted(self.duplicate_rows.items()) if k}
        return out | {f"corrupt_rows_{Path(n).stem}": k for n, k in sorted(self.corrupt_rows.items()) if k}


_LEDGER: ContextVar[Ledger | None] = ContextVar("ktirt_sources_ledger", default=None)


@contextmanager
def reading(ledger: Ledger | None = None) -> Iterator[Ledger]:
    """Collect what every read_csv inside the block finds (an adapter's `load` opens one) in a new ledger, or in
    `ledger` (an adapter reading more files later, into the same one)."""
    ledger = ledger or Ledger()
    token = _LEDGER.set(ledger)
    try:
        yield ledger
    finally:
        _LEDGER.reset(token)


def current_ledger() -> Ledger:
    """The ledger of the `reading` block around the caller (a fresh one outside any)."""
    return _LEDGER.get() or Ledger()


def read_header(path: Path) -> list[str]:
    """Column names; a UTF-8 byte-order mark is not part of the first one, even before a quoted name. A
    repeated name stops the run: which of the two columns a reader takes would be a guess."""
    path = Path(path)
    check_file(path)
    encoding = scan(path).encoding
    with open(path, "rb") as f:
        if b"\0" in f.readline():
            raise InputError("the header line holds NUL bytes (a damaged file): restore the file", path)
    with open(path, newline="", encoding="utf-8-sig" if encoding == "utf8" else encoding, errors="replace") as f:
        header = next(csv.reader(f), None)
    if not header:
        raise InputError("file is empty (no header row)", path)
    header = [h.strip() for h in header]
    first: dict[str, int] = {}
    for i, name in enumerate(header):
        if name in first:
            where = f"columns {first[name] + 1} and {i + 1}"
            if not name:
                raise InputError(f"two columns have no name in the header ({where})", path)
            raise InputError(f"appears twice in the header ({where}); rename or remove one", path, name)
        first[name] = i
    return header


def read_csv(path: Path, columns: dict[str, pa.DataType], allow_empty: bool = False, ids: tuple[str, ...] = (),
             drop_duplicates: bool = True, forms: dict[str, str] | None = None, key: str | None = None) -> pa.Table:
    """Read `columns` (name -> Arrow type) of a CSV; other columns are never converted.

    `ids`: columns read under the one id rule (ktirt.sources.ids). `drop_duplicates`: remove and count rows
    repeating an earlier row in every column (a lookup read again for another column passes False: a repeated
    row changes nothing there). `key`: a lookup table's key column (text, one of `columns`), which an exact
    duplicate repeats: only the columns asked for are parsed, and the rows whose key repeats are read again in full
    to find the duplicates among them (_without_keyed_duplicates); the result is the same. `forms`: what a column
    holds, for the message when a value does not parse. A header with no rows is an error unless `allow_empty` (a
    file that may legitimately list nothing).
    """
    path = Path(path)
    header = checked_header(path, columns)
    every_column = drop_duplicates and key is None  # the duplicate rule over every column as parsed (`finished`)
    types = all_types(header, columns) if every_column else columns
    source, corrupt = opened(path)
    try:
        table = pacsv.read_csv(source, read_options=read_options(path, header), convert_options=convert_options(types))
    except pa.ArrowInvalid as exc:
        raise conversion_error(path, header, exc, forms or {}) from None
    ledger = current_ledger()
    ledger.encodings[path.name] = scan(path).encoding
    ledger.corrupt_rows[path.name] = corrupt
    if drop_duplicates:
        ledger.duplicate_rows[path.name] = 0
    if drop_duplicates and key is not None:
        table = _without_keyed_duplicates(table.unify_dictionaries(), source, path, header, columns, key, ledger)
    table = finished(table, path, columns, ids, ledger if every_column else None)
    if table.num_rows == 0 and not allow_empty:
        raise InputError("table has a header but no rows", path)
    return table


def _without_keyed_duplicates(table: pa.Table, source, path: Path, header: list[str], columns: dict[str, pa.DataType],
                              key: str, ledger: Ledger) -> pa.Table:
    """`table` (the columns asked for) less the rows that repeat an earlier row in every column of the file, counted
    in `ledger`. Such a row repeats its key, so only the rows whose key repeats (usually none) are read again, a
    block at a time, with every column (as text, so that a block's rows taken keep no dictionary of the whole
    block): at 140,000 students, parsing all nine columns of assignment_details.csv to find none peaked 0.56 GiB
    above what the process held before; this way, 0.36."""
    if columns[key] != pa.string():
        raise ValueError(f"read_csv's key must be a text column; {key} is {columns[key]}")
    repeated_keys = repeated_values(table[key])  # a null key is one value, as in duplicate_rows
    if not len(repeated_keys):
        return table
    candidates = np.flatnonzero(pc.is_in(table[key], value_set=repeated_keys, skip_nulls=False).combine_chunks())
    if isinstance(source, pa.NativeFile):
        source.seek(0)  # the file's bytes without its corrupt lines (opened): read them again
    as_text = {c: columns.get(c, pa.string()) for c in header}
    full, start = [], 0
    for block in csv_blocks(source, path, header, as_text, {}):
        lo, hi = np.searchsorted(candidates, [start, start + block.num_rows])
        full.append(block.take(pa.array(candidates[lo:hi] - start)))
        start += block.num_rows
    if start != table.num_rows:
        raise InputError(f"the file changed while it was read ({table.num_rows} rows, then {start})", path)
    repeated = candidates[ledger.duplicates(pa.Table.from_batches(full).unify_dictionaries(), path.name)]
    warn_duplicates(path, len(repeated))
    return table.filter(pa.array(kept(table.num_rows, repeated))) if len(repeated) else table


def checked_header(path: Path, columns: dict[str, pa.DataType]) -> list[str]:
    """The header, which must name every column asked for (else the closest name found is suggested)."""
    header = read_header(path)
    missing = [c for c in columns if c not in header]
    if missing:
        hint = difflib.get_close_matches(missing[0], header, n=1)
        extra = f" (did you mean '{hint[0]}'?)" if hint else f" (columns found: {', '.join(header[:12])})"
        raise InputError("missing column" + extra, path, missing[0])
    return header


def all_types(header: list[str], columns: dict[str, pa.DataType]) -> dict[str, pa.DataType]:
    """Every column of the file, typed: those asked for as asked, the others as dictionaries of their bytes (read
    only to find exact duplicate rows, for which bytes are as good as text, the file's encoding having been checked
    whole, and cheaper to parse: Arrow checks a text value's UTF-8)."""
    return {c: columns.get(c, BYTES_DICT) for c in header}


def finished(table: pa.Table, path: Path, columns: dict[str, pa.DataType], ids: tuple[str, ...],
             ledger: Ledger | None, warn: bool = True) -> pa.Table:
    """What every reader does to the rows as parsed: exact duplicates removed and added to `ledger`'s count
    (None: kept; `warn`: said here, else by the caller once for the file: warn_duplicates), the columns asked for
    selected, id columns under the id rule."""
    repeated = []
    if ledger is not None:
        table = table.unify_dictionaries()
        repeated = ledger.duplicates(table, path.name)
        if warn:
            warn_duplicates(path, len(repeated))
    table = table.select(list(columns))
    if len(repeated):  # after the select: the copy filtering makes is of the columns kept
        table = table.filter(pa.array(kept(table.num_rows, repeated)))
    for column in ids:
        table = table.set_column(table.schema.get_field_index(column), column, normalise_ids(table[column], path, column))
    return table


def opened(path: Path) -> tuple[Path | pa.BufferReader, int]:
    """What to parse (the file, or its bytes without the lines that hold NUL bytes), and how many lines those were."""
    found = scan(path)
    source, corrupt = path, 0
    if found.nul:
        data, corrupt = without_corrupt_lines(path.read_bytes(), path)
        source = pa.BufferReader(data)
        log.warning("%s: %d lines hold NUL bytes (a damaged file): removed, counted as corrupt_rows", path.name, corrupt)
    if found.encoding != "utf8":
        log.info("%s: not UTF-8; read as %s", path.name, found.encoding)
    return source, corrupt


BLOCK_BYTES = 1 << 24
"""bytes of CSV parsed at a time (a file read in parts holds one block while it is split)"""


def read_options(path: Path, header: list[str]) -> pacsv.ReadOptions:
    """The file's encoding, the block size, and the header's names as read_header gives them (stripped): left to
    Arrow, a name written ` student_id` would be asked for as `student_id` and not found."""
    return pacsv.ReadOptions(encoding=scan(path).encoding, block_size=BLOCK_BYTES, column_names=header, skip_rows=1)


def convert_options(types: dict[str, pa.DataType]) -> pacsv.ConvertOptions:
    return pacsv.ConvertOptions(include_columns=list(types), column_types=types, null_values=NULL_VALUES,
                                strings_can_be_null=True, quoted_strings_can_be_null=True)


def csv_blocks(source, path: Path, header: list[str], types: dict, forms: dict[str, str],
               options: pacsv.ReadOptions | None = None) -> Iterator[pa.RecordBatch]:
    """The file's blocks as parsed (with `options`, read_options' by default); a value that does not parse is one
    InputError naming the column, as read_csv's."""
    try:
        reader = pacsv.open_csv(source, read_options=options or read_options(path, header),
                                convert_options=convert_options(types))
        while True:
            try:
                block = reader.read_next_batch()
            except StopIteration:
                return
            yield block
    except pa.ArrowInvalid as exc:
        raise conversion_error(path, header, exc, forms) from None


def warn_duplicates(path: Path, n: int) -> None:
    if n:
        log.warning("%s: %d rows repeat an earlier row exactly: removed once, counted as duplicate_rows", path.name, n)


def conversion_error(path: Path, header: list[str], exc: Exception, forms: dict[str, str]) -> InputError:
    text = str(exc)
    m = re.search(r"CSV column #(\d+)", text)
    column = header[int(m.group(1))] if m and int(m.group(1)) < len(header) else None
    value = re.search(r"invalid value '([^']*)'", text)
    if not value:
        return InputError(text.splitlines()[0], path, column)
    detail = f"value '{value.group(1)}' does not parse"
    if column in forms:
        kind = " (date text)" if _DATE_TEXT.match(value.group(1)) else ""
        detail += f"{kind}: this column holds {forms[column]}"
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
    """Lookup tables must have one row per key, or joins silently multiply rows (exact duplicate rows are
    already gone: a key repeated here carries different values)."""
    dup = repeated_values(values)
    if len(dup):
        example = str(dup[0]).replace("\x1f", ", ")
        raise InputError(f"{len(dup)} duplicate {what}, e.g. '{example}'", path, column)


def repeated_values(values: pa.ChunkedArray | pa.Array) -> pa.Array:
    """The values that occur more than once (null counted as one value), in the order they first occur."""
    counts = pc.value_counts(values)
    return counts.field("values").filter(pc.greater(counts.field("counts"), 1))
