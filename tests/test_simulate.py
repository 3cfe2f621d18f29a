"""The simulator writes the EDM Cup 2023 files as released, deterministically, with truth that matches them."""

import hashlib
import re

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from conftest import TINY
from ktirt.errors import SettingsError
from ktirt.simulate import SimulationConfig, simulate
from ktirt.simulate.world import PROBLEM_TYPES

HEADERS = {
    "action_logs.csv": "assignment_log_id,timestamp,problem_id,max_attempts,available_core_tutoring,score_viewable,continuous_score_viewable,action,hint_id,explanation_id",
    "assignment_details.csv": "assignment_log_id,teacher_id,class_id,student_id,sequence_id,assignment_release_date,assignment_due_date,assignment_start_time,assignment_end_time",
    "problem_details.csv": "problem_id,problem_multipart_id,problem_multipart_position,problem_type,problem_skill_code,problem_skill_description,problem_contains_image,problem_contains_equation,problem_contains_video,problem_text_bert_pca",
    "assignment_relationships.csv": "unit_test_assignment_log_id,in_unit_assignment_log_id",
    "training_unit_test_scores.csv": "assignment_log_id,problem_id,score",
    "evaluation_unit_test_scores.csv": "id,assignment_log_id,problem_id",
    "sequence_details.csv": "sequence_id,sequence_folder_path_level_1,sequence_folder_path_level_2,sequence_folder_path_level_3,sequence_folder_path_level_4,sequence_folder_path_level_5,sequence_name,sequence_problem_ids",
    "sequence_relationships.csv": "unit_test_sequence_id,in_unit_sequence_id",
    "hint_details.csv": "hint_id,hint_creator_id,hint_position,hint_contains_image,hint_contains_equation,hint_contains_video,hint_text_bert_pca",
    "explanation_details.csv": "explanation_id,explanation_creator_id,explanation_contains_image,explanation_contains_equation,explanation_contains_video,explanation_text_bert_pca",
}
ACTIONS = {"assignment_started", "assignment_resumed", "problem_started", "correct_response", "wrong_response",
           "open_response", "hint_requested", "answer_requested", "explanation_requested",
           "skill_related_video_requested", "live_tutor_requested", "continue_selected", "problem_finished",
           "assignment_finished"}


def test_files_have_the_release_headers(tiny_raw):
    for name, header in HEADERS.items():
        first = (tiny_raw / name).open().readline().strip().replace('"', "")
        assert first == header, name


def test_values_look_like_the_release(tiny_raw):
    logs = pd.read_csv(tiny_raw / "action_logs.csv", dtype=str)
    assert set(logs["action"]) <= ACTIONS
    assert {"problem_started", "correct_response", "wrong_response", "hint_requested", "problem_finished"} <= set(logs["action"])
    assert logs["timestamp"].astype(float).between(1.6e9, 1.8e9).all()  # unix seconds
    ids = pd.concat([logs["assignment_log_id"], logs["problem_id"].dropna()]).unique()
    assert all(re.fullmatch(r"[A-Z0-9]{9,10}", i) for i in ids)
    # retries never exceed the assignment's max_attempts
    attempts = logs[logs.action.isin(["correct_response", "wrong_response"])].groupby(["assignment_log_id", "problem_id"]).size()
    cap = logs.groupby(["assignment_log_id", "problem_id"])["max_attempts"].first().astype(int)
    assert (attempts <= cap.reindex(attempts.index) + 1).all()  # +1: retyping the answer after asking for it
    problems = pd.read_csv(tiny_raw / "problem_details.csv")
    assert problems["problem_skill_code"].dropna().str.fullmatch(r"[678]\.[A-Z]+\.[A-C]\.\d[a-c]?").all()
    vec = problems["problem_text_bert_pca"].iloc[0]
    assert vec.startswith("[") and len(vec.strip("[]").split(",")) == 32
    assert problems.groupby("problem_multipart_id").size().max() > 1


