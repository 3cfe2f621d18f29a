"""A CSV too large to hold, read in parts: one pass reads it a block at a time (segments parsed two at a time on
two threads while this one is routed: ktirt/sources/csv_segments.py) and routes every row to one of n parts on
disk (Arrow IPC, rows in file order), then each part is read back and finished as `read_csv` finishes a whole
file (exact duplicates, the columns asked for, the id rule). The columns read only for the exact-duplicate rule
are parsed and carried as plain bytes: a dictionary's hash per value made them a quarter of the parsing (1.6 of
6.4 CPU seconds at EDM-Cup scale), and only the rows that repeat the other columns are compared on them
(ktirt.sources.rows.duplicate_rows).

The caller routes the rows (`route`: part of each row of a block), so that the rows a later step must see
together land in one part: the EDM Cup action log sends every row to its student's part, which keeps a
visit's rows, a student's events and an exact duplicate and its original together. Memory is three blocks (the
caller's and the two being parsed) and the parts' slices waiting to be written (BUFFER_BYTES) while the file is
split, then one part; disk is the parts (about the CSV's size) in a temporary folder.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ktirt.errors import InputError
from ktirt.sources.csv_segments import csv_blocks_in_parallel
from ktirt.sources.encoding import scan
from ktirt.sources.tables import (Ledger, checked_header, current_ledger, finished, opened,
                                  warn_duplicates)

log = logging.getLogger(__name__)


class CsvParts:
    """The parts of one CSV on disk (`split`), read back one at a time (`parts`); the folder goes with the object
    (or at the end of `parts`)."""

    def __init__(self, path: Path, columns: dict[str, pa.DataType], ids: tuple[str, ...], n_parts: int):
        self.path, self.columns, self.ids, self.n_parts = Path(path), columns, ids, n_parts
        self.folder = tempfile.TemporaryDirectory(prefix="ktirt-parts-")
        self.files = [Path(self.folder.name) / f"part-{k:05d}.arrow" for k in range(n_parts)]
        self.rows = 0
        self.types: dict[str, pa.DataType] = {}  # every column as parsed, once `split` has read the header
        self.ledger: Ledger = current_ledger()

    def split(self, route: Callable[[pa.RecordBatch], np.ndarray], forms: dict[str, str] | None = None,
              allow_empty: bool = False) -> None:
        """Read the file a block at a time; `route(block)` gives each row's part (0 .. n_parts - 1). A header with
        no rows is an error unless `allow_empty`, as in read_csv."""
        self.types = column_types(self.path, self.columns)
        writers = _PartWriters(self.files, pa.schema(list(self.types.items())))
        try:
            for block in ledgered_blocks(self.path, self.types, forms or {}, self.ledger):
                self.rows += block.num_rows
                self._route(block, route(block), writers)
            writers.flush_all()
        finally:
            writers.close()
        if self.rows == 0 and not allow_empty:
            raise InputError("table has a header but no rows", self.path)

    def _route(self, block: pa.RecordBatch, part: np.ndarray, writers: _PartWriters) -> None:
        """Append each row of `block` to its part's file (a slice carries its block's dictionaries; a part's slices
        are cut to the values they use when they are written: _flush)."""
        order = np.argsort(part, kind="stable")
        bounds = np.searchsorted(part[order], np.arange(self.n_parts + 1))
        block = block.take(pa.array(order))  # rows in part order: each part's rows are then one slice
        for k in np.flatnonzero(np.diff(bounds)):
            writers.add(k, block.slice(bounds[k], bounds[k + 1] - bounds[k]))

    def parts(self) -> Iterator[pa.Table]:
        """Each part's rows as `read_csv` would give them (duplicates removed and counted in the ledger), in part
        order; a part no row went to is an empty table. The folder is removed after the last part."""
        try:
            for file in self.files:
                rows = finished(self._read(file), self.path, self.columns, self.ids, self.ledger, warn=False)
                file.unlink(missing_ok=True)
                yield rows  # what reading and the duplicate check freed is the caller's to reuse (or give back)
                del rows
            warn_duplicates(self.path, self.ledger.duplicate_rows[self.path.name])  # once for the file, not a part
        finally:
            self.folder.cleanup()

    def _read(self, file: Path) -> pa.Table:
        """The part as one table, each column asked for in one chunk. Read a column at a time from the file mapped
        anew for each, so that what is held is the columns combined so far and the pages of one pass: reading the
        whole part and then combining it held it three times (its messages, its unified dictionaries, the combined
        copy: 0.9 GiB for a 0.3 GiB part). Concatenating one column's chunks unifies their dictionaries, in the
        order Table.unify_dictionaries gives. The columns read only for the duplicate rule stay as written, views
        of the mapped file: only the rows compared on them are ever read (ktirt.sources.rows.duplicate_rows)."""
        schema = pa.schema(list(self.types.items()))
        if not file.exists():
            return schema.empty_table()
        columns = []
        for i, name in enumerate(schema.names):
            # one chunk: the part holds a slice of every block of the file, so every later step's cost per chunk
            # grew with the file (`finished` took 24 s over the 16 parts of 102.9 M action rows, 464 chunks each)
            with pa.memory_map(str(file)) as source:
                reader = pa.ipc.open_stream(source, options=pa.ipc.IpcReadOptions(included_fields=[i]))
                column = reader.read_all().column(0)
                columns.append(column.combine_chunks() if name in self.columns else column)
                del reader, column  # its dictionaries map the file: the pages go when the map does
        return pa.Table.from_arrays(columns, schema=schema)


def column_types(path: Path, columns: dict[str, pa.DataType]) -> dict[str, pa.DataType]:
    """Every column of the file's header as it is parsed: those asked for as `columns` says, the others (read only
    for the exact-duplicate rule) as their bytes."""
    return {c: columns.get(c, pa.binary()) for c in checked_header(path, columns)}


def ledgered_blocks(path: Path, types: dict[str, pa.DataType], forms: dict[str, str],
                    ledger: Ledger) -> Iterator[pa.RecordBatch]:
    """The file's blocks as parsed (`types`: column_types'), two segments at a time, its lines holding NUL bytes
    left out; its encoding and those lines go in `ledger`, and its duplicate count starts at 0."""
    source, corrupt = opened(path)
    ledger.encodings[path.name] = scan(path).encoding
    ledger.corrupt_rows[path.name] = corrupt
    ledger.duplicate_rows[path.name] = 0
    yield from csv_blocks_in_parallel(source, path, list(types), types, forms)


class _PartWriters:
    """The parts' files, written a few large batches at a time. A block brings each part a slice of about
    1/n of it, so written as they come a part held a batch per block of the file: the batches per part, and the
    work of writing and reading them back, grew with the file while each shrank (16 parts of 102.9 M action rows:
    463 batches of 14 k rows a part; now 67). Each part's slices wait in memory until they fill its share of
    BUFFER_BYTES, then go as one batch (their dictionaries unified in order, as reading back unifies them, so
    the part reads back the same): memory is BUFFER_BYTES at most, whatever the file's size."""

    def __init__(self, files: list[Path], schema: pa.Schema):
        self.files, self.schema = files, schema
        self.waiting: dict[int, list[pa.RecordBatch]] = {}
        self.bytes: dict[int, int] = {}
        self.writers: dict[int, pa.ipc.RecordBatchStreamWriter] = {}

    def add(self, k: int, rows: pa.RecordBatch) -> None:
        self.waiting.setdefault(k, []).append(rows)
        self.bytes[k] = self.bytes.get(k, 0) + _row_bytes(rows)
        if self.bytes[k] >= BUFFER_BYTES // len(self.files):
            self._flush(k)

    def flush_all(self) -> None:
        for k in sorted(self.waiting):
            self._flush(k)

    def _flush(self, k: int) -> None:
        rows = _joined(self.waiting.pop(k), self.schema)
        self.bytes[k] = 0
        if k not in self.writers:  # the writer owns (and closes) the file
            self.writers[k] = pa.ipc.new_stream(str(self.files[k]), self.schema)
        self.writers[k].write_table(rows)

    def close(self) -> None:
        for w in self.writers.values():
            w.close()


