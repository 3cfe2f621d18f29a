"""What each model the blend can stack predicts for every response, lined up with events.parquet: where its
per-response predictions are, which stage writes them, and the check that they are events.parquet's rows in
its order (a table of another run would otherwise be blended row by row with the wrong responses)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from ktirt.errors import InputError
from ktirt.events import EVENTS_SCHEMA
from ktirt.io import read_parquet
from ktirt.settings import MEMBERS

KEYS = ("user_id", "item_id", "timestamp")
SCHEMA = pa.schema([*(EVENTS_SCHEMA.field(k) for k in KEYS), pa.field("predicted", pa.float32())])
"""the columns the blend reads from each member's table (the keys typed as in events.parquet)"""
WRITTEN_BY = {"sakt": "export", "wdirt": "train_wdirt", "dkt": "train_dkt"}
"""the stage that writes each member's predictions (an error names it: rerun it)"""
PATHS = {"sakt": "data/exports/sakt_predictions.parquet", "wdirt": "models/wdirt/event_predictions.parquet",
         "dkt": "models/dkt/predictions.parquet"}
"""the pipeline's path of each member's predictions (each table: the keys and `predicted`, events.parquet's rows)"""
assert tuple(WRITTEN_BY) == tuple(PATHS) == MEMBERS


def read_member(name: str, path: str | Path, events: pa.Table) -> np.ndarray:
    """P(correct) of every response of `events`, in its order, as member `name` predicted it (NaN where it
    predicted none); refuses a table whose rows are not `events`' rows."""
    table = read_parquet(path, WRITTEN_BY[name], SCHEMA, columns=SCHEMA.names)
    for key in KEYS:
        if table.num_rows != events.num_rows or not table[key].equals(events[key]):
            raise InputError(f"does not line up with events.parquet (rerun {WRITTEN_BY[name]})", path, key)
    return table["predicted"].to_numpy(zero_copy_only=False).astype(np.float64)


def read_members(paths: dict[str, str | Path], events: pa.Table) -> dict[str, np.ndarray]:
    """Every model's predictions, by member name (MEMBERS' order)."""
    return {name: read_member(name, paths[name], events) for name in MEMBERS}
