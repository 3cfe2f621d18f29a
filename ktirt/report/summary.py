"""What the report page needs of the two per-response exports (sakt_predictions, sakt_student_state), gathered in
one pass a batch of whole students at a time, so the report holds a batch and per-student figures, not the log.

Kept: every student's id and split (the sampled students are drawn from them), whether any timestamp is clock
time, per (skill, student) the last mastery, and per (skill, attempt number) the running sums of the learning
curve (ktirt.streaming_stats.GroupMeans: the means pandas gives over the whole table, to the last bit)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from ktirt.errors import InputError
from ktirt.events import has_clock_time
from ktirt.streaming_stats import GroupMeans
from ktirt.user_batches import same_students, user_batches

CURVE_MAX_ATTEMPTS = 60
"""a skill's learning curve stops at this attempt number"""
PRED_COLUMNS = ["user_id", "item_id", "timestamp", "split", "predicted", "actual"]
STATE_COLUMNS = ["user_id", "skill_id", "timestamp", "item_id", "mastery", "n_attempts"]


@dataclass
class LogSummary:
    skills: np.ndarray
    """the skill codes (sorted): a skill's number below is its position here"""
    state_path: Path = Path("sakt_student_state.parquet")
    """named in an error"""
    users: list = field(default_factory=list)
    splits: list = field(default_factory=list)
    clock: bool = False
    last_skill: list = field(default_factory=list)
    last_mastery: list = field(default_factory=list)
    curve: dict = field(init=False)

    def __post_init__(self):
        n = len(self.skills) * (CURVE_MAX_ATTEMPTS + 1)
        self.curve = {"mastery": GroupMeans(n, np.float32), "accuracy": GroupMeans(n, np.float64),
                      "students": np.zeros(n, np.int64)}

    def add(self, pred: pd.DataFrame, state: pd.DataFrame) -> None:
        """One batch of whole students of both tables."""
        first = pred.drop_duplicates("user_id")
        self.users.append(first["user_id"].to_numpy(dtype=object))
        self.splits.append(first["split"].to_numpy(dtype=object))
        self.clock = self.clock or has_clock_time(pred["timestamp"])
        skill = self._checked_numbers(state["skill_id"].to_numpy(dtype=object))
        last = state.assign(skill=skill).groupby(["skill", "user_id"], sort=True)["mastery"].last().dropna()
        self.last_skill.append(last.index.get_level_values(0).to_numpy(np.int32))
        self.last_mastery.append(last.to_numpy())
        correct = state.merge(pred[["user_id", "item_id", "timestamp", "actual"]], on=["user_id", "item_id", "timestamp"],
                              how="left")["actual"].to_numpy(np.float64, na_value=np.nan)
        early = state["n_attempts"].to_numpy() <= CURVE_MAX_ATTEMPTS
        group = (skill * (CURVE_MAX_ATTEMPTS + 1) + state["n_attempts"].to_numpy())[early]
        self.curve["mastery"].add(group, state["mastery"].to_numpy()[early])
        self.curve["accuracy"].add(group, correct[early])
        self.curve["students"] += np.bincount(group, minlength=len(self.curve["students"]))

    def _numbers(self, codes: np.ndarray) -> np.ndarray:
        """Each skill code's number; -1 for a code not among the skills."""
        number = np.searchsorted(self.skills, codes)
        known = number < len(self.skills)
        known[known] = self.skills[number[known]] == codes[known]
        return np.where(known, number, -1).astype(np.int64)

    def _checked_numbers(self, codes: np.ndarray) -> np.ndarray:
        number = self._numbers(codes)
        if (number < 0).any():
            raise InputError("a skill missing from skills.parquet (rerun export)", self.state_path, "skill_id")
        return number

    def students(self) -> pd.DataFrame:
        """Every student, in user order, with their split."""
        cat = lambda parts: np.concatenate(parts) if parts else np.zeros(0, object)  # noqa: E731
        return pd.DataFrame({"user_id": cat(self.users), "split": cat(self.splits)})

    @cached_property
    def _last_by_skill(self) -> list[np.ndarray]:
        """Per skill number, its students' last mastery (those with one), in user order."""
        skills = np.concatenate(self.last_skill) if self.last_skill else np.zeros(0, np.int32)
        values = np.concatenate(self.last_mastery) if self.last_mastery else np.zeros(0, np.float32)
        order = np.argsort(skills, kind="stable")
        return np.split(values[order], np.searchsorted(skills[order], np.arange(1, len(self.skills))))

    @cached_property
    def _curve_means(self) -> dict[str, np.ndarray]:
        return {k: self.curve[k].means() for k in ("mastery", "accuracy")}

    def last_of(self, skill: str) -> np.ndarray:
        """The students' last mastery of a skill (those with one), in user order."""
        number = int(self._numbers(np.array([skill], dtype=object))[0])
        return self._last_by_skill[number] if number >= 0 else np.zeros(0, np.float32)

    def curve_of(self, skill: str) -> pd.DataFrame:
        """A skill's learning curve: per attempt number reached by anyone, the mean mastery, the accuracy and how
        many students (rows) reached it."""
        number = int(self._numbers(np.array([skill], dtype=object))[0])
        span = slice(number * (CURVE_MAX_ATTEMPTS + 1), (number + 1) * (CURVE_MAX_ATTEMPTS + 1)) if number >= 0 else slice(0, 0)
        students = self.curve["students"][span]
        reached = np.flatnonzero(students)
        return pd.DataFrame({"n_attempts": reached.astype(np.int64),
                             "mastery": self._curve_means["mastery"][span][reached],
                             "accuracy": self._curve_means["accuracy"][span][reached],
                             "students": students[reached]})


def summarize(exports: Path, skills: Iterable[str]) -> LogSummary:
    """The one pass over data/exports/'s two per-response tables."""
    paths = {name: exports / f"{name}.parquet" for name in ("sakt_predictions", "sakt_student_state")}
    summary = LogSummary(np.array(sorted(skills), dtype=object), paths["sakt_student_state"])
    predictions = user_batches(paths["sakt_predictions"], PRED_COLUMNS, made_by="export", schema=None)
    states = user_batches(paths["sakt_student_state"], STATE_COLUMNS, made_by="export", schema=None)
    no_state = lambda: pq.read_schema(paths["sakt_student_state"]).empty_table().select(STATE_COLUMNS)  # noqa: E731
    for pred, state in same_students(predictions, states, paths["sakt_student_state"], no_state, "export"):
        summary.add(pred.to_pandas(), state.to_pandas())
    return summary
