"""Stage `split`: deterministic user-level train/val/test split of the canonical events."""

import json
import logging

import click
from _stage import OutputPath, load_params, params_option, stage

from ktirt.io import event_users, write_text
from ktirt.split import require_students, split_users

log = logging.getLogger("split")


@click.command()
@params_option
@click.option("--events", default="data/interim/events.parquet", show_default=True, type=click.Path(dir_okay=False))
@click.option("--out", default="data/splits/split.json", show_default=True, type=OutputPath("file"))
@stage
def main(params_path: str, events: str, out: str) -> None:
    """Split students into train/validation/test, deterministically: reads data/interim/events.parquet, writes
    data/splits/split.json."""
    p = load_params(params_path, "split")
    split = split_users(event_users(events), p["train"], p["val"], p["seed"])
    require_students(split, p["min_students"])
    write_text(json.dumps(split, indent=1) + "\n", out)
    log.info("%s", ", ".join(f"{k}: {len(split[k])} users" for k in ("train", "val", "test")))


if __name__ == "__main__":
    main()
