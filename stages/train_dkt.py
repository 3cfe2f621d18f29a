"""Stage `train_dkt`: train DKT, the blend's recurrent member, and predict every response."""

import logging

import click
from _stage import events_option, load_params, params_option, split_option, stage
from _training import live_epochs, save_training, training_outputs

from ktirt.blend.dkt_run import run_dkt
from ktirt.io import read_split
from ktirt.settings import DKTSettings

log = logging.getLogger("train_dkt")


@click.command()
@params_option
@events_option
@split_option
@training_outputs("dkt", plots=False)
@stage
def main(params_path, events, split_path, model_dir, metrics_path, live_dir, timings_file) -> None:
    """Train DKT (an LSTM over SAKT's inputs) on the training students, early-stopping on validation AUC, and predict
    every response for the blend: reads data/interim/events.parquet and data/splits/split.json, writes models/dkt/
    (checkpoint, predictions.parquet), metrics/dkt.json and dvclive/dkt/."""
    settings = DKTSettings.from_dict(load_params(params_path, "dkt"))
    with live_epochs(live_dir) as on_epoch:
        result = run_dkt(events, read_split(split_path), settings, on_epoch)  # read a batch of students at a time
    save_training(result, model_dir, None, metrics_path, timings_file)
    m = result.metrics
    log.info("validation AUC %.4f, best epoch %d of %d (test figures: metrics/blend.json)", m["val_auc"],
             m["best_epoch"], m["epochs"])


if __name__ == "__main__":
    main()
