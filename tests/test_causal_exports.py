"""Causality of what is exported, both engines: rewriting a student's later responses (outcome, latency, hints,
attempts, help) leaves every earlier exported prediction of theirs unchanged, and everyone else's.

tests/test_sakt.py holds SAKT's model causal and tests/test_exports.py mastery, on outcomes only; tests/test_wdirt.py
holds WD-IRT's features causal. Here the whole path runs: events -> training -> export tables and WD-IRT's
event predictions. A test student feeds neither engine's training (nor its item statistics or latency cut
points), so for them the pipeline's outputs must not move before the rewrite; for a training or validation
student the models change with their data by design, so only the scoring (the export, on a fixed checkpoint)
is held causal for them."""

import dataclasses

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch

from conftest import rewrite_future, run_pipeline
from ktirt.catalog import skill_descriptions
from ktirt.exports.build import run_export
from ktirt.irt.wdirt_run import WDIRTSettings
from ktirt.kt.sakt_run import SaktRun
from test_exports import SAKT_MODEL, SAKT_TRAIN, SETTINGS, WDIRT


def _pipeline(tables, split, root):
    return run_pipeline(tables, split, root, SaktRun(SAKT_MODEL, SAKT_TRAIN), WDIRTSettings(**WDIRT), SETTINGS)


@pytest.fixture(scope="module")
def base(tiny_tables, split, tmp_path_factory):
    return _pipeline(tiny_tables, split, tmp_path_factory.mktemp("causal_base"))


def _rows(path, name):
    return pq.read_table(path / f"{name}.parquet").to_pandas()


def _assert_earlier_unchanged(before: pd.DataFrame, after: pd.DataFrame, user: str, cut_time, col: str,
                              strictly: bool) -> None:
    """`col` equal on every row not of `user`, and on `user`'s rows before `cut_time` (at it too unless
    `strictly`); and different on at least one of `user`'s later rows (the rewrite reached the engine)."""
    assert (before["user_id"].to_numpy() == after["user_id"].to_numpy()).all()
    mine = before["user_id"].eq(user).to_numpy()
    earlier = mine & (before["timestamp"].lt(cut_time) if strictly else before["timestamp"].le(cut_time)).to_numpy()
    keep = ~mine | earlier
    assert earlier.sum() >= 3
    np.testing.assert_array_equal(before.loc[keep, col].to_numpy(), after.loc[keep, col].to_numpy(), err_msg=col)
    assert (before.loc[mine & ~earlier, col].to_numpy() != after.loc[mine & ~earlier, col].to_numpy()).any(), col


@pytest.fixture(scope="module")
def rewritten(base, tiny_tables, split, tmp_path_factory):
    """A test student's later responses rewritten, both engines retrained and everything exported again."""
    user = sorted(split["test"])[3]
    events, cut = rewrite_future(tiny_tables.events, user)
    again = _pipeline(dataclasses.replace(tiny_tables, events=events), split, tmp_path_factory.mktemp("causal_again"))
    return again | {"user": user, "cut_time": events["timestamp"][cut].as_py()}


def test_a_test_students_later_responses_move_no_earlier_prediction_of_either_engine(base, rewritten):
    user, cut_time = rewritten["user"], rewritten["cut_time"]
    for engine in ("sakt", "wdirt"):  # neither model learned anything from the rewrite
        a, b = base[engine].model.state_dict(), rewritten[engine].model.state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), engine
    # SAKT's prediction for the response at the cut is made before it: unchanged too
    _assert_earlier_unchanged(_rows(base["exports"], "sakt_predictions"), _rows(rewritten["exports"], "sakt_predictions"),
                              user, cut_time, "predicted", strictly=False)
    for col in ("theta", "predicted"):
        _assert_earlier_unchanged(base["wdirt"].event_predictions.to_pandas(),
                                  rewritten["wdirt"].event_predictions.to_pandas(), user, cut_time, col, strictly=False)


@pytest.mark.xfail(strict=True, reason="known leak: mastery asks SAKT about each skill's typical items, chosen by their "
                   "difficulty in the published item bank, which is calibrated on every student's whole history; a test "
                   "student's later responses move those difficulties, so the typical items, so everyone's mastery "
                   "(measured: 63% of the state rows, by up to 0.12)")
def test_a_test_students_later_responses_move_no_earlier_mastery(base, rewritten):
    _assert_earlier_unchanged(_rows(base["exports"], "sakt_student_state"), _rows(rewritten["exports"], "sakt_student_state"),
                              rewritten["user"], rewritten["cut_time"], "mastery", strictly=True)


@pytest.mark.parametrize("which", ["train", "val", "test"])
def test_the_export_scores_every_student_causally(base, tiny_tables, split, which, tmp_path):
    """The export on the same checkpoint and item bank (so the same typical items): predictions and mastery,
    for students the engines trained or stopped on too."""
    user = sorted(split[which])[3]
    events, cut = rewrite_future(tiny_tables.events, user)
    out = run_export(events, split, base["root"] / "models" / "sakt" / "model.pt", base["root"] / "models" / "wdirt",
                     skill_descriptions(tiny_tables.skills), SETTINGS, tmp_path)
    cut_time = events["timestamp"][cut].as_py()
    for name, column, strictly in (("sakt_predictions", "predicted", False), ("sakt_student_state", "mastery", True)):
        _assert_earlier_unchanged(_rows(base["exports"], name), _rows(tmp_path, name), user, cut_time, column, strictly=strictly)
