"""The pipeline's files: atomic writers (every output goes to a temporary sibling first, renamed into place only
once all of a stage's outputs are written, so a stage that fails leaves none of them) and readers of the intermediates one stage
hands the next (a missing, truncated or wrong-schema file is one line naming it and the stage that writes it)."""

from __future__ import annotations

import contextlib
import glob
import json
import math
import os
import re
import shutil
import stat
import tempfile
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ktirt.errors import InputError, OutputError
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


class Outputs:
    """One stage's outputs, all or none: each is written to a temporary sibling, and only when every one is
    written are they renamed into place (each rename is atomic; the renames together are not, but they follow
    one another with no work between). A failure removes the temporaries and the folders made for them."""

    def __init__(self):
        self.pending: dict[Path, Path] = {}
        """real output -> its written temporary, renamed into place at commit"""
        self.backups: dict[Path, Path | None] = {}
        """folders written in place (DVCLive's log) -> a copy of what they held, put back on failure"""
        self.made: list[Path] = []
        """folders made for outputs, removed again (when empty) on failure"""

    @contextmanager
    def path(self, path: str | Path) -> Iterator[Path]:
        """Yield a temporary sibling of `path` (a file or a folder) to write; it joins the outputs on success."""
        path = Path(path)
        try:
            self._make(path.parent)
            remove_stale_temps(path)
            tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}{TEMP_TAG}", dir=path.parent)) / path.name
        except OSError as exc:
            raise OutputError(path, exc) from None
        try:
            yield tmp
        except BaseException as exc:
            err = _write_error(exc, path, tmp)
            shutil.rmtree(tmp.parent, ignore_errors=True)
            if err is None:
                raise
            raise err from None
        old = self.pending.pop(path, None)  # written twice: the last write wins
        if old is not None:
            shutil.rmtree(old.parent, ignore_errors=True)
        self.pending[path] = tmp

    def restore_on_failure(self, folder: str | Path) -> None:
        """For a folder another library writes in place as it goes (DVCLive): keep a copy of what it holds now
        and put it back if the stage fails, so it too is all or none."""
        folder = Path(folder)
        if folder in self.backups:
            return
        backup = None
        if folder.is_dir():
            backup = folder.with_name(f".{folder.name}{TEMP_TAG}backup")
            shutil.rmtree(backup, ignore_errors=True)
            shutil.copytree(folder, backup, symlinks=True)
        else:
            self._make(folder.parent)
        self.backups[folder] = backup

    def commit(self) -> None:
        """Rename every temporary into place, then drop the backups."""
        while self.pending:
            path, tmp = next(iter(self.pending.items()))
            try:
                _move_into_place(tmp, path)
            except OSError as exc:
                raise OutputError(path, exc) from None
            finally:
                del self.pending[path]
                shutil.rmtree(tmp.parent, ignore_errors=True)
        for backup in filter(None, self.backups.values()):
            shutil.rmtree(backup, ignore_errors=True)
        self.backups = {}

    def abort(self) -> None:
        """Remove every temporary, put back what in-place folders held, remove the folders made for outputs."""
        for tmp in self.pending.values():
            shutil.rmtree(tmp.parent, ignore_errors=True)
        self.pending = {}
        for folder, backup in self.backups.items():
            shutil.rmtree(folder, ignore_errors=True)
            if backup is not None:
                backup.rename(folder)
        self.backups = {}
        for folder in reversed(self.made):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if still empty: never what someone else put there
        self.made = []

    def _make(self, folder: Path) -> None:
        missing = []
        while not folder.exists() and folder != folder.parent:
            missing.append(folder)
            folder = folder.parent
        for f in reversed(missing):
            f.mkdir(exist_ok=True)
            self.made.append(f)


_OPEN: ContextVar[Outputs | None] = ContextVar("ktirt_outputs", default=None)


