"""The device check: `train_sakt` and `train_wdirt` at EDM-Cup scale with `device: auto`, on the machine it runs
on, beside nothing else. Made to be the one prepared script a session with a GPU runs (its time is short).

It simulates `--students` (cached under bench/out/edm_scale_<n>/), runs prepare, split and pykt_adapt, then
both training stages for `--epochs` epochs each with `train.device` / `wdirt.device` auto and every core,
and prints and writes (`--out`) each stage's device, epoch throughput and wall time. It stops with one line
when CUDA is not there, unless `--cpu-ok` (to try it here on a small `--students`).

    python bench/device_check.py --out $OUT/device_check.json           # on the GPU machine
    python bench/device_check.py --students 300 --epochs 1 --cpu-ok     # a dry run on this one
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import click
import torch
import yaml
from _measure import ROOT, child, scale_params

log = logging.getLogger("bench.device_check")


@click.command()
@click.option("--students", default=35000, show_default=True)
@click.option("--epochs", default=2, show_default=True, help="epochs of each training stage")
@click.option("--out", "out_path", default=str(ROOT / "bench" / "out" / "device_check.json"), show_default=True)
@click.option("--cpu-ok", is_flag=True, help="run without CUDA (a dry run)")
def main(students: int, epochs: int, out_path: str, cpu_ok: bool) -> None:
    """Time train_sakt and train_wdirt at EDM-Cup scale on this machine's accelerator (device: auto): prints and
    writes (--out) each stage's device, epoch throughput and wall time."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not torch.cuda.is_available() and not cpu_ok:
        raise click.ClickException("torch sees no CUDA device here (give --cpu-ok for a dry run on the CPU)")
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    w = ROOT / "bench" / "out" / f"device_{students}"
    p, raw = scale_params(students, w)
    params = yaml.safe_load(p.read_text())
    threads = os.cpu_count() or 2
    params["train"] |= {"epochs": epochs, "device": "auto", "threads": threads}
    params["wdirt"] |= {"epochs": epochs, "device": "auto", "threads": threads}
    p.write_text(yaml.safe_dump(params, sort_keys=False))
    py, ev, split = sys.executable, w / "interim/events.parquet", w / "split.json"
    steps = [
        ("simulate", ["stages/simulate.py", "--params", p, "--out", raw]),
        ("prepare", ["stages/prepare.py", "--params", p, "--out-dir", w / "interim", "--metrics", w / "prepare.json"]),
        ("split", ["stages/split.py", "--params", p, "--events", ev, "--out", split]),
        ("pykt_adapt", ["stages/pykt_adapt.py", "--params", p, "--events", ev, "--split", split, "--out", w / "pykt",
                        "--metrics", w / "pykt_adapt.json"]),
        ("train_sakt", ["stages/train_sakt.py", "--params", p, "--events", ev, "--split", split, "--model-dir", w / "sakt",
                        "--metrics", w / "sakt.json", "--plots-dir", w / "plots/sakt", "--timings", w / "sakt_timings.json"]),
        ("train_wdirt", ["stages/train_wdirt.py", "--params", p, "--interim", w / "interim", "--split", split,
                         "--model-dir", w / "wdirt", "--metrics", w / "wdirt.json", "--plots-dir", w / "plots/wdirt",
                         "--timings", w / "wdirt_timings.json"]),
    ]
    walls = {}
    for name, cmd in steps:
        if name == "simulate" and (raw / "action_logs.csv").exists():
            continue
        log.info("running %s", name)
        walls[name] = round(child([py, *map(str, cmd)])[0], 1)
    report = {"device": device, "students": students, "epochs": epochs, "threads": threads, "wall_seconds": walls,
              "train_sakt": _read(w, "sakt"), "train_wdirt": _read(w, "wdirt")}
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    Path(out_path).write_text(json.dumps(report, indent=1))
    print(f"{device}: {students:,} students, {epochs} epoch(s) per stage, {threads} threads")
    print(f"  train_sakt:  {report['train_sakt'].get('train_seqs_per_s')} training sequences/s, "
          f"test AUC {report['train_sakt'].get('test_auc')}, stage {walls['train_sakt']} s")
    print(f"  train_wdirt: {report['train_wdirt'].get('train_targets_per_s')} training targets/s, "
          f"unit-test AUC {report['train_wdirt'].get('unit_test_auc')}, stage {walls['train_wdirt']} s")


def _read(w: Path, name: str) -> dict:
    keys = ("test_auc", "unit_test_auc", "in_unit_auc", "epochs", "train_seconds", "train_seqs_per_s", "train_targets_per_s")
    found = json.loads((w / f"{name}.json").read_text()) | json.loads((w / f"{name}_timings.json").read_text())
    return {k: found[k] for k in keys if k in found}


if __name__ == "__main__":
    main()
