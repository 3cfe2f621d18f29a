"""One student's mastery on a topic and the health of the items they met, from data/exports/.

    python demo_trace.py --student-id STUDENT --topic 6.RP [--plot trace.png] [--format json]

--topic takes a skill code (6.RP.A.3b), a code prefix (6.RP) or words of the skill description.
Needs only the exports (run `dvc repro` first); DVC itself is not needed.
"""

import json
import logging
import time

import click

from ktirt.errors import InputError, one_line
from ktirt.exports.trace import check_plot_path, trace


@click.command()
@click.option("--student-id", required=True, help="a user_id of the events")
@click.option("--topic", required=True, help="skill code, code prefix, or words of the skill description")
@click.option("--exports", "exports_dir", default="data/exports", show_default=True, type=click.Path(file_okay=False))
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), help="also draw the mastery trajectory to this PNG")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def main(student_id, topic, exports_dir, plot_path, fmt) -> None:
    """Print one student's mastery on a topic and the health of the items they met: reads data/exports/ (only that
    student's rows), writes the trace to stdout (a table, or JSON with --format json) and a PNG with --plot."""
    logging.basicConfig(level=logging.WARNING)
    t0 = time.perf_counter()
    try:
        if plot_path:
            check_plot_path(plot_path)  # before the text: a failing --plot must not follow a printed answer
        t = trace(exports_dir, student_id, topic)
    except InputError as exc:
        raise click.ClickException(one_line(str(exc))) from None
    if fmt == "json":
        click.echo(json.dumps(t.to_json(), indent=1, default=str))
    else:
        click.echo(t.text(), nl=False)
    if plot_path:
        try:
            t.plot(plot_path)
        except InputError as exc:  # the disk filled or the folder went away since the check (ktirt.io.OutputError)
            raise click.ClickException(one_line(str(exc))) from None
    logging.getLogger("demo_trace").info("answered in %.2f s", time.perf_counter() - t0)


if __name__ == "__main__":
    main()
