"""The device check: `train_sakt`'s and `train_wdirt`'s training at EDM-Cup scale with `device: auto`, on the
machine it runs on. Made to be the one prepared script a session with a GPU runs (its time is short).

It simulates `--students` (cached under bench/out/edm_scale_<n>/) and runs prepare and split as stages, then
trains both engines for `--epochs` epochs each through the library calls the training stages make (run_sakt,
run_wdirt: the same training, without DVCLive's log or the saved model, so the check needs neither DVC nor
DVCLive on the GPU machine), with `device: auto` and `--threads`. It prints and writes (`--out`) each engine's
device, epoch throughput, test AUC and wall time. It stops with one line when CUDA is not there, unless
`--cpu-ok` (to try it here on a small `--students`, or to measure the CPU beside the GPU on the same machine).

    python bench/device_check.py --out $OUT/device_check.json           # on the GPU machine
    python bench/device_check.py --students 300 --epochs 1 --cpu-ok     # a dry run on this one
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path

import click
import torch
import yaml
from _measure import ROOT, child, scale_params

log = logging.getLogger("bench.device_check")


@click.command()
@click.option("--students", default=35000, show_default=True)
@click.option("--epochs", default=2, show_default=True, help="epochs of each engine")
@click.option("--threads", type=int, help="torch threads (default: every core)")
@click.option("--device", default="auto", show_default=True, help="train.device / wdirt.device")
@click.option("--engines", default="sakt,wdirt", show_default=True)
@click.option("--out", "out_path", default=str(ROOT / "bench" / "out" / "device_check.json"), show_default=True)
@click.option("--cpu-ok", is_flag=True, help="run without CUDA (a dry run)")
def main(students: int, epochs: int, threads: int | None, device: str, engines: str, out_path: str,
         cpu_ok: bool) -> None:
    """Time SAKT's and WD-IRT's training at EDM-Cup scale on this machine's accelerator (device: auto): prints
    and writes (--out) each engine's device, epoch throughput, test AUC and wall time."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not torch.cuda.is_available() and not cpu_ok:
        raise click.ClickException("torch sees no CUDA device here (give --cpu-ok for a dry run on the CPU)")
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    threads = threads or os.cpu_count() or 2
    w = ROOT / "bench" / "out" / f"device_{students}"
    p, raw = scale_params(students, w)
    params = yaml.safe_load(p.read_text())
    params["train"] |= {"epochs": epochs, "device": device, "threads": threads}
    params["wdirt"] |= {"epochs": epochs, "device": device, "threads": threads}
    p.write_text(yaml.safe_dump(params, sort_keys=False))
    walls = _data_stages(p, raw, w)
    report = {"gpu": gpu, "device_setting": device, "students": students, "epochs": epochs, "threads": threads,
              "torch": torch.__version__, "data_stage_seconds": walls}
    for engine in engines.split(","):
        report[f"train_{engine}"] = _train(engine, params, w)
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    Path(out_path).write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


def _data_stages(p: Path, raw: Path, w: Path) -> dict:
    """simulate (unless cached), prepare and split as stages, each in its own process; their wall seconds."""
    py = sys.executable
    steps = [("simulate", ["stages/simulate.py", "--params", p, "--out", raw]),
             ("prepare", ["stages/prepare.py", "--params", p, "--out-dir", w / "interim", "--metrics", w / "prepare.json"]),
             ("split", ["stages/split.py", "--params", p, "--events", w / "interim/events.parquet", "--out", w / "split.json"])]
    walls = {}
    for name, cmd in steps:
        if name == "simulate" and (raw / "action_logs.csv").exists():
            continue
        log.info("running %s", name)
        walls[name] = round(child([py, *map(str, cmd)])[0], 1)
    return walls


def _train(engine: str, params: dict, w: Path) -> dict:
    """One engine's training as its stage runs it (the library call), timed; the figures worth comparing."""
    from ktirt.io import read_events, read_items, read_split, read_unit_tests
    from ktirt.runtime import resolve_device

    events, split = read_events(w / "interim/events.parquet"), read_split(w / "split.json")
    t0 = time.perf_counter()
    if engine == "sakt":
        from ktirt.kt.sakt_run import SaktRun, run_sakt
        from ktirt.settings import ModelSettings, TrainSettings
        run = SaktRun(model=ModelSettings.from_dict(params["model"]), train=TrainSettings.from_dict(params["train"]))
        result = run_sakt(events, split, run)
    else:
        from ktirt.catalog import item_text, item_types
        from ktirt.irt.wdirt_run import WDIRTSettings, run_wdirt
        items = read_items(w / "interim/items.parquet")
        result = run_wdirt(events, read_unit_tests(w / "interim/unit_tests.parquet"), split,
                           WDIRTSettings.from_dict(params["wdirt"]), item_types(items), item_text(items), None)
    wall = time.perf_counter() - t0
    found = result.metrics | result.timings
    keys = ("test_auc", "unit_test_auc", "in_unit_auc", "epochs", "train_seconds", "train_seqs_per_s",
            "train_targets_per_s")
    device = str(resolve_device(params["train" if engine == "sakt" else "wdirt"]["device"]))
    out = {"device": device, "wall_seconds": round(wall, 1)} | {k: found[k] for k in keys if k in found}
    log.info("%s on %s: %s", engine, device, out)
    return out


if __name__ == "__main__":
    main()
