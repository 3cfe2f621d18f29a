"""Benchmark: the train_sakt stage at EDM-Cup scale (4.9 M events from bench/prepare_scale.py).

Runs the real stage in its own process with `train.epochs` epochs (default 1) and reports seconds per
epoch, training throughput and peak memory (target: under 8 GiB). Run bench/prepare_scale.py first.
`--copies N` also runs it on N copies of those students (ids prefixed, the truth copied alike: N times the
log, the same items), in the same run, to show how its memory grows with the log; `--dkt` runs train_dkt too
(the same windows, and its prediction of every response written a batch of students at a time); `--wdirt`
runs train_wdirt too (its features, training, calibrations, drift test and figures against the truth).

    python bench/sakt_scale.py [--epochs 1] [--copies 4] [--dkt] [--wdirt]
"""

from __future__ import annotations

import json
import logging
import shutil
import sys

from pathlib import Path

import click
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml
from _measure import ROOT, child

from ktirt.split import split_users

OUT = ROOT / "bench" / "out"
log = logging.getLogger("bench.sakt_scale")


def copies(n: int) -> Path:
    """bench/out/copies_<n>/: the EDM-Cup-scale tables and truth n times over, each copy's students prefixed
    c<k>_ (so each file stays sorted by user_id), written a copy at a time; tables without students (items,
    skills, the truth's items) copied as they are."""
    folder = OUT / f"copies_{n}"
    if (folder / "unit_tests.parquet").exists():
        return folder
    (folder / "truth").mkdir(parents=True, exist_ok=True)
    source = OUT / "interim"
    for path in [*sorted(source.glob("*.parquet")), *sorted((source / "truth").iterdir())]:
        target = folder / path.relative_to(source)
        if path.suffix != ".parquet" or "user_id" not in pq.read_schema(path).names:
            shutil.copyfile(path, target)
            continue
        table = pq.read_table(path)
        with pq.ParquetWriter(target, table.schema) as writer:
            for k in range(n):
                i = table.schema.get_field_index("user_id")
                users = pc.binary_join_element_wise(f"c{k}_", table["user_id"].cast(pa.string()), "")
                writer.write_table(table.set_column(i, table.schema.field(i), users.cast(table.schema.field(i).type)))
    return folder


def measure(events: Path, truth: Path, folder: Path, params: dict, dkt: bool, wdirt: bool = False) -> list[str]:
    """The stage (and with `dkt` train_dkt, with `wdirt` train_wdirt) once on `events` (a split of its students
    written to `folder`); a line of figures each."""
    s = params["split"]
    split = split_users(pq.read_table(events, columns=["user_id"])["user_id"].to_numpy(zero_copy_only=False),
                        s["train"], s["val"], s["seed"])
    (folder / "split.json").write_text(json.dumps(split))
    p = folder / "sakt_params.yaml"
    p.write_text(yaml.safe_dump(params, sort_keys=False))
    rows = pq.ParquetFile(events).metadata.num_rows
    lines = [sakt_line(events, truth, folder, p, split, rows)]
    if dkt:
        wall, peak = child([sys.executable, "stages/train_dkt.py", "--params", str(p), "--events", str(events),
                            "--split", str(folder / "split.json"), "--model-dir", str(folder / "dkt"),
                            "--metrics", str(folder / "dkt.json"), "--live-dir", str(folder / "dvclive_dkt"),
                            "--timings", str(folder / "dkt_timings.json")])
        m = json.loads((folder / "dkt.json").read_text()) | json.loads((folder / "dkt_timings.json").read_text())
        lines.append(f"{rows / 1e6:6.1f} M events, train_dkt: {m['train_seconds'] / m['epochs']:.1f} s per epoch "
                     f"({m['train_seqs_per_s']:.0f} sequences/s), stage wall {wall:.0f} s, peak {peak:.2f} GiB; "
                     f"validation AUC {m['val_auc']:.4f} after {m['epochs']} epoch(s)")
    if wdirt:
        lines.append(wdirt_line(events.parent, folder, p, rows))
    return lines


