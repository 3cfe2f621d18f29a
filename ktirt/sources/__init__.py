"""Source adapters: each turns one dataset's raw files into the canonical tables (docs/ARCHITECTURE.md): events,
unit-test scores, and the catalogs of items and skills. Only `prepare` calls them; every other stage reads the
canonical tables, so a new source is known here and nowhere else."""

from __future__ import annotations

from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import pyarrow as pa

from ktirt.catalog import items_table, skills_table
from ktirt.errors import InputError, SettingsError, one_line
from ktirt.events_digest import EventsDigest
from ktirt.read_ahead import started
from ktirt.sources import assistments_2009, ednet_kt1, edm_cup
from ktirt.sources.canonical import SourceTables
from ktirt.sources.unit_tests_digest import UnitTestsDigest


@dataclass(frozen=True)
class Source:
    """What one dataset's adapter provides: its events and scores, and what it says about items and skills.
    `in_parts`: `load` takes a part size (bytes of raw log) and can give the events in parts."""

    load: Callable[..., SourceTables]
    skill_descriptions: Callable[[Path], dict] = lambda folder: {}
    problem_types: Callable[[Path], dict] = lambda folder: {}
    item_text_embeddings: Callable[[Path], tuple | None] = lambda folder: None
    in_parts: bool = False


EDM_CUP = Source(edm_cup.load, edm_cup.skill_descriptions, edm_cup.problem_types, edm_cup.item_text_embeddings, True)
# the simulator writes EDM Cup 2023 files, so `synthetic` is read exactly as the real release is
SOURCES = {
    "synthetic": EDM_CUP,
    "edm_cup_2023": EDM_CUP,
    "assistments_2009": Source(assistments_2009.load, assistments_2009.skill_descriptions),
    "ednet_kt1": Source(ednet_kt1.load, problem_types=ednet_kt1.problem_types, in_parts=True),
}


def load_source(name: str, folder: str | Path, part_bytes: int | None = None) -> SourceTables:
    """Every canonical table of source `name` from its raw files in `folder`. With `part_bytes`, a source that
    reads in parts (EDM Cup's, EdNet KT1's) gives its events as parts of about that many bytes of raw log each
    (SourceTables.event_parts), then its unit tests (SourceTables.unit_test_parts: EDM Cup's in parts of the same
    students), and its catalogs only once both are read (`add_catalogs`, from their digests).
    A raw value quoted in an error (a NUL, a newline, a tab) is escaped (ktirt.errors.one_line), so the message
    stays one line, while the parts are read too."""
    if name not in SOURCES:
        raise SettingsError(f"unknown data.source '{one_line(name)}' (choose one of: {', '.join(SOURCES)})")
    source, folder = SOURCES[name], Path(folder)
    with _one_line_errors():
        tables = source.load(folder, part_bytes) if part_bytes and source.in_parts else source.load(folder)
        if isinstance(tables.events, pa.Table) and isinstance(tables.unit_tests, pa.Table):
            events = EventsDigest.of(tables.events)
            add_catalogs(tables, name, folder, events, UnitTestsDigest.of(tables.unit_tests, events))
        else:
            tables.events = _one_line_parts(tables.events)
            tables.unit_tests = _one_line_parts(tables.unit_tests)
    return tables


def add_catalogs(tables: SourceTables, name: str, folder: str | Path, digest: EventsDigest,
                 unit_tests: UnitTestsDigest, described: Future | None = None) -> None:
    """Fill in items.parquet and skills.parquet from the digests of the events and the unit tests and what the
    source says of them (`described`: `described_ahead`'s, or read here)."""
    types, text, skills = described.result() if described else _described(name, folder)
    with _one_line_errors():
        tables.items = items_table(digest, unit_tests, types, text)
        tables.skills = skills_table(digest, unit_tests, skills)


def described_ahead(name: str, folder: str | Path) -> Future:
    """What source `name` says of its items and skills, read from its files on another thread while the caller
    makes the parts (0.3 s at EDM-Cup scale, on the critical path when read after them): add_catalogs takes it."""
    return started(_described, name, folder)


def _described(name: str, folder: str | Path) -> tuple[dict, tuple | None, dict]:
    source, folder = SOURCES[name], Path(folder)
    with _one_line_errors():
        return source.problem_types(folder), source.item_text_embeddings(folder), source.skill_descriptions(folder)


@contextmanager
def _one_line_errors() -> Iterator[None]:
    try:
        yield
    except InputError as exc:
        path, column = exc.path and one_line(str(exc.path)), exc.column and one_line(exc.column)
        raise type(exc)(one_line(exc.reason), path, column) from None


def _one_line_parts(parts: pa.Table | Iterator[pa.Table]) -> Iterator[pa.Table]:
    with _one_line_errors():
        yield from [parts] if isinstance(parts, pa.Table) else parts


__all__ = ["SOURCES", "Source", "SourceTables", "add_catalogs", "described_ahead", "load_source"]
