"""A real-data run leaves the repo tidy: `simulate` writes only a note, the README's figure is not the
pipeline's output, and plots without truth or without a tested drift window say so instead of going blank."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import yaml

from conftest import ROOT, run_stage
from ktirt.irt.drift import DriftSettings
from ktirt.irt.plot_tables import (NOT_A_NUMBER, OBSERVED_REFERENCE, PLOT_COLUMNS, TRUE_REFERENCE, drift_plot_table,
                                   event_coverage, observed_difficulty_plot)


def _params(tmp_path, source):
    path = tmp_path / "params.yaml"
    base = yaml.safe_load((ROOT / "params.yaml").read_text())
    base["data"] = {"source": source, "raw_dir": f"data/raw/{source}", "part_mb": 512}
    base["simulate"] |= {"n_students": 40, "n_skills": 3, "class_size": 20, "units_per_class": 1}
    path.write_text(yaml.safe_dump(base))
    return str(path)


def test_simulate_costs_nothing_for_a_real_source(tmp_path, monkeypatch):
    import sys

    from conftest import _stage_command

    def never(*args):
        raise AssertionError("the simulator ran for a real source")

    _stage_command("simulate")  # imported, so that its simulator can be replaced
    monkeypatch.setattr(sys.modules["ktirt_stage_simulate"], "simulate", never)
    r = run_stage("simulate", "--params", _params(tmp_path, "assistments_2009"), "--out", str(tmp_path / "sim"))
    assert r.returncode == 0, r.stderr
    assert [p.name for p in (tmp_path / "sim").iterdir()] == ["NOT_SIMULATED.txt"]
    note = (tmp_path / "sim" / "NOT_SIMULATED.txt").read_text()
    assert "data.source is 'assistments_2009'" in note and "data.source: synthetic" in note
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folder left


def test_simulate_still_simulates_and_still_checks_its_settings(tmp_path):
    r = run_stage("simulate", "--params", _params(tmp_path, "synthetic"), "--out", str(tmp_path / "sim"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "sim" / "action_logs.csv").is_file() and not (tmp_path / "sim" / "NOT_SIMULATED.txt").exists()
    bad = yaml.safe_load(open(_params(tmp_path, "assistments_2009")))
    bad["simulate"]["n_students"] = -3
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(bad))
    r = run_stage("simulate", "--params", str(tmp_path / "params.yaml"), "--out", str(tmp_path / "other"))
    assert r.returncode != 0 and "simulate.n_students" in r.stderr and not (tmp_path / "other").exists()


def test_the_simulate_stage_declares_the_source_it_reads():
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert "data.source" in dvc["simulate"]["params"]


def test_the_pipeline_never_writes_the_readmes_figure():
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    outs = [next(iter(o)) if isinstance(o, dict) else o for s in dvc.values() for o in s.get("outs", [])]
    assert "docs/figures/results.png" not in outs and "plots/results.png" in outs
    assert "docs/figures/results.png" in (ROOT / "README.md").read_text()


def _params_frame():
    return pd.DataFrame({"item_id": ["A", "B", "C", "D"], "difficulty": [0.5, -1.0, 2.0, np.nan]})


def test_without_truth_difficulty_is_drawn_against_the_observed_one():
    item = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 3])  # C unanswered, D answered once
    y = np.array([0, 0, 0, 1, 1, 1, 1, 1, 1, 0, 1], dtype=np.float32)
    df = observed_difficulty_plot(_params_frame(), item, y)
    assert tuple(df.columns) == PLOT_COLUMNS and (df["reference_kind"] == OBSERVED_REFERENCE).all()
    # C has no response to compare with, D no finite difficulty to draw
    assert df["item_id"].tolist() == ["A", "B"] and df["n_responses"].tolist() == [4, 6]
    # -logit((right + .5) / (n + 1)): A 1 of 4 right, B 5 of 6
    assert df["reference"].tolist() == pytest.approx([round(np.log(3.5 / 1.5), 4), round(np.log(1.5 / 5.5), 4)])


def test_no_tested_window_gives_a_row_that_says_why_and_plots_nothing(tmp_path):
    from ktirt.io import write_csv

    drift = pd.DataFrame({"item_id": ["A", "A", "B"], "difficulty_shift": np.nan, "z": np.nan, "drift_flag": False})
    table = drift_plot_table(drift, DriftSettings(window="W", min_responses=20))
    assert len(table) == 1 and "no drift window tested: none of 3" in table["note"][0]
    assert "drift_min_responses=20" in table["note"][0]
    write_csv(table, tmp_path / "drift.csv")
    text = (tmp_path / "drift.csv").read_text().splitlines()
    # Vega skips a value that does not parse as a number; an empty cell would be drawn as a point at (0, 0)
    assert text[1].split(",")[1:3] == [NOT_A_NUMBER, NOT_A_NUMBER]
    tested = drift.assign(z=[1.0, -4.0, 2.0], difficulty_shift=[0.1, -0.9, 0.3], drift_flag=[False, True, False])
    worst = drift_plot_table(tested, DriftSettings())
    assert worst["item_id"].tolist() == ["A", "B"] and worst["z"].tolist() == [-4.0, 2.0] and "note" not in worst


def test_the_placeholder_row_renders_as_an_empty_plot_not_a_point():
    import re

    from ktirt.plots_offline import render_svg

    values = [{"z": NOT_A_NUMBER, "difficulty_shift": NOT_A_NUMBER, "note": "no drift window tested"}]
    spec = {"$schema": "https://vega.github.io/schema/vega-lite/v5.json", "data": {"values": values},
            "mark": "point", "encoding": {"x": {"field": "z", "type": "quantitative"},
                                          "y": {"field": "difficulty_shift", "type": "quantitative"}}}
    assert not re.findall(r'aria-roledescription="point"', render_svg(spec))
    values[0] |= {"z": "", "difficulty_shift": ""}  # what a blank cell would do
    assert len(re.findall(r'aria-roledescription="point"', render_svg(spec))) == 1


def test_coverage_counts_events_whose_item_has_no_finite_difficulty():
    events = pa.chunked_array([["A", "A", "B", "C", "D", "E"]], pa.string())
    assert event_coverage(events, _params_frame()) == round(4 / 6, 6)  # D: NaN difficulty, E: no parameters
    assert event_coverage(events.slice(0, 3), _params_frame()) == 1.0
    assert event_coverage(events.slice(0, 0), _params_frame()) == 0.0


def test_the_figure_says_what_a_run_without_truth_lacks(tmp_path):
    from ktirt.figures import draw_results
    from ktirt.io import write_csv

    wdirt = tmp_path / "plots" / "wdirt"
    write_csv(observed_difficulty_plot(_params_frame(), np.array([0, 1, 1]), np.array([1, 0, 1.0])), wdirt / "difficulty.csv")
    drift = pd.DataFrame({"item_id": ["A"], "difficulty_shift": np.nan, "z": np.nan, "drift_flag": False})
    write_csv(drift_plot_table(drift, DriftSettings()), wdirt / "drift.csv")
    draw_results(tmp_path / "plots", tmp_path / "dvclive", tmp_path / "results.png", 3.0, 0.5)
    assert (tmp_path / "results.png").read_bytes()[:4] == b"\x89PNG"
    # and the simulated world's tables: against the truth, drift points flagged or not
    truth = pd.DataFrame({"item_id": ["A", "B"], "difficulty": [0.1, 0.9], "reference": [0.0, 1.0],
                          "reference_kind": TRUE_REFERENCE, "n_responses": [30, 40]})
    write_csv(truth, wdirt / "difficulty.csv")
    tested = drift.assign(z=[4.0], difficulty_shift=[0.8], drift_flag=[True])
    write_csv(drift_plot_table(tested, DriftSettings()), wdirt / "drift.csv")
    draw_results(tmp_path / "plots", tmp_path / "dvclive", tmp_path / "truth.png", 3.0, 0.5)
    assert (tmp_path / "truth.png").read_bytes() != (tmp_path / "results.png").read_bytes()


def test_an_assistments_run_with_and_without_truth_writes_plots_that_say_which(tmp_path):
    """The skill_builder world is read as ASSISTments 2009 (pseudo-timestamps, no unit tests): with its truth the
    difficulty plot is against the simulator's, without it against the observed one; drift says why it is empty."""
    from ktirt.irt.wdirt_run import WDIRTSettings, run_wdirt
    from ktirt.simulate import SimulationConfig, simulate
    from ktirt.sources import load_source
    from ktirt.split import split_users
    from ktirt.truth import truth_dir

    simulate(SimulationConfig.from_dict({"profile": "skill_builder", "n_students": 150}), tmp_path / "sb")
    tables = load_source("assistments_2009", tmp_path / "sb")
    split = split_users(tables.events["user_id"].to_numpy(zero_copy_only=False), 0.6, 0.2, seed=3)
    fast = WDIRTSettings(history_len=8, hidden=16, epochs=1, batch_size=512, seed=3, threads=1)
    for truth, kind in ((truth_dir(tmp_path / "sb"), TRUE_REFERENCE), (None, OBSERVED_REFERENCE)):
        r = run_wdirt(tables.events, tables.unit_tests, split, fast, truth=truth)
        assert tuple(r.difficulty_plot.columns) == PLOT_COLUMNS and (r.difficulty_plot["reference_kind"] == kind).all()
        assert len(r.difficulty_plot) > 10 and r.difficulty_plot["reference"].notna().all()
        assert list(r.drift_plot["item_id"]) == ["(none tested)"] and "no drift window tested" in r.drift_plot["note"][0]