def test_problem_type_mix_is_the_release_mix(tmp_path):
    cfg = SimulationConfig.from_dict({"n_students": 300, "n_items": 4000, "units_per_class": 1})
    simulate(cfg, tmp_path / "s")
    share = pd.read_csv(tmp_path / "s" / "problem_details.csv")["problem_type"].value_counts(normalize=True)
    assert set(share.index) <= set(PROBLEM_TYPES)
    assert share["Number"] == pytest.approx(0.44, abs=0.04)
    assert share["Ungraded Open Response"] == pytest.approx(0.35 * 0.9, abs=0.05)  # none in unit tests
    assert share["Multiple Choice"] == pytest.approx(0.10, abs=0.03)


def test_truth_matches_the_tables(tiny_raw, tiny_tables):
    truth = tiny_raw / "_truth"
    ev = tiny_tables.events.to_pandas()
    resp = pd.read_parquet(truth / "responses.parquet")
    m = ev.merge(resp, on=["action_sequence_id", "item_id", "user_id"], how="left", validate="one_to_one")
    assert m["p_correct"].notna().all()
    # the observed rate agrees with the true probabilities within 4 standard errors
    se = np.sqrt((m.p_correct * (1 - m.p_correct)).sum()) / len(m)
    assert abs(m.correct.mean() - m.p_correct.mean()) < 4 * se
    assert roc_auc_score(m.correct, m.p_correct) == pytest.approx(0.798, abs=0.03)  # measured: 0.798
    assert len(resp[resp.graded]) == len(ev)
    ut = tiny_tables.unit_tests.to_pandas().merge(pd.read_parquet(truth / "unit_test_responses.parquet"),
                                                  on=["unit_test_id", "item_id", "user_id"], validate="one_to_one")
    assert len(ut) == tiny_tables.unit_tests.num_rows
    assert (ut.correct.isna() == ut.withheld).all()
    assert (ut.dropna(subset=["correct"]).eval("correct == score")).all()
    items = pd.read_parquet(truth / "items.parquet")
    assert set(items.item_id) == set(pd.read_csv(tiny_raw / "problem_details.csv").problem_id)
    assert ((items.guessing > 0) == items.problem_type.isin(["Multiple Choice", "Check All That Apply", "Ordering"])).all()
    assert (items.guessing < 0.5).all() and (items.discrimination > 0).all()
    drift = items[items.drift]
    assert len(drift) == round(TINY["drift_fraction"] * len(items))
    # a drifting item is seen on both sides of its drift date
    seen = ev[ev.item_id.isin(drift.item_id)].merge(drift[["item_id", "drift_time"]], on="item_id")
    sides = seen.assign(after=seen.timestamp >= seen.drift_time).groupby("item_id")["after"].agg(["min", "max"])
    assert (sides["min"] == False).all() and (sides["max"] == True).all()  # noqa: E712


def test_same_seed_same_bytes(tmp_path):
    cfg = SimulationConfig.from_dict({"n_students": 40, "n_skills": 3, "class_size": 20, "units_per_class": 2,
                                      "problems_per_assignment": 6, "unit_test_size": 2})
    digests = []
    for name in ("a", "b"):
        simulate(cfg, tmp_path / name)
        digests.append({p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((tmp_path / name).glob("*.csv"))})
    assert digests[0] == digests[1]
    simulate(SimulationConfig.from_dict({**cfg.__dict__, "seed": 1}), tmp_path / "c")
    assert hashlib.sha256((tmp_path / "c" / "action_logs.csv").read_bytes()).hexdigest() != digests[0]["action_logs.csv"]