BUFFER_BYTES = 64 << 20
"""the parts' slices held while the file is split, before they are written (_PartWriters)"""


def _row_bytes(rows: pa.RecordBatch) -> int:
    """The bytes of a slice's rows, not of the whole block's dictionaries it carries (which `nbytes` counts)."""
    return sum(c.indices.nbytes if pa.types.is_dictionary(c.type) else c.nbytes for c in rows.columns)


def _joined(slices: list[pa.RecordBatch], schema: pa.Schema) -> pa.Table:
    """A part's waiting slices as one batch, each dictionary column's dictionary cut to the values its rows use
    (_used_values)."""
    columns = [_used_values([b.column(i) for b in slices]) if pa.types.is_dictionary(field.type)
               else pa.concat_arrays([b.column(i) for b in slices]) for i, field in enumerate(schema)]
    return pa.Table.from_arrays(columns, schema=schema)


def _used_values(chunks: list[pa.DictionaryArray]) -> pa.DictionaryArray:
    """The chunks (dictionaries as the CSV parser makes them: no null entry, no value twice) as one array whose
    dictionary holds the values they use, once each, in the order they first appear, as one read of the rows
    would list them. A block's rows go to every part, each slice with the whole block's dictionary: read back
    with those, a part would unify dictionaries holding most of the file's values, and its work grew with the
    file (time per row x 1.8 at 4x the log). The chunks' dictionaries are laid end to
    end and only the entries used are encoded (uniting the whole dictionaries, at every write of every part, was
    most of the split's writing time)."""
    starts = np.cumsum([0] + [len(c.dictionary) for c in chunks[:-1]])
    indices = pa.chunked_array([pc.add(c.indices.cast(pa.int64()), int(start)) for c, start in zip(chunks, starts)],
                               pa.int64()).combine_chunks()
    used = pc.unique(indices.drop_null())  # positions in the laid-out dictionaries, in order of first use
    values = pa.chunked_array([c.dictionary for c in chunks], chunks[0].dictionary.type).combine_chunks().take(used)
    once = values.dictionary_encode()  # a value used from two chunks' dictionaries: one entry, at its first use
    code = np.zeros(int(starts[-1]) + len(chunks[-1].dictionary), np.int32)
    code[used.to_numpy()] = once.indices.to_numpy(zero_copy_only=False)
    return pa.DictionaryArray.from_arrays(pa.array(code).take(indices), once.dictionary)
