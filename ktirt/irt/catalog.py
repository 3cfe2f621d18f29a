"""The item catalog WD-IRT fits: every item of the events and unit tests, with its skills, problem type and text
embedding, indexed once so every array of the engine can refer to an item by its row."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ktirt.catalog import problem_types_of
from ktirt.features.history import text_matrix
from ktirt.models.wdirt import GUESSABLE_TYPES
from ktirt.vocab import NO_SKILL, padded_index, skill_lists


class Catalog:
    """Every item of the events and unit tests, with its skills, type and text embedding."""

    def __init__(self, events: pa.Table, unit_tests: pa.Table, types: dict[str, str], text):
        ids = pa.concat_arrays([events["item_id"].combine_chunks(), unit_tests["item_id"].combine_chunks()])
        lists = pa.concat_arrays([skill_lists(events["skill_ids"]), skill_lists(unit_tests["skill_ids"])])
        codes, seen = pd.factorize(ids.to_numpy(zero_copy_only=False))  # hashing: fast on millions of rows
        order = np.argsort(seen, kind="stable")
        items, first = seen[order], np.unique(codes, return_index=True)[1][order]  # sorted ids, each one's first row
        self.items = items.tolist()
        self.item_skill_lists = lists.take(pa.array(first)).to_pylist()
        """each item's skill codes, in the source's order; the first is its `skill_id` in item_params"""
        self.item_skill_name = np.array([codes[0] for codes in self.item_skill_lists], dtype=object)
        self.skills = sorted({c for codes in self.item_skill_lists for c in codes} | {NO_SKILL})
        skill_set = pa.array(self.skills, pa.string())
        self.item_skills = padded_index(lists.take(pa.array(first)), lambda flat: pc.index_in(
            flat, value_set=skill_set).to_numpy(zero_copy_only=False), dtype=np.int32)
        """(n_items, K) skill indices, -1 after an item's last"""
        self.item_skill = self.item_skills[:, 0]
        """the first skill's index: the mean baselines' fallback for an item no training student answered"""
        self.types = problem_types_of(self.items, events, types)
        self.guessable = np.array([t in GUESSABLE_TYPES for t in self.types])
        self.text = text_matrix(self.items, text)

    def skill_ids(self) -> list[list[str]]:
        """Each item's skill codes as item_params holds them (none for an item without one)."""
        return [[] if codes == [NO_SKILL] else codes for codes in self.item_skill_lists]

    def index(self, ids: pa.ChunkedArray) -> np.ndarray:
        return pc.index_in(ids, value_set=pa.array(self.items, pa.string())).to_numpy(zero_copy_only=False).astype(np.int64)
