"""What each model the blend can stack predicts for every response, lined up with events.parquet: where its
per-response predictions are, which stage writes them, and the check that they are events.parquet's rows in
its order (a table of another run would otherwise be blended row by row with the wrong responses)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ktirt.aligned_rows import AlignedReader
from ktirt.settings import MEMBERS
from ktirt.user_batches import user_batches

WRITTEN_BY = {"sakt": "export", "wdirt": "train_wdirt", "dkt": "train_dkt"}
"""the stage that writes each member's predictions (an error names it: rerun it)"""
PATHS = {"sakt": "data/exports/sakt_predictions.parquet", "wdirt": "models/wdirt/event_predictions.parquet",
         "dkt": "models/dkt/predictions.parquet"}
"""the pipeline's path of each member's predictions (each table: the keys and `predicted`, events.parquet's rows)"""
assert tuple(WRITTEN_BY) == tuple(PATHS) == MEMBERS

EVENT_COLUMNS = ["user_id", "item_id", "timestamp", "skill_ids", "correct", "action_sequence_id"]
"""what the blend reads of events.parquet"""


def member_batches(events: str | Path, paths: dict[str, str | Path]):
    """A fresh pass, each call, over events.parquet a batch of whole students at a time, each batch with every
    model's P(correct) of its rows (ktirt.blend.blend_run.Batch), each member's table checked row for row."""

    def batches():
        readers = {name: AlignedReader(paths[name], WRITTEN_BY[name]) for name in MEMBERS}
        for table in user_batches(events, EVENT_COLUMNS):
            yield table, {name: r.next_rows(table, np.float32) for name, r in readers.items()}  # held as stored
        for r in readers.values():
            r.finish()

    return batches
