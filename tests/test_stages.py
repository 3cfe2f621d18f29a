"""Stage scripts: one clear error line, a non-zero exit and no partial output on bad input or settings."""

import json

import pandas as pd
import pyarrow.parquet as pq

from conftest import hand_written_edm, params_file, run_stage
from ktirt.events import EVENTS_SCHEMA


def params(tmp_path, **sections):
    base = {"data": {"source": "edm_cup_2023", "raw_dir": str(tmp_path / "raw"), "part_mb": 512},
            "split": {"seed": 1, "train": 0.5, "val": 0.25}}
    return params_file(tmp_path, **(base | sections))


def prepare(tmp_path, p):
    return run_stage("prepare", "--params", p, "--out-dir", str(tmp_path / "interim"), "--metrics", str(tmp_path / "m.json"))


def test_prepare_writes_events_and_metrics(tmp_path):
    hand_written_edm(tmp_path / "raw")
    r = prepare(tmp_path, params(tmp_path))
    assert r.returncode == 0, r.stderr
    assert pq.read_schema(tmp_path / "interim" / "events.parquet").remove_metadata() == EVENTS_SCHEMA
    m = json.loads((tmp_path / "m.json").read_text())
    assert m["events"] == 4 and m["users"] == 2 and m["unit_test_rows"] == 2
    assert m["excluded"]["ungraded_responses"] == 1 and m["dropped_total"] == 0
    assert all(isinstance(v, (int, float)) for sec in m.values() for v in (sec.values() if isinstance(sec, dict) else [sec]))
    assert not [p for p in (tmp_path / "interim").iterdir() if p.name.startswith(".")]  # no temp leftovers


def test_bad_column_one_error_no_output(tmp_path):
    logs = pd.read_csv(hand_written_edm(tmp_path / "ok") / "action_logs.csv").rename(columns={"action": "actoin"})
    hand_written_edm(tmp_path / "raw", action_logs=logs)
    r = prepare(tmp_path, params(tmp_path))
    assert r.returncode != 0
    assert r.stderr.strip().splitlines()[-1] == (
        f"Error: {tmp_path / 'raw' / 'action_logs.csv'}: column 'action': missing column (did you mean 'actoin'?)")
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "interim").exists() and not (tmp_path / "m.json").exists()


def test_unknown_source_and_bad_ratios_name_the_params_file(tmp_path):
    hand_written_edm(tmp_path / "raw")
    p = params(tmp_path, data={"source": "edm_cup_2024", "raw_dir": str(tmp_path / "raw"), "part_mb": 512})
    r = prepare(tmp_path, p)
    assert r.returncode != 0 and f"Error: {p}: data.source: must be one of " in r.stderr and "got 'edm_cup_2024'" in r.stderr
    p = params(tmp_path)
    assert prepare(tmp_path, p).returncode == 0
    p = params(tmp_path, split={"seed": 1, "train": 0.8, "val": 0.3})
    r = run_stage("split", "--params", p, "--events", str(tmp_path / "interim" / "events.parquet"), "--out", str(tmp_path / "s.json"))
    assert r.returncode != 0 and "split.train + split.val: must be < 1 (test is the rest), got 0.8 + 0.3" in r.stderr
    assert not (tmp_path / "s.json").exists()


def test_simulate_refuses_negative_sizes(tmp_path):
    p = params(tmp_path, simulate={"n_students": -3})
    r = run_stage("simulate", "--params", p, "--out", str(tmp_path / "sim"))
    assert r.returncode != 0 and "simulate.n_students: must be ≥ 1, got -3" in r.stderr
    assert not (tmp_path / "sim").exists()
