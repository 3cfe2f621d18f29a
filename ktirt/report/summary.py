"""What the report page needs of the two per-response exports (sakt_predictions, sakt_student_state), gathered in
one pass a batch of whole students at a time, so the report holds a batch and per-student figures, not the log.

Kept: every student's id and split (the sampled students are drawn from them), whether any timestamp is clock
time, per (skill, student) the last mastery, and per (skill, attempt number) the running sums of the learning
curve (ktirt.streaming_stats.GroupMeans: the means pandas gives over the whole table, to the last bit)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ktirt.errors import InputError
from ktirt.events import PSEUDO_TIME_END
from ktirt.streaming_stats import GroupMeans
from ktirt.user_batches import user_batches

CURVE_MAX_ATTEMPTS = 60
"""a skill's learning curve stops at this attempt number"""
PRED_COLUMNS = ["user_id", "item_id", "timestamp", "split", "predicted", "actual"]
STATE_COLUMNS = ["user_id", "skill_id", "timestamp", "item_id", "mastery", "n_attempts"]


@dataclass
class LogSummary:
    skills: np.ndarray
    """the skill codes (sorted): a skill's number below is its position here"""
    users: list = field(default_factory=list)
    splits: list = field(default_factory=list)
    clock: bool = False
    last_skill: list = field(default_factory=list)
    last_mastery: list = field(default_factory=list)
    curve: dict = field(default_factory=dict)

    def __post_init__(self):
        n = len(self.skills) * (CURVE_MAX_ATTEMPTS + 1)
        self.curve = {"mastery": GroupMeans(n, np.float32), "accuracy": GroupMeans(n, np.float64),
                      "students": np.zeros(n, np.int64)}

    def add(self, pred: pd.DataFrame, state: pd.DataFrame) -> None:
        """One batch of whole students of both tables."""
        first = pred.drop_duplicates("user_id")
        self.users.append(first["user_id"].to_numpy(dtype=object))
        self.splits.append(first["split"].to_numpy(dtype=object))
        self.clock = self.clock or bool((pred["timestamp"] >= PSEUDO_TIME_END).any())
        skill = self._numbers(state["skill_id"])
        last = state.assign(skill=skill).groupby(["skill", "user_id"], sort=True)["mastery"].last().dropna()
        self.last_skill.append(last.index.get_level_values(0).to_numpy(np.int64))
        self.last_mastery.append(last.to_numpy())
        correct = state.merge(pred[["user_id", "item_id", "timestamp", "actual"]], on=["user_id", "item_id", "timestamp"],
                              how="left")["actual"].to_numpy(np.float64, na_value=np.nan)
        early = state["n_attempts"].to_numpy() <= CURVE_MAX_ATTEMPTS
        group = (skill * (CURVE_MAX_ATTEMPTS + 1) + state["n_attempts"].to_numpy())[early]
        self.curve["mastery"].add(group, state["mastery"].to_numpy()[early])
        self.curve["accuracy"].add(group, correct[early])
        self.curve["students"] += np.bincount(group, minlength=len(self.curve["students"]))

    def _numbers(self, skill_ids: pd.Series) -> np.ndarray:
        codes = skill_ids.to_numpy(dtype=object)
        number = np.searchsorted(self.skills, codes)
        known = number < len(self.skills)
        if not known.all() or (self.skills[number] != codes).any():
            raise InputError("a skill missing from skills.parquet (rerun export)", "sakt_student_state.parquet", "skill_id")
        return number.astype(np.int64)

    def students(self) -> pd.DataFrame:
        """Every student, in user order, with their split."""
        cat = lambda parts: np.concatenate(parts) if parts else np.zeros(0, object)  # noqa: E731
        return pd.DataFrame({"user_id": cat(self.users), "split": cat(self.splits)})

    def last_of(self, skill: str) -> np.ndarray:
        """The students' last mastery of a skill (those with one), in user order."""
        number = int(np.searchsorted(self.skills, skill))
        if number >= len(self.skills) or self.skills[number] != skill:
            return np.zeros(0, np.float32)
        skills, values = np.concatenate(self.last_skill), np.concatenate(self.last_mastery)
        return values[skills == number]

    def curve_of(self, skill: str) -> pd.DataFrame:
        """A skill's learning curve: per attempt number reached by anyone, the mean mastery, the accuracy and how
        many students (rows) reached it."""
        number = int(np.searchsorted(self.skills, skill))
        if number >= len(self.skills) or self.skills[number] != skill:
            number = -1
        span = slice(number * (CURVE_MAX_ATTEMPTS + 1), (number + 1) * (CURVE_MAX_ATTEMPTS + 1)) if number >= 0 else slice(0, 0)
        students = self.curve["students"][span]
        reached = np.flatnonzero(students)
        return pd.DataFrame({"n_attempts": reached.astype(np.int64),
                             "mastery": self.curve["mastery"].means()[span][reached],
                             "accuracy": self.curve["accuracy"].means()[span][reached],
                             "students": students[reached]})


def summarize(exports: Path, skills: Iterable[str]) -> LogSummary:
    """The one pass over data/exports/'s two per-response tables."""
    summary = LogSummary(np.array(sorted(skills), dtype=object))
    paths = {name: exports / f"{name}.parquet" for name in ("sakt_predictions", "sakt_student_state")}
    predictions = user_batches(paths["sakt_predictions"], PRED_COLUMNS, made_by="export", schema=None)
    states = user_batches(paths["sakt_student_state"], STATE_COLUMNS, made_by="export", schema=None)
    no_state = lambda: pq.read_schema(paths["sakt_student_state"]).empty_table().select(STATE_COLUMNS)  # noqa: E731
    for pred, state in same_students(predictions, states, paths["sakt_student_state"], no_state):
        summary.add(pred.to_pandas(), state.to_pandas())
    return summary


def same_students(batches: Iterator[pa.Table], other: Iterator[pa.Table], other_path: Path,
                  empty: Callable[[], pa.Table]) -> Iterator[tuple[pa.Table, pa.Table]]:
    """Each batch of a table sorted by user_id with the rows of `other` (another such table, whose students are
    among the first's) of the same students (`empty()` where it has none): two per-student tables side by side."""
    held: pa.Table | None = None
    for t in batches:
        last = t["user_id"][-1].as_py()
        parts = []
        while True:
            held = held if held is not None and held.num_rows else next(other, None)
            if held is None:
                break
            cut = int(np.searchsorted(held["user_id"].to_numpy(zero_copy_only=False), last, side="right"))
            parts.append(held.slice(0, cut))
            held = held.slice(cut)
            if held.num_rows:
                break
        parts = [p for p in parts if p.num_rows]
        yield t, pa.concat_tables(parts) if parts else empty()
    if (held is not None and held.num_rows) or next(other, None) is not None:
        raise InputError("rows of students without predictions (rerun export)", other_path, "user_id")
