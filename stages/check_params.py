"""Stage `check_params`: every setting checked before any other stage runs. Each stage checks params.yaml itself
too, but under `dvc exp run -S train.epochs=abc` DVC removes a stage's outputs just before running it, so the
check must fail in a stage of its own, first, that every other stage depends on."""

import logging

import click
from _stage import OutputPath, load_params, params_option, stage

from ktirt.io import write_text

log = logging.getLogger("check_params")
MARK = "params.yaml passed ktirt/settings.py's checks\n"
"""the same text whatever the settings: a passing check reruns no other stage"""


@click.command()
@params_option
@click.option("--out", default="data/params.ok", show_default=True, type=OutputPath("file"))
@stage
def main(params_path: str, out: str) -> None:
    """Check every setting (types, ranges, choices, cross rules, devices) before any stage runs: reads params.yaml,
    writes data/params.ok."""
    sections = load_params(params_path, None)
    write_text(MARK, out)
    log.info("%s: %d sections, every setting valid", params_path, len(sections))


if __name__ == "__main__":
    main()
