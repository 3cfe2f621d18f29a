"""Benchmark: Wide & Deep IRT's difficulty recovery against girth's 2PL (marginal maximum likelihood) on the
same training responses of the default simulation, with both fit times, in one run.

girth gets the training students' first responses (in-unit events and unit-test scores) as an
items x students 0/1 matrix with the unanswered cells tagged missing; ours is the train_wdirt stage's
model on the same students (params.yaml `wdirt`): its predictive wide part, calibrated on those training
responses alone, is the like-for-like figure; the published item bank (every student's responses,
drifted items split at their change) is printed beside it. Recovery is the Spearman correlation of
estimated with true difficulty over items with at least 20 training responses.

    dvc repro split && python bench/wdirt_vs_irt.py
"""

from __future__ import annotations

import json
import logging
import time

import click
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import torch
import yaml
from _measure import ROOT
from scipy.stats import spearmanr

from ktirt.catalog import item_text, item_types
from ktirt.irt.against_truth import MIN_RESPONSES_FOR_RECOVERY
from ktirt.irt.wdirt_run import WDIRTSettings, run_wdirt
from ktirt.truth import truth_dir

log = logging.getLogger("bench.wdirt_vs_irt")


def training_matrix(events: pd.DataFrame, unit_tests: pd.DataFrame, train: list[str]):
    """Items x students first-response matrix of the training students (girth's layout), missing tagged."""
    from girth import tag_missing_data

    r = pd.concat([events[["user_id", "item_id", "correct"]], unit_tests[["user_id", "item_id", "correct"]].dropna()])
    r = r[r["user_id"].isin(train)].drop_duplicates(["user_id", "item_id"])
    items, i = np.unique(r["item_id"], return_inverse=True)
    users, u = np.unique(r["user_id"], return_inverse=True)
    mat = np.full((len(items), len(users)), -1, dtype=int)
    mat[i, u] = r["correct"].astype(int).to_numpy()
    return items, tag_missing_data(mat, [0, 1]), np.bincount(i)


@click.command()
@click.option("--girth-iterations", default=25, show_default=True,
              help="girth's max_iteration (its default); each takes minutes on the default simulation")
def main(girth_iterations: int) -> None:
    """Compare Wide & Deep IRT's difficulty recovery with girth's 2PL on the same training responses, in one run:
    reads the default pipeline's events, unit tests, split and simulator truth, prints both recoveries and fit times."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from girth import twopl_mml

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    truth = truth_dir(ROOT / "data/interim/truth")
    if truth is None:
        raise click.ClickException("needs the simulated default (its truth): data.source synthetic")
    ev_t, ut_t = pq.read_table(ROOT / "data/interim/events.parquet"), pq.read_table(ROOT / "data/interim/unit_tests.parquet")
    items_t = pq.read_table(ROOT / "data/interim/items.parquet")
    split = json.loads((ROOT / "data/splits/split.json").read_text())
    true_b = pd.read_parquet(truth / "items.parquet").set_index("item_id")["difficulty"]

    items, data, n = training_matrix(ev_t.to_pandas(), ut_t.to_pandas(), split["train"])
    t0 = time.perf_counter()
    est = twopl_mml(data, options={"max_iteration": girth_iterations})
    girth_s = time.perf_counter() - t0
    g = pd.DataFrame({"b": est["Difficulty"], "n": n}, index=items)
    g = g[g["n"] >= MIN_RESPONSES_FOR_RECOVERY]

    t0 = time.perf_counter()
    r = run_wdirt(ev_t, ut_t, split, WDIRTSettings.from_dict(params["wdirt"]), item_types(items_t),
                  item_text(items_t), truth)
    ours_s = time.perf_counter() - t0
    with torch.no_grad():
        model_b = r.model.difficulty().numpy()
    p = r.item_params.assign(model_difficulty=model_b).set_index("item_id").loc[g.index]

    def rho(b):
        return spearmanr(b, true_b.loc[b.index])[0]

    print(f"training responses of {len(split['train'])} students; {len(g)} items with >= {MIN_RESPONSES_FOR_RECOVERY} of them")
    print(f"{'':58}{'difficulty Spearman':>21}{'fit s':>9}")
    print(f"{'ktirt Wide & Deep IRT, on the training responses':58}{rho(p['model_difficulty']):21.4f}{ours_s:9.1f}")
    print(f"{'girth twopl_mml (2PL, MML), on the training responses':58}{rho(g['b']):21.4f}{girth_s:9.1f}")
    print(f"{'ktirt item bank: every student, drifts split (same run)':58}{rho(p['difficulty']):21.4f}")
    ceiling = r.metrics.get("difficulty_spearman_ceiling")
    print(f"{'ceiling of the item bank: true abilities, a, c, drifts':58}{ceiling:21.4f}")
    print("target: ours >= 0.95 and >= girth")


if __name__ == "__main__":
    main()
