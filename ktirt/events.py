"""The canonical tables every engine reads (docs/ARCHITECTURE.md): their Arrow schemas and a summary for metrics.
`prepare` writes them from any source; no other stage reads a source's raw files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

TIMESTAMP = pa.timestamp("ms", tz="UTC")
SKILL_IDS = pa.list_(pa.string())
PSEUDO_TIME_END = pd.Timestamp("1971-01-01", tz="UTC")
"""A source without clock time (ASSISTments 2009) stamps its events 1970-01-01 plus their order in milliseconds,
which keeps the order and the join keys; real clickstream is decades later, so timestamps wholly before this
only order the responses and must never be shown as dates."""

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

ITEMS_SCHEMA = pa.schema(
    [
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("problem_type", pa.string(), nullable=True),
        pa.field("text_embedding", pa.list_(pa.float32()), nullable=True),
    ]
)
"""items.parquet: every item of the events and unit tests and every problem the source describes, sorted by id;
its type (the events' own first, else the source's catalog) and its text embedding where the source has one."""

SKILLS_SCHEMA = pa.schema(
    [
        pa.field("skill_id", pa.string(), nullable=False),
        pa.field("description", pa.string(), nullable=True),
    ]
)
"""skills.parquet: every skill code of the events and unit tests and every skill the source describes, sorted."""


def has_clock_time(timestamps) -> bool:
    """Whether these timestamps (any array-like of datetimes) are clock time rather than order-only pseudo-time:
    one after PSEUDO_TIME_END is enough."""
    ts = pd.to_datetime(pd.Series(timestamps), utc=True)
    return bool((ts >= PSEUDO_TIME_END).any())


def sort_events(columns: dict) -> np.ndarray:
    """Row order of the events contract: user_id, timestamp, then assignment log and item for ties."""
    keys = [columns["item_id"], columns["action_sequence_id"], columns["timestamp"], columns["user_id"]]
    return np.lexsort(packed_keys([sort_codes(k) for k in keys]))


def packed_keys(keys: list[np.ndarray]) -> list[np.ndarray]:
    """np.lexsort's keys (the last the primary) with neighbours packed into one int64 where their ranges fit in 62
    bits together (the more significant key in the high bits): the same order from fewer stable sorts. The events'
    four keys become two (prepare sorted 4.9 M events in 3.1 s of its time at EDM-Cup scale, about half that now)."""
    if not keys or not len(keys[0]) or any(k.dtype.kind not in "iub" or k.dtype == np.uint64 for k in keys):
        return keys  # floats, text, and unsigned 64-bit values (which int64 cannot hold) are sorted as they are
    out, current, width = [], None, 0
    for key in keys:
        lo, hi = int(key.min()), int(key.max())
        bits = max((hi - lo).bit_length(), 1)
        if bits > 62:  # a range this wide stays a key of its own
            out += ([current] if current is not None else []) + [key]
            current, width = None, 0
            continue
        key = key.astype(np.int64) - np.int64(lo)
        if current is not None and width + bits <= 62:
            current, width = (key << np.int64(width)) | current, width + bits
        else:
            out += [current] if current is not None else []
            current, width = key, bits
    return out + ([current] if current is not None else [])


def sort_codes(values) -> np.ndarray:
    """Integers whose order is the order of `values`; strings are ranked through their distinct values
    (a dictionary array's dictionary), which is much cheaper than sorting millions of strings."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "iufbM":
        return values
    arr = values if isinstance(values, (pa.Array, pa.ChunkedArray)) else pa.array(values)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if not pa.types.is_dictionary(arr.type):
        if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
            return arr.to_numpy(zero_copy_only=False)
        arr = arr.dictionary_encode()
    dictionary = arr.dictionary
    order = np.asarray(pc.array_sort_indices(dictionary))
    rank = np.empty(len(dictionary), dtype=np.int64)
    rank[order] = np.arange(len(dictionary))
    # equal strings in a dictionary (allowed by Arrow) must share a rank
    sorted_vals = dictionary.take(pa.array(order))
    same = np.asarray(pc.equal(sorted_vals[1:], sorted_vals[:-1]).fill_null(False)) if len(order) > 1 else np.zeros(0, bool)
    rank[order] = np.concatenate([[0], np.cumsum(~same)]) if len(order) else rank[order]
    return rank[arr.indices.to_numpy(zero_copy_only=False)]


def summarize(digest, unit_tests) -> dict:
    """Counts for metrics/prepare.json: what the canonical tables hold, through their digests (the events':
    ktirt.events_digest; the unit tests': ktirt.sources.unit_tests_digest)."""
    n = digest.n
    return {
        "events": n,
        "users": len(digest.per_student()),
        "items": digest.items().num_rows,
        "skills": len(digest.skills()),
        "assignment_logs": digest.n_logs,
        "correct_rate": round(digest.correct / n if n else 0.0, 6),
        "help_rate": round(digest.helped / n if n else 0.0, 6),
        "no_skill_share": round(digest.no_skill / n if n else 0.0, 6),
        "unit_test_rows": unit_tests.rows,
        "unit_test_scored": unit_tests.scored,
        "unit_test_users": unit_tests.users,
    }


def item_skill_pairs(events: pa.Table) -> pa.Table:
    """The distinct (item_id, skill_id) pairs the events carry: each skill of a multi-skill item counts."""
    lists = events["skill_ids"].combine_chunks()
    pairs = pa.table({"item_id": pc.take(events["item_id"].combine_chunks(), pc.list_parent_indices(lists)),
                      "skill_id": pc.list_flatten(lists)})
    return pairs.group_by(["item_id", "skill_id"], use_threads=False).aggregate([])
