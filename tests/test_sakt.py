"""Our SAKT: causal, cold items fall back to their skill, deterministic, reloadable, honest about its inputs."""

import numpy as np
import pyarrow as pa
import pyarrow.compute  # noqa: F401
import pytest
import torch

from ktirt.errors import InputError, SettingsError
from ktirt.kt.sakt_run import CHECKPOINT, SaktRun, check_vocabulary, load_checkpoint, run_sakt
from ktirt.kt.sakt_training import predict, window_tensors
from ktirt.kt.sequences import N_PRACTICE_CODES, PRACTICE_BANDS, practice_codes, query_windows
from ktirt.models.sakt import SAKT, START, SAKTConfig, skill_mean
from ktirt.settings import ModelSettings, TrainSettings
from ktirt.truth import truth_dir

MODEL = ModelSettings(emb_size=16, num_heads=2, num_blocks=1, dropout=0.1, seq_len=12, min_item_count=3)
TRAIN = TrainSettings(batch_size=16, lr=0.01, epochs=4, patience=2, seed=5, device="cpu", threads=1)


@pytest.fixture(scope="module")
def result(tiny_tables, tiny_raw, split):
    return run_sakt(tiny_tables.events, split, SaktRun(MODEL, TRAIN, truth_dir(tiny_raw)))


