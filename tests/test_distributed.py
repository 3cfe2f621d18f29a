"""Both training stages under torchrun (ktirt/distributed.py): two gloo ranks on the tiny simulation each train
on their own shard of the students, rank 0 alone writes, and the result is the one-process run's; the
sharded WD-IRT calibration reaches the one-process fit."""

from __future__ import annotations

import datetime
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ktirt.distributed import shard_digest

# the calibration test's second rank imports this module: the pipeline's heavier imports wait in the fixtures

SETTINGS = {  # dropout 0: then N ranks follow the one-process run up to rounding (ktirt/training.py)
    "model": {"emb_size": 16, "num_heads": 2, "seq_len": 20, "min_item_count": 2, "dropout": 0.0},
    # batches of 2 windows: about half of them hold none of one rank's students (its zero-gradient step)
    "train": {"epochs": 2, "patience": 2, "batch_size": 2, "lr": 0.003, "device": "cpu", "threads": 1},
    "wdirt": {"history_len": 8, "hidden": 16, "dropout": 0.0, "epochs": 2, "patience": 2, "batch_size": 256, "lr": 0.02,
              "device": "cpu", "threads": 1},
}
SHARD_LINE = re.compile(r"rank (\d) of 2 trains on (\d+) training students \(sha256 of their sorted ids (\w+)\)")
STAGES = {"train_sakt": ["--events", "interim/events.parquet", "--truth", "interim/truth"],
          "train_wdirt": ["--interim", "interim"]}


@pytest.fixture(scope="module")
def world(tiny_tables, tmp_path_factory):
    """The tiny simulation as the training stages read it (without the truth) and a params.yaml with small
    settings."""
    import pyarrow.parquet as pq

    from conftest import params_file
    from ktirt.split import split_users

    work = tmp_path_factory.mktemp("ddp")
    (work / "interim").mkdir()
    for name in ("events", "unit_tests", "items"):
        pq.write_table(getattr(tiny_tables, name), work / "interim" / f"{name}.parquet")
    split = split_users(tiny_tables.events["user_id"].to_numpy(zero_copy_only=False), 0.6, 0.2, seed=3)
    (work / "split.json").write_text(json.dumps(split))
    params_file(work, **SETTINGS)
    return work, split


@pytest.fixture(scope="module")
def launched(world):
    """Both stages under `torchrun --standalone --nproc_per_node 2`, at once: stage -> (exit code, output)."""
    from conftest import ROOT

    work, _ = world
    runs = {}
    for stage, args in STAGES.items():
        out = ["--model-dir", f"{stage}/model", "--metrics", f"{stage}/metrics.json", "--plots-dir", f"{stage}/plots",
               "--live-dir", f"{stage}/live", "--timings", f"{stage}/timings.json"]
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(ROOT / "stages" / f"{stage}.py"), "--params", "params.yaml", "--split", "split.json", *args, *out]
        with open(work / f"{stage}.out", "w") as log:  # a file, not a pipe: no run can stall on a full pipe
            runs[stage] = subprocess.Popen(cmd, cwd=work, stdout=log, stderr=subprocess.STDOUT)
    return {stage: (p.wait(timeout=300), (work / f"{stage}.out").read_text()) for stage, p in runs.items()}


def _one_process(stage: str, tiny_tables, split) -> dict:
    """The same stage's metrics, run as one process (in this one)."""
    import yaml

    from conftest import ROOT
    from ktirt.catalog import item_text, item_types
    from ktirt.irt.wdirt_run import run_wdirt
    from ktirt.kt.sakt_run import SaktRun, run_sakt
    from ktirt.settings import ModelSettings, TrainSettings, WDIRTSettings

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    s = {name: {**params[name], **values} for name, values in SETTINGS.items()}
    if stage == "train_sakt":
        run = SaktRun(ModelSettings(**s["model"]), TrainSettings(**s["train"]))
        return run_sakt(tiny_tables.events, split, run).metrics
    items = tiny_tables.items
    return run_wdirt(tiny_tables.events, tiny_tables.unit_tests, split, WDIRTSettings(**s["wdirt"]), item_types(items),
                     item_text(items)).metrics


