"""Timings of a run (training seconds, throughput): logged, and written to `logs/<stage>.json`, which git
ignores and DVC does not track. They stay out of `metrics/*.json` because they change on every rerun:
there they would rewrite `dvc.lock`, dirty `git status` and clutter `dvc metrics diff` when no result moved."""

from __future__ import annotations

import logging
from pathlib import Path

from ktirt.io import write_json

LOG_DIR = "logs"
log = logging.getLogger(__name__)


def timings_path(stage: str) -> str:
    """Where a stage writes its timings by default (`--timings` overrides it, e.g. for the benchmarks)."""
    return f"{LOG_DIR}/{stage}.json"


def write_timings(timings: dict, path: str | Path) -> None:
    log.info("timings: %s (%s)", ", ".join(f"{k}={v}" for k, v in timings.items()), path)
    write_json(timings, path)
