"""Benchmark: the stages after training (export, validate_join, report) at EDM-Cup scale and at N times that log,
to show how their memory grows.

Each reads the log a batch of whole students at a time: the export scores the events and writes its two large
tables as it goes (ktirt/exports/build.py), validate_join checks them, the report summarizes them in one pass
(ktirt/report/summary.py). This runs the real stages, each in its own process, on the EDM-Cup-scale events that
bench/prepare_scale.py leaves in bench/out/ (with the SAKT checkpoint bench/sakt_scale.py trains there), then on
`--copies N` renamed copies of those students (bench/sakt_scale.py --copies N makes them and their checkpoint),
and prints each stage's wall time, time per response and peak memory, each against the first size's (the figures
also go to bench/results/export_scale.json).

Wide & Deep IRT's tables come from one epoch of train_wdirt (trained here once, into bench/out/wdirt/, if
missing): the export's cost depends on their shapes, not on how well they were fitted. For the copies, the
event predictions are copied with the students (the same items, so the same item tables).

    python bench/export_scale.py [--copies 4]
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

from ktirt.irt.model_files import EVENT_PREDICTIONS, ITEM_DRIFT, ITEM_PARAMS

OUT = ROOT / "bench" / "out"
log = logging.getLogger("bench.export_scale")


def wdirt_tables() -> Path:
    """bench/out/wdirt/: train_wdirt with one epoch on the EDM-Cup-scale events (about 7 minutes here), once."""
    folder = OUT / "wdirt"
    if (folder / EVENT_PREDICTIONS).exists():
        return folder
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["wdirt"] |= {"epochs": 1, "patience": 1}
    p = OUT / "wdirt_params.yaml"
    p.write_text(yaml.safe_dump(params, sort_keys=False))
    log.info("training WD-IRT one epoch at EDM-Cup scale for its tables (about 7 minutes)")
    child([sys.executable, "stages/train_wdirt.py", "--params", str(p), "--interim", str(OUT / "interim"),
           "--split", str(OUT / "split.json"), "--model-dir", str(folder), "--metrics", str(OUT / "wdirt.json"),
           "--plots-dir", str(OUT / "wdirt_plots"), "--live-dir", str(OUT / "dvclive_wdirt"),
           "--timings", str(OUT / "wdirt_timings.json")])
    return folder


def copied_wdirt(source: Path, folder: Path, n: int) -> Path:
    """WD-IRT's tables for the n copies (bench/sakt_scale.py's prefixes c<k>_): the event predictions copied with
    the students, the item tables as they are."""
    target = folder / "wdirt"
    if (target / EVENT_PREDICTIONS).exists():
        return target
    target.mkdir(parents=True, exist_ok=True)
    for name in (ITEM_PARAMS, ITEM_DRIFT):
        shutil.copy(source / name, target / name)
    table = pq.read_table(source / EVENT_PREDICTIONS)
    i = table.schema.get_field_index("user_id")
    with pq.ParquetWriter(target / EVENT_PREDICTIONS, table.schema) as writer:
        for k in range(n):
            users = pc.binary_join_element_wise(f"c{k}_", table["user_id"].cast(pa.string()), "")
            writer.write_table(table.set_column(i, table.schema.field(i), users.cast(table.schema.field(i).type)))
    return target


def measure(folder: Path, events: Path, wdirt: Path) -> dict[str, dict]:
    """export, validate_join and report once each, into folder/exports; per stage its wall time and peak memory."""
    for needed in (folder / "sakt" / "model.pt", folder / "split.json"):
        if not needed.exists():
            raise click.ClickException(f"{needed} not found: run python bench/sakt_scale.py (with the same --copies) first")
    exports, metrics, plots = folder / "exports", folder / "report_metrics", folder / "report_plots"
    commands = {
        "export": ["stages/export.py", "--events", events, "--split", folder / "split.json", "--skills",
                   OUT / "interim" / "skills.parquet", "--sakt", folder / "sakt" / "model.pt", "--wdirt", wdirt,
                   "--out", exports, "--metrics", folder / "export.json", "--timings", folder / "export_timings.json"],
        "validate_join": ["stages/validate_join.py", "--exports", exports, "--events", events, "--report",
                          exports / "join_report.md", "--metrics", metrics / "join.json", "--plots-dir", folder / "join_plots"],
        "report": ["stages/report.py", "--exports", exports, "--metrics", metrics, "--plots", plots,
                   "--out", exports / "report.html"],
    }
    out = {}
    for stage, args in commands.items():
        if stage == "report":  # the figures the page shows beside the exports (the counts are the first size's)
            for name, source in (("prepare", OUT / "prepare.json"), ("sakt", folder / "sakt.json"), ("wdirt", OUT / "wdirt.json")):
                shutil.copy(source, metrics / f"{name}.json")
            shutil.copytree(folder / "sakt_plots", plots / "sakt", dirs_exist_ok=True)
        wall, peak = child([sys.executable, *map(str, args)])
        out[stage] = {"wall_s": round(wall, 1), "peak_gib": round(peak, 2)}
    out["responses"] = json.loads((folder / "export.json").read_text())["rows_sakt_predictions"]
    return out


@click.command()
@click.option("--copies", "n_copies", default=4, show_default=True, help="also run on this many copies of the students")
def main(n_copies: int) -> None:
    """Time export, validate_join and report at EDM-Cup scale and on N copies of its students; print each size's
    figures."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    events = OUT / "interim" / "events.parquet"
    if not events.exists():
        raise click.ClickException(f"{events} not found: run python bench/prepare_scale.py first")
    wdirt = wdirt_tables()
    runs = [measure(OUT, events, wdirt)]
    if n_copies > 1:
        folder = OUT / f"copies_{n_copies}"
        if not (folder / "events.parquet").exists():
            raise click.ClickException(f"{folder} not found: run python bench/sakt_scale.py --copies {n_copies} first")
        runs.append(measure(folder, folder / "events.parquet", copied_wdirt(wdirt, folder, n_copies)))
    base = runs[0]
    results = ROOT / "bench" / "results" / "export_scale.json"
    results.write_text(json.dumps({"command": f"python bench/export_scale.py --copies {n_copies}", "runs": runs}, indent=2) + "\n")
    for stage in ("export", "validate_join", "report"):
        print(f"{stage}, one process:")
        for r in runs:
            m, b = r[stage], base[stage]
            per_row = m["wall_s"] / r["responses"] / (b["wall_s"] / base["responses"])
            print(f"  {r['responses'] / 1e6:5.1f} M responses: {m['wall_s']:.0f} s, peak {m['peak_gib']:.2f} GiB "
                  f"(peak x{m['peak_gib'] / b['peak_gib']:.2f}, time per response x{per_row:.2f} of the first size's)")


if __name__ == "__main__":
    main()