def _inputs(t: int, k: int = 2, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    x = {"k_item": torch.randint(0, 10, (1, t), generator=g), "k_diff": torch.randint(0, 12, (1, t), generator=g),
         "k_skill": torch.randint(0, 4, (1, t, k), generator=g), "k_resp": torch.randint(0, 2, (1, t), generator=g),
         "k_click": torch.randint(0, 5, (1, t), generator=g), "q_item": torch.randint(0, 10, (1, t), generator=g),
         "q_diff": torch.randint(0, 12, (1, t), generator=g), "q_skill": torch.randint(0, 4, (1, t, k), generator=g),
         "q_practice": torch.randint(0, 7, (1, t, k), generator=g)}
    x["k_resp"][0, 0] = START
    return x


def _small(**kw) -> SAKT:
    torch.manual_seed(0)
    m = SAKT(SAKTConfig(n_items=10, n_skills=4, n_diff=12, n_clicks=5, n_practice=7, emb_size=8, num_heads=2, seq_len=6,
                        **kw)).eval()
    with torch.no_grad():
        for p in (m.difficulty, m.item_bias):
            p.weight.normal_()  # zero at initialisation; as after training
    return m


@pytest.mark.parametrize("recency,question_keys", [(False, False), (True, False), (False, True), (True, True)])
def test_predictions_are_causal(recency, question_keys):
    m = _small(recency=recency, question_keys=question_keys)
    x = _inputs(6)
    before = m(x)
    for key, change in (("k_resp", lambda v: 1 - v), ("k_click", lambda v: (v + 1) % 5), ("k_diff", lambda v: (v + 1) % 12),
                        ("k_item", lambda v: (v + 1) % 10)):
        y = {k: v.clone() for k, v in x.items()}
        y[key][0, 4] = change(y[key][0, 4])  # change the interaction before response 4
        after = m(y)
        assert torch.allclose(before[0, :4], after[0, :4]) and not torch.allclose(before[0, 4:], after[0, 4:]), key


def test_items_without_embedding_or_difficulty_are_their_skills():
    m = _small()
    x = _inputs(2)
    x |= {"q_item": torch.zeros(1, 2, dtype=torch.long), "q_diff": torch.zeros(1, 2, dtype=torch.long),
          "q_skill": torch.tensor([[[2, 0], [2, 0]]])}
    cold = m(x)
    assert not torch.allclose(cold, m(x | {"q_skill": torch.tensor([[[3, 0], [3, 0]]])}))
    assert not torch.allclose(cold, m(x | {"q_diff": torch.tensor([[5, 5]])}))  # an own difficulty moves it


def test_multi_skill_responses_average_their_skills():
    m = _small()
    x = _inputs(2)
    one = m(x | {"q_skill": torch.tensor([[[2, 0], [2, 0]]])})
    same_twice = m(x | {"q_skill": torch.tensor([[[2, 2], [2, 2]]])})
    both = m(x | {"q_skill": torch.tensor([[[2, 3], [2, 3]]])})
    assert torch.allclose(one, same_twice, atol=1e-6) and not torch.allclose(one, both)


@pytest.mark.parametrize("padding_idx,d", [(None, 8), (0, 8), (None, 1)])
def test_skill_mean_scores_as_it_trains(padding_idx, d):
    """Scoring's bag sum (no gradients) gives training's gathered mean bit for bit: the export scores with the
    numbers the model was trained and evaluated with."""
    torch.manual_seed(padding_idx or 0)
    table = torch.nn.Embedding(50, d, padding_idx=padding_idx)
    index = torch.randint(0, 50, (3, 40, 4))
    index[..., 1:] = torch.where(torch.rand(3, 40, 3) < 0.6, 0, index[..., 1:])  # most responses have one skill
    present = index > 0
    trained = skill_mean(table, index, present)
    with torch.no_grad():
        scored = skill_mean(table, index, present)
    assert torch.equal(scored, trained.detach())
    assert torch.equal(scored[..., 0][~present.any(-1)], torch.zeros(int((~present.any(-1)).sum())))


def test_practice_codes_count_earlier_attempts_per_skill():
    # one student: skills A(0), B(1), A+B, A; then a second student on A
    skills = np.array([[0, -1], [1, -1], [0, 1], [0, -1], [0, -1]])
    correct = np.array([1, 0, 1, 0, 1], dtype=np.int8)
    codes = practice_codes(np.array([0, 4, 5]), skills, correct)
    band = np.searchsorted(PRACTICE_BANDS, [0, 1, 2, 3], side="right")

    def code(n, accuracy, second, last):  # accuracy: 0 none, 1 < 1/3 right, 2 < 2/3, 3 higher; outcomes: 0 none, 1 wrong, 2 right
        return (band[n] * 4 + accuracy) * 9 + second * 3 + last

    assert codes[0, 0, 0] == code(0, 0, 0, 0) and codes[2, 0, 0] == code(1, 3, 0, 2) and codes[2, 1, 0] == code(1, 1, 0, 1)
    assert codes[3, 0, 0] == code(2, 3, 2, 2) and codes[4, 0, 0] == code(0, 0, 0, 0)  # the second student starts afresh
    assert codes[3, 0, 1] == code(3, 3, 2, 1)  # after it: 2 of 3 right
    assert (codes[:, 1][skills[:, 1] < 0] == -1).all()  # empty slots
    assert codes.max() < N_PRACTICE_CODES


def test_prior_shrinks_item_scalars():
    m = _small()
    with torch.no_grad():
        m.difficulty.weight.fill_(1.0)
        m.item_bias.weight.fill_(0.5)
    assert m.prior_penalty(4.0).item() == pytest.approx(0.5 * 4.0 * 12 * (1 + 0.25))


BELOW_FLOOR = 0.05
"""how far under the item-mean floor SAKT may sit on the tiny world (see the test)"""


def test_metrics_beside_floor_and_ceiling(result):
    """On the tiny world SAKT does not beat the item mean: 48 training students of ~20 responses are too few to
    learn from a student's history what the item's own correct rate does not say (measured: 0.621 against the
    floor 0.640; the ceiling, the truth's own AUC, 0.813). So here it must stay within BELOW_FLOOR of the floor,
    about one standard error of an AUC on its 325 test responses: a model that learned nothing (0.5) or no more
    than the skill means (0.531) fails. Beating the floor is asked where it is a fair ask, on a world with more
    history per student (tests/test_floor_and_ceiling.py)."""
    m = result.metrics
    for k in ("val_auc", "test_auc", "test_acc", "test_logloss", "best_epoch", "epochs", "item_mean_auc",
              "skill_mean_auc", "oracle_auc", "test_responses_no_item_difficulty"):
        assert k in m, k
    assert m["val_auc"] > 0.6
    assert m["skill_mean_auc"] < m["item_mean_auc"] - BELOW_FLOOR < m["test_auc"] <= m["oracle_auc"] + 0.02
    assert m["oracle_auc"] > m["skill_mean_auc"]
    assert 1 <= m["best_epoch"] <= m["epochs"] <= TRAIN.epochs
    assert list(result.history.columns) == ["epoch", "train_loss", "val_auc"]
    assert len(result.calibration) >= 5 and result.roc["tpr"].is_monotonic_increasing


def test_same_settings_same_predictions(tiny_tables, tiny_raw, split, result):
    again = run_sakt(tiny_tables.events, split, SaktRun(MODEL, TRAIN, truth_dir(tiny_raw)))
    np.testing.assert_array_equal(result.predictions, again.predictions)


def test_checkpoint_reloads_and_refuses_other_vocabularies(result, tiny_tables, split, tmp_path):
    result.save(tmp_path / "m", tmp_path / "p")
    model, vocab, mv = load_checkpoint(tmp_path / "m" / CHECKPOINT)
    seqs = check_vocabulary(vocab, tiny_tables.events, split, tmp_path / "m" / CHECKPOINT)
    w = window_tensors(seqs, query_windows(seqs, "test", model.cfg.seq_len, model.cfg.seq_len // 2), mv)
    p = predict(model, w, len(seqs.item))
    test = seqs.responses_of("test")
    np.testing.assert_allclose(p[test], result.predictions[test], rtol=1e-5)
    ev = tiny_tables.events
    renamed = pa.compute.binary_join_element_wise("X", ev["item_id"], "")
    other = ev.set_column(ev.schema.get_field_index("item_id"), "item_id", renamed)
    with pytest.raises(InputError, match="checkpoint vocabulary does not match"):
        check_vocabulary(vocab, other, split, tmp_path / "m" / CHECKPOINT)


def test_items_unseen_in_training_fall_back_and_are_counted(tiny_tables, split):
    ev = tiny_tables.events
    test_rows = np.isin(ev["user_id"].to_numpy(zero_copy_only=False), split["test"])
    items = ev["item_id"].to_numpy(zero_copy_only=False).astype(object)
    items[np.flatnonzero(test_rows)[:7]] = "NEW-ITEM"
    ev = ev.set_column(ev.schema.get_field_index("item_id"), "item_id", pa.array(items, pa.string()))
    r = run_sakt(ev, split, SaktRun(MODEL, TrainSettings(**TRAIN.model_dump() | {"epochs": 1})))
    assert r.metrics["test_responses_no_item_difficulty"] == 7  # every other test item was seen in training
    assert np.isfinite(r.predictions[np.flatnonzero(test_rows)[:7]]).all()
    assert "oracle_auc" not in r.metrics  # no truth given


def test_bad_settings():
    with pytest.raises(SettingsError, match="model.emb: unknown setting"):
        ModelSettings(emb=3)
    with pytest.raises(SettingsError, match="train.learning_rate: unknown setting"):
        TrainSettings(**TRAIN.model_dump(), learning_rate=1)
