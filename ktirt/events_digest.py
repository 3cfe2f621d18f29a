"""What `prepare`'s metrics and catalogs need of the events, gathered part by part, so that a source read in parts
(EDM Cup's, EdNet KT1's) is never held whole: counts and sums, one number per student, per item and per assignment
log, the distinct item-skill pairs. The parts hold whole students (no student in two), so per-part counts of
students add up; items, skills and assignment logs (an id some sources reuse across students: EdNet's solving_id
counts each student's sessions) are merged across parts.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ktirt.events import item_skill_pairs

_FIRST = pc.ScalarAggregateOptions(skip_nulls=False)


class EventsDigest:
    """Add every part (`add`), in the events' order, at least one (an empty table will do); then read the figures.
    `future_after_ms`: a time (unix ms) after which events are counted as in the future (`future`)."""

    def __init__(self, future_after_ms: int | None = None):
        self.future_after_ms = future_after_ms
        self.future = 0  # events dated after future_after_ms
        self.n = self.correct = self.helped = self.no_skill = self.multi_skill = 0
        self.min_ms, self.max_ms = None, None
        self._students: list[np.ndarray] = []
        self._items: list[pa.Table] = []  # one table: one row per item seen so far (not one per part)
        self._pairs: list[pa.Table] = []  # one table: the distinct pairs so far
        self._first_by_log: list[pa.Table] = []

    @classmethod
    def of(cls, events: pa.Table, future_after_ms: int | None = None) -> EventsDigest:
        digest = cls(future_after_ms)
        digest.add(events)
        return digest

    def add(self, events: pa.Table) -> None:
        n_skills = pc.list_value_length(events["skill_ids"]).to_numpy(zero_copy_only=False)
        self.n += events.num_rows
        self.correct += int(pc.sum(events["correct"]).as_py() or 0)
        self.helped += int(pc.sum(pc.cast(events["help_requested"], pa.int8())).as_py() or 0)
        self.no_skill += int((n_skills == 0).sum())
        self.multi_skill += int((n_skills > 1).sum())
        self._students.append(np.asarray(pc.value_counts(events["user_id"]).field("counts"), dtype=np.int64))
        items = events.select(["item_id", "problem_type"]).group_by("item_id", use_threads=False).aggregate(
            [([], "count_all"), ("problem_type", "first", _FIRST)])
        self._items = [_merged_items(self._items + [items])]  # one row per item seen so far, not per part
        self._pairs = [_distinct_pairs(self._pairs + [item_skill_pairs(events)])]
        self._first_by_log.append(events.group_by("action_sequence_id", use_threads=False).aggregate([("timestamp", "min")]))
        ms = events["timestamp"].combine_chunks().cast(pa.int64()).drop_null().to_numpy(zero_copy_only=False)
        if len(ms):
            lo, hi = int(ms.min()), int(ms.max())
            self.min_ms = lo if self.min_ms is None else min(self.min_ms, lo)
            self.max_ms = hi if self.max_ms is None else max(self.max_ms, hi)
        if self.future_after_ms is not None:
            self.future += int((ms > self.future_after_ms).sum())

    def per_student(self) -> np.ndarray:
        """Responses per student (in no particular order)."""
        return np.concatenate(self._students) if self._students else np.zeros(0, np.int64)

    def items(self) -> pa.Table:
        """item_id, count_all (responses) and problem_type (that of the item's first event), in first-seen order."""
        return self._items[0].rename_columns({"problem_type_first": "problem_type"})

    def skills(self) -> pa.Array:
        """The distinct skill codes the events carry."""
        return pc.unique(self.pairs()["skill_id"])

    def pairs(self) -> pa.Table:
        """The distinct (item_id, skill_id) pairs."""
        return self._pairs[0]

    def first_by_log(self) -> pa.Table:
        """action_sequence_id and timestamp_min: each assignment log's earliest event."""
        t = pa.concat_tables(self._first_by_log, promote_options="default")
        if len(self._first_by_log) == 1:
            return t
        t = t.group_by("action_sequence_id", use_threads=False).aggregate([("timestamp_min", "min")])
        return t.rename_columns({"timestamp_min_min": "timestamp_min"})

    @property
    def n_logs(self) -> int:
        """The distinct assignment logs (action_sequence_id)."""
        return self.first_by_log().num_rows


def _merged_items(parts: list[pa.Table]) -> pa.Table:
    """Per-item tables (item_id, count_all, problem_type_first) of consecutive parts as one: counts summed, the
    first part's type kept."""
    if len(parts) == 1:
        return parts[0]
    t = pa.concat_tables(parts, promote_options="default").group_by("item_id", use_threads=False).aggregate(
        [("count_all", "sum"), ("problem_type_first", "first", _FIRST)])
    return pa.table({"item_id": t["item_id"], "count_all": t["count_all_sum"], "problem_type_first": t["problem_type_first_first"]})


def _distinct_pairs(parts: list[pa.Table]) -> pa.Table:
    """Distinct-pair tables of consecutive parts as one (a merged table's columns are nullable, a part's not)."""
    if len(parts) == 1:
        return parts[0]
    return pa.concat_tables(parts, promote_options="default").group_by(["item_id", "skill_id"], use_threads=False).aggregate([])
