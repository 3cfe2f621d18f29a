"""The data every model of bench/kt_benchmark.py sees: canonical events of a raw folder (or of a world simulated
for the run), a fingerprint of them, the shared user folds, and the responses that are scored.

Scored responses: every response of a fold's test students but each student's first, one per response
(a multi-skill problem is one row of events.parquet, so it is scored once)."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sklearn.model_selection import KFold

from ktirt.errors import SettingsError
from ktirt.sources import load_source

log = logging.getLogger(__name__)
WORLD_SOURCE = {"edm_cup": "synthetic", "skill_builder": "assistments_2009"}


@dataclass
class BenchData:
    events: pa.Table
    unit_tests: pa.Table
    items: pa.Table
    """items.parquet's table (ktirt/catalog.py)"""
    source: str
    raw_dir: Path

    @property
    def users(self) -> np.ndarray:
        return self.events["user_id"].to_numpy(zero_copy_only=False).astype(str)

    def summary(self) -> dict:
        n_skills = pc.list_value_length(self.events["skill_ids"]).to_numpy(zero_copy_only=False)
        skills = pc.unique(pc.list_flatten(self.events["skill_ids"])).to_pylist()
        return {"source": self.source, "raw_dir": _shown(self.raw_dir), "students": int(len(np.unique(self.users))),
                "responses": self.events.num_rows, "items": len(pc.unique(self.events["item_id"])),
                "skills": len(skills), "multi_skill_share": round(float((n_skills > 1).mean()), 6),
                "correct_rate": round(float(pc.mean(self.events["correct"]).as_py()), 6),
                "events_sha256": events_digest(self.events)}


def simulate_world(world: str, students: int, seed: int, out: Path) -> Path:
    """Simulate `world` (the simulator's `profile`) with `students` students into out/ (reused when present)."""
    from ktirt.io import atomic_path
    from ktirt.simulate import SimulationConfig, simulate

    if world not in WORLD_SOURCE:
        raise SettingsError(f"unknown world '{world}' (choose one of: {', '.join(WORLD_SOURCE)})")
    settings = {"seed": seed, "n_students": students} | ({"profile": world} if world != "edm_cup" else {})
    cfg = SimulationConfig.from_dict(settings)
    if not out.is_dir():
        log.info("simulating the %s world with %d students into %s", world, students, out)
        with atomic_path(out) as tmp:
            simulate(cfg, tmp)
    return out


def _shown(path: Path) -> str:
    """A path inside the repository relative to it (the results file is committed and read elsewhere)."""
    path = Path(path).resolve()
    root = Path(__file__).resolve().parents[1]
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def load_data(source: str, raw_dir: Path) -> BenchData:
    tables = load_source(source, raw_dir)
    return BenchData(tables.events, tables.unit_tests, tables.items, source, Path(raw_dir))


def events_digest(events: pa.Table) -> str:
    """sha256 of what the models read (user, item, skills, time, outcome), in events.parquet's order."""
    h = hashlib.sha256()
    for name in ("user_id", "item_id", "skill_ids", "timestamp", "correct"):
        h.update(name.encode())
        h.update(str(events[name].to_pylist()).encode())
    return h.hexdigest()


def ids_digest(ids) -> str:
    return hashlib.sha256("\n".join(map(str, ids)).encode()).hexdigest()


def user_folds(users: np.ndarray, k: int, seed: int, val_share: float) -> list[dict]:
    """K folds over the sorted distinct users: fold f's test users are KFold's f-th part; validation users are
    `val_share` of the other users (drawn with seed + f), the rest train. Lists are sorted (split.json's layout)."""
    distinct = np.unique(users)
    if k < 2 or k > len(distinct):
        raise SettingsError(f"--folds must be in [2, {len(distinct)}] (the number of students), got {k}")
    if not 0 < val_share < 1:
        raise SettingsError(f"--val-share must be in (0, 1), got {val_share}")
    folds = []
    for f, (rest, test) in enumerate(KFold(n_splits=k, shuffle=True, random_state=seed).split(distinct)):
        rng = np.random.default_rng(seed + f)
        n_val = max(1, int(round(val_share * len(rest))))
        val = rng.choice(rest, size=n_val, replace=False)
        train = np.setdiff1d(rest, val)
        folds.append({"seed": seed, "train": sorted(distinct[train].tolist()), "val": sorted(distinct[val].tolist()),
                      "test": sorted(distinct[test].tolist())})
    return folds


def scored_rows(users: np.ndarray, test_users: list[str]) -> np.ndarray:
    """Row indices of events.parquet (sorted by user, time) that are scored: test students' rows but each one's first."""
    first = np.r_[True, users[1:] != users[:-1]]
    return np.flatnonzero(np.isin(users, test_users) & ~first)
