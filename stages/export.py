"""Stage `export`: both engines over every student -> data/exports/ (joinable tables and two reports)."""

import logging

import click
from _stage import OutputPath, events_option, load_params, params_option, split_option, stage

from ktirt.exports.build import ExportSettings, run_export
from ktirt.io import check_finite, read_skills, read_split, write_json
from ktirt.catalog import skill_descriptions
from ktirt.timings import timings_path, write_timings

log = logging.getLogger("export")


@click.command()
@params_option
@events_option
@split_option
@click.option("--skills", "skills_path", default="data/interim/skills.parquet", show_default=True)
@click.option("--sakt", "sakt_checkpoint", default="models/sakt/model.pt", show_default=True)
@click.option("--wdirt", "wdirt_dir", default="models/wdirt", show_default=True)
@click.option("--out", "out_dir", default="data/exports", show_default=True, type=OutputPath("folder"))
@click.option("--metrics", "metrics_path", default="metrics/export.json", show_default=True, type=OutputPath("file"))
@click.option("--timings", "timings_file", default=timings_path("export"), show_default=True, type=OutputPath("file"),
              help="untracked")
@stage
def main(params_path, events, split_path, skills_path, sakt_checkpoint, wdirt_dir, out_dir, metrics_path, timings_file) -> None:
    """Run both engines over every student into joinable tables and two reports: reads data/interim/events.parquet,
    data/interim/skills.parquet, data/splits/split.json, models/sakt/ and models/wdirt/, writes data/exports/ and
    metrics/export.json."""
    settings = ExportSettings.from_dict(load_params(params_path, "export"))
    run = run_export(events, read_split(split_path), sakt_checkpoint, wdirt_dir,
                     skill_descriptions(read_skills(skills_path)), settings, out_dir)
    check_finite(run.metrics, metrics_path)  # a failure here takes the exports with it: none without their metrics
    write_json(run.metrics, metrics_path)
    write_timings(run.timings, timings_file)


if __name__ == "__main__":
    main()
