"""Source adapters: each turns one dataset's raw files into the canonical tables (docs/ARCHITECTURE.md)."""

from __future__ import annotations

from pathlib import Path

from ktirt.errors import SettingsError
from ktirt.sources import assistments_2009, edm_cup
from ktirt.sources.canonical import SourceTables

# the simulator writes EDM Cup 2023 files, so `synthetic` is read exactly as the real release is
SOURCES = {
    "synthetic": edm_cup.load,
    "edm_cup_2023": edm_cup.load,
    "assistments_2009": assistments_2009.load,
}


SKILL_DESCRIPTIONS = {
    "synthetic": edm_cup.skill_descriptions,
    "edm_cup_2023": edm_cup.skill_descriptions,
    "assistments_2009": assistments_2009.skill_descriptions,
}


def skill_descriptions(name: str, raw_dir: str | Path) -> dict[str, str]:
    """skill code -> its description in the source ({} where the source has none)."""
    if name not in SKILL_DESCRIPTIONS:
        raise SettingsError(f"unknown data.source '{name}' (choose one of: {', '.join(SOURCES)})")
    return SKILL_DESCRIPTIONS[name](raw_dir)


def load_source(name: str, raw_dir: str | Path) -> SourceTables:
    if name not in SOURCES:
        raise SettingsError(f"unknown data.source '{name}' (choose one of: {', '.join(SOURCES)})")
    return SOURCES[name](raw_dir)


__all__ = ["SOURCES", "SourceTables", "load_source", "skill_descriptions"]
