"""The blend and its recurrent member: the stacker learns from validation students alone, its predictions join the
exports on their keys row for row, a bad member is one line, and DKT predicts each response from earlier ones only."""

import json

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import torch

from conftest import params_file, rewrite_future, run_stage, tiny_raw  # noqa: F401  (tiny_raw: a fixture)
from ktirt.blend.blend_run import response_splits, run_blend
from ktirt.blend.dkt_run import run_dkt
from ktirt.blend.stacker import Stacker, logit
from ktirt.exports.tables import typed_table
from ktirt.io import write_json
from ktirt.kt.sakt_training import ModelVocab, predict, window_tensors
from ktirt.kt.sequences import N_CLICK_CODES, load_sequences, query_windows
from ktirt.models.dkt import DKT, DKTConfig
from ktirt.runtime import seed_everything
from ktirt.settings import MEMBERS, BlendSettings, DKTSettings
from ktirt.split import SPLITS, split_users
from ktirt.truth import event_probabilities, truth_dir


def _members(events, z: np.ndarray, noise=(0.8, 1.2, 1.6), seed=0) -> dict[str, np.ndarray]:
    """Three models that each see the true logit `z` through noise of their own (so each adds something)."""
    rng = np.random.default_rng(seed)
    return {m: 1 / (1 + np.exp(-(z + s * rng.standard_normal(len(z))))) for m, s in zip(MEMBERS, noise)}


def _world(n_students=600, per_student=40, seed=0):
    """Events of students of spread-out ability on items of spread-out easiness (big enough for AUCs to 0.005),
    their split and the true logit of every response."""
    rng = np.random.default_rng(seed)
    user = np.repeat([f"U{i:04d}" for i in range(n_students)], per_student)
    item = rng.integers(0, 200, len(user))
    z = np.repeat(rng.normal(0, 1.2, n_students), per_student) + rng.normal(0, 1, 200)[item]
    events = pa.table({"user_id": user, "item_id": [f"I{i}" for i in item],
                       "timestamp": pa.array(np.tile(np.arange(per_student), n_students), pa.timestamp("ms", "UTC")),
                       "skill_ids": [[f"S{i % 10}"] for i in item], "action_sequence_id": user,
                       "correct": pa.array(rng.random(len(z)) < 1 / (1 + np.exp(-z)), pa.int8())})
    return events, split_users(np.unique(user), 0.6, 0.2, seed=3), z


def _with_outcomes(events, correct: np.ndarray):
    return events.set_column(events.schema.get_field_index("correct"), "correct", pa.array(correct, pa.int8()))


def test_the_stacker_learns_from_validation_students_only():
    """Test and training students' outcomes and predictions reach no weight; validation students' do."""
    events, split, z = _world()
    predicted, where = _members(events, z), response_splits(events, split)
    base = run_blend(events, split, predicted, BlendSettings())
    y = events["correct"].to_numpy()
    others = where != SPLITS.index("val")
    noise = _members(events, z, noise=(5, 5, 5), seed=1)
    changed = run_blend(_with_outcomes(events, np.where(others, 1 - y, y)), split,
                        {m: np.where(others, noise[m], p) for m, p in predicted.items()}, BlendSettings())
    assert changed.metrics["weights"] == base.metrics["weights"]
    assert changed.metrics["test_auc"]["blend"] < 0.5 < base.metrics["test_auc"]["blend"]  # the change reached the test
    flipped = np.where(where == SPLITS.index("val"), 1 - y, y)
    assert all(w < 0 for m, w in run_blend(_with_outcomes(events, flipped), split, predicted,
                                           BlendSettings()).metrics["weights"].items() if m in MEMBERS)
    # each member adds: the blend beats its best member and weighs the least noisy one most
    t, w = base.metrics["test_auc"], base.metrics["weights"]
    assert t["blend"] > max(t[m] for m in MEMBERS) + 0.005 and t["item_mean"] < t["sakt"]
    assert w["sakt"] > w["wdirt"] > w["dkt"] > 0
    assert base.metrics["responses"]["val"] == int((where == SPLITS.index("val")).sum())


