"""Reproducible anywhere: the data stages write the same bytes whichever SIMD code numpy (and torch) pick for
this CPU, and SAKT's metrics stay within the tolerance the README states.

Another x86-64 machine is emulated on this one by switching off the AVX-512 code paths
(`NPY_DISABLE_CPU_FEATURES`, `ATEN_CPU_CAPABILITY`); on a CPU without AVX-512 there is nothing to switch off
and the comparisons are skipped rather than passing vacuously. A checkout, too, gives the code's bytes (which
dvc.lock records) whatever git's line-ending setting."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import ROOT, TINY
from ktirt.simulate.portable import PARAMETER, PROBABILITY, SECONDS, portable

OTHER_CPU = {"NPY_DISABLE_CPU_FEATURES": "AVX512F AVX512_SKX", "ATEN_CPU_CAPABILITY": "avx2"}
AUC_TOLERANCE = 0.001
"""What SAKT's AUCs hold across CPUs (README): model stages cannot promise bytes, only metrics."""


def _has_avx512() -> bool:
    from numpy._core._multiarray_umath import __cpu_features__

    return bool(__cpu_features__.get("AVX512_SKX"))


needs_avx512 = pytest.mark.skipif(not _has_avx512(), reason="no AVX-512 here: both settings run the same code")

# one process per setting runs the stage scripts in turn, as DVC would (argv, __main__), without re-importing
DRIVER = """
import runpy, sys
sys.path.insert(0, sys.argv[1] + "/stages")
for line in sys.stdin.read().splitlines():
    script, *args = line.split("\\t")
    sys.argv = [script, *args]
    try:
        runpy.run_path(sys.argv[0], run_name="__main__")
    except SystemExit as exc:
        if exc.code:
            raise
"""


