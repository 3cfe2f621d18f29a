"""Stage `blend`: a logistic regression on the models' logits, fitted on validation students, applied to all."""

import logging

import click
from _stage import OutputPath, events_option, load_params, params_option, split_option, stage, truth_option

from ktirt.blend.blend_run import blend_batches
from ktirt.blend.members import PATHS, member_batches
from ktirt.exports.tables import ROW_GROUP
from ktirt.io import read_split, write_json, write_parquet_parts
from ktirt.settings import BlendSettings
from ktirt.truth import truth_dir

log = logging.getLogger("blend")


@click.command()
@params_option
@events_option
@split_option
@truth_option
@click.option("--sakt", default=PATHS["sakt"], show_default=True, help="SAKT's prediction of every response")
@click.option("--wdirt", default=PATHS["wdirt"], show_default=True, help="WD-IRT's prediction of every response")
@click.option("--dkt", default=PATHS["dkt"], show_default=True, help="DKT's prediction of every response")
@click.option("--out", default="data/exports/blend_predictions.parquet", show_default=True, type=OutputPath("file"))
@click.option("--metrics", "metrics_path", default="metrics/blend.json", show_default=True, type=OutputPath("file"))
@stage
def main(params_path, events, split_path, truth_folder, sakt, wdirt, dkt, out, metrics_path) -> None:
    """Blend the models' predictions with weights fitted on the validation students: reads data/interim/events.parquet,
    data/splits/split.json, data/interim/truth/ (the oracle), data/exports/sakt_predictions.parquet,
    models/wdirt/event_predictions.parquet and models/dkt/predictions.parquet, writes
    data/exports/blend_predictions.parquet and metrics/blend.json."""
    settings = BlendSettings.from_dict(load_params(params_path, "blend"))
    batches = member_batches(events, {"sakt": sakt, "wdirt": wdirt, "dkt": dkt})  # a batch of students at a time
    run = blend_batches(batches, read_split(split_path), settings, truth_dir(truth_folder))
    write_json(run.metrics, metrics_path)  # strict JSON, checked before the table is renamed into place
    write_parquet_parts(run.parts(), out, ROW_GROUP)


if __name__ == "__main__":
    main()
