"""A table sorted by user_id (events.parquet, the SAKT exports) a batch of whole students at a time: the way a
stage reads a log larger than memory.

Whole students lie in consecutive rows: record batches are read in file order, cut after the last student each
batch completes, and the rest carried into the next. A stage that works per student (windows, pyKT's files, the
join's duplicate check) then holds one batch, whatever the log's size."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import pyarrow as pa

from ktirt.errors import InputError
from ktirt.events import EVENTS_SCHEMA
from ktirt.io import copied, iter_parquet

ROWS_PER_BATCH = 1 << 20
"""rows read at a time (a batch of students holds about this many)"""


def user_batches(path: str | Path, columns: list[str] | None = None, rows: int | None = None, made_by: str = "prepare",
                 schema: pa.Schema | None = EVENTS_SCHEMA) -> Iterator[pa.Table]:
    """Tables of whole students of `path` (events.parquet unless `made_by` and `schema` say otherwise), in file
    order; a student's rows are never split between two. Stops with one line when the file is not sorted by
    user_id (a student seen again after another). `rows`: rows read at a time (default ROWS_PER_BATCH)."""
    carry: pa.Table | None = None
    last = None
    for batch in iter_parquet(path, made_by, schema, columns, rows or ROWS_PER_BATCH):
        table = pa.Table.from_batches([batch]) if carry is None else pa.concat_tables([carry, pa.Table.from_batches([batch])])
        user = table["user_id"].to_numpy(zero_copy_only=False)
        starts = np.flatnonzero(np.r_[True, user[1:] != user[:-1]])
        firsts = user[starts]
        if (last is not None and firsts[0] <= last) or (firsts[1:] <= firsts[:-1]).any():
            raise InputError(f"{Path(path).name} is not sorted by user_id (rerun {made_by})", str(path), "user_id")
        cut = int(starts[-1])
        if cut > 0:
            yield table.slice(0, cut)
            last = user[cut - 1]
        carry = copied(table.slice(cut))  # one student's rows
    if carry is not None and carry.num_rows:
        yield carry


def batches_of(events: pa.Table | str | Path, rows: int | None = None,
               columns: list[str] | None = None) -> Callable[[], Iterable[pa.Table]]:
    """A fresh pass over `events` (its `columns`, default all) as tables of whole students, each time it is called:
    a table in memory is one batch; events.parquet's path is read `rows` at a time (`user_batches`), so its reader
    holds one batch."""
    if isinstance(events, pa.Table):
        return lambda: [events.select(columns) if columns else events]
    return lambda: user_batches(events, columns, rows=rows)


def same_students(batches: Iterator[pa.Table], other: Iterator[pa.Table], other_path: str | Path,
                  empty: Callable[[], pa.Table], made_by: str) -> Iterator[tuple[pa.Table, pa.Table]]:
    """Each batch of a table sorted by user_id with the rows of `other` (another such table, whose students are
    among the first's) of the same students (`empty()` where it has none): two per-student tables side by side."""
    held: pa.Table | None = None
    for t in batches:
        last = t["user_id"][-1].as_py()
        parts = []
        while True:
            held = held if held is not None and held.num_rows else next(other, None)
            if held is None:
                break
            cut = int(np.searchsorted(held["user_id"].to_numpy(zero_copy_only=False), last, side="right"))
            parts.append(held.slice(0, cut))
            held = held.slice(cut)
            if held.num_rows:
                break
        parts = [p for p in parts if p.num_rows]
        yield t, pa.concat_tables(parts) if parts else empty()
    if (held is not None and held.num_rows) or next(other, None) is not None:
        raise InputError(f"students the table beside it does not have, or not sorted by user_id (rerun {made_by})",
                         str(other_path), "user_id")
