"""The `skill_builder` world: written as the real ASSISTments 2009 file is, read by its adapter, shaped like it
(issue 14's table, each figure within ±30 %), with a truth the oracle AUC can use."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import roc_auc_score

from ktirt.shape import REAL_SKILL_BUILDER_2009, shape
from ktirt.simulate import SimulationConfig, simulate
from ktirt.simulate.skill_builder import REAL_SKILLS, n_skills
from ktirt.catalog import skill_descriptions
from ktirt.sources import load_source
from ktirt.truth import event_probabilities, truth_dir

from conftest import A09_HEADER, ROOT, run_stage

N_STUDENTS = 2000  # the default size: what `-S simulate.profile=skill_builder` writes


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    out = tmp_path_factory.mktemp("sb") / "synthetic"
    simulate(SimulationConfig.from_dict({"profile": "skill_builder", "n_students": N_STUDENTS}), out)
    return out


@pytest.fixture(scope="module")
def events(raw):
    return load_source("assistments_2009", raw).events


def test_written_as_the_real_release(raw):
    data = (raw / "skill_builder_data.csv").read_bytes()
    assert data.split(b"\n", 1)[0].decode() == A09_HEADER
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")  # latin-1, as the release
    rows = pd.read_csv(raw / "skill_builder_data.csv", encoding="latin-1")
    per_order = rows.groupby("order_id")
    assert (per_order["skill_id"].nunique() > 1).any(), "multi-skill problems repeat their order_id"
    assert (per_order[["user_id", "problem_id", "correct"]].nunique() == 1).all().all()
    assert set(rows["first_action"]) <= {0, 1} and set(rows["correct"]) == {0, 1}
    assert (rows.loc[rows["first_action"] == 1, "correct"] == 0).all(), "a hint first scores as incorrect"
    assert any(not name.isascii() for name in skill_descriptions(load_source("assistments_2009", raw).skills).values())


def test_shape_within_30_percent_of_the_real_file(events):
    got = shape(events)
    scale = {"responses_per_student_max": n_skills(N_STUDENTS) / REAL_SKILLS}  # the max grows with the skills on offer
    off = {k: (got[k], real) for k, real in REAL_SKILL_BUILDER_2009.items()
           if abs(got[k] / (real * scale.get(k, 1.0)) - 1) > 0.3}
    assert not off, f"outside ±30 % of the real file (got, real): {off}"


def test_truth_gives_an_oracle_auc(raw, events):
    p = event_probabilities(events, truth_dir(raw))
    y = events["correct"].to_numpy()
    assert np.isfinite(p).all()
    oracle = roc_auc_score(y, p)
    state = pd.read_parquet(raw / "_truth" / "responses.parquet")
    assert 0.75 < oracle < roc_auc_score(state["correct"], state["p_correct_state"])  # the hidden states say more
    items = pd.read_parquet(raw / "_truth" / "items.parquet")
    assert (items.loc[items["answer_type"] == "algebra", "guess"] > 0).all(), "guessing on every answer type"


def test_mastery_learning_stops_at_three_in_a_row(raw):
    tr = pd.read_parquet(raw / "_truth" / "responses.parquet").sort_values("order_id")
    for _, seq in tr.groupby(["user_id", "action_sequence_id"]):
        y = seq["correct"].to_numpy()
        streaks = np.convolve(y, np.ones(3, dtype=int), "valid") == 3
        assert not streaks[:-1].any(), "an assignment went on after three correct in a row"


def test_same_seed_same_bytes(tmp_path):
    def digest(folder):
        cfg = SimulationConfig.from_dict({"profile": "skill_builder", "n_students": 150, "seed": 5})
        simulate(cfg, folder)
        return [hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()]

    assert digest(tmp_path / "a") == digest(tmp_path / "b")


@pytest.mark.parametrize("source", ["assistments_2009", "synthetic"])
def test_the_stage_simulates_the_world_its_source_reads(tmp_path, source):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"] = {"source": source, "raw_dir": "data/raw/synthetic", "part_mb": 512}
    params["simulate"] |= {"profile": "skill_builder", "n_students": 150}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    r = run_stage("simulate", "--params", str(tmp_path / "params.yaml"), "--out", str(tmp_path / "sim"))
    if source == "assistments_2009":
        assert r.returncode == 0, r.stderr
        assert sorted(p.name for p in (tmp_path / "sim").iterdir()) == ["_truth", "skill_builder_data.csv"]
    else:  # the EDM Cup reader cannot read this world's file: say which source does, write nothing
        assert r.returncode == 1 and "data.source: assistments_2009" in r.stderr and not (tmp_path / "sim").exists()
