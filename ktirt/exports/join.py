"""Does the join hold? Coverage of SAKT's predictions by WD-IRT's item parameters and drift, the key
columns' types in every table against events.parquet, and ten sample students with both engines side by side."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ktirt.errors import InputError
from ktirt.io import as_text, distinct_text, iter_parquet, read_events, read_parquet
from ktirt.user_batches import user_batches

TABLES = ("sakt_predictions", "sakt_student_state", "item_params", "item_drift")
KEYS = ("user_id", "item_id", "timestamp", "skill_id")
NULLABLE_KEYS = {("item_params", "skill_id")}
"""keys a table may leave null: an item without a skill code"""
UNIQUE_KEYS = {"sakt_predictions": ("user_id", "item_id", "timestamp"),
               "sakt_student_state": ("user_id", "skill_id", "timestamp", "item_id"), "item_params": ("item_id",),
               "item_drift": ("item_id", "window_start"), "skills": ("skill_id",)}
"""the columns that identify one row of each table: a join on a key that repeats multiplies rows"""


@dataclass
class KeyCheck:
    table: str
    column: str
    found: str
    expected: str
    nullable: bool
    nulls: int

    @property
    def problem(self) -> str | None:
        if self.found != self.expected:
            return f"type {self.found}, expected {self.expected}"
        if self.nulls and (self.table, self.column) not in NULLABLE_KEYS:
            return f"{self.nulls:,} null values"
        return None


@dataclass
class JoinReport:
    rows: dict[str, int]
    coverage: float
    drift_coverage: float
    user_coverage: float
    keys: list[KeyCheck]
    samples: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    """one line per table whose UNIQUE_KEYS repeat"""

    @property
    def mismatches(self) -> list[KeyCheck]:
        return [k for k in self.keys if k.problem]

    def failures(self, min_coverage: float) -> list[str]:
        out = [f"{k.table}.parquet: column '{k.column}': {k.problem}" for k in self.mismatches] + self.duplicates
        if self.coverage < min_coverage:
            out.append(f"sakt_predictions.parquet: column 'item_id': only {self.coverage:.2%} of predictions have item "
                       f"parameters (join.min_coverage is {min_coverage:.0%})")
        return out

    def coverage_table(self) -> pd.DataFrame:
        """The three shares, for dvc.yaml's coverage plot."""
        return pd.DataFrame({"check": ["predictions with item parameters", "predictions with drift windows",
                                       "student-state users in predictions"],
                             "coverage": [round(self.coverage, 6), round(self.drift_coverage, 6), round(self.user_coverage, 6)]})

    def metrics(self) -> dict:
        return {"coverage": round(self.coverage, 6), "drift_coverage": round(self.drift_coverage, 6),
                "user_coverage": round(self.user_coverage, 6), "schema_mismatches": len(self.mismatches),
                **{f"rows_{k}": v for k, v in self.rows.items()}, "sample_students": len(self.samples)}

    def markdown(self) -> str:
        lines = ["# Join report\n",
                 "| check | value |", "|---|---|",
                 f"| SAKT predictions whose item has WD-IRT parameters (`coverage`) | {self.coverage:.2%} |",
                 f"| SAKT predictions whose item has drift windows (`drift_coverage`) | {self.drift_coverage:.2%} |",
                 f"| student-state users found in the predictions (`user_coverage`) | {self.user_coverage:.2%} |",
                 f"| key columns that differ from events.parquet (`schema_mismatches`) | {len(self.mismatches)} |", "",
                 "Rows: " + ", ".join(f"{k} {v:,}" for k, v in self.rows.items()) + ".\n",
                 "## Key columns\n", "| table | column | type | nullable | nulls | expected (events.parquet) | problem |",
                 "|---|---|---|---|---|---|---|"]
        for k in self.keys:
            lines.append(f"| {k.table} | {k.column} | {k.found} | {'yes' if k.nullable else 'no'} | {k.nulls:,} | "
                         f"{k.expected} | {k.problem or ''} |")
        lines += ["", f"## {len(self.samples)} sample students\n",
                  "Per skill the student met: attempts, SAKT mastery after the last one, and the mean WD-IRT parameters "
                  "of the items they attempted (drifting: items flagged for difficulty drift).\n"]
        lines += self.samples
        return "\n".join(lines) + "\n"


def _read(exports: Path, name: str, columns=None, filters=None) -> pa.Table:
    return read_parquet(exports / f"{name}.parquet", "export", columns=columns, filters=filters)


def _batches(exports: Path, name: str, columns: list[str]):
    """A table's columns a batch of rows at a time: the per-student tables grow with the log."""
    return iter_parquet(exports / f"{name}.parquet", "export", None, columns)


PER_STUDENT = ("sakt_predictions", "sakt_student_state")
"""tables with a row per response or state, sorted by user_id: read a batch of whole students at a time"""


def _duplicates(exports: Path, name: str) -> str | None:
    """The failure line when UNIQUE_KEYS[name] repeat in the table, with the first repeated key as example. The
    per-student tables are checked a batch of whole students at a time (their keys start with user_id)."""
    key = list(UNIQUE_KEYS[name])
    parts = (user_batches(exports / f"{name}.parquet", key, made_by="export", schema=None) if name in PER_STUDENT
             else [_read(exports, name, key)])
    n_repeated, first = 0, None
    try:
        for part in parts:
            counts = part.group_by(key, use_threads=False).aggregate([([], "count_all")])
            repeated = counts.filter(pc.greater(counts["count_all"], 1))
            n_repeated += repeated.num_rows
            first = first or (repeated.slice(0, 1).to_pylist() or [None])[0]
    except InputError:
        return (f"{name}.parquet: not sorted by user_id as export writes it, so its keys ({', '.join(key)}) cannot be "
                "checked a student at a time (rerun export)")
    if not n_repeated:
        return None
    example = ", ".join(f"{k}={first[k]}" for k in key)
    return (f"{name}.parquet: columns ({', '.join(key)}) are not unique: {n_repeated:,} keys repeat, "
            f"e.g. {example[:200]} ({first['count_all']} rows)")