def test_the_stacker_with_item_counts_scores_a_chunk_as_the_whole(monkeypatch):
    """With blend.item_count the features are each logit, the log count and their products (in `names`' order),
    and `decision` in chunks of 7 responses gives every logit the whole matrix gives (NaN where a member has none)."""
    events, split, z = _world(n_students=60)
    predicted = _members(events, z)
    predicted["dkt"][::5] = np.nan
    count = np.log1p(np.arange(len(z)) % 17.0)
    stacker = Stacker.fit({m: p[1::5] for m, p in predicted.items()}, count[1::5],
                          events["correct"].to_numpy()[1::5], MEMBERS, True, 1.0)
    x = stacker.features(predicted, count)
    z3 = np.column_stack([logit(predicted[m]) for m in MEMBERS])
    np.testing.assert_array_equal(x, np.column_stack([z3, count, z3 * count[:, None]]))
    assert stacker.names()[3:5] == ["item_count", "sakt_x_item_count"]
    whole = stacker.decision(predicted, count)
    monkeypatch.setattr("ktirt.blend.stacker.DECISION_CHUNK", 7)
    chunked = stacker.decision(predicted, count)
    assert np.isnan(chunked[::5]).all() and np.isfinite(np.delete(chunked, np.s_[::5])).all()
    np.testing.assert_allclose(chunked, whole, rtol=1e-12)


def _member_files(folder, events, truth):
    """The three members' prediction tables as the pipeline writes them (SAKT's with the export's schema)."""
    predicted = _members(events, logit(event_probabilities(events, truth)))
    keys = events.select(["user_id", "item_id", "timestamp"])
    paths = {m: folder / f"{m}.parquet" for m in MEMBERS}
    sakt = typed_table("sakt_predictions", {**{k: keys[k] for k in keys.column_names}, "split": np.full(events.num_rows, "x"),
                                            "predicted": predicted["sakt"], "actual": events["correct"]})
    pq.write_table(sakt, paths["sakt"])
    for m in ("wdirt", "dkt"):
        pq.write_table(keys.append_column("predicted", pa.array(predicted[m], pa.float32())), paths[m])
    return {m: str(p) for m, p in paths.items()}


def _run_blend_stage(tmp_path, events, split, truth, spoil=None, **sections):
    """The blend stage on the three members' tables; `spoil(paths)` may first break them."""
    pq.write_table(events, tmp_path / "events.parquet")
    write_json(split, tmp_path / "split.json")
    paths = _member_files(tmp_path, events, truth)
    if spoil:
        spoil(paths)
    return run_stage("blend", "--params", params_file(tmp_path, **sections), "--events", str(tmp_path / "events.parquet"),
                     "--split", str(tmp_path / "split.json"), "--truth", str(truth), *[f"--{m}={p}" for m, p in paths.items()],
                     "--out", str(tmp_path / "out" / "blend_predictions.parquet"),
                     "--metrics", str(tmp_path / "out" / "blend.json")), paths


def test_the_blend_joins_the_exports_on_their_keys_row_for_row(tmp_path, tiny_tables, tiny_raw, split):
    r, paths = _run_blend_stage(tmp_path, tiny_tables.events, split, truth_dir(tiny_raw))
    assert r.returncode == 0, r.stderr
    blend = pq.read_table(tmp_path / "out" / "blend_predictions.parquet")
    assert blend.column_names == ["user_id", "item_id", "timestamp", "p_blend"]
    for key in ("user_id", "item_id", "timestamp"):
        assert blend.schema.field(key) == tiny_tables.events.schema.field(key)
    assert pc.all(pc.and_(pc.greater(blend["p_blend"], 0), pc.less(blend["p_blend"], 1))).as_py()
    joined = duckdb.sql(f"SELECT s.split, s.predicted, b.p_blend FROM '{paths['sakt']}' s FULL OUTER JOIN "
                        f"'{tmp_path / 'out' / 'blend_predictions.parquet'}' b USING (user_id, item_id, timestamp)").df()
    assert len(joined) == blend.num_rows == tiny_tables.events.num_rows  # no row repeated, none missing
    assert joined.notna().all().all()
    metrics = json.loads((tmp_path / "out" / "blend.json").read_text())
    assert set(metrics["test_auc"]) == {"blend", *MEMBERS, "average", "item_mean", "oracle"}
    assert set(metrics["weights"]) == {*MEMBERS, "intercept"} and metrics["responses"]["not_blended"] == 0


def test_an_unknown_member_stops_the_stage_in_one_line(tmp_path, tiny_tables, tiny_raw, split):
    r, _ = _run_blend_stage(tmp_path, tiny_tables.events, split, truth_dir(tiny_raw), blend={"members": ["sakt", "xgboost"]})
    errors = [line for line in r.stderr.splitlines() if line.startswith("Error:")]
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert errors == [f"Error: {tmp_path / 'params.yaml'}: blend.members: must be one of sakt, wdirt, dkt, got 'xgboost'"]
    assert not (tmp_path / "out").exists()


TINY_DKT = DKTSettings(hidden=16, seq_len=12, epochs=3, patience=2, batch_size=16, lr=0.01, seed=5, device="cpu")


