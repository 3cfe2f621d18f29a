"""Source adapters: each turns one dataset's raw files into the canonical tables (docs/ARCHITECTURE.md): events,
unit-test scores, and the catalogs of items and skills. Only `prepare` calls them; every other stage reads the
canonical tables, so a new source is known here and nowhere else."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ktirt.errors import InputError, SettingsError
from ktirt.sources import assistments_2009, edm_cup
from ktirt.sources.canonical import SourceTables
from ktirt.catalog import items_table, skills_table


@dataclass(frozen=True)
class Source:
    """What one dataset's adapter provides: its events and scores, and what it says about items and skills."""

    load: Callable[[Path], SourceTables]
    skill_descriptions: Callable[[Path], dict] = lambda folder: {}
    problem_types: Callable[[Path], dict] = lambda folder: {}
    item_text_embeddings: Callable[[Path], tuple | None] = lambda folder: None


EDM_CUP = Source(edm_cup.load, edm_cup.skill_descriptions, edm_cup.problem_types, edm_cup.item_text_embeddings)
# the simulator writes EDM Cup 2023 files, so `synthetic` is read exactly as the real release is
SOURCES = {
    "synthetic": EDM_CUP,
    "edm_cup_2023": EDM_CUP,
    "assistments_2009": Source(assistments_2009.load, assistments_2009.skill_descriptions),
}


def load_source(name: str, folder: str | Path) -> SourceTables:
    """Every canonical table of source `name` from its raw files in `folder`. A raw value quoted in an error
    (a NUL, a newline, a tab) is escaped, so the message stays the one line the stage prints."""
    if name not in SOURCES:
        raise SettingsError(f"unknown data.source '{_escaped(name)}' (choose one of: {', '.join(SOURCES)})")
    source, folder = SOURCES[name], Path(folder)
    try:
        tables = source.load(folder)
        tables.items = items_table(tables.events, tables.unit_tests, source.problem_types(folder),
                                   source.item_text_embeddings(folder))
        tables.skills = skills_table(tables.events, tables.unit_tests, source.skill_descriptions(folder))
    except InputError as exc:
        raise type(exc)(_escaped(exc.reason), exc.path and _escaped(exc.path), exc.column and _escaped(exc.column)) from None
    return tables


def _escaped(text: str) -> str:
    """`text` with control characters and line separators written as Python writes them in a repr (`\\x00`,
    `\\n`, `\\u2028`); other characters, accents and spaces included, stay as they are."""
    return "".join(repr(c)[1:-1] if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c for c in text)


__all__ = ["SOURCES", "Source", "SourceTables", "load_source"]
