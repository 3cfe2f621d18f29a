"""Timings of a run (training seconds, throughput): logged, and written to `logs/<stage>.json`, which git
ignores and DVC does not track. They stay out of `metrics/*.json` because they change on every rerun:
there they would rewrite `dvc.lock`, dirty `git status` and clutter `dvc metrics diff` when no result moved."""

from __future__ import annotations

import logging
import resource
import sys
import time
from contextlib import contextmanager
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


def peak_memory_gib() -> float:
    """The process's peak resident memory so far (GiB): ru_maxrss, KiB on Linux and bytes on macOS."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (2**30 if sys.platform == "darwin" else 2**20)


class Phases:
    """Wall seconds of a run's named phases, in order (`with phases("drift"): ...` adds `drift_seconds`), and
    the process's peak memory when each ended (`drift_peak_gib`: the phase whose figure first rises to the
    stage's peak is the one to shrink): the profile a stage logs and writes to logs/<stage>.json."""

    def __init__(self, owner: str):
        self.owner, self.profile = owner, {}

    @contextmanager
    def __call__(self, name: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.profile[f"{name}_seconds"] = round(time.perf_counter() - t0, 2)
            self.profile[f"{name}_peak_gib"] = round(peak_memory_gib(), 3)
            log.info("%s: %s took %.1f s (peak memory so far %.2f GiB)", self.owner, name,
                     self.profile[f"{name}_seconds"], self.profile[f"{name}_peak_gib"])
