"""Stage `figures`: the plots as one PNG of this run (plots/results.png, beside the CSVs it draws), and the
offline page template for `dvc plots show`. It never writes the README's docs/figures/results.png, so an experiment
(another source, another setting) cannot replace the figure the README describes."""

import logging

import click
from _stage import load_params, params_option, stage

from ktirt.figures import draw_results
from ktirt.io import write_text
from ktirt.plots_offline import offline_template

log = logging.getLogger("figures")


@click.command()
@params_option
@click.option("--plots-dir", default="plots", show_default=True)
@click.option("--png", default="plots/results.png", show_default=True,
              help="this run's figure (the README shows docs/figures/results.png, a copy of the default run's)")
@click.option("--template", default="plots/offline_template.html", show_default=True)
@stage
def main(params_path, plots_dir, png, template) -> None:
    w = load_params(params_path, "wdirt")
    draw_results(plots_dir, png, w["drift_z"], w["drift_min_shift"])
    write_text(offline_template(), template)
    log.info("wrote %s and %s", png, template)


if __name__ == "__main__":
    main()
