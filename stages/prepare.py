"""Stage `prepare`: raw source tables -> the canonical tables (docs/ARCHITECTURE.md), the only door from a
source to the engines."""

import os

# Arrow's jemalloc pool, not its default (mimalloc): read when Arrow loads, so set before anything imports it. Part
# after part, mimalloc gave each part's pages back and faulted fresh ones in for the next; at EDM-Cup scale the
# stage spent 12.7 of its 30 CPU seconds in the kernel, with jemalloc (and glibc's heap reused: ktirt.heap) 5 to 6,
# for a higher but still flat peak (README, "The scale ladder"; docs/PERFORMANCE_HISTORY.md). A value the user set
# is kept.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")
# Nor does numpy ask the kernel for huge pages for its large arrays (read when numpy loads): every fault then
# cleared 2 MiB, and at EDM-Cup scale clearing them was 11% of the stage's CPU time, more than the 4 KiB pages cost.
os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")

import logging

import click
from _stage import OutputPath, load_params, params_option, stage

from ktirt.events import summarize
from ktirt.events_digest import EventsDigest
from ktirt.heap import heap_reused
from ktirt.io import parquet_parts, write_json, write_parquet
from ktirt.settings import DataSettings
from ktirt.shape import shape
from ktirt.sources import add_catalogs, described_ahead, load_source
from ktirt.sources.sanity import check_sanity, future_after_ms, sanity_block
from ktirt.sources.unit_tests_digest import UnitTestsDigest
from ktirt.truth import copy_truth

log = logging.getLogger("prepare")


@click.command()
@params_option
@click.option("--out-dir", default="data/interim", show_default=True, type=OutputPath("folder"))
@click.option("--metrics", "metrics_path", default="metrics/prepare.json", show_default=True, type=OutputPath("file"))
@stage
def main(params_path: str, out_dir: str, metrics_path: str) -> None:
    """Turn the raw source's tables into the canonical tables: reads data.raw_dir as data.source
    (data/raw/synthetic/ by default), writes data/interim/events.parquet, data/interim/unit_tests.parquet,
    data/interim/items.parquet, data/interim/skills.parquet, data/interim/truth/ and metrics/prepare.json.
    EDM Cup's action log and EdNet KT1's files are read a part (data.part_mb of them) at a time, the events written
    as they come, then EDM Cup's unit tests, a part of the same students at a time."""
    data = load_params(params_path, "data")
    part_mb = DataSettings.model_validate(data).part_mb
    digest = EventsDigest(future_after_ms())
    unit_tests = UnitTestsDigest(digest)
    with (parquet_parts(f"{out_dir}/events.parquet", behind=True) as write_events,
          parquet_parts(f"{out_dir}/unit_tests.parquet", behind=True) as write_unit_tests, heap_reused()):
        tables = load_source(data["source"], data["raw_dir"], part_bytes=part_mb << 20)
        described = described_ahead(data["source"], data["raw_dir"]) if tables.items is None else None
        for parts, add, write in ((tables.event_parts, digest.add, write_events),
                                  (tables.unit_test_parts, unit_tests.add, write_unit_tests)):
            for part in parts():
                add(part)
                write(part)
                del part  # else the loop holds this part while the source reads the next (and gives back its memory)
            write(None)  # the last rows written (behind) while the next table is read
        if tables.items is None:
            add_catalogs(tables, data["source"], data["raw_dir"], digest, unit_tests, described)
        metrics = summarize(digest, unit_tests) | {
            "dropped_total": sum(tables.dropped.values()),
            "dropped": tables.dropped,
            "excluded": tables.excluded,
            "source": tables.features,
            "sanity": sanity_block(tables, digest, unit_tests),
            "shape": shape(digest),
        }
        check_sanity(metrics["sanity"], data["raw_dir"])
    write_parquet(tables.items, f"{out_dir}/items.parquet")
    write_parquet(tables.skills, f"{out_dir}/skills.parquet")
    copy_truth(data["raw_dir"], f"{out_dir}/truth")
    write_json(metrics, metrics_path)
    log.info("%d events, %d users, %d items, %d unit-test rows; %d unusable rows dropped",
             metrics["events"], metrics["users"], metrics["items"], metrics["unit_test_rows"], metrics["dropped_total"])


if __name__ == "__main__":
    main()
