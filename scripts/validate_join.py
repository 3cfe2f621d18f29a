"""Check that SAKT's and Wide & Deep IRT's exports join: prints the join report, exits 1 when it fails.

    python scripts/validate_join.py [--exports data/exports] [--min-coverage 0.8]
"""

import logging
import sys

import click
import pyarrow.parquet as pq

from ktirt.errors import InputError
from ktirt.exports.join import validate_join


@click.command()
@click.option("--exports", "exports_dir", default="data/exports", show_default=True, type=click.Path(file_okay=False))
@click.option("--events", default="data/interim/events.parquet", show_default=True, help="the key types to match")
@click.option("--min-coverage", default=0.8, show_default=True, type=click.FloatRange(0, 1))
@click.option("--samples", default=10, show_default=True, type=click.IntRange(0))
@click.option("--seed", default=0, show_default=True)
def main(exports_dir, events, min_coverage, samples, seed) -> None:
    """Check that SAKT's and Wide & Deep IRT's exports join: reads data/exports/ and the events, prints the join
    report and exits 1 when it fails."""
    logging.basicConfig(level=logging.WARNING)
    try:
        report = validate_join(exports_dir, pq.read_schema(events), samples, seed)
    except (InputError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(report.markdown())
    failures = report.failures(min_coverage)
    if failures:
        click.echo("FAILED:\n  " + "\n  ".join(failures), err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
