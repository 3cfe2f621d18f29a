"""bench/scale_ladder.py's arithmetic: slopes per million action rows, growth ratios and the EdNet KT1
extrapolation, on made-up steps whose answers are known."""

from __future__ import annotations

import sys

import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))

from scale_ladder import EDNET_STUDENTS, growth  # noqa: E402


def _step(students: int, rows: int, stages: dict) -> dict:
    return {"students": students, "action_rows": rows, "stages": stages}


def test_growth_fits_each_stage_and_extrapolates_to_ednet():
    steps = {"1000": _step(1000, 2_000_000, {"flat": {"wall_s": 10.0, "peak_gib": 1.0},
                                            "linear": {"wall_s": 20.0, "peak_gib": 2.0}}),
             "2000": _step(2000, 4_000_000, {"flat": {"wall_s": 20.0, "peak_gib": 1.0},
                                            "linear": {"wall_s": 40.0, "peak_gib": 4.0}})}
    g = growth(steps)
    rows = EDNET_STUDENTS * 2_000
    assert g["ednet_kt1"] == {"students": EDNET_STUDENTS, "action_rows_assumed": rows}
    assert g["flat"]["peak_ratio"] == 1.0 and g["flat"]["gib_per_m_rows"] == 0.0
    assert g["flat"]["time_per_row_ratio"] == 1.0 and g["flat"]["s_per_m_rows"] == 5.0
    assert g["linear"]["peak_ratio"] == 2.0 and g["linear"]["gib_per_m_rows"] == 1.0
    assert g["linear"]["ednet_peak_gib"] == pytest.approx(rows / 1e6, abs=0.1)
    assert g["flat"]["ednet_peak_gib"] == pytest.approx(1.0, abs=0.05)


def test_a_stage_that_failed_or_was_not_reached_at_a_step_is_left_out():
    steps = {"1000": _step(1000, 1_000_000, {"a": {"wall_s": 1.0, "peak_gib": 1.0}, "b": {"wall_s": 1.0, "peak_gib": 1.0}}),
             "2000": _step(2000, 2_000_000, {"a": {"wall_s": 2.0, "peak_gib": 1.0}, "b": {"failed": "exit status -9"}})}
    g = growth(steps)
    assert "a" in g and "b" not in g
    assert growth({"1000": steps["1000"]}) == {}  # one step: nothing to fit


def test_a_steps_params_are_params_yaml_but_for_size_epochs_and_sweeps(tmp_path, monkeypatch):
    """Each step runs params.yaml as it is (here without the size, which bench/_measure.py sets), with one epoch
    per training stage and WD-IRT's calibrations bounded by CALIBRATION_SWEEPS; the result is a valid params file."""
    import yaml

    import scale_ladder
    from ktirt.settings import check_params

    def as_it_is(students, folder):
        (folder / "params.yaml").write_text((ROOT / "params.yaml").read_text())
        return folder / "params.yaml", None

    monkeypatch.setattr(scale_ladder, "scale_params", as_it_is)
    path, raw = scale_ladder._step_params(35000, tmp_path, "edm_cup")
    step, base = yaml.safe_load(path.read_text()), yaml.safe_load((ROOT / "params.yaml").read_text())
    check_params(step)
    assert step["train"]["epochs"] == step["wdirt"]["epochs"] == step["dkt"]["epochs"] == 1
    assert step["wdirt"]["calibration_sweeps"] == scale_ladder.CALIBRATION_SWEEPS < base["wdirt"]["calibration_sweeps"]
    assert step["data"]["raw_dir"] == str(raw) == str(tmp_path / "raw")
    for section, key in (("train", "epochs"), ("wdirt", "epochs"), ("dkt", "epochs"), ("wdirt", "calibration_sweeps"),
                         ("data", "raw_dir")):
        del step[section][key], base[section][key]
    assert step == base
