"""A table of per-response predictions (a model's P(correct) of every row of events.parquet, in its order) read
alongside the events a batch at a time, each batch's keys checked against the events': how the blend and the
export read another stage's predictions without holding them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from ktirt.errors import InputError
from ktirt.events import EVENTS_SCHEMA
from ktirt.io import iter_parquet

KEYS = ("user_id", "item_id", "timestamp")
SCHEMA = pa.schema([*(EVENTS_SCHEMA.field(k) for k in KEYS), pa.field("predicted", pa.float32())])
"""the columns read of a predictions table (the keys typed as in events.parquet)"""


class AlignedReader:
    """A predictions table read in events.parquet's order, the rows of one batch of events at a time, each batch's
    keys checked against the events' (a table of another run would otherwise be matched row by row with the wrong
    responses): its reader never holds a whole table."""

    def __init__(self, path: str | Path, made_by: str):
        self.path, self.made_by = path, made_by
        self.batches = iter_parquet(path, made_by, SCHEMA, columns=SCHEMA.names)
        self.held = SCHEMA.empty_table()

    def next_rows(self, events: pa.Table, dtype: type = np.float64) -> np.ndarray:
        """P(correct) of the next rows, which must be `events`' rows (NaN where the member predicted none); the
        table's float32 values in `dtype` (exact either way)."""
        parts, have = [], 0
        while have < events.num_rows:
            if not self.held.num_rows:
                batch = next(self.batches, None)
                if batch is None:
                    break
                self.held = pa.Table.from_batches([batch])
            k = min(events.num_rows - have, self.held.num_rows)
            parts.append(self.held.slice(0, k))
            self.held, have = self.held.slice(k), have + k
        table = pa.concat_tables(parts) if parts else SCHEMA.empty_table()
        self._check(table, events)
        return table["predicted"].to_numpy(zero_copy_only=False).astype(dtype)

    def finish(self) -> None:
        """Every row read: a table with rows left over is another run's."""
        if self.held.num_rows or next(self.batches, None) is not None:
            self._mismatch("user_id")

    def _check(self, table: pa.Table, events: pa.Table) -> None:
        for key in KEYS:
            if table.num_rows != events.num_rows or not table[key].equals(events[key]):
                self._mismatch(key)

    def _mismatch(self, key: str):
        raise InputError(f"does not line up with events.parquet (rerun {self.made_by})", self.path, key)
