"""Stage `train_wdirt`: fit Wide & Deep IRT on training students; item parameters, drift, metrics."""

import logging

import click
from _stage import load_params, params_option, split_option, stage
from _training import live_epochs, save_training, training_outputs

from ktirt.io import read_items, read_split
from ktirt.irt.wdirt_run import WDIRTSettings, run_wdirt
from ktirt.catalog import item_text, item_types
from ktirt.truth import truth_dir

log = logging.getLogger("train_wdirt")


@click.command()
@params_option
@click.option("--interim", default="data/interim", show_default=True)
@split_option
@training_outputs("wdirt")
@stage
def main(params_path, interim, split_path, model_dir, metrics_path, plots_dir, live_dir, timings_file) -> None:
    """Fit Wide & Deep IRT on the training students (item parameters, drift): reads data/interim/events.parquet,
    data/interim/unit_tests.parquet, data/interim/items.parquet (problem types, text embeddings), data/splits/split.json
    and data/interim/truth/ (the simulator's truth), writes models/wdirt/, metrics/wdirt.json, plots/wdirt/ and dvclive/wdirt/."""
    settings = WDIRTSettings.from_dict(load_params(params_path, "wdirt"))
    items, split = read_items(f"{interim}/items.parquet"), read_split(split_path)
    text = item_text(items)
    if text is None:
        log.info("%s/items.parquet has no text embeddings: the deep part runs without them", interim)
    with live_epochs(live_dir) as on_epoch:
        result = run_wdirt(f"{interim}/events.parquet", f"{interim}/unit_tests.parquet", split, settings,
                           item_types(items), text, truth_dir(f"{interim}/truth"), on_epoch)
    save_training(result, model_dir, plots_dir, metrics_path, timings_file)
    m = result.metrics
    log.info("unit-test AUC %s, in-unit AUC %s, difficulty Spearman %s, drift precision/recall %s/%s",
             m.get("unit_test_auc"), m.get("in_unit_auc"), m.get("difficulty_spearman"), m.get("drift_precision"),
             m.get("drift_recall"))


if __name__ == "__main__":
    main()