def wdirt_line(interim: Path, folder: Path, p: Path, rows: int) -> str:
    """train_wdirt once on the tables in `interim`; its line of figures."""
    wall, peak = child([sys.executable, "stages/train_wdirt.py", "--params", str(p), "--interim", str(interim),
                        "--split", str(folder / "split.json"), "--model-dir", str(folder / "wdirt"),
                        "--metrics", str(folder / "wdirt.json"), "--plots-dir", str(folder / "wdirt_plots"),
                        "--live-dir", str(folder / "dvclive_wdirt"), "--timings", str(folder / "wdirt_timings.json")])
    m = json.loads((folder / "wdirt.json").read_text())
    t = json.loads((folder / "wdirt_timings.json").read_text())
    phases = ", ".join(f"{k.removesuffix('_seconds')} {v:.0f} s" for k, v in t.items() if k.endswith("_seconds"))
    return (f"{rows / 1e6:6.1f} M events, train_wdirt: stage wall {wall:.0f} s, peak {peak:.2f} GiB ({phases}); "
            f"unit-test AUC {m.get('unit_test_auc', float('nan')):.4f} after {m['epochs']} epoch(s) (oracle "
            f"{m.get('unit_test_oracle_auc', float('nan')):.4f}), difficulty Spearman {m.get('difficulty_spearman', float('nan')):.3f}")


def sakt_line(events: Path, truth: Path, folder: Path, p: Path, split: dict, rows: int) -> str:
    """train_sakt once; its line of figures."""
    wall, peak = child([sys.executable, "stages/train_sakt.py", "--params", str(p), "--events", str(events),
                        "--split", str(folder / "split.json"), "--truth", str(truth), "--model-dir", str(folder / "sakt"),
                        "--metrics", str(folder / "sakt.json"), "--plots-dir", str(folder / "sakt_plots"),
                        "--live-dir", str(folder / "dvclive"), "--timings", str(folder / "sakt_timings.json")])
    m = json.loads((folder / "sakt.json").read_text()) | json.loads((folder / "sakt_timings.json").read_text())
    return (f"{rows / 1e6:6.1f} M events, train_sakt, {len(split['train']):,} training students: "
            f"{m['train_seconds'] / m['epochs']:.1f} s "
            f"per epoch ({m['train_seqs_per_s']:.0f} sequences/s), stage wall {wall:.0f} s, peak {peak:.2f} GiB; "
            f"test AUC {m['test_auc']:.4f} after {m['epochs']} epoch(s) (item-mean {m['item_mean_auc']:.4f}, "
            f"oracle {m.get('oracle_auc', float('nan')):.4f})")


@click.command()
@click.option("--epochs", default=1, show_default=True)
@click.option("--copies", "n_copies", default=1, show_default=True, help="also run on this many copies of the students")
@click.option("--dkt", is_flag=True, help="time train_dkt too")
@click.option("--wdirt", is_flag=True, help="time train_wdirt too")
def main(epochs: int, n_copies: int, dkt: bool, wdirt: bool) -> None:
    """Time the train_sakt stage at EDM-Cup scale (the events bench/prepare_scale.py leaves in bench/out/): prints
    seconds per epoch, training throughput and peak memory; with --copies N, also on N times the log."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    events = OUT / "interim" / "events.parquet"
    if not events.exists():
        raise click.ClickException(f"{events} not found: run python bench/prepare_scale.py first")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["train"] |= {"epochs": epochs}
    params["dkt"] |= {"epochs": epochs}
    params["wdirt"] |= {"epochs": epochs}
    params["data"] = yaml.safe_load((OUT / "params.yaml").read_text())["data"]
    lines = measure(events, OUT / "interim" / "truth", OUT, params, dkt, wdirt)
    if n_copies > 1:
        folder = copies(n_copies)
        lines += measure(folder / "events.parquet", folder / "truth", folder, params, dkt, wdirt)
    print(f"train_sakt{' and train_dkt' if dkt else ''}{' and train_wdirt' if wdirt else ''}, {epochs} epoch(s), "
          "one process each:")
    for line in lines:
        print("  " + line)


if __name__ == "__main__":
    main()