@contextmanager
def outputs() -> Iterator[Outputs]:
    """Open a transaction: every write inside it (write_parquet, write_json, atomic_path, ...) is renamed into
    place only when the block ends without an error; an error, or an interruption, leaves none of them. Inside
    an open one (the stage wrapper opens one per stage) it joins that one."""
    current = _OPEN.get()
    if current is not None:
        yield current
        return
    tx = Outputs()
    token = _OPEN.set(tx)
    try:
        yield tx
    except BaseException:
        tx.abort()
        raise
    finally:
        _OPEN.reset(token)
    try:
        tx.commit()
    except BaseException:
        tx.abort()
        raise


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling of `path` (a file or a folder), moved into place on success: at once, or with the
    other outputs when a transaction (`outputs()`) is open."""
    with outputs() as tx, tx.path(path) as tmp:
        yield tmp


def _move_into_place(tmp: Path, path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        old = path.with_name(f".{path.name}{TEMP_TAG}old")
        shutil.rmtree(old, ignore_errors=True)
        path.rename(old)
        tmp.rename(path)
        shutil.rmtree(old)
    else:
        os.replace(tmp, path)


def _write_error(exc: BaseException, path: Path, tmp: Path) -> OutputError | None:
    """The one line for a write into `tmp` that failed, naming the real output (or the file inside a folder
    output); None when the error is not about this write (a file read meanwhile, a bug, an interruption)."""
    if isinstance(exc, OSError):
        names = [os.fsdecode(n) for n in (exc.filename, exc.filename2) if n is not None]
        if not names:  # pyarrow and matplotlib name no file
            return OutputError(path, exc)
        for name in map(Path, names):
            for base, real in ((tmp, path), (tmp.parent, path)):
                if name == base or base in name.parents:
                    return OutputError(real / name.relative_to(base) if base == tmp else real, exc)
        return None
    if isinstance(exc, Exception) and not isinstance(exc, InputError) and _nearly_full(tmp.parent.parent):
        return OutputError(path, "no space left on device")  # torch.save says only "unexpected pos 576 vs 534"
    return None


def _nearly_full(folder: Path) -> bool:
    try:
        st = os.statvfs(folder)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < 1 << 20


def write_parquet(table: pa.Table, path: str | Path, row_group_size: int | None = None) -> None:
    """Zstd parquet; readers that filter on sorted columns skip whole row groups by their statistics."""
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd", row_group_size=row_group_size)


ROW_GROUP_ROWS = 1024 * 1024
"""pyarrow's default row group length, which write_parquet leaves in place"""


def write_parquet_parts(parts: Iterable[pa.Table], path: str | Path, row_group_size: int | None = None) -> None:
    """`write_parquet` of the tables' concatenation (as one chunk per row group: how a column is cut into pages
    depends on its chunks), written a row group (`row_group_size`, else ROW_GROUP_ROWS rows) at a time: the same
    bytes, from a writer that never holds more than a row group and a part."""
    with parquet_parts(path, row_group_size) as add:
        for part in parts:
            add(part)


@contextmanager
def parquet_parts(path: str | Path, row_group_size: int | None = None, atomic: bool = True, behind: bool = False
                  ) -> Iterator[Callable[[pa.Table | None], None]]:
    """`write_parquet_parts` as a writer the caller feeds, part after part (a stage writing two tables in one
    pass): yields the function that takes the next part, or None once the last has come (the rest is then
    written: at the latest when the block ends, where the file is complete). `atomic` False writes `path` itself
    (a temporary file of the caller's, not one of the stage's outputs). `behind`: each part is written on another
    thread while the caller makes the next (one part in flight, so one more held; the same bytes), for a caller
    whose work and writing would otherwise take turns on two cores."""
    with atomic_path(path) if atomic else contextlib.nullcontext(Path(path)) as tmp:
        with _parts_writer(tmp, path, row_group_size or ROW_GROUP_ROWS, behind) as add:
            yield add


@contextmanager
def _parts_writer(tmp: Path, path: str | Path, group: int, behind: bool) -> Iterator[Callable[[pa.Table | None], None]]:
    writer, held, written, in_flight, ended = None, [], 0, None, False
    pool = ThreadPoolExecutor(1, thread_name_prefix="parquet_parts") if behind else None  # the writer's thread

    def take(part: pa.Table | None) -> None:
        nonlocal writer, held, written
        if part is None:
            if writer is None:
                raise ValueError(f"{path}: no table to write")
            tail = pa.concat_tables(held).combine_chunks()
            if tail.num_rows or not written:
                writer.write_table(tail, group)
            return
        writer = writer or pq.ParquetWriter(tmp, part.schema, compression="zstd")
        held.append(part)
        if sum(t.num_rows for t in held) >= group:
            table = pa.concat_tables(held)
            full = table.num_rows - table.num_rows % group
            writer.write_table(table.slice(0, full).combine_chunks(), group)
            held, written = [copied(table.slice(full))], written + full  # a view would keep the last part alive

    def add(part: pa.Table | None) -> None:
        nonlocal in_flight, ended
        if ended:
            raise ValueError(f"{path}: a part after the last")
        ended = part is None
        if not behind:
            return take(part)
        if in_flight is not None:
            in_flight.result()  # its error, if any, raised here
        in_flight = pool.submit(take, part)

    try:
        yield add
        if not ended:
            add(None)
        if in_flight is not None:
            in_flight.result()
    finally:
        if pool is not None:
            pool.shutdown()  # the writer's thread done before the file is closed (or removed)
        if writer is not None:
            writer.close()