def _run_stages(work: Path, stages: list[list[str]], env: dict) -> None:
    cmds = "\n".join("\t".join([str(ROOT / "stages" / f"{name}.py"), *args]) for name, *args in stages)
    proc = subprocess.run([sys.executable, "-c", DRIVER, str(ROOT)], input=cmds, cwd=work, text=True,
                          capture_output=True, env={**os.environ, **env}, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


def _params(work: Path, **sections) -> Path:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["simulate"] = {**params["simulate"], **TINY}
    params["data"] = {**params["data"], "source": "synthetic", "raw_dir": "raw"}  # stages run in `work`
    params["split"] = {**params["split"], "min_students": 5}  # TINY: 12 validation and 12 test students
    for name, values in sections.items():
        params[name] = {**params[name], **values}
    path = work / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def _data_stages(work: Path, env: dict) -> dict[str, bytes]:
    work.mkdir()
    p = ["--params", str(_params(work))]
    _run_stages(work, [
        ["simulate", *p, "--out", "raw"],
        ["prepare", *p, "--out-dir", "interim", "--metrics", "metrics/prepare.json"],
        ["split", *p, "--events", "interim/events.parquet", "--out", "splits/split.json"],
        ["pykt_adapt", *p, "--events", "interim/events.parquet", "--split", "splits/split.json", "--out", "pykt",
         "--metrics", "metrics/pykt_adapt.json"],
    ], env)
    return {str(f.relative_to(work)): f.read_bytes() for f in sorted(work.rglob("*")) if f.is_file()}


@needs_avx512
def test_data_stages_write_the_same_bytes_on_another_cpu(tmp_path):
    here, other = _data_stages(tmp_path / "here", {}), _data_stages(tmp_path / "other", OTHER_CPU)
    assert {"raw/_truth/responses.parquet", "raw/action_logs.csv", "interim/events.parquet", "splits/split.json",
            "metrics/pykt_adapt.json"} <= set(here)
    assert sorted(here) == sorted(other)
    differ = [name for name in here if here[name] != other[name]]
    assert differ == [], f"written differently under {OTHER_CPU}: {differ}"


ELSEWHERE = {"TZ": "America/Los_Angeles", "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0",
             "OMP_NUM_THREADS": "8"}
"""another time zone, a locale whose default text encoding is ASCII (no UTF-8 mode), and pyarrow's thread pool of
a machine with 8 cores"""


def test_data_stages_write_the_same_bytes_in_another_time_zone_locale_and_core_count(tmp_path):
    probe = subprocess.run([sys.executable, "-c", "import locale, time, pyarrow; print(time.localtime(0).tm_hour, "
                            "locale.getpreferredencoding(False), pyarrow.cpu_count())"], env={**os.environ, **ELSEWHERE},
                           capture_output=True, text=True, check=True).stdout.split()
    if probe[0] == "0":
        pytest.skip("no time zone data on this machine: TZ would change nothing")
    assert probe[1].lower() in {"ansi_x3.4-1968", "ascii", "us-ascii"} and probe[2] == "8", probe  # it is set up
    here, elsewhere = _data_stages(tmp_path / "here", {}), _data_stages(tmp_path / "elsewhere", ELSEWHERE)
    assert "interim/events.parquet" in here and sorted(here) == sorted(elsewhere)
    differ = [name for name in here if here[name] != elsewhere[name]]
    assert differ == [], f"written differently under {ELSEWHERE}: {differ}"


def test_portable_puts_last_bit_neighbours_on_one_grid_point():
    x = np.random.default_rng(0).random(10_000)
    ulp_apart = np.nextafter(np.nextafter(x, 2), 2)  # what another SIMD exp/log gives: two ulp away
    for decimals in (PROBABILITY, PARAMETER, SECONDS):
        a, b = portable(x, decimals), portable(ulp_apart, decimals)
        assert (a == b).mean() > 0.9999
        assert np.abs(a - x).max() <= 0.5 * 10.0**-decimals + 1e-15
    assert np.isnan(portable([np.nan], PROBABILITY)).all()


SAKT_TINY = {"model": {"emb_size": 16, "num_heads": 2, "seq_len": 20, "min_item_count": 2},
             "train": {"epochs": 3, "patience": 3, "batch_size": 32, "device": "cpu", "threads": 1}}


def _sakt_metrics(work: Path, env: dict) -> dict:
    work.mkdir()
    p = ["--params", str(_params(work, **SAKT_TINY))]
    _run_stages(work, [
        ["simulate", *p, "--out", "raw"],
        ["prepare", *p, "--out-dir", "interim", "--metrics", "prepare.json"],
        ["split", *p, "--events", "interim/events.parquet", "--out", "split.json"],
        ["train_sakt", *p, "--events", "interim/events.parquet", "--split", "split.json", "--model-dir", "sakt",
         "--metrics", "sakt.json", "--plots-dir", "plots"],
    ], env)
    return json.loads((work / "sakt.json").read_text())


@needs_avx512
def test_sakt_metrics_hold_the_stated_tolerance_on_another_cpu(tmp_path):
    here, other = _sakt_metrics(tmp_path / "here", {}), _sakt_metrics(tmp_path / "other", OTHER_CPU)
    assert sorted(here) == sorted(other)
    for key in here:
        if key.endswith("_auc"):
            assert abs(here[key] - other[key]) <= AUC_TOLERANCE, (key, here[key], other[key])
        elif isinstance(here[key], int):
            assert here[key] == other[key], key


def test_a_checkout_has_the_codes_bytes_whatever_gits_line_endings(tmp_path):
    """Git for Windows checks text out with CRLF by default (core.autocrlf); .gitattributes keeps every text file
    LF, or every stage of a committed dvc.lock would look changed there (its code deps hashed in other bytes)."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "-c", "core.autocrlf=true", str(ROOT), str(clone)], check=True)
    files = subprocess.run(["git", "ls-files", "--eol"], cwd=clone, capture_output=True, text=True, check=True)
    eol = dict(line.split("\t")[::-1] for line in files.stdout.splitlines())
    assert "w/lf" in eol["ktirt/io.py"] and "w/lf" in eol["dvc.yaml"]
    assert [path for path, how in eol.items() if "w/crlf" in how] == []
