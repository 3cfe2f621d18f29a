"""The simulator's ground truth, lined up with the canonical tables, for oracle figures.

The simulator writes it beside its raw tables (`<raw folder>/_truth/`); `prepare` copies it to the canonical
`data/interim/truth/` (empty for real data), which is the only truth the engines read."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ktirt.errors import InputError
from ktirt.io import atomic_path, iter_parquet

TRUTH_DIR = "_truth"


def truth_dir(folder: str | Path) -> Path | None:
    """Where a simulation's truth lies: `folder` itself (prepare's `data/interim/truth`) or the simulator's
    `folder/_truth` beside its raw tables; None when neither holds one (real data has no truth)."""
    for d in (Path(folder), Path(folder) / TRUTH_DIR):
        if (d / "responses.parquet").exists():
            return d
    return None


def copy_truth(source_folder: str | Path, out: str | Path) -> int:
    """Copy a simulation's truth from beside its raw tables to `out`, which ends up empty for real data (so
    it is always there for the stages that declare it); returns the number of files copied."""
    found = truth_dir(source_folder)
    with atomic_path(out) as tmp:
        tmp.mkdir()
        for f in sorted(found.iterdir()) if found else []:
            shutil.copyfile(f, tmp / f.name)
        return len(list(tmp.iterdir()))  # `out` itself appears only when the stage's outputs are all written


RESPONSE_KEYS = ["action_sequence_id", "item_id", "user_id"]
"""what identifies a response in the truth and in events.parquet"""


def event_probabilities(events: pa.Table, truth: Path) -> np.ndarray:
    """True P(correct) behind each row of events.parquet (NaN where the truth has no such response); only the
    truth of `events`' students is read."""
    return true_probabilities(truth, event_users(events), response_hashes(events))


def event_users(events: pa.Table) -> list[str]:
    return pc.unique(events["user_id"].combine_chunks()).to_pylist()


HASH_ROWS = 1 << 20
"""response_hashes turns this many rows' keys into Python strings at a time"""


def response_hashes(table: pa.Table) -> np.ndarray:
    """A 64-bit hash of each row's RESPONSE_KEYS: 8 bytes a response to look its truth up by. Hashed a slice of
    rows at a time (each row's hash is its own), so the keys are never all held as Python strings at once."""
    keys = table.select(RESPONSE_KEYS)
    parts = [pd.util.hash_pandas_object(keys.slice(lo, HASH_ROWS).to_pandas(), index=False).to_numpy()
             for lo in range(0, keys.num_rows, HASH_ROWS)]
    return np.concatenate(parts) if parts else np.zeros(0, np.uint64)


def true_values(truth: Path, users, hashes: np.ndarray, columns: tuple[str, ...] = ("p_correct",)) -> np.ndarray:
    """(len(hashes), columns) float64: the truth's values (`p_correct` unless asked for others) of the responses
    with these response_hashes among `users`' (NaN where the truth has none). The truth is read a batch of rows
    at a time and each batch's matches are kept: memory for the answer and one batch, not for every response of
    those students as well."""
    path = truth / "responses.parquet"
    wanted = pa.array(sorted(map(str, users)), pa.string())
    order = np.argsort(hashes, kind="stable")
    keys = hashes[order]
    found = np.full((len(keys), len(columns)), np.nan)  # in `keys`' order; a repeated hash: at its first
    seen = np.zeros(len(keys), bool)
    for t in _rows_of(path, [*RESPONSE_KEYS, *columns], wanted):
        h = response_hashes(t)
        at = np.minimum(np.searchsorted(keys, h), max(len(keys) - 1, 0))
        hit = keys[at] == h if len(keys) else np.zeros(len(h), bool)
        rows = at[hit]
        if seen[rows].any() or len(np.unique(rows)) < len(rows):
            raise InputError("a response appears twice in the truth (or two keys share a hash)", path, "action_sequence_id")
        seen[rows] = True
        found[rows] = np.stack([t[c].to_numpy(zero_copy_only=False) for c in columns], axis=1).astype(np.float64)[hit]
    if len(keys):  # a repeated hash takes its first's values
        first = np.maximum.accumulate(np.where(np.r_[True, keys[1:] != keys[:-1]], np.arange(len(keys)), 0))
        found = found[first]
    out = np.empty_like(found)
    out[order] = found
    return out


def _rows_of(path: Path, columns: list[str], users: pa.Array):
    """A truth file's `columns` of these students' rows (`users`: strings), a batch at a time."""
    for batch in iter_parquet(path, "prepare", columns=columns):
        t = pa.Table.from_batches([batch])
        yield t.filter(pc.is_in(t["user_id"].cast(pa.string()), value_set=users))