@pytest.mark.parametrize("stage", STAGES)
def test_each_rank_trains_on_its_own_shard_of_the_students(stage, launched, world):
    code, output = launched[stage]
    assert code == 0, output[-3000:]
    train = world[1]["train"]
    shards = {int(r): (int(n), digest) for r, n, digest in SHARD_LINE.findall(output)}
    assert sorted(shards) == [0, 1], output[-3000:]
    # rank r trained on exactly the sorted training students r, r + 2, ...: disjoint, and together all of them
    expected = {r: sorted(train)[r::2] for r in (0, 1)}
    assert not set(expected[0]) & set(expected[1]) and set(expected[0]) | set(expected[1]) == set(train)
    for r, (n, digest) in shards.items():
        assert (n, digest) == (len(expected[r]), shard_digest(expected[r])), r
    assert shard_digest(train) not in {d for _, d in shards.values()}


@pytest.mark.parametrize("stage", STAGES)
def test_two_ranks_score_as_one_process_and_rank_0_writes_once(stage, launched, world, tiny_tables):
    code, output = launched[stage]
    assert code == 0, output[-3000:]
    work, split = world
    two = json.loads((work / stage / "metrics.json").read_text())
    one = _one_process(stage, tiny_tables, split)
    aucs = ["test_auc"] if stage == "train_sakt" else ["in_unit_auc", "unit_test_auc"]
    for key in aucs:
        assert abs(two[key] - one[key]) <= 0.005, (key, two[key], one[key])
    assert two["epochs"] == one["epochs"] == SETTINGS["train" if stage == "train_sakt" else "wdirt"]["epochs"]
    # DVCLive's log is rank 0's alone: one row per epoch (two ranks writing it would leave two)
    rows = (work / stage / "live" / "plots" / "metrics" / "val_auc.tsv").read_text().splitlines()
    assert len(rows) == 1 + two["epochs"], rows
    assert (work / stage / "model" / "model.pt").is_file()


def _calibrate(rank: int, store: Path, data: tuple, out: Path | None = None) -> dict:
    """calibrate_items on `data` as rank `rank` of two gloo ranks (this process and a spawned one): its loss and
    the fitted parameters, written to `out` too (the spawned rank's way back)."""
    from ktirt.irt.calibration import calibrate_items

    m, student, item, log_opportunity, y, after = data
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2,
                            timeout=datetime.timedelta(seconds=120))
    try:
        curves = calibrate_items(m, student, log_opportunity, item, y, prior_strength=1.0, skill_prior_strength=1.0,
                                 after_change=after)
    finally:
        dist.destroy_process_group()
    with torch.no_grad():
        wide = {k: f().numpy().tolist() for k, f in (("b", m.difficulty), ("a", m.discrimination), ("c", m.guessing))}
    fit = {"loss": curves.loss, "intercept": curves.intercept.tolist(), "shift": curves.difficulty_shift.tolist(),
           "population_rate": curves.population_rate, **wide}
    if out is not None:
        out.write_text(json.dumps(fit))
    return fit


def test_sharded_calibration_reaches_the_one_process_fit(tmp_path):
    """test_wdirt's learning students (one item drifted for half of them), their responses sharded over two
    ranks: the fit all-reduces its sums, so both ranks reach the one-process fit."""
    import copy

    from test_wdirt import _learning_students

    from ktirt.irt.calibration import calibrate_items

    m, _, student, item, log_opportunity, _, y, _ = _learning_students()
    after = (item == 0) & (student >= 150)
    data = (copy.deepcopy(m), student, item, log_opportunity, y, after)
    store = tmp_path / "store"  # the ranks meet in a file: no port to race another process for
    other = mp.get_context("spawn").Process(target=_calibrate, args=(1, store, data, tmp_path / "rank1.json"))
    other.start()
    two = _calibrate(0, store, data)
    other.join(60)
    assert other.exitcode == 0
    assert json.loads((tmp_path / "rank1.json").read_text()) == two  # every rank took the same steps
    curves = calibrate_items(m, student, log_opportunity, item, y, prior_strength=1.0, skill_prior_strength=1.0,
                             after_change=after)
    assert abs(two["loss"] - curves.loss) <= 1e-6 * curves.loss, (two["loss"], curves.loss)
    with torch.no_grad():
        one = {"b": m.difficulty(), "a": m.discrimination(), "c": m.guessing(), "intercept": curves.intercept,
               "shift": curves.difficulty_shift, "population_rate": curves.population_rate}
    for key, value in one.items():
        np.testing.assert_allclose(two[key], np.asarray(value), atol=1e-5, err_msg=key)
    assert two["shift"][0] != 0 and not any(two["shift"][1:])  # the marked item's shift block took part
