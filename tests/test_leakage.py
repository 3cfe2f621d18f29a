"""ktirt/leakage.py: the future-masking check catches leaky predictors and passes SAKT; the shuffled-label control's
permutation moves only training outcomes and keeps how many of them are right."""

import numpy as np
import pyarrow as pa
import pytest

from ktirt.kt.sakt_run import SaktRun, predict_events, run_sakt
from ktirt.leakage import future_masking, rewrite_later_responses, shuffle_outcomes, shuffled_control
from ktirt.settings import ModelSettings, TrainSettings

MODEL = ModelSettings(emb_size=16, num_heads=2, num_blocks=1, dropout=0.1, seq_len=12, min_item_count=3)
TRAIN = TrainSettings(batch_size=16, lr=0.01, epochs=2, patience=1, seed=5, device="cpu", threads=1)


def _by_student(events: pa.Table, f) -> np.ndarray:
    """f(outcomes of one student) -> one prediction per response, student by student."""
    user = events["user_id"].to_numpy(zero_copy_only=False)
    y = events["correct"].to_numpy().astype(float)
    out = np.empty(len(y))
    for u in np.unique(user):
        rows = np.flatnonzero(user == u)
        out[rows] = f(y[rows])
    return out


def _past_mean(y):  # honest: the share right before each response
    return (np.cumsum(y) - y + 1) / (np.arange(len(y)) + 2)


LEAKY = {
    "reads its own outcome": lambda y: _past_mean(y) + 0.01 * y,
    "reads the next outcome": lambda y: _past_mean(y) + 0.01 * np.r_[y[1:], 0],
    "reads the student's whole record": lambda y: np.full(len(y), y.mean()),
}


@pytest.mark.parametrize("how", sorted(LEAKY))
def test_future_masking_catches_a_leaky_predictor(tiny_tables, split, how):
    check = future_masking(lambda ev: _by_student(ev, LEAKY[how]), tiny_tables.events, split["test"], seed=0)
    assert check["ok"] == 0 and check["max_change"] > 1e-3 and check["checked"] > 0


def test_future_masking_passes_an_honest_predictor(tiny_tables, split):
    check = future_masking(lambda ev: _by_student(ev, _past_mean), tiny_tables.events, split["test"], seed=0)
    assert check == {"ok": 1, "max_change": 0.0, "checked": check["checked"]} and check["checked"] > 20


def test_rewrite_touches_only_later_responses_of_the_chosen_students(tiny_tables, split):
    ev = tiny_tables.events
    changed, keep = rewrite_later_responses(ev, split["test"][:3], seed=1)
    moved = ev["correct"].to_numpy() != changed["correct"].to_numpy()
    user = ev["user_id"].to_numpy(zero_copy_only=False)
    assert moved.any() and set(user[moved]) <= set(split["test"][:3])
    for col in ("latency_ms", "hint_count", "attempt_count", "help_requested"):
        differs = ~np.asarray(pa.compute.fill_null(pa.compute.equal(ev[col], changed[col]), False))
        assert (differs == moved).all(), col
    for col in ("user_id", "item_id", "skill_ids", "timestamp"):
        assert ev[col].equals(changed[col])
    # kept: each student's responses before the cut and the first rewritten one (its prediction must not read it)
    first = moved & np.r_[True, ~moved[:-1]]
    assert ((moved & keep) == first).all() and first.sum() == 3
    assert keep.sum() > first.sum() and set(user[keep]) == set(split["test"][:3])


def test_sakt_passes_future_masking_in_its_metrics_and_when_asked_again(tiny_tables, split):
    result = run_sakt(tiny_tables.events, split, SaktRun(MODEL, TRAIN))
    m = result.metrics
    assert m["future_masking_ok"] == 1 and m["future_masking_max_change"] <= 1e-5
    assert m["future_masking_checked"] > 0.3 * m["test_responses"]
    ask = lambda ev: predict_events(result.model, result.vocab, result.model_vocab, ev, split, split["test"])  # noqa: E731
    p = ask(tiny_tables.events)
    test = np.isfinite(result.predictions)
    np.testing.assert_allclose(p[test], result.predictions[test], atol=1e-6)  # the run's own test predictions
    assert future_masking(ask, tiny_tables.events, split["test"], seed=9)["ok"] == 1


def test_shuffled_outcomes_move_only_the_given_students_rows_and_keep_how_many_are_right(tiny_tables, split):
    ev = tiny_tables.events
    shuffled = shuffle_outcomes(ev, split["train"], seed=4)
    user = ev["user_id"].to_numpy(zero_copy_only=False)
    y, z = ev["correct"].to_numpy(), shuffled["correct"].to_numpy()
    train = np.isin(user, split["train"])
    assert (y[~train] == z[~train]).all()  # no other student's outcome touched
    assert z[train].sum() == y[train].sum() and (y[train] != z[train]).mean() > 0.3
    assert shuffled.schema == ev.schema and shuffled.drop(["correct"]).equals(ev.drop(["correct"]))
    assert shuffle_outcomes(ev, split["train"], seed=4).equals(shuffled)
    # pooled, not per student: the students' own rates are scrambled too (a per-student shuffle keeps them)
    rates = [(y[user == u].mean(), z[user == u].mean()) for u in split["train"]]
    assert any(abs(a - b) > 0.1 for a, b in rates)


def test_shuffled_control_verdict():
    assert shuffled_control(0.515)["ok"] == 1 and shuffled_control(0.485)["ok"] == 1
    assert shuffled_control(0.53)["ok"] == 0 and shuffled_control(0.46)["ok"] == 0


def test_train_sakt_shuffled_control_is_off_by_default_and_trains_on_the_shuffled_fold(tiny_tables, split):
    from ktirt.leakage import shuffle_fold

    assert TrainSettings().shuffled_control is False
    on = TrainSettings(**TRAIN.model_dump() | {"epochs": 1, "shuffled_control": True})
    m = run_sakt(tiny_tables.events, split, SaktRun(MODEL, on)).metrics
    plain = SaktRun(MODEL, TrainSettings(**TRAIN.model_dump() | {"epochs": 1}))
    assert "shuffled_label_test_auc" not in run_sakt(tiny_tables.events, split, plain).metrics
    shuffled = run_sakt(shuffle_fold(tiny_tables.events, split, TRAIN.seed), split, plain).metrics
    assert m["shuffled_label_test_auc"] == pytest.approx(shuffled["test_auc"], abs=1e-6) != m["test_auc"]
    assert m["shuffled_label_ok"] == int(abs(m["shuffled_label_test_auc"] - 0.5) <= 0.02)
