"""Stage `pykt_adapt`: canonical events + split -> pyKT's own dataset files (any pyKT model can train on them)."""

import logging

import click
from _stage import OutputPath, events_option, load_params, params_option, split_option, stage

from ktirt.io import event_users, read_split, write_json
from ktirt.kt.pykt_format import write_pykt
from ktirt.kt.sequences import load_sequences
from ktirt.split import split_labels
from ktirt.user_batches import user_batches
from ktirt.vocab import Vocabulary

log = logging.getLogger("pykt_adapt")


@click.command()
@params_option
@events_option
@split_option
@click.option("--out", default="data/processed/pykt", show_default=True, type=OutputPath("folder"))
@click.option("--metrics", "metrics_path", default="metrics/pykt_adapt.json", show_default=True,
              type=OutputPath("file"))
@stage
def main(params_path, events, split_path, out, metrics_path) -> None:
    """Write pyKT's own dataset files, so any pyKT model can train on them: reads data/interim/events.parquet (a
    batch of whole students at a time) and data/splits/split.json, writes data/processed/pykt/ and
    metrics/pykt_adapt.json."""
    p = load_params(params_path, "pykt")
    split = read_split(split_path)
    labels = split_labels(event_users(events).astype(object), split)
    # two passes over the events, a batch of whole students at a time: the vocabulary, then the windows
    vocab = Vocabulary.from_batches(user_batches(events, ["user_id", "item_id", "skill_ids"]), split["train"])
    parts = (load_sequences(batch, split, vocab)[0] for batch in user_batches(events))
    counts = write_pykt(parts, labels, vocab, out, p["seq_len"], p["folds"], split["seed"])
    write_json(counts, metrics_path)
    log.info("%d sequences -> %d windows of %d (%.1f %% padding)", counts["sequences"], counts["windows"],
             p["seq_len"], 100 * counts["padded_share"])


if __name__ == "__main__":
    main()
