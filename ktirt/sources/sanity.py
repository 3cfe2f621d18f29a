"""Whether what `prepare` built is plausible: a few numbers for metrics/prepare.json, and a loud stop
when they are absurd. Each check catches input that parsed but meant something else upstream: a unit or
date format misread (events outside 1990-2100, every unit test dated before its unit's work) or a renamed
action or score (a correct rate of exactly 0 or 1). Dates more than a year after the run are counted
(`events_future`, `unit_tests_future`): a clock set wrong, or test data; only past 2100 do they stop the run.
The block also carries how the raw files were read (SourceTables.reading), so no reading choice is silent."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ktirt.errors import InputError
from ktirt.events_digest import EventsDigest
from ktirt.sources.canonical import SourceTables
from ktirt.sources.timestamps import FIRST_YEAR, LAST_YEAR
from ktirt.sources.unit_tests_digest import UnitTestsDigest

DAY_MS = 86_400_000
FUTURE_DAYS = 365
"""events dated more than this many days after the run are counted as in the future"""


def future_after_ms() -> int:
    """The time (unix ms) after which an event is counted as in the future: FUTURE_DAYS after now."""
    return int(time.time() * 1000) + FUTURE_DAYS * DAY_MS


def sanity_block(tables: SourceTables, digest: EventsDigest, unit_tests: UnitTestsDigest) -> dict:
    """Numbers only: years and span of the events (sources with real clocks), correct rate, share of each
    first action (sources that log actions), share of unit-test rows dated after some of their unit's work.
    The events and the unit tests through their digests (the events' made with future_after_ms())."""
    block: dict = {"events": digest.n, "correct_rate": round(digest.correct / digest.n if digest.n else 0.0, 6)}
    timed = tables.features.get("has_timestamps", 1)
    if timed:
        for name, lo, hi in (("event", digest.min_ms, digest.max_ms), ("unit_test", unit_tests.min_ms, unit_tests.max_ms)):
            if lo is not None:
                block[f"first_{name}_year"], block[f"last_{name}_year"] = _year(lo), _year(hi)
                block[f"{name}_span_days"] = round(float(hi - lo) / DAY_MS, 1)
        share = unit_tests.after_work_share()
        if share is not None:
            block["unit_tests_after_unit_work_share"] = share
    total = sum(tables.first_actions.values())
    if total:
        block |= {f"first_action_{a}_share": round(n / total, 6) for a, n in tables.first_actions.items()}
    if timed:
        block |= {"events_future": digest.future, "unit_tests_future": unit_tests.future}
    return block | tables.reading


def check_sanity(block: dict, raw_dir: str | Path) -> None:
    """InputError (one line, all findings) when the block describes data no real course produces."""
    found = []
    if not block["events"]:
        found.append("no events")
    elif block["correct_rate"] in (0.0, 1.0):
        found.append(f"correct rate {block['correct_rate']:g}: every first response is "
                     f"{'wrong' if block['correct_rate'] == 0 else 'right'} (renamed actions or scores?)")
    for name in ("event", "unit_test"):
        first, last = block.get(f"first_{name}_year"), block.get(f"last_{name}_year")
        if first is not None and (first < FIRST_YEAR or last >= LAST_YEAR):
            found.append(f"{name} timestamps span the years {first}-{last}, outside {FIRST_YEAR}-{LAST_YEAR} "
                         "(a misread time unit or date format?)")
    if block.get("unit_tests_after_unit_work_share") == 0:
        found.append("every unit test is dated before all the work of its unit (a misread time unit or date format?)")
    if found:
        raise InputError("implausible data (prepare's sanity check): " + "; ".join(found), raw_dir)


def _year(ms: int) -> int:
    return int(np.datetime64(int(ms), "ms").astype("datetime64[Y]").astype(np.int64)) + 1970
