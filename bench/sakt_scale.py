"""Benchmark: the train_sakt stage at EDM-Cup scale (4.9 M events from bench/prepare_scale.py).

Runs the real stage in its own process with `train.epochs` epochs (default 1) and reports seconds per
epoch, training throughput and peak memory (target: under 8 GiB). Run bench/prepare_scale.py first.

    python bench/sakt_scale.py [--epochs 1]
"""

from __future__ import annotations

import json
import logging
import sys

import click
import pyarrow.parquet as pq
import yaml
from _measure import ROOT, child

from ktirt.split import split_users

OUT = ROOT / "bench" / "out"
log = logging.getLogger("bench.sakt_scale")


@click.command()
@click.option("--epochs", default=1, show_default=True)
def main(epochs: int) -> None:
    """Time the train_sakt stage at EDM-Cup scale (the events bench/prepare_scale.py leaves in bench/out/): prints
    seconds per epoch, training throughput and peak memory."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    events = OUT / "interim" / "events.parquet"
    if not events.exists():
        raise click.ClickException(f"{events} not found: run python bench/prepare_scale.py first")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["train"] |= {"epochs": epochs}
    params["data"] = yaml.safe_load((OUT / "params.yaml").read_text())["data"]
    p = OUT / "sakt_params.yaml"
    p.write_text(yaml.safe_dump(params, sort_keys=False))
    s = params["split"]
    split = split_users(pq.read_table(events, columns=["user_id"])["user_id"].to_numpy(zero_copy_only=False),
                        s["train"], s["val"], s["seed"])
    (OUT / "split.json").write_text(json.dumps(split))
    wall, peak = child([sys.executable, "stages/train_sakt.py", "--params", str(p), "--events", str(events),
                        "--split", str(OUT / "split.json"), "--model-dir", str(OUT / "sakt"),
                        "--metrics", str(OUT / "sakt.json"), "--plots-dir", str(OUT / "sakt_plots"),
                        "--timings", str(OUT / "sakt_timings.json")])
    m = json.loads((OUT / "sakt.json").read_text()) | json.loads((OUT / "sakt_timings.json").read_text())
    print(f"train_sakt at EDM-Cup scale ({len(split['train']):,} training students, {epochs} epoch(s)):")
    print(f"  {m['train_seconds'] / m['epochs']:.1f} s per epoch, {m['train_seqs_per_s']:.0f} training sequences/s, "
          f"stage wall {wall:.0f} s, peak {peak:.2f} GiB (target < 8 GiB: {'met' if peak < 8 else 'NOT met'})")
    print(f"  after {m['epochs']} epoch(s): test AUC {m['test_auc']:.4f}, item-mean {m['item_mean_auc']:.4f}, "
          f"oracle {m.get('oracle_auc', float('nan')):.4f}")


if __name__ == "__main__":
    main()
