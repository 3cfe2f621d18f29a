"""Regenerate plots/offline_template.html, the offline page `dvc plots show` fills (ktirt/plots_offline.py):
run it after upgrading `vl-convert-python` or editing the template; tests/test_plots_offline.py fails until then.

    python bench/offline_template.py
"""

import logging
from pathlib import Path

import click

from ktirt.plots_offline import TEMPLATE, write_template

ROOT = Path(__file__).resolve().parents[1]


@click.command()
def main() -> None:
    """Write plots/offline_template.html from ktirt/plots_offline.html with Vega, Vega-Lite and Vega-Embed inlined."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    path = write_template(ROOT / TEMPLATE)
    click.echo(f"wrote {path.relative_to(ROOT)}: {path.stat().st_size / 1e6:.2f} MB (the libraries inlined)")


if __name__ == "__main__":
    main()
