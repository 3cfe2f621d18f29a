"""User-level train/val/test split: every response of a student lands in one split, so test figures are
about students the models never saw."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ktirt.errors import InputError, SettingsError
from ktirt.settings import SplitSettings

SPLITS = ("train", "val", "test")
"""split.json's lists; a student's split is its index here in every engine's arrays"""


def split_users(user_ids, train: float, val: float, seed: int) -> dict:
    """Deterministic split: sort the distinct ids, shuffle them with `seed`, cut by the ratios.

    Each list is returned sorted, so the same ids, ratios and seed give byte-identical JSON.
    """
    SplitSettings(train=train, val=val, seed=seed)  # types, ranges, and test is the rest
    users = np.unique(np.asarray(user_ids, dtype=object).astype(str))
    if len(users) < 3:
        raise InputError(f"need at least 3 users to split into train/val/test, found {len(users)}")
    order = np.random.default_rng(seed).permutation(len(users))
    n_train = max(1, int(round(train * len(users))))
    n_val = max(1 if val > 0 else 0, int(round(val * len(users))))
    n_train = min(n_train, len(users) - n_val - 1)
    shuffled = users[order]
    parts = {
        "train": shuffled[:n_train],
        "val": shuffled[n_train : n_train + n_val],
        "test": shuffled[n_train + n_val :],
    }
    return {"seed": int(seed)} | {k: sorted(v.tolist()) for k, v in parts.items()}



def require_students(split: dict, min_students: int) -> None:
    """Validation and test figures need students enough to mean something: fewer than `min_students` in either
    stops the run in one line, naming the share to raise (the split still comes out the same for the same ids)."""
    for name, share in (("val", "split.val"), ("test", "split.train + split.val")):
        n = len(split[name])
        if n < min_students:
            raise SettingsError(f"{share}: leaves {n} {name} students of {sum(len(split[k]) for k in SPLITS)}, fewer "
                                f"than split.min_students ({min_students}): an AUC on so few says little")

def split_labels(users: np.ndarray, split: dict, events_path: str = "events") -> np.ndarray:
    """SPLITS index of each user; a user in no split, or an empty split, is an error."""
    label = np.full(len(users), -1)
    for k, name in enumerate(SPLITS):
        ids = split.get(name, [])
        if not ids:
            raise InputError(f"split '{name}' is empty", "split.json", name)
        label[np.asarray(pc.is_in(pa.array(users, pa.string()), value_set=pa.array(ids, pa.string())))] = k
    if (label < 0).any():
        missing = users[label < 0]
        raise InputError(f"{len(missing)} users are in no split, e.g. '{missing[0]}' (rerun the split stage)",
                         events_path, "user_id")
    return label
