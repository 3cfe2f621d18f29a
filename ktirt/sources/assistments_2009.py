"""ASSISTments 2009-2010 skill builder (`skill_builder_data.csv`) -> canonical events.

The file has one row per (response, skill): a multi-skill problem repeats its `order_id`, and those rows
collapse into one event with a skill list. It has no clock time, only `order_id`, which is chronological;
events get an order-preserving pseudo-timestamp (1970-01-01 plus order_id milliseconds, before
`ktirt.events.PSEUDO_TIME_END` so nothing shows it as a date), flagged in the metrics as `has_timestamps: 0`. It has no unit tests and no text embeddings.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ktirt.errors import InputError
from ktirt.events import PSEUDO_TIME_END
from ktirt.sources.canonical import SourceTables, events_table, unit_tests_table
from ktirt.sources.files import check_raw_folder, present
from ktirt.sources.ids import described_codes, skill_code_lists
from ktirt.sources.tables import read_csv, read_header, reading

log = logging.getLogger(__name__)

SKILL_BUILDER = "skill_builder_data.csv"
COLUMNS = {
    "order_id": pa.string(),  # an id first (the id rule: `70001.0` is 70001), then the integer it must be
    "assignment_id": pa.string(),
    "user_id": pa.string(),
    "problem_id": pa.string(),
    "correct": pa.float64(),
    "attempt_count": pa.float64(),
    "ms_first_response": pa.float64(),
    "answer_type": pa.string(),
    "skill_id": pa.string(),
    "hint_count": pa.float64(),
    "first_action": pa.float64(),
    "bottom_hint": pa.float64(),
}
ID_COLUMNS = ("order_id", "assignment_id", "user_id", "problem_id")


def load(raw_dir: str | Path) -> SourceTables:
    raw = Path(raw_dir)
    check_raw_folder(raw)
    path = raw / SKILL_BUILDER
    with reading() as ledger:  # exact duplicate rows are removed (and counted) as the file is read
        t = read_csv(path, COLUMNS, ids=ID_COLUMNS)
    row_skills, split = skill_code_lists(t["skill_id"], path, "skill_id")
    df, n, dropped = _usable_rows(t, path)
    skills = _skill_lists(df, row_skills)
    first = _first_rows(df, path)
    events = events_table(_event_columns(first, skills))
    log.info("%s: %d rows -> %d events (%d multi-skill rows merged)", path.name, n, events.num_rows, len(df) - len(first))
    return SourceTables(
        events,
        unit_tests_table(None),
        ledger.dropped() | dropped,
        {"multi_skill_rows_merged": len(df) - len(first)},
        {"has_unit_tests": 0, "has_text_embeddings": 0, "has_timestamps": 0},
        reading={"multi_skill_from_lists": split} | ledger.facts(),
    )


def _order_ids(t: pa.Table, path: Path) -> pa.Table:
    """order_id as the integer it must be (it orders the responses)."""
    order = t["order_id"].combine_chunks()
    integer = pc.match_substring_regex(order, r"^-?[0-9]+$")
    if not pc.all(integer).as_py():
        bad = order.filter(pc.invert(integer.fill_null(True)))[0]
        raise InputError(f"value '{bad}' is not an integer (order_id orders the responses)", path, "order_id")
    return t.set_column(0, "order_id", order.cast(pa.int64()))


def _usable_rows(t: pa.Table, path: Path) -> tuple[pd.DataFrame, int, dict[str, int]]:
    """The file's rows (exact duplicates already gone) less rows without a student, a problem, an order_id or
    a 0/1 correct (each counted under its first reason); also the number of rows read. None usable stops the
    run. `_row` is each row's place in the file (its skill list's)."""
    df = _order_ids(t, path).to_pandas()
    df["_row"] = np.arange(len(df))
    dropped = {}
    n = len(df)
    for column, reason in (("user_id", "no_student"), ("problem_id", "no_problem"), ("order_id", "no_order_id")):
        bad = df[column].isna()
        dropped[f"rows_{reason}"] = int(bad.sum())
        df = df[~bad]
    bad = ~df["correct"].isin([0.0, 1.0])
    dropped["rows_correct_not_0_1"] = int(bad.sum())
    df = df[~bad]
    if df.empty:
        raise InputError("no usable rows (every row lacks a student, a problem, an order_id or a 0/1 correct)", path)
    return df, n, dropped


def _skill_lists(df: pd.DataFrame, row_skills: pa.ListArray) -> pd.Series:
    """order_id -> its sorted distinct skills: the rows a multi-skill response repeats, and the codes a
    skill field lists (ktirt.sources.ids.skill_code_lists), merged."""
    pairs = pd.DataFrame({"_row": pc.list_parent_indices(row_skills).to_numpy(zero_copy_only=False),
                          "skill": pc.list_flatten(row_skills).to_pandas()})
    return (
        pairs.merge(df[["_row", "order_id"]], on="_row")[["order_id", "skill"]]
        .dropna()
        .drop_duplicates()
        .sort_values(["order_id", "skill"])
        .groupby("order_id")["skill"]
        .agg(list)
    )


def _first_rows(df: pd.DataFrame, path: Path) -> pd.DataFrame:
    """One row per order_id (a response). Its rows must agree on user, problem and correct, and the order_id
    must fit as pseudo-time milliseconds before PSEUDO_TIME_END, else the run stops."""
    first = df.drop_duplicates("order_id")
    conflict = len(first) != df.drop_duplicates(["order_id", "user_id", "problem_id", "correct"]).shape[0]
    if conflict:
        raise InputError("the same order_id carries different user, problem or correct values", path, "order_id")
    if len(first) and first["order_id"].max() >= PSEUDO_TIME_END.value // 1_000_000:
        raise InputError(f"order_id {first['order_id'].max()} is too large to serve as order-only milliseconds "
                         f"(the pseudo-timestamps must stay before {PSEUDO_TIME_END:%Y-%m-%d}, or they read as clock "
                         "time)", path, "order_id")
    return first


def _event_columns(first: pd.DataFrame, skills: pd.Series) -> dict:
    """The canonical event columns of the responses: order_id as the pseudo-timestamp, help requested when a
    hint was asked for (a hint count, a hint first action or the bottom hint), negative latency as missing."""
    latency = first["ms_first_response"].to_numpy()
    bad_latency = ~np.isfinite(latency) | (latency < 0)
    hints = first["hint_count"].fillna(0).to_numpy()
    help_requested = (hints > 0) | (first["first_action"].to_numpy() == 1) | (first["bottom_hint"].to_numpy() == 1)
    return {
        "user_id": pa.array(first["user_id"], pa.string()),
        "item_id": pa.array(first["problem_id"], pa.string()),
        "skill_ids": pa.array([skills.get(o, []) for o in first["order_id"]], pa.list_(pa.string())),
        "timestamp": first["order_id"].to_numpy(np.int64),
        "correct": first["correct"].to_numpy().astype(np.int8),
        "action_sequence_id": pa.array(first["assignment_id"].fillna(""), pa.string()),
        "latency_ms": pa.array(np.where(bad_latency, 0, latency).astype(np.int64), pa.int64(), mask=bad_latency),
        "help_requested": help_requested,
        "hint_count": np.clip(hints, 0, np.iinfo(np.int16).max).astype(np.int16),
        "attempt_count": np.clip(first["attempt_count"].fillna(0).to_numpy(), 0, np.iinfo(np.int16).max).astype(np.int16),
        "problem_type": pa.array(first["answer_type"], pa.string(), from_pandas=True),
    }


def skill_descriptions(raw_dir: str | Path) -> dict[str, str]:
    """skill_id -> skill_name from skill_builder_data.csv; {} where the file or the column is absent."""
    path = Path(raw_dir) / SKILL_BUILDER
    if not present(path) or "skill_name" not in read_header(path):
        return {}
    t = read_csv(path, {"skill_id": pa.string(), "skill_name": pa.string()}, drop_duplicates=False)
    codes, names = described_codes(t["skill_id"], t["skill_name"], path, "skill_id")
    return dict(pd.DataFrame({"skill_id": codes, "skill_name": names}).drop_duplicates("skill_id").itertuples(index=False))
