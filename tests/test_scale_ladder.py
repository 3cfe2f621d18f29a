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
