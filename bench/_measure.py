"""Shared by the benchmarks: run a command in its own process and report its wall time and peak memory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_MEASURE = (
    "import resource, subprocess, sys, time; t = time.perf_counter(); subprocess.run(sys.argv[1:], check=True); "
    "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def child(cmd: list[str]) -> tuple[float, float]:
    """Run `cmd` under its own small parent, so the peak RSS reported is that command's alone.
    Returns (wall seconds, peak RSS in GiB)."""
    out = subprocess.run([sys.executable, "-c", _MEASURE, *cmd], check=True, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    wall, kib = out.stdout.split()[-2:]
    return float(wall), int(kib) / 2**20
