"""What each model the blend can stack predicts for every response, lined up with events.parquet: where its
per-response predictions are, which stage writes them, and the check that they are events.parquet's rows in
its order (a table of another run would otherwise be blended row by row with the wrong responses)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from ktirt.errors import InputError
from ktirt.events import EVENTS_SCHEMA
from ktirt.io import iter_parquet
from ktirt.settings import MEMBERS
from ktirt.user_batches import user_batches

KEYS = ("user_id", "item_id", "timestamp")
SCHEMA = pa.schema([*(EVENTS_SCHEMA.field(k) for k in KEYS), pa.field("predicted", pa.float32())])
"""the columns the blend reads from each member's table (the keys typed as in events.parquet)"""
WRITTEN_BY = {"sakt": "export", "wdirt": "train_wdirt", "dkt": "train_dkt"}
"""the stage that writes each member's predictions (an error names it: rerun it)"""
PATHS = {"sakt": "data/exports/sakt_predictions.parquet", "wdirt": "models/wdirt/event_predictions.parquet",
         "dkt": "models/dkt/predictions.parquet"}
"""the pipeline's path of each member's predictions (each table: the keys and `predicted`, events.parquet's rows)"""
assert tuple(WRITTEN_BY) == tuple(PATHS) == MEMBERS


class AlignedReader:
    """A member's table read in events.parquet's order, the rows of one batch of events at a time, each batch's
    keys checked against the events' (a table of another run would otherwise be blended row by row with the wrong
    responses): the blend never holds a whole table."""

    def __init__(self, name: str, path: str | Path):
        self.name, self.path = name, path
        self.batches = iter_parquet(path, WRITTEN_BY[name], SCHEMA, columns=SCHEMA.names)
        self.held = SCHEMA.empty_table()

    def next_rows(self, events: pa.Table) -> np.ndarray:
        """P(correct) of the next rows, which must be `events`' rows (NaN where the member predicted none)."""
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
        return table["predicted"].to_numpy(zero_copy_only=False).astype(np.float64)

    def finish(self) -> None:
        """Every row read: a table with rows left over is another run's."""
        if self.held.num_rows or next(self.batches, None) is not None:
            self._mismatch("user_id")

    def _check(self, table: pa.Table, events: pa.Table) -> None:
        for key in KEYS:
            if table.num_rows != events.num_rows or not table[key].equals(events[key]):
                self._mismatch(key)

    def _mismatch(self, key: str):
        raise InputError(f"does not line up with events.parquet (rerun {WRITTEN_BY[self.name]})", self.path, key)


EVENT_COLUMNS = ["user_id", "item_id", "timestamp", "skill_ids", "correct", "action_sequence_id"]
"""what the blend reads of events.parquet"""


def member_batches(events: str | Path, paths: dict[str, str | Path]):
    """A fresh pass, each call, over events.parquet a batch of whole students at a time, each batch with every
    model's P(correct) of its rows (ktirt.blend.blend_run.Batch), each member's table checked row for row."""

    def batches():
        readers = {name: AlignedReader(name, paths[name]) for name in MEMBERS}
        for table in user_batches(events, EVENT_COLUMNS):
            yield table, {name: r.next_rows(table) for name, r in readers.items()}
        for r in readers.values():
            r.finish()

    return batches
