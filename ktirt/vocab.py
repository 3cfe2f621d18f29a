"""Id vocabularies shared by pyKT's files and our SAKT: training users' items and skills first, then the
ones only val/test users meet (mapped explicitly, never silently dropped)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

NO_SKILL = "__no_skill__"


def skill_lists(skill_ids: pa.ChunkedArray | pa.ListArray) -> pa.ListArray:
    """Every response's skill codes, [NO_SKILL] where it has none (so each response has at least one)."""
    arr = skill_ids.combine_chunks() if isinstance(skill_ids, pa.ChunkedArray) else skill_ids
    return pc.if_else(pc.greater(pc.list_value_length(arr), 0), arr, pa.scalar([NO_SKILL], arr.type))


def first_occurrences(ids: pa.ChunkedArray | pa.Array) -> tuple[pa.Array, np.ndarray]:
    """The distinct values of `ids` in the order first met, and the row where each is first met: what
    pandas' factorize and drop_duplicates give, without turning millions of ids into Python strings."""
    distinct = pc.unique(ids)
    codes = pc.index_in(ids, value_set=distinct)
    codes = (codes.combine_chunks() if isinstance(codes, pa.ChunkedArray) else codes).fill_null(-1).to_numpy(zero_copy_only=False)
    values, first = np.unique(codes, return_index=True)
    return distinct, first[values >= 0]


def first_skill(skill_ids: pa.ChunkedArray | pa.ListArray) -> pa.Array:
    """The primary concept of each response: its first skill code, or NO_SKILL. pyKT's one-concept-per-row
    files need one; SAKT and the exports read every skill (`skill_lists`)."""
    return pc.list_element(skill_lists(skill_ids), 0)


@dataclass
class Vocabulary:
    items: list[str]
    """pyKT question index -> item_id; the first n_train_items are those training users answered."""
    skills: list[str]
    n_train_items: int
    n_train_skills: int
    item_train_count: np.ndarray

    @classmethod
    def build(cls, item_ids: pa.Array, skills: pa.ListArray, is_train: np.ndarray) -> "Vocabulary":
        """Vocabularies of an item column and a skill-list column (every skill of a response counts);
        `is_train` marks training users' rows."""
        mask = pa.array(is_train)
        skill_mask = pa.array(np.repeat(is_train, pc.list_value_length(skills).to_numpy(zero_copy_only=False)))
        skills = pc.list_flatten(skills)
        counts = pc.value_counts(item_ids.filter(mask))
        train_items = counts.field("values").to_pylist()
        n_train = dict(zip(train_items, counts.field("counts").to_pylist()))
        train_items = sorted(train_items)
        other_items = sorted(set(pc.unique(item_ids).to_pylist()) - set(train_items))
        train_skills = sorted(pc.unique(skills.filter(skill_mask)).to_pylist())
        other_skills = sorted(set(pc.unique(skills).to_pylist()) - set(train_skills))
        return cls(
            items=[*train_items, *other_items],
            skills=[*train_skills, *other_skills],
            n_train_items=len(train_items),
            n_train_skills=len(train_skills),
            item_train_count=np.array([n_train[i] for i in train_items] + [0] * len(other_items), dtype=np.int64),
        )

    @classmethod
    def from_batches(cls, batches, train_users) -> "Vocabulary":
        """`build` over tables of whole students (ktirt.user_batches; columns user_id, item_id, skill_ids) read
        one at a time, `train_users` the training students: the same vocabulary, in memory that grows with the
        items and skills, not the responses."""
        train_users = pa.array(sorted(train_users), pa.string())
        n_train: dict[str, int] = {}
        every_item, train_skills, every_skill = set(), set(), set()
        for t in batches:
            is_train = pc.is_in(t["user_id"], value_set=train_users).to_numpy(zero_copy_only=False)
            part = cls.build(t["item_id"].combine_chunks(), skill_lists(t["skill_ids"]), is_train)
            for item, count in zip(part.items[: part.n_train_items], part.item_train_count.tolist()):
                n_train[item] = n_train.get(item, 0) + count
            every_item.update(part.items)
            train_skills.update(part.skills[: part.n_train_skills])
            every_skill.update(part.skills)
        items, skills = sorted(n_train), sorted(train_skills)
        return cls(items=[*items, *sorted(every_item - set(items))], skills=[*skills, *sorted(every_skill - train_skills)],
                   n_train_items=len(items), n_train_skills=len(skills),
                   item_train_count=np.array([n_train[i] for i in items] + [0] * (len(every_item) - len(items)), dtype=np.int64))

    def item_index(self, item_ids) -> np.ndarray:
        """pyKT question index of each item id; -1 for an id outside the vocabulary."""
        return _index(self.items, item_ids)

    def skill_index(self, skills) -> np.ndarray:
        return _index(self.skills, skills)

    def to_json(self) -> dict:
        """pyKT's keyid2idx.json layout (questions, concepts), plus what our SAKT needs to reload."""
        return {
            "questions": {k: i for i, k in enumerate(self.items)},
            "concepts": {k: i for i, k in enumerate(self.skills)},
            "n_train_questions": self.n_train_items,
            "n_train_concepts": self.n_train_skills,
            "question_train_count": self.item_train_count.tolist(),
        }

    @classmethod
    def from_json(cls, d: dict) -> "Vocabulary":
        return cls(
            items=sorted(d["questions"], key=d["questions"].get),
            skills=sorted(d["concepts"], key=d["concepts"].get),
            n_train_items=d["n_train_questions"],
            n_train_skills=d["n_train_concepts"],
            item_train_count=np.asarray(d["question_train_count"], dtype=np.int64),
        )


def padded_index(lists, index: Callable[[pa.Array], np.ndarray], max_width: int | None = None,
                 dtype=np.int64, width: int | None = None) -> np.ndarray:
    """(n, K) `index` of each row's list entries (skill codes -> vocabulary positions), -1 after a row's last;
    K is `width` when given, else the longest list (at least 1, at most `max_width`: longer lists keep their
    first entries). Both engines' skill matrices are built here."""
    lengths = pc.list_value_length(lists).to_numpy(zero_copy_only=False)
    k = width or max(int(lengths.max(initial=1)), 1)
    k = min(k, max_width) if max_width else k
    flat = index(pc.list_flatten(lists))
    row = np.repeat(np.arange(len(lengths)), lengths)
    col = np.arange(len(flat)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    out = np.full((len(lengths), k), -1, dtype=dtype)
    keep = col < k
    out[row[keep], col[keep]] = flat[keep]
    return out


def _index(vocab: list[str], values) -> np.ndarray:
    arr = values if isinstance(values, (pa.Array, pa.ChunkedArray)) else pa.array(list(values), pa.string())
    return pc.index_in(arr, value_set=pa.array(vocab, pa.string())).fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
