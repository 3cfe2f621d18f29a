"""What `prepare`'s metrics, sanity block and catalogs need of the unit tests, gathered part by part, so that a
source read in parts (EDM Cup's) never holds unit_tests.parquet whole: counts, the time range, the rows dated after
their unit's first work, the items and skills they name. Parts hold whole students (no student in two), so
per-part counts of students add up."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ktirt.events_digest import EventsDigest
from ktirt.sources.key_index import KeyIndex

SLICE_ROWS = 1 << 20
"""unit-test rows checked against their unit's work at a time (their in-unit logs, flattened, are about three
times as many)"""


class UnitTestsDigest:
    """Add every part (`add`), at least one (an empty table will do), once the events' digest `events` is complete
    (the unit tests are dated against it: `after_work_share`, `future`); then read the figures."""

    def __init__(self, events: EventsDigest):
        self.events = events
        self.rows = self.scored = self.users = self.future = 0
        self.min_ms: int | None = None
        self.max_ms: int | None = None
        self.with_work = self.after_work = 0  # rows whose in-unit logs have events; of those, dated after the first
        self._items: set[str] = set()
        self._skills: set[str] = set()
        self._first: tuple[KeyIndex, np.ndarray] | None = None  # each log's first event, once asked

    @classmethod
    def of(cls, unit_tests: pa.Table, events: EventsDigest) -> UnitTestsDigest:
        digest = cls(events)
        digest.add(unit_tests)
        return digest

    def add(self, part: pa.Table) -> None:
        self.rows += part.num_rows
        self.scored += part.num_rows - part["correct"].null_count
        self.users += len(pc.unique(part["user_id"]))
        self._items.update(pc.unique(part["item_id"]).to_pylist())
        self._skills.update(pc.unique(pc.list_flatten(part["skill_ids"])).to_pylist())
        ms = _ms(part["timestamp"])
        if len(ms):
            self.min_ms = int(ms.min()) if self.min_ms is None else min(self.min_ms, int(ms.min()))
            self.max_ms = int(ms.max()) if self.max_ms is None else max(self.max_ms, int(ms.max()))
        if self.events.future_after_ms is not None:
            self.future += int((ms > self.events.future_after_ms).sum())
        if self.events.n:
            for start in range(0, part.num_rows, SLICE_ROWS):
                self._date_against_work(part.slice(start, SLICE_ROWS))

    def items(self) -> pa.Array:
        """The distinct item ids, sorted."""
        return pa.array(sorted(self._items), pa.string())

    def skills(self) -> pa.Array:
        """The distinct skill codes, sorted."""
        return pa.array(sorted(self._skills), pa.string())

    def after_work_share(self) -> float | None:
        """Among rows whose in-unit logs have events, the share dated after the earliest of them (None: no such row)."""
        return round(self.after_work / self.with_work, 6) if self.with_work else None

    def _date_against_work(self, rows: pa.Table) -> None:
        logs, first_ms = self._first_events()
        in_unit = rows["in_unit_ids"].combine_chunks()
        parent = pc.list_parent_indices(in_unit).to_numpy(zero_copy_only=False)
        row = logs.rows(pc.dictionary_encode(pc.list_flatten(in_unit)))  # a unit's logs on each of its rows: found once
        parent, row = parent[row >= 0], row[row >= 0]
        after = _ms(rows["timestamp"])[parent] >= first_ms[row]
        self.with_work += int((np.bincount(parent, minlength=rows.num_rows) > 0).sum())
        self.after_work += int((np.bincount(parent[after], minlength=rows.num_rows) > 0).sum())

    def _first_events(self) -> tuple[KeyIndex, np.ndarray]:
        """Each assignment log's earliest event time, found by a KeyIndex built once for every part (Arrow's
        index_in builds its hash of the logs at each call: 0.6 s for 2.24 M logs)."""
        if self._first is None:
            first = self.events.first_by_log()
            first = first.filter(pc.is_valid(first["action_sequence_id"]))
            self._first = KeyIndex(first["action_sequence_id"]), _ms(first["timestamp_min"])
        return self._first


def _ms(column: pa.ChunkedArray) -> np.ndarray:
    return column.combine_chunks().cast(pa.int64()).drop_null().to_numpy(zero_copy_only=False)
