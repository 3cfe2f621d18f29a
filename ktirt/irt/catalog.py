"""The item catalog WD-IRT fits: every item of the events and unit tests, with its skills, problem type and text
embedding, indexed once so every array of the engine can refer to an item by its row."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ktirt.catalog import problem_types_of
from ktirt.features.history import text_matrix
from ktirt.models.wdirt import GUESSABLE_TYPES
from ktirt.vocab import NO_SKILL, first_occurrences, padded_index, skill_lists


class Catalog:
    """Every item of the events and unit tests, with its skills, type and text embedding."""

    def __init__(self, events: pa.Table, unit_tests: pa.Table, types: dict[str, str], text):
        rows = pa.concat_tables([events.select(["item_id", "skill_ids"]), unit_tests.select(["item_id", "skill_ids"])])
        self._build(rows, events.select(["item_id", "problem_type"]), types, text)

    @classmethod
    def of_first_rows(cls, rows: pa.Table, event_types: pa.Table, types: dict[str, str], text) -> "Catalog":
        """The catalog from item_id and skill_ids rows holding at least each item's first row (the events', then
        the unit tests'), in the tables' order, and item_id and problem_type rows holding each item's first
        event: what a pass over the log a batch at a time keeps (ktirt/irt/target_blocks.py)."""
        cat = cls.__new__(cls)
        cat._build(rows, event_types, types, text)
        return cat

    def _build(self, rows: pa.Table, event_types: pa.Table, types: dict[str, str], text) -> None:
        seen, first = first_occurrences(rows["item_id"])
        seen = seen.to_numpy(zero_copy_only=False)
        order = np.argsort(seen, kind="stable")
        self.items = seen[order].tolist()  # sorted ids
        lists = skill_lists(rows["skill_ids"].take(pa.array(first[order], pa.int64())))  # each one's, from its first row
        self.item_skill_lists = lists.to_pylist()
        """each item's skill codes, in the source's order; the first is its `skill_id` in item_params"""
        self.item_skill_name = np.array([codes[0] for codes in self.item_skill_lists], dtype=object)
        self.skills = sorted({c for codes in self.item_skill_lists for c in codes} | {NO_SKILL})
        skill_set = pa.array(self.skills, pa.string())
        self.item_skills = padded_index(lists, lambda flat: pc.index_in(
            flat, value_set=skill_set).to_numpy(zero_copy_only=False), dtype=np.int32)
        """(n_items, K) skill indices, -1 after an item's last"""
        self.item_skill = self.item_skills[:, 0]
        """the first skill's index: the mean baselines' fallback for an item no training student answered"""
        self.types = problem_types_of(self.items, event_types, types)
        self.guessable = np.array([t in GUESSABLE_TYPES for t in self.types])
        self.text = text_matrix(self.items, text)

    def skill_ids(self) -> list[list[str]]:
        """Each item's skill codes as item_params holds them (none for an item without one)."""
        return [[] if codes == [NO_SKILL] else codes for codes in self.item_skill_lists]

    def index(self, ids: pa.ChunkedArray) -> np.ndarray:
        return pc.index_in(ids, value_set=pa.array(self.items, pa.string())).to_numpy(zero_copy_only=False).astype(np.int64)

