"""Stage `train_sakt`: train SAKT on training students, early-stop on validation AUC, report test students."""

import logging

import click
from _stage import events_option, load_params, params_option, split_option, stage, truth_option
from _training import live_epochs, save_training, training_outputs

from ktirt.io import read_split
from ktirt.kt.sakt_run import SaktRun, run_sakt
from ktirt.settings import ModelSettings, TrainSettings
from ktirt.truth import truth_dir

log = logging.getLogger("train_sakt")


@click.command()
@params_option
@events_option
@split_option
@truth_option
@training_outputs("sakt")
@stage
def main(params_path, events, split_path, truth_folder, model_dir, metrics_path, plots_dir, live_dir, timings_file) -> None:
    """Train SAKT on the training students, early-stopping on validation AUC, and score the test students: reads
    data/interim/events.parquet, data/splits/split.json and data/interim/truth/ (the simulator's truth, for the
    oracle), writes models/sakt/, metrics/sakt.json, plots/sakt/ and dvclive/sakt/."""
    run = SaktRun(model=ModelSettings.from_dict(load_params(params_path, "model")),
                  train=TrainSettings.from_dict(load_params(params_path, "train")), truth=truth_dir(truth_folder))
    with live_epochs(live_dir) as on_epoch:  # the events are read a batch of students at a time
        result = run_sakt(events, read_split(split_path), run, on_epoch)
    save_training(result, model_dir, plots_dir, metrics_path, timings_file)
    m = result.metrics
    log.info("test AUC %.4f (item-mean %.4f, oracle %s) after %d epochs", m["test_auc"], m["item_mean_auc"],
             f"{m['oracle_auc']:.4f}" if "oracle_auc" in m else "n/a", m["epochs"])


if __name__ == "__main__":
    main()
