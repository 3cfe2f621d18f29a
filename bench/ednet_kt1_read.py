"""Benchmark: reading EdNet KT1's one-file-per-student layout, ours beside two baselines in the same run.

Simulates the default world as EdNet KT1 (`simulate.profile: ednet_kt1`, cached under bench/out/) with the real
simulate stage, then times in separate processes, each on the same folder:

- the prepare stage (`data.source: ednet_kt1`): reading every file, checks, the canonical tables written;
- pandas, one `read_csv` a file (the obvious loop), concatenated: reading only;
- DuckDB's `read_csv` over the folder's glob with `filename=true`: reading only.

    python bench/ednet_kt1_read.py [--students 35000]
"""

from __future__ import annotations

import json
import logging
import sys

import click
import yaml
from _measure import ROOT, child

OUT = ROOT / "bench" / "out"
log = logging.getLogger("bench.ednet_kt1_read")
KT1_TYPES = {"timestamp": "BIGINT", "solving_id": "VARCHAR", "question_id": "VARCHAR", "user_answer": "VARCHAR",
             "elapsed_time": "BIGINT"}


def pandas_baseline(raw: str) -> None:
    """Every file with pandas.read_csv, the user id from its name, one concatenated frame."""
    from pathlib import Path

    import pandas as pd

    frames = [pd.read_csv(f).assign(user_id=f.stem) for f in sorted(Path(raw, "KT1").glob("*.csv"))]
    print(len(pd.concat(frames, ignore_index=True)))


def duckdb_baseline(raw: str) -> None:
    """DuckDB's multi-file CSV reader over the glob, typed columns, the file name per row, to Arrow."""
    import duckdb

    con = duckdb.connect()
    table = con.sql(f"SELECT * FROM read_csv('{raw}/KT1/*.csv', header=true, columns={KT1_TYPES}, filename=true, "
                    "auto_detect=false)").to_arrow_table()
    print(table.num_rows)


def _params(students: int) -> tuple:
    """params.yaml as it is, with the ednet_kt1 profile and source at `students` students in bench/out/."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw = OUT / f"ednet_kt1_{students}"
    params["simulate"] |= {"profile": "ednet_kt1", "n_students": students}
    params["data"] |= {"source": "ednet_kt1", "raw_dir": str(raw)}
    OUT.mkdir(parents=True, exist_ok=True)
    p = OUT / "ednet_kt1_params.yaml"
    p.write_text(yaml.safe_dump(params, sort_keys=False))
    return p, raw


def _in_child(function: str, raw) -> tuple[float, float]:
    code = f"import sys; sys.path.insert(0, 'bench'); import ednet_kt1_read as b; b.{function}({str(raw)!r})"
    return child([sys.executable, "-c", code])


@click.command()
@click.option("--students", default=35000, show_default=True)
@click.option("--duckdb/--no-duckdb", "with_duckdb", default=True, show_default=True, help="time DuckDB's read_csv too")
def main(students: int, with_duckdb: bool) -> None:
    """Time reading EdNet KT1's layout (one CSV per student) with the prepare stage beside pandas' per-file loop and
    DuckDB's read_csv over the folder, in one run: simulates once into bench/out/ (cached) and prints wall times and
    peak memories."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    p, raw = _params(students)
    if not (raw / "KT1").exists():
        sim_s, sim_gb = child([sys.executable, "stages/simulate.py", "--params", str(p), "--out", str(raw)])
        log.info("simulated %d students in %.1f s, peak %.2f GiB", students, sim_s, sim_gb)
    files = sorted((raw / "KT1").glob("*.csv"))
    size_gb = sum(f.stat().st_size for f in files) / 2**30
    ours = child([sys.executable, "stages/prepare.py", "--params", str(p), "--out-dir", str(OUT / "ednet_interim"),
                  "--metrics", str(OUT / "ednet_prepare.json")])
    rows = {"prepare (ktirt, ednet_kt1)": ours, "pandas read_csv per file": _in_child("pandas_baseline", raw)}
    if with_duckdb:
        rows["DuckDB read_csv(glob, filename=true)"] = _in_child("duckdb_baseline", raw)
    m = json.loads((OUT / "ednet_prepare.json").read_text())
    print(f"EdNet KT1 layout: {students} students, {len(files):,} files, {size_gb:.2f} GiB of CSV, {m['events']:,} events")
    print(f"{'':40}{'wall s':>9}{'files/s':>10}{'peak GiB':>10}")
    for name, (wall, gb) in rows.items():
        print(f"{name:40}{wall:9.1f}{len(files) / wall:10.0f}{gb:10.2f}")
    for name, (wall, _) in list(rows.items())[1:]:
        print(f"{name}: {wall / ours[0]:.1f}x our time (which includes the checks and writing the canonical tables)")


if __name__ == "__main__":
    main()