def true_probabilities(truth: Path, users, hashes: np.ndarray) -> np.ndarray:
    """True P(correct) of the responses with these hashes among `users`' (NaN where the truth has none)."""
    return true_values(truth, users, hashes)[:, 0]


def matched(p: np.ndarray, truth: Path, what: str) -> np.ndarray:
    """`p`, the true P(correct) of some responses, when every one found its truth. A simulation's truth covers
    every response it wrote, so a miss means a truth of another simulation (a `--truth` or data/interim/truth
    left from another run): its oracle would be computed on whichever rows happen to match, or fail on none."""
    missing = int(np.isnan(p).sum())
    if missing:
        raise InputError(f"{truth / 'responses.parquet'}: no true response for {missing:,} of {len(p):,} {what}: "
                         "a truth of another simulation? (rerun prepare, or give the --truth written with these events)")
    return p


def unit_test_probabilities(unit_tests: pa.Table, truth: Path) -> np.ndarray:
    """True P(correct) behind each scored row of unit_tests.parquet, in the order of those rows."""
    scored = unit_tests.filter(pa.compute.is_valid(unit_tests["correct"]))
    if scored.num_rows == 0:  # e.g. the skill_builder world, which has no unit tests (nor their truth)
        return np.empty(0)
    return _unit_test_truth(scored, truth)


UNIT_TEST_KEYS = ["unit_test_id", "item_id", "user_id"]


def _unit_test_truth(scored: pa.Table, truth: Path) -> np.ndarray:
    """The true P(correct) of these scored unit-test rows, keeping only their students' truth (read a batch at a
    time: a block of students does not hold the whole log's unit-test truth)."""
    users = pc.unique(scored["user_id"].cast(pa.string()))
    parts = list(_rows_of(truth / "unit_test_responses.parquet", [*UNIT_TEST_KEYS, "p_correct"], users))
    tr = pa.concat_tables(parts).to_pandas() if parts else pd.DataFrame(columns=[*UNIT_TEST_KEYS, "p_correct"])
    return scored.select(UNIT_TEST_KEYS).to_pandas().merge(tr, on=UNIT_TEST_KEYS, how="left",
                                                          validate="many_to_one")["p_correct"].to_numpy(np.float64)


@dataclass
class TargetItemTruth:
    """Per target (every event, then every scored unit-test row): the student's true ability at that moment
    and the item's true discrimination, difficulty (before any drift), difficulty in effect then and guessing
    floor; NaN where the truth has none. Plain arrays: a DataFrame of them would be a copy at scale."""

    ability: np.ndarray
    discrimination: np.ndarray
    difficulty: np.ndarray
    difficulty_effective: np.ndarray
    guessing: np.ndarray


def target_item_truth(events: pa.Table, unit_tests: pa.Table, truth: Path) -> TargetItemTruth:
    """For every event, then every scored unit-test row (WD-IRT's target order): the truth behind it. The
    ability is the 3PL inverted at the true P(solve) and the difficulty in effect (so it includes learning)."""
    items = pq.read_table(truth / "items.parquet", columns=["item_id", "difficulty", "discrimination", "guessing"])
    scored = unit_tests.filter(pa.compute.is_valid(unit_tests["correct"]))
    target_items = pa.chunked_array([*events["item_id"].cast(pa.string()).chunks, *scored["item_id"].cast(pa.string()).chunks],
                                    pa.string())
    at = pc.index_in(target_items, value_set=items["item_id"].cast(pa.string()).combine_chunks()).fill_null(-1).to_numpy()
    at = np.where(at >= 0, at, items.num_rows)  # past the last item: one the truth does not hold (NaN)
    b, a, c = (np.r_[items[k].to_numpy(), np.nan][at] for k in ("difficulty", "discrimination", "guessing"))
    del at
    ev = true_values(truth, event_users(events), response_hashes(events), ("p_solve", "difficulty_effective"))
    p_solve = np.r_[ev[:, 0], _unit_test_truth(scored, truth) if scored.num_rows else np.empty(0)]
    b_effective = np.r_[ev[:, 1], b[len(ev):]]  # a unit test's item is as it was before any drift
    del ev
    q = np.clip((p_solve - c) / (1 - c), 1e-9, 1 - 1e-9)
    del p_solve
    return TargetItemTruth(b_effective + np.log(q / (1 - q)) / a, a, b, b_effective, c)