def copied(table: pa.Table) -> pa.Table:
    """The rows of `table` in buffers of their own: a slice is a view that keeps its whole source alive, which a
    stage streaming the log must not do for the few rows it carries to the next batch."""
    return table.take(pa.array(np.arange(table.num_rows)))


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
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n", encoding="utf-8")


def write_text(text: str, path: str | Path) -> None:
    """UTF-8 whatever the machine's locale, so an output's bytes are the same everywhere; written atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


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
    path = _checked_parquet(path, made_by, schema, columns)
    try:
        return pq.read_table(path, columns=columns, filters=filters)
    except (pa.ArrowException, OSError) as exc:
        raise _unusable(path, made_by, f"truncated or corrupt: {exc}") from None


def iter_parquet(path: str | Path, made_by: str, schema: pa.Schema | None = None, columns: list[str] | None = None,
                 batch_rows: int = 1 << 20):
    """A parquet intermediate as read_parquet checks it, `batch_rows` rows at a time (record batches, in file
    order): a stage that reads it so holds one batch, not the table, whatever the log's size. (pyarrow's
    pre-buffering is off: with it, the reader kept every row group it had read until the last, so a pass held the
    file's decoded columns after all: measured +30 MB a batch.)"""
    path = _checked_parquet(path, made_by, schema, columns)
    try:
        yield from pq.ParquetFile(path, pre_buffer=False).iter_batches(batch_size=batch_rows, columns=columns)
    except (pa.ArrowException, OSError) as exc:
        raise _unusable(path, made_by, f"truncated or corrupt: {exc}") from None


def _checked_parquet(path: str | Path, made_by: str, schema: pa.Schema | None, columns: list[str] | None) -> Path:
    """`path`, once it is a parquet file holding `schema`'s columns (of `columns` only, when given) with their
    types; else the one-line error naming the stage that writes it."""
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
    for name in columns or ():  # pyarrow would read the others and leave a missing one out without a word
        if name not in found.names:
            raise _unusable(path, made_by, f"column '{name}' missing")
    return path


def read_events(path: str | Path, columns: list[str] | None = None) -> pa.Table:
    return read_parquet(path, "prepare", EVENTS_SCHEMA, columns)


def distinct_text(path: str | Path, made_by: str, schema: pa.Schema | None, column: str) -> pa.Array:
    """A column's distinct values as text (ids of another type cast, so they still compare), read a batch at
    a time: memory grows with the ids, not with the rows."""
    seen = [pc.unique(as_text(b.column(0))) for b in iter_parquet(path, made_by, schema, [column])]
    return pc.unique(pa.chunked_array(seen, pa.string())) if seen else pa.array([], pa.string())


def as_text(col: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Ids as strings: a table with the wrong id type is still measured (its type is reported apart)."""
    return col if pa.types.is_string(col.type) else col.cast(pa.string())



def event_users(path: str | Path) -> np.ndarray:
    """The distinct user ids of events.parquet, sorted, read a batch at a time (`distinct_text`)."""
    return np.unique(distinct_text(path, "prepare", EVENTS_SCHEMA, "user_id").to_numpy(zero_copy_only=False).astype(str))


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


_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISREG, "a regular file"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a named pipe"), (stat.S_ISSOCK, "a socket"))


def check_output(path: str | Path, kind: str = "file") -> None:
    """Before the work that fills it: InputError when `path` (a "file" or a "folder") cannot be written. An
    existing path must be of that kind (writing over /dev/null would replace the device with a file), and the
    nearest existing folder must take new files. An existing file's own mode does not matter: it is replaced
    by a rename (DVC's read-only cache links included)."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except OSError:  # not there (or under a file, said below)
        mode = None
    if mode is not None and not (stat.S_ISDIR if kind == "folder" else stat.S_ISREG)(mode):
        what = next((name for test, name in _KINDS if test(mode)), "a special file")
        raise InputError(f"not {'a folder' if kind == 'folder' else 'a regular file'} ({what}): choose a {kind} path", path)
    folder = path if mode is not None and kind == "folder" else path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise OutputError(path, f"{folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        read_only = os.statvfs(folder).f_flag & os.ST_RDONLY
        raise OutputError(path, "read-only file system" if read_only else "permission denied")


def check_writable(path: str | Path) -> None:
    """check_output for a file (its older name)."""
    check_output(path, "file")
