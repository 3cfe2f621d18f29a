"""Merge k-fold results made elsewhere (a GPU machine's `bench/device_run.sh`) into bench/results/kt_benchmark.json:
every model-fold record of the given files, through kt_benchmark's own merge (the world's data and folds must be
the stored ones; a model whose settings differ from its stored folds' replaces them).

    python bench/kt_benchmark_merge.py OTHER.json [OTHER2.json ...]
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from kt_benchmark import ROOT, merge_into


@click.command()
@click.argument("sources", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--results", "results_path", default=str(ROOT / "bench/results/kt_benchmark.json"), show_default=True)
def main(sources: tuple[str, ...], results_path: str) -> None:
    """Merge the model-fold records of SOURCES (kt_benchmark.json files) into --results."""
    for source in sources:
        for key, world in json.loads(Path(source).read_text())["worlds"].items():
            world_rec = {k: v for k, v in world.items() if k != "models"}
            for name, model in world["models"].items():
                for fold, record in sorted(model["folds"].items(), key=lambda kv: int(kv[0])):
                    merge_into(Path(results_path), key, world_rec, name, int(fold), record, model["settings"])
                click.echo(f"{source}: {key} {name}: folds {', '.join(sorted(model['folds'], key=int))}")


if __name__ == "__main__":
    main()
