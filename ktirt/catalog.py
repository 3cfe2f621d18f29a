"""The item and skill catalogs a source describes, as canonical tables (items.parquet, skills.parquet), so that
an engine needing problem types, text embeddings or skill descriptions reads them from `prepare`'s output and
never from a source's raw files."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ktirt.events import ITEMS_SCHEMA, SKILLS_SCHEMA
from ktirt.events_digest import EventsDigest
from ktirt.vocab import first_occurrences


def _distinct_sorted(*arrays) -> list[str]:
    return sorted(set().union(*(pc.unique(a).to_pylist() for a in arrays)))


def items_table(digest: EventsDigest, unit_tests, types: dict[str, str],
                text: tuple[list[str], np.ndarray] | None) -> pa.Table:
    """items.parquet: every item of the events, the unit tests (their digest: ktirt.sources.unit_tests_digest) and
    the source's catalog; each item's type is the one its events carry, else the source catalog's (`types`); its
    text embedding the source's first vector for it (`text`: ids and a float32 matrix, None without one)."""
    seen = digest.items()
    ids = _distinct_sorted(seen["item_id"], unit_tests.items(), pa.array(list(types), pa.string()),
                           pa.array(text[0] if text else [], pa.string()))
    kinds = _types_of(ids, seen.select(["item_id", "problem_type"]), types)
    vectors = pa.nulls(len(ids), pa.list_(pa.float32()))
    if text is not None:
        pos = pc.index_in(pa.array(ids, pa.string()), value_set=pa.array(text[0], pa.string()))
        rows = pa.FixedSizeListArray.from_arrays(pa.array(text[1].ravel(), pa.float32()), text[1].shape[1])
        vectors = rows.take(pos).cast(pa.list_(pa.float32()))
    return pa.Table.from_arrays([pa.array(ids, pa.string()), pa.array(kinds, pa.string(), from_pandas=True), vectors],
                                schema=ITEMS_SCHEMA)


def problem_types_of(ids: list[str], events: pa.Table, types: dict[str, str]) -> list:
    """Each item's problem type: the one its events carry, else the source catalog's (`types`); the one rule
    for items.parquet and WD-IRT's catalog (whose `types` may come from items.parquet or be empty)."""
    return _types_of(ids, events.select(["item_id", "problem_type"]), types)


def _types_of(ids: list[str], pairs: pa.Table, types: dict[str, str]) -> list:
    """problem_types_of, from (item_id, problem_type) rows in the events' order (the first row of an item counts)."""
    pairs = pairs.take(pa.array(first_occurrences(pairs["item_id"])[1]))  # an item's first row; no Python string per row
    pairs = pairs.to_pandas()
    ev_types = dict(zip(pairs["item_id"], pairs["problem_type"]))
    return [ev_types.get(i) or types.get(i) for i in ids]


def skills_table(digest: EventsDigest, unit_tests, descriptions: dict[str, str]) -> pa.Table:
    """skills.parquet: every skill code of the events, the unit tests (their digest) and the source's
    descriptions, with the source's description of it (null where it has none)."""
    ids = _distinct_sorted(digest.skills(), unit_tests.skills(),
                           pa.array(list(descriptions), pa.string()))
    return pa.Table.from_arrays([pa.array(ids, pa.string()), pa.array([descriptions.get(k) for k in ids], pa.string())],
                                schema=SKILLS_SCHEMA)


def item_types(items: pa.Table) -> dict[str, str]:
    """item_id -> problem_type, for items that have one."""
    t = items.select(["item_id", "problem_type"]).drop_null()
    return dict(zip(t["item_id"].to_pylist(), t["problem_type"].to_pylist()))


def item_text(items: pa.Table) -> tuple[list[str], np.ndarray] | None:
    """(ids, float32 matrix) of the items with a text embedding; None when no item has one."""
    t = items.select(["item_id", "text_embedding"]).drop_null()
    if t.num_rows == 0:
        return None
    vectors = t["text_embedding"].combine_chunks()
    return t["item_id"].to_pylist(), pc.list_flatten(vectors).to_numpy(zero_copy_only=False).reshape(t.num_rows, -1)


def skill_descriptions(skills: pa.Table) -> dict[str, str]:
    """skill_id -> description, for skills that have one."""
    t = skills.drop_null()
    return dict(zip(t["skill_id"].to_pylist(), t["description"].to_pylist()))
