"""The pipeline's files: atomic writers (every output goes to a temporary sibling first and is renamed into
place, so a stage that fails leaves no half-written file behind) and readers of the intermediates one stage
hands the next (a missing, truncated or wrong-schema file is one line naming it and the stage that writes it)."""

from __future__ import annotations

import glob
import json
import math
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from ktirt.errors import InputError
from ktirt.events import EVENTS_SCHEMA, ITEMS_SCHEMA, SKILLS_SCHEMA, UNIT_TESTS_SCHEMA

TEMP_TAG = ".ktirt-tmp-"
"""marks our temporary siblings (`.NAME.ktirt-tmp-XXXX/`), so a later write removes only its own leftovers"""
_LEGACY_TEMP = re.compile(r"\.(?P<name>.+)\.[a-z0-9_]{8}")
"""the temporary siblings written before TEMP_TAG existed (tempfile.mkdtemp's 8 characters)"""


def remove_stale_temps(path: str | Path) -> list[Path]:
    """Delete what an interrupted write of `path` left beside it (kill -9 skips every `finally`)."""
    path = Path(path)
    stale = list(path.parent.glob(f".{glob.escape(path.name)}{TEMP_TAG}*"))
    for p in path.parent.glob(f".{glob.escape(path.name)}.*"):
        m = _LEGACY_TEMP.fullmatch(p.name)
        # a legacy temp folder holds nothing but its one output (or is empty): anything else is not ours
        if m and m["name"] == path.name and p.is_dir() and {c.name for c in p.iterdir()} <= {path.name}:
            stale.append(p)
    for p in stale:
        shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
    return stale


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling of `path` (a file or a folder) and move it into place on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}{TEMP_TAG}", dir=path.parent)) / path.name
    try:
        yield tmp
        if path.is_dir() and not path.is_symlink():
            old = path.with_name(f".{path.name}{TEMP_TAG}old")
            shutil.rmtree(old, ignore_errors=True)
            path.rename(old)
            tmp.rename(path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp.parent, ignore_errors=True)


def write_parquet(table: pa.Table, path: str | Path, row_group_size: int | None = None) -> None:
    """Zstd parquet; readers that filter on sorted columns skip whole row groups by their statistics."""
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd", row_group_size=row_group_size)


def non_finite_key(obj, where: str = "") -> tuple[str, float] | None:
    """The first key (dotted, `[i]` for list positions) whose value is NaN or infinite, with that value."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return where or "(top level)", obj
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, (list, tuple)) else ()
    for k, v in items:
        found = non_finite_key(v, f"{where}[{k}]" if isinstance(k, int) else f"{where}.{k}" if where else str(k))
        if found:
            return found
    return None


def check_finite(obj, path: str | Path) -> None:
    """InputError naming the file and key of a NaN or infinity: JSON has neither, and DVC cannot compare them."""
    found = non_finite_key(obj)
    if found:
        raise InputError(f"key '{found[0]}' is {found[1]}: not written (a metric must be a finite number)", path)


def write_json(obj, path: str | Path) -> None:
    """Strict JSON (NaN and infinity refused, see check_finite), written atomically."""
    check_finite(obj, path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n")


def write_text(text: str, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_csv(df, path: str | Path) -> None:
    """A pandas frame as CSV without its index (the plots DVC draws)."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)


def _unusable(path: str | Path, made_by: str, what: str) -> InputError:
    """The one line for an intermediate that cannot be used: the file, what is wrong, the stage to rerun."""
    what = what.strip().splitlines()[0] if what.strip() else "unreadable"
    what = what if len(what) <= 160 else what[:160] + "…"
    return InputError(f"{what} (written by stage '{made_by}'; run `dvc repro {made_by}`)", path)


