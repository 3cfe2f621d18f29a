"""What the two training stages (train_sakt, train_wdirt) share: DVCLive's per-epoch log and saving a run. Under
torchrun (ktirt/distributed.py) every rank trains, and only rank 0 writes: the other ranks' logs and saves are
skipped, so the outputs are written once."""

from __future__ import annotations

import contextlib
from pathlib import Path

import click
from _stage import OutputPath

from ktirt.distributed import is_main
from ktirt.io import check_finite, outputs, write_json
from ktirt.timings import timings_path, write_timings


def training_outputs(engine: str, plots: bool = True):
    """The options naming a training stage's outputs: models/<engine>, metrics/<engine>.json, plots/<engine>
    (unless `plots` is false), dvclive/<engine> and the untracked timings of train_<engine>."""
    options = [click.option("--model-dir", default=f"models/{engine}", show_default=True, type=OutputPath("folder")),
               click.option("--metrics", "metrics_path", default=f"metrics/{engine}.json", show_default=True,
                            type=OutputPath("file"))]
    if plots:
        options.append(click.option("--plots-dir", default=f"plots/{engine}", show_default=True,
                                    type=OutputPath("folder")))
    options += [click.option("--live-dir", default=f"dvclive/{engine}", show_default=True, type=OutputPath("folder"),
                             help="DVCLive's per-epoch log"),
                click.option("--timings", "timings_file", default=timings_path(f"train_{engine}"), show_default=True,
                             type=OutputPath("file"), help="untracked")]

    def decorate(command):
        for option in reversed(options):
            command = option(command)
        return command
    return decorate


def save_training(result, model_dir: str, plots_dir: str, metrics_path: str, timings_file: str) -> None:
    """A trained engine's outputs: metrics checked finite before anything is saved (no model without its
    metrics), then the model and plots, the tracked metrics and the untracked timings. Rank 0's only."""
    if not is_main():
        return
    check_finite(result.metrics, metrics_path)
    result.save(model_dir, plots_dir)
    write_json(result.metrics, metrics_path)
    write_timings(result.timings, timings_file)


@contextlib.contextmanager
def live_epochs(directory: str | Path):
    """DVCLive, DVC's own training log: each epoch's values go to `<directory>/metrics.json` (so `dvc exp show`
    shows a running experiment's epoch and validation AUC) and `<directory>/plots/metrics/<name>.tsv`, one step
    curve per value (declared under `plots:` in dvc.yaml). Yields the library's `on_epoch` callback; its step is
    the epoch number. No timestamps: the files are tracked by git.

    DVCLive writes the folder in place as training goes (that is what `dvc exp show` reads while it runs), so it
    cannot wait in a temporary with the stage's other outputs: instead the stage's transaction keeps a copy of
    what it held and puts that back if the stage fails, so the log too is all of a run or none of it.

    Under torchrun only rank 0 logs: the other ranks get None (no callback) and leave the folder alone."""
    if not is_main():
        yield None
        return
    from dvclive import Live

    with outputs() as out:
        out.restore_on_failure(directory)
    with Live(str(directory), save_dvc_exp=False, dvcyaml=None, report=None) as live:
        def on_epoch(epoch: int, values: dict) -> None:
            live.step = epoch
            for name, value in values.items():
                live.log_metric(name, value)
            live.next_step()

        yield on_epoch
