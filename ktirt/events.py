"""The canonical tables every engine reads (DESIGN.md): their Arrow schemas and a summary for metrics."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

TIMESTAMP = pa.timestamp("ms", tz="UTC")
SKILL_IDS = pa.list_(pa.string())

EVENTS_SCHEMA = pa.schema(
    [
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("skill_ids", SKILL_IDS, nullable=False),
        pa.field("timestamp", TIMESTAMP, nullable=False),
        pa.field("correct", pa.int8(), nullable=False),
        pa.field("action_sequence_id", pa.string(), nullable=False),
        pa.field("latency_ms", pa.int64(), nullable=True),
        pa.field("help_requested", pa.bool_(), nullable=False),
        pa.field("hint_count", pa.int16(), nullable=False),
        pa.field("attempt_count", pa.int16(), nullable=False),
        pa.field("problem_type", pa.string(), nullable=True),
    ]
)

UNIT_TESTS_SCHEMA = pa.schema(
    [
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("unit_test_id", pa.string(), nullable=False),
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("skill_ids", SKILL_IDS, nullable=False),
        pa.field("timestamp", TIMESTAMP, nullable=False),
        pa.field("correct", pa.int8(), nullable=True),
        pa.field("in_unit_ids", pa.list_(pa.string()), nullable=False),
    ]
)


def sort_events(columns: dict[str, np.ndarray | pa.Array]) -> np.ndarray:
    """Row order of the events contract: user_id, timestamp, then assignment log and item for ties."""
    keys = [columns["item_id"], columns["action_sequence_id"], columns["timestamp"], columns["user_id"]]
    codes = [
        np.asarray(k) if np.asarray(k).dtype.kind in "iuf" else _sorted_codes(k) for k in keys
    ]
    return np.lexsort(codes)


def _sorted_codes(values) -> np.ndarray:
    """Integer codes whose order is the string order of `values` (cheaper to sort than strings)."""
    arr = pa.array(values) if not isinstance(values, (pa.Array, pa.ChunkedArray)) else values
    uniques = pc.unique(arr)
    order = pc.array_sort_indices(uniques)
    ranks = np.empty(len(uniques), dtype=np.int64)
    ranks[np.asarray(order)] = np.arange(len(uniques))
    return ranks[np.asarray(pc.index_in(arr, value_set=uniques))]


def summarize(events: pa.Table, unit_tests: pa.Table) -> dict:
    """Counts for metrics/prepare.json: what the canonical tables hold."""
    skills = pc.unique(pc.list_flatten(events["skill_ids"]))
    n = events.num_rows
    return {
        "events": n,
        "users": len(pc.unique(events["user_id"])),
        "items": len(pc.unique(events["item_id"])),
        "skills": len(skills),
        "assignment_logs": len(pc.unique(events["action_sequence_id"])),
        "correct_rate": round(float(pc.mean(events["correct"]).as_py() or 0.0), 6),
        "help_rate": round(float(pc.mean(pc.cast(events["help_requested"], pa.int8())).as_py() or 0.0), 6),
        "no_skill_share": round(float((pc.list_value_length(events["skill_ids"]).to_numpy() == 0).mean()) if n else 0.0, 6),
        "unit_test_rows": unit_tests.num_rows,
        "unit_test_scored": unit_tests.num_rows - unit_tests["correct"].null_count,
        "unit_test_users": len(pc.unique(unit_tests["user_id"])),
    }
