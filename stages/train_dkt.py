"""Stage `train_dkt`: train DKT, the blend's recurrent member, and predict every response."""

import logging

import click
from _stage import OutputPath, load_params, params_option, stage
from _training import live_epochs, save_training

from ktirt.blend.dkt_run import run_dkt
from ktirt.io import read_events, read_split
from ktirt.settings import DKTSettings
from ktirt.timings import timings_path

log = logging.getLogger("train_dkt")


@click.command()
@params_option
@click.option("--events", default="data/interim/events.parquet", show_default=True)
@click.option("--split", "split_path", default="data/splits/split.json", show_default=True)
@click.option("--model-dir", default="models/dkt", show_default=True, type=OutputPath("folder"))
@click.option("--metrics", "metrics_path", default="metrics/dkt.json", show_default=True, type=OutputPath("file"))
@click.option("--live-dir", default="dvclive/dkt", show_default=True, type=OutputPath("folder"),
              help="DVCLive's per-epoch log")
@click.option("--timings", "timings_file", default=timings_path("train_dkt"), show_default=True, type=OutputPath("file"),
              help="untracked")
@stage
def main(params_path, events, split_path, model_dir, metrics_path, live_dir, timings_file) -> None:
    """Train DKT (an LSTM over SAKT's inputs) on the training students, early-stopping on validation AUC, and predict
    every response for the blend: reads data/interim/events.parquet and data/splits/split.json, writes models/dkt/
    (checkpoint, predictions.parquet), metrics/dkt.json and dvclive/dkt/."""
    settings = DKTSettings.from_dict(load_params(params_path, "dkt"))
    with live_epochs(live_dir) as on_epoch:
        result = run_dkt(read_events(events), read_split(split_path), settings, on_epoch)
    save_training(result, model_dir, None, metrics_path, timings_file)
    m = result.metrics
    log.info("validation AUC %.4f, best epoch %d of %d (test figures: metrics/blend.json)", m["val_auc"],
             m["best_epoch"], m["epochs"])


if __name__ == "__main__":
    main()
