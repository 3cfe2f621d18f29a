"""A folder of small CSV files sharing one header, read as one table that keeps each row's file: EdNet KT1 is
784,309 files, one per student, of about 120 lines each.

With files that small, opening one costs more than parsing it: a CSV reader per file (pandas', or DuckDB's and
pyarrow.dataset's over the folder) pays 0.3-2 ms a file, minutes for the release (bench/ednet_kt1_read.py
measures two of them). So the files' bytes are read (one open and one read each) and joined a batch at a time, and
pyarrow parses each batch in one go, on all cores. Each file keeps its header line: the header rows of the
parse mark where each file's rows begin, and every file must start with the header (checked on the bytes
first), so no row is given to the wrong file. A last line without its newline gets one.

The rules of the single-file reader (ktirt.sources.tables) hold: lines holding NUL bytes are removed and
counted, exact duplicate rows (the file included, so the same student) too, id columns follow the one id
rule, and a file that is not UTF-8, has a different header, a line with too many fields or a value that
does not parse stops the run in one line naming that file and column.
"""

from __future__ import annotations

import csv
import difflib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ktirt.errors import InputError
from ktirt.sources.files import check_file, check_raw_folder
from ktirt.sources.ids import IdForms, normalise_ids
from ktirt.sources.rows import kept, without_corrupt_lines
from ktirt.sources.tables import NULL_VALUES, STRING_DICT, Ledger

log = logging.getLogger(__name__)
FILES_PER_BATCH = 20_000
"""files joined and parsed at once: a few hundred MB of text for EdNet's files"""


@dataclass
class FolderTable:
    files: list[Path]
    """the folder's .csv files, sorted by name"""
    table: pa.Table
    """the columns asked for, typed; rows in file order, then line order"""
    file_of_row: np.ndarray
    """each row's file (an index into `files`)"""


def csv_files(folder: Path) -> list[Path]:
    """The folder's `*.csv` files, sorted by name; one line when the folder is missing or holds none."""
    check_raw_folder(folder)
    with os.scandir(folder) as entries:  # a directory listing, not a pattern match: 784,309 names take a second
        files = [folder / name for name in sorted(e.name for e in entries if e.name.endswith(".csv"))]
    if not files:
        raise InputError("no .csv files in this folder", folder)
    return files


def read_csv_folder(folder: Path, columns: dict[str, pa.DataType], ledger: Ledger, ids: tuple[str, ...] = ()) -> FolderTable:
    """Every `*.csv` of `folder` (each headed by exactly `columns`' names, in that order) as one table of
    `columns` (name -> pa.int64(), pa.string() or STRING_DICT). `ids`: columns under the one id rule."""
    files = csv_files(folder)
    ledger.duplicate_rows[folder.name] = 0
    t = read_csv_files(files, folder, columns, ledger, ids)
    ledger.encodings[folder.name] = "utf8"
    log.info("%s: %d files, %d rows", folder, len(files), t.table.num_rows)
    return t


def read_csv_files(files: list[Path], folder: Path, columns: dict[str, pa.DataType], ledger: Ledger,
                   ids: tuple[str, ...] = (), forms: dict[str, IdForms] | None = None) -> FolderTable:
    """read_csv_folder's table of some of `folder`'s files (a reader of the folder in parts: whole students at a
    time), its duplicate rows added to the ledger's count. `forms`: per id column, the id forms met so far, for
    the id rule's check across parts (each part is checked on its own as well)."""
    tables, file_of_row = [], []
    for first in range(0, len(files), FILES_PER_BATCH):
        table, rows = _read_batch(files[first:first + FILES_PER_BATCH], columns, ledger, folder.name)
        tables.append(table)
        file_of_row.append(rows + first)
    table = pa.concat_tables(tables).combine_chunks().unify_dictionaries()
    table, file_of_row = _without_duplicates(table, np.concatenate(file_of_row).astype(np.int32), folder, ledger)
    for column in ids:
        if forms is not None:
            forms[column].add(table[column])
        table = table.set_column(table.schema.get_field_index(column), column, normalise_ids(table[column], folder, column))
    return FolderTable(files, table, file_of_row)


def _read_batch(files: list[Path], columns: dict[str, pa.DataType], ledger: Ledger, name: str) -> tuple[pa.Table, np.ndarray]:
    """One batch of files parsed at once: (typed table, each row's file within the batch)."""
    blobs = [_clean(path, ledger, name) for path in files]
    joined, header = b"".join(blobs), ",".join(columns).encode()
    _check_headers(files, blobs, joined, header, list(columns))
    try:
        text = pacsv.read_csv(pa.py_buffer(joined), read_options=pacsv.ReadOptions(
            column_names=list(columns), block_size=1 << 24), convert_options=pacsv.ConvertOptions(
            column_types={c: pa.string() for c in columns}, null_values=NULL_VALUES, strings_can_be_null=True,
            quoted_strings_can_be_null=True))
    except pa.ArrowInvalid as exc:
        raise _parse_error(files, blobs, columns, exc) from None
    is_header = np.ones(text.num_rows, bool)
    for c in columns:
        is_header &= pc.fill_null(pc.equal(text[c], c), False).to_numpy(zero_copy_only=False)
    if is_header.sum() != len(files):
        raise _repeated_header(files, blobs, header)
    file_of_row = (np.cumsum(is_header) - 1)[~is_header]
    text = text.filter(pa.array(~is_header))
    return pa.table({c: _typed(text[c], t, files, file_of_row, c) for c, t in columns.items()}), file_of_row