def read_parquet(path: str | Path, made_by: str, schema: pa.Schema | None = None, columns: list[str] | None = None,
                 filters=None) -> pa.Table:
    """A parquet intermediate; `schema` lists the columns it must hold, with their types (of `columns` only,
    when given)."""
    path = Path(path)
    if not path.is_file():
        raise _unusable(path, made_by, "missing")
    try:
        found = pq.read_schema(path)
    except (pa.ArrowException, OSError) as exc:
        raise _unusable(path, made_by, f"truncated or not parquet: {exc}") from None
    for field in schema or ():
        if columns is not None and field.name not in columns:
            continue
        if field.name not in found.names:
            raise _unusable(path, made_by, f"column '{field.name}' missing")
        if found.field(field.name).type != field.type:
            raise _unusable(path, made_by, f"column '{field.name}' is {found.field(field.name).type}, expected {field.type}")
    try:
        return pq.read_table(path, columns=columns, filters=filters)
    except (pa.ArrowException, OSError) as exc:
        raise _unusable(path, made_by, f"truncated or corrupt: {exc}") from None


def read_events(path: str | Path, columns: list[str] | None = None) -> pa.Table:
    return read_parquet(path, "prepare", EVENTS_SCHEMA, columns)


def read_unit_tests(path: str | Path) -> pa.Table:
    return read_parquet(path, "prepare", UNIT_TESTS_SCHEMA)


def read_items(path: str | Path) -> pa.Table:
    return read_parquet(path, "prepare", ITEMS_SCHEMA)


def read_skills(path: str | Path) -> pa.Table:
    return read_parquet(path, "prepare", SKILLS_SCHEMA)


def read_json(path: str | Path, made_by: str, keys: tuple[str, ...] = ()) -> dict:
    """A JSON object some stage wrote, holding at least `keys`."""
    path = Path(path)
    if not path.is_file():
        raise _unusable(path, made_by, "missing")
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise _unusable(path, made_by, f"truncated or not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise _unusable(path, made_by, f"holds a {type(obj).__name__}, not a JSON object")
    missing = [k for k in keys if k not in obj]
    if missing:
        raise _unusable(path, made_by, f"key '{missing[0]}' missing")
    return obj


def read_split(path: str | Path) -> dict:
    """split.json: train, val and test as lists of user ids, and the seed."""
    split = read_json(path, "split", ("train", "val", "test", "seed"))
    for name in ("train", "val", "test"):
        if not isinstance(split[name], list) or not all(isinstance(u, str) for u in split[name]):
            raise _unusable(path, "split", f"key '{name}' is not a list of user ids")
    return split


def read_checkpoint(path: str | Path, made_by: str, keys: tuple[str, ...] = ("state_dict", "config"),
                    map_location="cpu") -> dict:
    """A torch checkpoint (a dict holding at least `keys`) some stage saved."""
    import pickle

    import torch

    path = Path(path)
    if not path.is_file():
        raise _unusable(path, made_by, "missing")
    try:
        ck = torch.load(path, map_location=map_location, weights_only=False)
    except (RuntimeError, EOFError, pickle.UnpicklingError, OSError) as exc:
        raise _unusable(path, made_by, f"truncated or not a checkpoint: {exc}") from None
    if not isinstance(ck, dict) or any(k not in ck for k in keys):
        raise _unusable(path, made_by, f"not a checkpoint of this project (needs {', '.join(keys)})")
    return ck


def read_csv(path: str | Path, made_by: str, columns: tuple[str, ...] = (), sep: str = ","):
    """A CSV (or with sep="\\t" a TSV, as DVCLive writes) some stage wrote, as a pandas frame holding at least `columns`."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise _unusable(path, made_by, "missing")
    try:
        df = pd.read_csv(path, sep=sep)
    except (ValueError, OSError) as exc:  # EmptyDataError, ParserError and UnicodeDecodeError are ValueErrors
        raise _unusable(path, made_by, f"truncated or not CSV: {exc}") from None
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise _unusable(path, made_by, f"column '{missing[0]}' missing")
    return df


def check_writable(path: str | Path) -> None:
    """InputError when `path` cannot be written, checked before the work that would fill it."""
    path = Path(path)
    if path.is_dir():
        raise InputError("is a folder, not a file", path)
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise InputError(f"cannot be written: {folder} is a file, not a folder", path)
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise InputError(f"cannot be written: {exc.strerror or exc}", path) from None
    if path.exists() and not os.access(path, os.W_OK):
        raise InputError("cannot be written: permission denied", path)