def _key_checks(exports: Path, reference: pa.Schema) -> list[KeyCheck]:
    expected = {k: str(reference.field(k).type) for k in ("user_id", "item_id", "timestamp")}
    expected["skill_id"] = expected["user_id"]  # every id is a string
    out = []
    for name in TABLES:
        schema = pq.read_schema(exports / f"{name}.parquet")
        for key in KEYS:
            if key not in schema.names:
                continue
            nulls = sum(b.column(0).null_count for b in _batches(exports, name, [key]))
            out.append(KeyCheck(name, key, str(schema.field(key).type), expected[key], schema.field(key).nullable, nulls))
    return out


def _share_in(exports: Path, name: str, column: str, pool: pa.Array) -> float:
    """Share of a table's rows whose `column` is among `pool` (distinct ids as text), a batch at a time."""
    inside = total = 0
    for b in _batches(exports, name, [column]):
        inside += pc.sum(pc.is_in(as_text(b.column(0)), value_set=pool)).as_py() or 0
        total += b.num_rows
    return inside / total if total else 0.0


def validate_join(exports_dir: str | Path, reference: pa.Schema, n_samples: int = 10, seed: int = 0) -> JoinReport:
    exports = Path(exports_dir)
    for name in (*TABLES, "skills"):
        _read(exports, name, columns=[])
    params = _read(exports, "item_params")
    drift = _read(exports, "item_drift")
    students = distinct_text(exports / "sakt_predictions.parquet", "export", None, "user_id")
    rows = {name: pq.ParquetFile(exports / f"{name}.parquet").metadata.num_rows for name in TABLES}
    report = JoinReport(rows, _share_in(exports, "sakt_predictions", "item_id", pc.unique(as_text(params["item_id"]))),
                        _share_in(exports, "sakt_predictions", "item_id", pc.unique(as_text(drift["item_id"]))),
                        _share_in(exports, "sakt_student_state", "user_id", students), _key_checks(exports, reference))
    report.samples = [_sample(exports, u, params, drift) for u in sample_students(students.to_numpy(zero_copy_only=False),
                                                                                  n_samples, seed)]
    report.duplicates = [d for d in (_duplicates(exports, name) for name in UNIQUE_KEYS) if d]
    return report


def sample_students(user_ids: pa.ChunkedArray | np.ndarray, n: int, seed: int) -> list[str]:
    """The join report's sample students (the HTML report offers the same ones first), sorted."""
    users = np.unique(np.asarray(user_ids, dtype=object).astype(str))
    return [str(u) for u in np.sort(np.random.default_rng(seed).choice(users, min(n, len(users)), replace=False))]


def _sample(exports: Path, user: str, params: pa.Table, drift: pa.Table) -> str:
    state = _read(exports, "sakt_student_state", ["skill_id", "item_id", "mastery", "n_attempts"],
                  [("user_id", "=", user)]).to_pandas()
    if state.empty:
        return f"### {user}\n\n(no responses with a skill)\n"
    p = params.select(["item_id", "difficulty", "discrimination", "guessing"]).to_pandas()
    p["item_id"] = p["item_id"].astype(str)
    flagged = set(pc.unique(drift.filter(pc.equal(drift["drift_flag"], True))["item_id"]).cast(pa.string()).to_pylist())
    df = state.merge(p, on="item_id", how="left").assign(drifting=lambda d: d["item_id"].isin(flagged))
    per = df.groupby("skill_id", sort=True).agg(attempts=("n_attempts", "max"), mastery=("mastery", "last"),
                                                difficulty=("difficulty", "mean"), discrimination=("discrimination", "mean"),
                                                guessing=("guessing", "mean"), drifting=("drifting", "sum"),
                                                without_params=("difficulty", lambda s: int(s.isna().sum())))
    lines = [f"### {user}\n", "| skill | attempts | mastery now | mean difficulty | mean discrimination | mean guessing | "
             "drifting items met | items without parameters |", "|---|---|---|---|---|---|---|---|"]
    for skill, r in per.iterrows():
        lines.append(f"| {skill} | {int(r.attempts)} | {r.mastery:.3f} | {r.difficulty:.2f} | {r.discrimination:.2f} | "
                     f"{r.guessing:.2f} | {int(r.drifting)} | {int(r.without_params)} |")
    return "\n".join(lines) + "\n"


def run_validation(exports_dir: str | Path, events_path: str | Path, min_coverage: float, n_samples: int,
                   seed: int) -> JoinReport:
    """validate_join against events.parquet's key types; raises InputError listing every failure."""
    read_events(events_path, columns=[])  # missing or corrupt: one line naming prepare
    report = validate_join(exports_dir, pq.read_schema(events_path), n_samples, seed)
    failures = report.failures(min_coverage)
    if failures:
        raise InputError(f"the join does not hold ({len(failures)} problems):\n  " + "\n  ".join(failures), Path(exports_dir))
    return report