def test_a_world_in_batches_of_classes_is_a_whole_release(tmp_path):
    """TINY's 80 students in batches of about 20 (whole classes of 20, each batch with its own generator): the
    files read through the EDM Cup adapter, every log id is distinct across batches, the evaluation ids run
    on across them, every response finds its truth, every student and drifting item is there, and the world
    behaves as the one-batch world does (correct rate, truth AUC)."""
    from ktirt.simulate.batches import class_batches
    from ktirt.simulate.world import build_world
    from ktirt.sources import load_source
    from ktirt.truth import event_probabilities, matched

    cfg = SimulationConfig.from_dict(TINY | {"batch_students": 20})
    assert [len(b) for b in class_batches(build_world(cfg, np.random.default_rng(cfg.seed)), 20)] == [1, 1, 1, 1]
    counts = {}
    for name, size in (("batches", 20), ("one", 10_000)):
        counts[name] = simulate(SimulationConfig.from_dict(TINY | {"batch_students": size}), tmp_path / name)
    raw = tmp_path / "batches"
    logs = pd.read_csv(raw / "assignment_details.csv", dtype=str)
    assert logs["assignment_log_id"].is_unique and logs["student_id"].nunique() == TINY["n_students"]
    evaluation = pd.read_csv(raw / "evaluation_unit_test_scores.csv")
    assert (evaluation["id"].to_numpy() == np.arange(len(evaluation))).all()
    assert len(pd.read_csv(raw / "action_logs.csv", dtype=str)) == counts["batches"]["action_rows"]
    assert counts["batches"]["drifting_items"] == counts["one"]["drifting_items"] > 0
    rates = {}
    for name in ("batches", "one"):
        tables = load_source("synthetic", tmp_path / name).whole()
        p = matched(event_probabilities(tables.events, tmp_path / name / "_truth"), tmp_path / name / "_truth", "responses")
        y = tables.events["correct"].to_numpy()
        rates[name] = (y.mean(), roc_auc_score(y, p), tables.events.num_rows)
    assert rates["batches"][0] == pytest.approx(rates["one"][0], abs=0.02)
    assert rates["batches"][1] == pytest.approx(rates["one"][1], abs=0.03)
    assert rates["batches"][2] == pytest.approx(rates["one"][2], rel=0.05)


def test_a_later_batch_redraws_a_log_id_that_an_earlier_batch_took(monkeypatch):
    """Ids are random strings: a batch drawing one that an earlier batch took redraws it, and when the new one is
    one that another log of the batch has, the later log's is drawn again."""
    import ktirt.simulate.edm_tables as tables

    draws = iter([np.array(["A1", "A2", "A3"]), np.array(["A3"]), np.array(["A4"])])
    monkeypatch.setattr(tables, "random_ids", lambda rng, n: next(draws))
    writer = tables.TablesWriter.__new__(tables.TablesWriter)
    writer.log_ids_taken = np.array([b"A2", b"B7"], dtype="S10")
    assert list(writer._fresh_log_ids(None, 3)) == ["A1", "A3", "A4"]
    assert set(writer.log_ids_taken) == {b"A1", b"A2", b"A3", b"A4", b"B7"}


@pytest.mark.parametrize("bad, words", [
    ({"n_students": -5}, "simulate.n_students: must be ≥ 1, got -5"),
    ({"n_skills": 0}, "simulate.n_skills"),
    ({"drift_fraction": 1.5}, "simulate.drift_fraction: must be in [0, 1), got 1.5"),
    ({"n_items": 10}, "simulate.n_items: must be ≥ 576 for 24 skills"),
    ({"n_studnets": 10}, "simulate.n_studnets: unknown setting (did you mean 'n_students'?)"),
])
def test_invalid_settings_are_refused(bad, words):
    with pytest.raises(SettingsError) as err:
        SimulationConfig.from_dict(bad)
    assert words in str(err.value)


def test_true_values_answer_in_the_order_asked_repeats_included_and_nan_for_a_miss(tmp_path):
    """The truth is read a batch at a time and matched by key hashes: the answer keeps the order of the hashes
    asked for, a hash asked twice gets its value twice, one the truth lacks gets NaN, and another student's
    response is never matched."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ktirt.truth import RESPONSE_KEYS, response_hashes, true_values

    truth = pa.table({"action_sequence_id": ["a1", "a1", "a2", "a3"], "item_id": ["i1", "i2", "i1", "i9"],
                      "user_id": ["u1", "u1", "u2", "u3"], "p_correct": [0.1, 0.2, 0.3, 0.4]})
    pq.write_table(truth, tmp_path / "responses.parquet")
    asked = pa.table({"action_sequence_id": ["a2", "a1", "a2", "zz", "a3"], "item_id": ["i1", "i2", "i1", "i1", "i9"],
                      "user_id": ["u2", "u1", "u2", "u1", "u3"]}).select(RESPONSE_KEYS)
    got = true_values(tmp_path, ["u1", "u2"], response_hashes(asked))[:, 0]
    np.testing.assert_array_equal(got[:3], [0.3, 0.2, 0.3])
    assert np.isnan(got[3]) and np.isnan(got[4])  # not in the truth; u3's, not asked for