def _clean(path: Path, ledger: Ledger, name: str) -> bytes:
    """The file's bytes, less lines holding NUL bytes (counted), ending with a newline."""
    try:
        data = path.read_bytes()
    except OSError:
        check_file(path)  # says what is there instead of a readable file
        raise
    if b"\0" in data:
        data, corrupt = without_corrupt_lines(data, path)
        ledger.corrupt_rows[name] = ledger.corrupt_rows.get(name, 0) + corrupt
        log.warning("%s: %d lines hold NUL bytes (a damaged file): removed, counted as corrupt_rows", path, corrupt)
    return data if data.endswith(b"\n") else data + b"\n"


def _check_headers(files: list[Path], blobs: list[bytes], joined: bytes, header: bytes, names: list[str]) -> None:
    """Every file (`blobs`, joined in `joined`) starts with `header` and a line end, checked on the bytes of the
    whole batch at once; else one line naming the first file that does not."""
    lengths = np.fromiter(map(len, blobs), np.int64, len(blobs))
    starts = np.r_[0, np.cumsum(lengths)[:-1]]
    data = np.frombuffer(joined, np.uint8)
    expected = np.frombuffer(header, np.uint8)
    fits = lengths > len(header)
    at = np.minimum(starts[:, None] + np.arange(len(header) + 1), len(data) - 1)
    ok = fits & (data[at[:, :-1]] == expected).all(axis=1) & np.isin(data[at[:, -1]], (10, 13))
    if not ok.all():
        bad = int(np.argmin(ok))
        raise _header_error(files[bad], blobs[bad], names)


def _header_error(path: Path, blob: bytes, names: list[str]) -> InputError:
    """What is wrong with one file's header: empty, compressed, a missing column (with a near name) or another order."""
    check_file(path)  # a compressed file gets its own message
    line = blob.split(b"\n", 1)[0].strip(b"\r")
    if not line.strip():
        return InputError("file is empty (no header row)", path)
    found = [h.strip() for h in next(csv.reader([line.decode("utf-8", "replace")]))]
    missing = [c for c in names if c not in found]
    if missing:
        hint = difflib.get_close_matches(missing[0], found, n=1)
        extra = f" (did you mean '{hint[0]}'?)" if hint else f" (columns found: {', '.join(found[:12])})"
        return InputError("missing column" + extra, path, missing[0])
    return InputError(f"header '{','.join(found)}' differs from the folder's: every file starts with '{','.join(names)}'",
                      path)


def _repeated_header(files: list[Path], blobs: list[bytes], header: bytes) -> InputError:
    """A file holding the header line again after its first line (two files joined into one?)."""
    bad = next(i for i, b in enumerate(blobs) if b"\n" + header in b)
    return InputError("the header line appears again inside the file (two files joined?): remove it", files[bad])


def _parse_error(files: list[Path], blobs: list[bytes], columns: dict, exc: Exception) -> InputError:
    """The batch did not parse: find the file (bytes that are not UTF-8, or a line with the wrong number of
    fields) and say it in one line."""
    for path, blob in zip(files, blobs):
        try:
            blob.decode("utf-8")
        except UnicodeDecodeError as err:
            return InputError(f"byte 0x{blob[err.start]:02X} at offset {err.start} is not UTF-8 text", path)
        try:
            pacsv.read_csv(pa.py_buffer(blob), convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in columns}))
        except pa.ArrowInvalid as err:
            return InputError(str(err).splitlines()[0].removeprefix("CSV parse error: "), path)
    return InputError(str(exc).splitlines()[0], files[0].parent)


def _typed(text: pa.ChunkedArray, kind: pa.DataType, files: list[Path], file_of_row: np.ndarray, column: str):
    """A text column as `kind`; the first value that is not an integer where one is due stops the run, naming
    its file."""
    if kind == STRING_DICT:
        return text.combine_chunks().dictionary_encode()
    if kind == pa.string():
        return text
    try:
        return pc.cast(text, kind)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        arr = text.combine_chunks()
        good = pc.fill_null(pc.match_substring_regex(arr, r"^-?[0-9]{1,18}$"), True).to_numpy(zero_copy_only=False)
        row = int(np.argmin(good))
        raise InputError(f"value '{arr[row]}' does not parse: an integer is due", files[file_of_row[row]], column) from None


def _without_duplicates(table: pa.Table, file_of_row: np.ndarray, folder: Path, ledger: Ledger):
    """Rows repeating an earlier row of the same file exactly: removed once, counted (duplicate_rows_<folder>)."""
    repeated = ledger.duplicates(table.append_column("_file", pa.array(file_of_row)), folder.name)
    if not len(repeated):
        return table, file_of_row
    log.warning("%s: %d rows repeat an earlier row of their file exactly: removed once, counted as duplicate_rows",
                folder, len(repeated))
    keep = kept(table.num_rows, repeated)
    return table.filter(pa.array(keep)), file_of_row[keep]
