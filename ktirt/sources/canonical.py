"""What every source adapter returns: the canonical tables and the accounting of what it left out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ktirt.events import EVENTS_SCHEMA, UNIT_TESTS_SCHEMA, sort_events


@dataclass
class SourceTables:
    events: pa.Table | Iterator[pa.Table] | None
    """The events: one table, or (a source read in parts) its parts, see `event_parts`."""
    unit_tests: pa.Table | Iterator[pa.Table] | None
    """The unit-test scores: one table, or (a source read in parts) its parts, see `unit_test_parts`."""
    dropped: dict[str, int] = field(default_factory=dict)
    """Unusable input (no student, no problem, no time...), by reason: never dropped silently."""
    excluded: dict[str, int] = field(default_factory=dict)
    """Input that is not an event by definition (ungraded open responses, problems never answered)."""
    features: dict[str, int] = field(default_factory=dict)
    """What the source provides (1/0): unit tests, text embeddings, real timestamps."""
    first_actions: dict[str, int] = field(default_factory=dict)
    """Events by their first action, where the source logs actions (the sanity block's shares)."""
    reading: dict[str, int] = field(default_factory=dict)
    """How the raw files were read (files not in UTF-8, skill fields split into lists, removed rows by table)
    and references that match nothing: numbers for the sanity block, so no reading choice is silent."""
    items: pa.Table | None = None
    """items.parquet (ktirt/catalog.py), filled in by `load_source`"""
    skills: pa.Table | None = None
    """skills.parquet, filled in by `load_source`"""

    def event_parts(self) -> Iterator[pa.Table]:
        """The events as tables in the contract's order, each holding whole students (no student in two); one
        table where the source was read whole. Parts can be read once."""
        return self._parts("events")

    def unit_test_parts(self) -> Iterator[pa.Table]:
        """The unit tests as tables in the contract's order, each holding whole students; one table where the
        source was read whole. A source read in parts gives them only once its event parts have been read (so they
        are never held beside one), and its counts (dropped, excluded, first_actions, features, reading) are final
        after the last."""
        return self._parts("unit_tests")

    def _parts(self, name: str) -> Iterator[pa.Table]:
        table = getattr(self, name)
        if isinstance(table, pa.Table):
            yield table
            return
        if table is None:
            raise RuntimeError(f"the {name} parts were read already")
        setattr(self, name, None)
        yield from table

    def whole(self) -> SourceTables:
        """These tables with the events and the unit tests as one table each (every part read)."""
        for name in ("events", "unit_tests"):  # events first: a source read in parts gives its unit tests after them
            if not isinstance(getattr(self, name), pa.Table):
                setattr(self, name, pa.concat_tables(list(self._parts(name))).combine_chunks())
        return self


def add_counts(totals: tuple[dict, ...], more: tuple[dict, ...]) -> None:
    """Add each of `more`'s counts (a part's, by name) to the one in the same place in `totals`, new names after
    the others, in the order met."""
    for total, add in zip(totals, more):
        total.update({k: total.get(k, 0) + int(v) for k, v in add.items()})


def events_table(columns: dict[str, object], ordered: bool = False) -> pa.Table:
    """Build events.parquet from column arrays, in the contract's schema and row order (`ordered`: the rows are
    in that order already, sort_events' as the caller computed it)."""
    order = None if ordered else pa.array(sort_events(columns))
    arrays = []
    for f in EVENTS_SCHEMA:
        col = columns[f.name]
        if isinstance(col, (pa.Array, pa.ChunkedArray)):
            arrays.append((col if order is None else col.take(order)).cast(f.type))
        else:
            col = np.asarray(col)
            arrays.append(pa.array(col if order is None else col[order], type=f.type, from_pandas=True))
    return pa.Table.from_arrays(arrays, schema=EVENTS_SCHEMA)


UNIT_TESTS_ORDER = [("user_id", "ascending"), ("timestamp", "ascending"), ("unit_test_id", "ascending"),
                    ("item_id", "ascending")]
"""unit_tests.parquet's row order"""


def unit_tests_order(keys: dict[str, object]) -> np.ndarray:
    """The order of unit-test rows (UNIT_TESTS_ORDER), from those four columns alone: a source sorts its light
    columns first and builds the heavy ones (the in-unit lists) in that order, never holding them twice."""
    fields = [UNIT_TESTS_SCHEMA.field(name) for name, _ in UNIT_TESTS_ORDER]
    table = pa.table({f.name: keys[f.name] for f in fields}).cast(pa.schema(fields))
    return pc.sort_indices(table, UNIT_TESTS_ORDER).to_numpy()


def unit_tests_table(columns: dict[str, object] | None) -> pa.Table:
    """Build unit_tests.parquet from columns whose rows are in unit_tests_order already; empty when None."""
    if columns is None:
        return UNIT_TESTS_SCHEMA.empty_table()
    return pa.table({f.name: columns[f.name] for f in UNIT_TESTS_SCHEMA}).cast(UNIT_TESTS_SCHEMA)
