"""Stage `prepare`: raw source tables -> the canonical tables (docs/ARCHITECTURE.md), the only door from a
source to the engines."""

import logging

import click
from _stage import OutputPath, load_params, params_option, stage

from ktirt.events import summarize
from ktirt.io import write_json, write_parquet
from ktirt.shape import shape
from ktirt.sources import load_source
from ktirt.sources.sanity import check_sanity, sanity_block
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
    data/interim/items.parquet, data/interim/skills.parquet, data/interim/truth/ and metrics/prepare.json."""
    data = load_params(params_path, "data")
    tables = load_source(data["source"], data["raw_dir"])
    metrics = summarize(tables.events, tables.unit_tests) | {
        "dropped_total": sum(tables.dropped.values()),
        "dropped": tables.dropped,
        "excluded": tables.excluded,
        "source": tables.features,
        "sanity": sanity_block(tables),
        "shape": shape(tables.events),
    }
    check_sanity(metrics["sanity"], data["raw_dir"])
    write_parquet(tables.events, f"{out_dir}/events.parquet")
    write_parquet(tables.unit_tests, f"{out_dir}/unit_tests.parquet")
    write_parquet(tables.items, f"{out_dir}/items.parquet")
    write_parquet(tables.skills, f"{out_dir}/skills.parquet")
    copy_truth(data["raw_dir"], f"{out_dir}/truth")
    write_json(metrics, metrics_path)
    log.info("%d events, %d users, %d items, %d unit-test rows; %d unusable rows dropped",
             metrics["events"], metrics["users"], metrics["items"], metrics["unit_test_rows"], metrics["dropped_total"])


if __name__ == "__main__":
    main()
