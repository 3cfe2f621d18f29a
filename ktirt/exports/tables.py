"""The joinable export tables: their Arrow schemas (keys typed exactly as in events.parquet) and builders.

Every table carries the join keys it has: `user_id`, `item_id` (string, not null), `timestamp`
(timestamp[ms, UTC], not null), `skill_id` (string; null for an item without a skill code).
Tables are sorted by their keys and written in row groups, so a reader filtering one student or one
item (demo_trace) reads a few row groups, not the file.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ktirt.events import EVENTS_SCHEMA, TIMESTAMP, item_skill_pairs
from ktirt.kt.sequences import Sequences
from ktirt.split import SPLITS
from ktirt.vocab import NO_SKILL, Vocabulary

ROW_GROUP = 65_536
USER_ID, ITEM_ID, TS = (EVENTS_SCHEMA.field(k) for k in ("user_id", "item_id", "timestamp"))
SKILL_ID = pa.field("skill_id", pa.string(), nullable=True)

SCHEMAS = {
    "sakt_predictions": pa.schema([USER_ID, ITEM_ID, TS, pa.field("split", pa.string(), nullable=False),
                                   pa.field("predicted", pa.float32()), pa.field("actual", pa.int8(), nullable=False)]),
    "sakt_student_state": pa.schema([USER_ID, SKILL_ID.with_nullable(False), TS, ITEM_ID,
                                     pa.field("mastery", pa.float32()), pa.field("n_attempts", pa.int32(), nullable=False)]),
    "item_params": pa.schema([ITEM_ID, SKILL_ID, pa.field("difficulty", pa.float64()), pa.field("discrimination", pa.float64()),
                              pa.field("guessing", pa.float64()), pa.field("n_responses", pa.int64()),
                              pa.field("difficulty_se", pa.float64()), pa.field("cold", pa.bool_()),
                              pa.field("problem_type", pa.string()), pa.field("difficulty_current", pa.float64()),
                              pa.field("drift_start", TIMESTAMP), pa.field("skill_ids", pa.list_(pa.string()))]),
    "item_drift": pa.schema([ITEM_ID, pa.field("window_start", TIMESTAMP, nullable=False),
                             pa.field("window_end", TIMESTAMP, nullable=False), pa.field("difficulty_shift", pa.float64()),
                             pa.field("z", pa.float64()), pa.field("drift_flag", pa.bool_()), pa.field("n_window", pa.int64()),
                             pa.field("n_before", pa.int64()), pa.field("n_after", pa.int64())]),
    "skills": pa.schema([SKILL_ID.with_nullable(False), pa.field("description", pa.string()), pa.field("n_items", pa.int64())]),
    "blend_predictions": pa.schema([USER_ID, ITEM_ID, TS, pa.field("p_blend", pa.float32())]),
}
"""data/exports/<name>.parquet (docs/ARCHITECTURE.md): the keys and the engines' figures first, then the columns that
help a reader."""


def typed_table(name: str, columns: dict) -> pa.Table:
    """Columns (arrays, numpy or Arrow) cast to the export schema `name`, in its column order."""
    schema = SCHEMAS[name]
    return pa.table({f.name: pa.array(columns[f.name], f.type) if not isinstance(columns[f.name], (pa.Array, pa.ChunkedArray))
                     else columns[f.name].cast(f.type) for f in schema}, schema=schema)


def _skill_or_null(values) -> pa.Array:
    arr = pa.array(values, pa.string()) if not isinstance(values, (pa.Array, pa.ChunkedArray)) else values
    return pc.if_else(pc.equal(arr, NO_SKILL), pa.scalar(None, pa.string()), arr)


def predictions_table(events: pa.Table, seqs: Sequences, predicted: np.ndarray) -> pa.Table:
    """Every response of every student (events.parquet's order), with its split and SAKT's prediction."""
    split = np.asarray(SPLITS, dtype=object)[seqs.split[seqs.user_of]]
    return typed_table("sakt_predictions", {"user_id": events["user_id"], "item_id": events["item_id"], "timestamp": events["timestamp"],
                                       "split": split, "predicted": predicted.astype(np.float32), "actual": seqs.correct})


def student_state_table(events: pa.Table, seqs: Sequences, vocab: Vocabulary, mastery: np.ndarray) -> tuple[pa.Table, int]:
    """Per response and each skill it carries: the student's mastery of that skill just after it and their
    attempts on it so far (this one included); returns the table and the number of responses without a skill.
    `mastery` is (n, K), aligned with `seqs.skills`."""
    skills = seqs.skills[:, : mastery.shape[1]]
    has = skills >= 0
    has &= np.asarray(vocab.skills, dtype=object)[np.maximum(skills, 0)] != NO_SKILL
    rows, slot = np.nonzero(has)  # row-major: events' order, then the response's skill order
    skill = skills[rows, slot]
    key = seqs.user_of[rows].astype(np.int64) * (len(vocab.skills) + 1) + skill
    attempts = pd.Series(np.ones(len(key), np.int32)).groupby(key).cumsum().to_numpy()
    take = pa.array(rows)
    table = typed_table("sakt_student_state", {
        "user_id": events["user_id"].take(take), "skill_id": np.asarray(vocab.skills, dtype=object)[skill],
        "timestamp": events["timestamp"].take(take), "item_id": events["item_id"].take(take),
        "mastery": mastery[rows, slot].astype(np.float32), "n_attempts": attempts,
    })
    return table, int((~has.any(1)).sum())


def item_params_table(params: pa.Table) -> pa.Table:
    cols = {f.name: params[f.name] for f in SCHEMAS["item_params"] if f.name != "skill_id"}
    cols["skill_id"] = _skill_or_null(params["skill_id"].combine_chunks())
    return typed_table("item_params", cols).sort_by("item_id")


def item_drift_table(drift: pa.Table) -> pa.Table:
    return typed_table("item_drift", {f.name: drift[f.name] for f in SCHEMAS["item_drift"]}).sort_by([("item_id", "ascending"),
                                                                                             ("window_start", "ascending")])


def skills_table(params: pa.Table, event_pairs: pa.Table, descriptions: dict[str, str]) -> pa.Table:
    """Every skill code the items carry (each skill of a multi-skill item counts), with its description
    from the source (null where it has none) and how many items carry it. `event_pairs`: the events' (item, skill)
    pairs (ktirt.events.item_skill_pairs), of batches of them concatenated."""
    pairs = pa.concat_tables([event_pairs, item_skill_pairs(params).cast(event_pairs.schema)]).drop_null()  # unit-test-only items too
    per_skill = pairs.group_by(["skill_id", "item_id"]).aggregate([]).group_by("skill_id").aggregate([("item_id", "count")])
    per_skill = per_skill.sort_by("skill_id")
    codes = per_skill["skill_id"].to_pylist()
    return typed_table("skills", {"skill_id": codes, "description": [descriptions.get(c) for c in codes],
                                  "n_items": per_skill["item_id_count"]})
