"""Stage `figures`: the plots as one PNG of this run (plots/results.png, beside the CSVs it draws). It never writes
the README's docs/figures/results.png, so an experiment (another source, another setting) cannot replace the figure
the README describes. The offline page template for `dvc plots show` is a source file in git (ktirt/plots_offline.py),
not an output of this stage, so the page works on a fresh clone before any repro."""

import logging

import click
from _stage import OutputPath, load_params, params_option, stage

from ktirt.figures import draw_results

log = logging.getLogger("figures")


@click.command()
@params_option
@click.option("--plots-dir", default="plots", show_default=True)
@click.option("--live-dir", default="dvclive", show_default=True, help="the engines' DVCLive training logs")
@click.option("--png", default="plots/results.png", show_default=True, type=OutputPath("file"),
              help="this run's figure (the README shows docs/figures/results.png, a copy of the default run's)")
@stage
def main(params_path, plots_dir, live_dir, png) -> None:
    """Draw this run's plots as one PNG: reads plots/sakt/, plots/wdirt/, dvclive/sakt/ and dvclive/wdirt/, writes
    plots/results.png."""
    w = load_params(params_path, "wdirt")
    draw_results(plots_dir, live_dir, png, w["drift_z"], w["drift_min_shift"])
    log.info("wrote %s", png)


if __name__ == "__main__":
    main()
