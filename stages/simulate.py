"""Stage `simulate`: write the embedded default, EDM Cup 2023 tables from the seeded generative model."""

import logging

import click
from _stage import load_params, params_option, stage

from ktirt.io import atomic_path
from ktirt.simulate import SimulationConfig, simulate

log = logging.getLogger("simulate")


@click.command()
@params_option
@click.option("--out", default="data/raw/synthetic", show_default=True, type=click.Path(file_okay=False))
@stage
def main(params_path: str, out: str) -> None:
    cfg = SimulationConfig.from_dict(load_params(params_path, "simulate"))
    with atomic_path(out) as tmp:
        simulate(cfg, tmp)


if __name__ == "__main__":
    main()
