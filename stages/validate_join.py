"""Stage `validate_join`: coverage, key types and sample students across data/exports/; fails when the join does not hold."""

import logging

import click
from _stage import OutputPath, load_params, params_option, stage

from ktirt.exports.join import run_validation
from ktirt.io import write_csv, write_json, write_text

log = logging.getLogger("validate_join")


@click.command()
@params_option
@click.option("--exports", "exports_dir", default="data/exports", show_default=True)
@click.option("--events", default="data/interim/events.parquet", show_default=True, help="the key types to match")
@click.option("--report", "report_path", default="data/exports/join_report.md", show_default=True,
              type=OutputPath("file"))
@click.option("--metrics", "metrics_path", default="metrics/join.json", show_default=True, type=OutputPath("file"))
@click.option("--plots-dir", default="plots/join", show_default=True, type=OutputPath("folder"))
@stage
def main(params_path, exports_dir, events, report_path, metrics_path, plots_dir) -> None:
    """Check that the exports join (coverage, key types, sample students) and fail when they do not: reads
    data/exports/ and data/interim/events.parquet, writes data/exports/join_report.md, metrics/join.json and
    plots/join/."""
    p = load_params(params_path, "join")
    report = run_validation(exports_dir, events, p["min_coverage"], p["samples"], p["seed"])
    write_text(report.markdown(), report_path)
    write_json(report.metrics(), metrics_path)
    write_csv(report.coverage_table(), f"{plots_dir}/coverage.csv")
    log.info("join holds: coverage %.4f, drift coverage %.4f, %d schema mismatches", report.coverage,
             report.drift_coverage, len(report.mismatches))


if __name__ == "__main__":
    main()