def _dkt_predictions(events, split, seed: int = 0) -> np.ndarray:
    """An untrained DKT's prediction of every response (causality is the network's, trained or not)."""
    seed_everything(seed, 1)
    seqs, vocab = load_sequences(events, split)
    mv = ModelVocab.build(vocab, 0, True, True, True, False)
    model = DKT(DKTConfig.of(TINY_DKT, n_skills=mv.n_skills, n_diff=mv.n_diff, n_clicks=N_CLICK_CODES + 1))
    with torch.no_grad():  # random difficulties and skill biases, so the item inputs count too
        for table in (model.difficulty, model.skill_bias):
            table.weight.normal_()
    return predict(model, window_tensors(seqs, query_windows(seqs, None, 12, 6), mv), len(seqs.item))


def test_dkt_predicts_each_response_from_earlier_ones_only(tiny_tables, split):
    """A student's later responses rewritten (outcome, latency, hints, attempts, help): every earlier prediction,
    the one at the rewrite included, and everyone else's stay as they were; some later one moves."""
    user = sorted(split["test"])[3]
    events, cut = rewrite_future(tiny_tables.events, user)
    before, after = _dkt_predictions(tiny_tables.events, split), _dkt_predictions(events, split)
    mine = np.flatnonzero(events["user_id"].to_numpy(zero_copy_only=False) == user)
    later = mine[mine > cut]
    keep = np.setdiff1d(np.arange(len(before)), later)
    np.testing.assert_array_equal(before[keep], after[keep])
    assert (before[later] != after[later]).any()


def test_dkt_trains_and_predicts_every_response_once(tiny_tables, split):
    result = run_dkt(tiny_tables.events, split, TINY_DKT)
    table = result.predictions
    assert table.column_names == ["user_id", "item_id", "timestamp", "predicted"]
    for key in ("user_id", "item_id", "timestamp"):
        assert table[key].equals(tiny_tables.events[key])
    p = table["predicted"].to_numpy()
    assert np.isfinite(p).all() and ((p > 0) & (p < 1)).all()
    assert result.metrics["val_auc"] > 0.6 and 1 <= result.metrics["best_epoch"] <= result.metrics["epochs"] <= 3


@pytest.mark.parametrize("member, spoil, message", [
    ("dkt", lambda p: pq.write_table(pq.read_table(p).slice(1), p), "column 'user_id': does not line up with events.parquet (rerun train_dkt)"),
    ("wdirt", lambda p: pq.write_table(pq.read_table(p).sort_by("item_id"), p), "column 'user_id': does not line up with events.parquet (rerun train_wdirt)"),
    ("sakt", lambda p: pq.write_table(pq.read_table(p).drop_columns(["predicted"]), p), "column 'predicted' missing (written by stage 'export'"),
])
def test_a_member_table_of_other_rows_stops_the_blend_naming_its_stage(tmp_path, tiny_tables, tiny_raw, split, member, spoil,
                                                                        message):
    """Blending row by row with another run's predictions would score the wrong responses: refused in one line."""
    r, paths = _run_blend_stage(tmp_path, tiny_tables.events, split, truth_dir(tiny_raw), lambda p: spoil(p[member]))
    errors = [line for line in r.stderr.splitlines() if line.startswith("Error:")]
    assert r.returncode == 1 and len(errors) == 1 and errors[0].startswith(f"Error: {paths[member]}: {message}"), r.stderr
    assert not (tmp_path / "out").exists()


def test_the_blend_over_batches_of_students_is_the_blend_over_the_table(tmp_path, tiny_tables, tiny_raw, split,
                                                                         monkeypatch):
    """The stage reads events and members a batch of students at a time (ktirt.blend.members.member_batches): the
    same weights, figures and predictions as the blend of the whole table."""
    import ktirt.user_batches
    from ktirt.blend.blend_run import blend_batches
    from ktirt.blend.members import member_batches

    events = tiny_tables.events
    path = tmp_path / "events.parquet"
    pq.write_table(events, path, row_group_size=300)
    paths = _member_files(tmp_path, events, truth_dir(tiny_raw))
    whole = blend_batches(member_batches(path, paths), split, BlendSettings(), truth_dir(tiny_raw))  # one batch
    monkeypatch.setattr(ktirt.user_batches, "ROWS_PER_BATCH", 700)
    batches = member_batches(path, paths)
    assert len(list(batches())) > 2
    batched = blend_batches(batches, split, BlendSettings(), truth_dir(tiny_raw))
    assert batched.metrics == whole.metrics
    assert batched.table.equals(whole.table)
