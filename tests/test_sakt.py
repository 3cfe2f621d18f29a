"""Our SAKT: causal, cold items fall back to their skill, deterministic, reloadable, honest about its inputs."""

import numpy as np
import pyarrow as pa
import pyarrow.compute  # noqa: F401
import pytest
import torch

from ktirt.errors import InputError, SettingsError
from ktirt.kt.sakt_run import CHECKPOINT, SaktRun, check_vocabulary, load_checkpoint, run_sakt
from ktirt.kt.sakt_training import predict, window_tensors
from ktirt.kt.sequences import query_windows
from ktirt.models.sakt import SAKT, START, SAKTConfig
from ktirt.split import split_users

MODEL = {"emb_size": 16, "num_heads": 2, "num_blocks": 1, "dropout": 0.1, "seq_len": 12, "min_item_count": 3}
TRAIN = {"batch_size": 16, "lr": 0.01, "epochs": 4, "patience": 2, "seed": 5, "device": "cpu", "threads": 1}


@pytest.fixture(scope="module")
def split(tiny_tables):
    return split_users(tiny_tables.events["user_id"].to_numpy(zero_copy_only=False), 0.6, 0.2, seed=3)


@pytest.fixture(scope="module")
def result(tiny_tables, tiny_raw, split):
    return run_sakt(tiny_tables.events, split, SaktRun(MODEL, TRAIN, str(tiny_raw)))


def test_predictions_are_causal():
    torch.manual_seed(0)
    m = SAKT(SAKTConfig(n_items=10, n_skills=4, emb_size=8, num_heads=2, seq_len=6)).eval()
    k_item, k_skill = torch.randint(0, 10, (1, 6)), torch.randint(0, 4, (1, 6))
    k_resp = torch.randint(0, 2, (1, 6))
    k_resp[0, 0] = START
    q_item, q_skill = torch.randint(0, 10, (1, 6)), torch.randint(0, 4, (1, 6))
    before = m(k_item, k_skill, k_resp, q_item, q_skill)
    k_resp2 = k_resp.clone()
    k_resp2[0, 4] = 1 - k_resp2[0, 4]  # change the interaction before response 4
    after = m(k_item, k_skill, k_resp2, q_item, q_skill)
    assert torch.allclose(before[0, :4], after[0, :4]) and not torch.allclose(before[0, 4:], after[0, 4:])


def test_cold_items_share_their_skill_embedding():
    m = SAKT(SAKTConfig(n_items=10, n_skills=4, emb_size=8, num_heads=2, seq_len=6)).eval()
    keys = [torch.zeros(1, 2, dtype=torch.long)] * 2 + [torch.tensor([[START, 1]])]
    skill = torch.tensor([[2, 2]])
    cold = m(*keys, torch.zeros(1, 2, dtype=torch.long), skill)
    assert torch.allclose(cold, m(*keys, torch.zeros(1, 2, dtype=torch.long), skill))
    assert not torch.allclose(cold, m(*keys, torch.zeros(1, 2, dtype=torch.long), torch.tensor([[3, 3]])))


def test_metrics_beside_floor_and_ceiling(result):
    m = result.metrics
    for k in ("val_auc", "test_auc", "test_acc", "test_logloss", "best_epoch", "epochs", "train_seconds",
              "train_seqs_per_s", "item_mean_auc", "skill_mean_auc", "oracle_auc"):
        assert k in m, k
    assert 0.6 < m["test_auc"] <= m["oracle_auc"] + 0.05
    assert m["oracle_auc"] > m["skill_mean_auc"]
    assert 1 <= m["best_epoch"] <= m["epochs"] <= TRAIN["epochs"]
    assert list(result.history.columns) == ["epoch", "train_loss", "val_auc"]
    assert len(result.calibration) >= 5 and result.roc["tpr"].is_monotonic_increasing


def test_same_settings_same_predictions(tiny_tables, tiny_raw, split, result):
    again = run_sakt(tiny_tables.events, split, SaktRun(MODEL, TRAIN, str(tiny_raw)))
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
    r = run_sakt(ev, split, SaktRun(MODEL, {**TRAIN, "epochs": 1}))
    assert r.metrics["test_responses_cold_item"] >= 7
    assert np.isfinite(r.predictions[np.flatnonzero(test_rows)[:7]]).all()
    assert "oracle_auc" not in r.metrics  # no truth given


def test_bad_settings():
    with pytest.raises(SettingsError, match="model.emb: unknown setting"):
        SaktRun({"emb": 3}, TRAIN).settings()
    with pytest.raises(SettingsError, match="train.learning_rate: unknown setting"):
        SaktRun(MODEL, {**TRAIN, "learning_rate": 1}).settings()
