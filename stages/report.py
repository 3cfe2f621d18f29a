"""Stage `report`: data/exports/ and the metrics -> data/exports/report.html, one offline page to look at."""

import logging
from pathlib import Path

import click
from _stage import OutputPath, load_params, params_option, stage

from ktirt.io import write_text
from ktirt.report import build_report

log = logging.getLogger("report")


@click.command()
@params_option
@click.option("--exports", "exports_dir", default="data/exports", show_default=True)
@click.option("--metrics", "metrics_dir", default="metrics", show_default=True)
@click.option("--plots", "plots_dir", default="plots", show_default=True)
@click.option("--out", "out_path", default="data/exports/report.html", show_default=True, type=OutputPath("file"))
@stage
def main(params_path, exports_dir, metrics_dir, plots_dir, out_path) -> None:
    """Build one offline page to look at: reads data/exports/, metrics/ and plots/sakt/, writes
    data/exports/report.html."""
    report, join, data = (load_params(params_path, s) for s in ("report", "join", "data"))
    page = build_report(Path(exports_dir), Path(metrics_dir), Path(plots_dir), data["source"], report["students"],
                        join["samples"], join["seed"])
    write_text(page, out_path)
    log.info("wrote %s (%.1f MB)", out_path, len(page.encode()) / 1e6)


if __name__ == "__main__":
    main()
