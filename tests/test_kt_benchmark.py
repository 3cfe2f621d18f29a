"""bench/kt_benchmark.py: pyKT's question-level windows on multi-skill problems, and one tiny end-to-end run
(2 folds, 1 epoch, ktirt SAKT + pyKT DKT) on a multi-skill ASSISTments 2009 file."""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from click.testing import CliRunner
from conftest import ROOT, events_as_assistments_2009

sys.path.insert(0, str(ROOT / "bench"))

from _kt_data import ids_digest, scored_rows, user_folds  # noqa: E402
from _pykt_windows import Expanded, late_fusion, question_windows  # noqa: E402
from _simplekt import SimpleKT  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

try:
    import kt_audit  # noqa: F401
    KT_AUDIT = True
except ImportError:
    KT_AUDIT = False


def _events() -> pa.Table:
    """Two students; u1's second problem has three skills, u2's first has two (never scored: a first response)."""
    rows = [("u1", "i1", ["a"]), ("u1", "i2", ["a", "b", "c"]), ("u1", "i3", ["b"]),
            ("u2", "i2", ["a", "b"]), ("u2", "i1", ["a"]), ("u2", "i4", [])]
    return pa.table({"user_id": [r[0] for r in rows], "item_id": [r[1] for r in rows],
                     "skill_ids": pa.array([r[2] for r in rows], pa.list_(pa.string())),
                     "correct": pa.array([1, 0, 1, 1, 0, 1], pa.int8()),
                     "timestamp": pa.array(np.arange(6) * 1000, pa.timestamp("ms", "UTC"))})


def test_question_windows_predict_each_concept_from_earlier_problems_only():
    events = _events()
    ex = Expanded.build(events)
    assert len(ex.event) == 9 and ex.num_c == 4  # a, b, c and the no-skill code
    scored = scored_rows(events["user_id"].to_numpy(zero_copy_only=False).astype(str), ["u1", "u2"])
    assert scored.tolist() == [1, 2, 4, 5]
    index, target = question_windows(ex, scored, length=4)
    predicted = index[target]
    # every concept row of every scored problem exactly once, nothing else
    assert sorted(predicted.tolist()) == sorted(ex.rows_of(scored).tolist())
    for w, pos in zip(*np.nonzero(target)):
        row = index[w, pos]
        context = index[w, :pos]
        assert (context >= 0).all() and (ex.event[context] < ex.event[row]).all()  # earlier problems only
        assert (ex.user_start[context] == ex.user_start[row]).all()
    # u1's 3-skill problem: its b and c rows see exactly u1's first problem
    for rank in (1, 2):
        row = int(np.flatnonzero((ex.event == 1) & (ex.rank == rank))[0])
        w, pos = next((w, q) for w, q in np.argwhere(index == row) if target[w, q])
        assert index[w, :pos].tolist() == [0]
    p = np.arange(1, len(predicted) + 1, dtype=float)
    fused = late_fusion(ex, index, target, p, events.num_rows)
    assert np.isnan(fused[[0, 3]]).all() and np.isfinite(fused[scored]).all()
    rows_of_1 = np.isin(index[target], np.flatnonzero(ex.event == 1))
    assert fused[1] == pytest.approx(p[rows_of_1].mean())


def test_simplekt_reads_only_earlier_responses_and_learns_question_difficulty():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = SimpleKT(num_c=3, num_q=6, d_model=16, d_ff=16, num_attn_heads=2, final_fc_dim=8, final_fc_dim2=8,
                     seq_len=8).eval()
    q, c, r = torch.randint(0, 6, (4, 8)), torch.randint(0, 3, (4, 8)), torch.randint(0, 2, (4, 8))

    def predict(q, c, r):
        return model({"qseqs": q[:, :-1], "cseqs": c[:, :-1], "rseqs": r[:, :-1],
                      "shft_qseqs": q[:, 1:], "shft_cseqs": c[:, 1:], "shft_rseqs": r[:, 1:]})

    base, flipped = r.clone(), r.clone()
    flipped[:, 4] = 1 - flipped[:, 4]
    change = (predict(q, c, base) - predict(q, c, flipped)).abs().amax(0)
    assert change[:5].max() == 0 and change[5:].min() > 0  # response 4 reaches positions 5.. only
    # two questions of one concept in random order, one always right and one always wrong: only the question's
    # own difficulty tells them apart at the position that asks it
    q = torch.randint(1, 3, (32, 8))
    c, r = torch.zeros_like(q), (q == 1).long()
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(60):
        loss = torch.nn.functional.binary_cross_entropy(predict(q, c, r)[:, 1:], r[:, 1:].float())
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    p, asked = predict(q, c, r)[:, 1:], q[:, 1:]
    assert p[asked == 1].min() > 0.9 and p[asked == 2].max() < 0.1


def _ragged_events(n_students: int = 40) -> pa.Table:
    """Students of 1 to 30 responses over 5 skills and 9 problems, a quarter of them with two skills."""
    rng = np.random.default_rng(3)
    rows = []
    for u in range(n_students):
        for t in range(int(rng.integers(1, 31))):
            item = int(rng.integers(0, 9))
            rows.append((f"u{u:02d}", f"i{item}", [f"s{item % 5}"] + ([f"s{(item + 1) % 5}"] if item < 2 else []),
                         int(rng.random() < 0.6)))
    return pa.table({"user_id": [r[0] for r in rows], "item_id": [r[1] for r in rows],
                     "skill_ids": pa.array([r[2] for r in rows], pa.list_(pa.string())),
                     "correct": pa.array([r[3] for r in rows], pa.int8())})


@pytest.mark.parametrize("name", ["dkt", "sakt", "akt", "simplekt"])
def test_length_sorted_micro_batches_give_the_padded_batchs_gradient_and_predictions(name):
    torch = pytest.importorskip("torch")
    import _pykt_models as pm
    from _pykt_windows import sliding_windows

    ex = Expanded.build(_ragged_events())
    index, target = sliding_windows(ex, np.arange(len(ex.event)), 12)
    assert len(np.unique((index >= 0).sum(1))) > 5  # windows of many lengths, most padded
    torch.manual_seed(0)
    model = pm.build(name, ex, 12).double().eval()  # float64, no dropout: the two ways must agree
    if name == "akt":  # pyKT starts difficulties at 0, which would hide the padding's L2
        torch.nn.init.normal_(model.difficult_param.weight)

    def grads():
        out = {k: v.grad.clone() for k, v in model.named_parameters() if v.grad is not None}
        model.zero_grad()
        return out

    q, c, r = pm._batch(ex, index)
    p, extra = pm.forward(model, name, q, c, r)
    sm = torch.as_tensor(target[:, 1:])
    (torch.nn.functional.binary_cross_entropy(p[sm].double(), r[:, 1:][sm].double()) + extra).backward()
    padded = grads()
    pm.batch_loss_backward(model, name, ex, index, target, size=7)
    micro = grads()
    assert padded.keys() == micro.keys()
    for k in padded:
        # sums in another order only (in float32 these can flip a ReLU sitting at 0, hence float64)
        assert float((micro[k] - padded[k]).norm()) <= 1e-7 * float(padded[k].norm()) + 1e-15, k
    with torch.no_grad():
        full = pm.forward(model, name, q, c, r)[0].numpy()[target[:, 1:]]
    np.testing.assert_allclose(pm.predict(model, name, ex, index, target, batch=5), full, rtol=1e-9)


def test_user_folds_are_disjoint_and_cover_every_student():
    users = np.array([f"s{i:02d}" for i in range(23)])
    folds = user_folds(users, 4, seed=3, val_share=0.2)
    tests = [set(f["test"]) for f in folds]
    assert set().union(*tests) == set(users) and sum(map(len, tests)) == len(users)
    for f in folds:
        assert not (set(f["train"]) & set(f["val"]) or set(f["train"]) & set(f["test"]) or set(f["val"]) & set(f["test"]))
        assert len(f["train"]) + len(f["val"]) + len(f["test"]) == len(users) and f["val"]
    assert user_folds(users, 4, seed=3, val_share=0.2) == folds


def test_merge_keeps_folds_run_on_other_threads_but_not_under_other_settings():
    from kt_benchmark import merge

    world = {"data": {"rows": 10}, "folds": {"k": 3}}
    settings = {"hyper_parameters": {"lr": 1e-3}, "threads": 1}
    results = merge({}, "w", world, "dkt", 0, {"auc": 0.70, "threads": 1}, settings)
    results = merge(results, "w", world, "dkt", 1, {"auc": 0.72, "threads": 2}, settings | {"threads": 2})
    m = results["worlds"]["w"]["models"]["dkt"]
    assert sorted(m["folds"]) == ["0", "1"] and m["n_folds"] == 2 and m["auc_mean"] == pytest.approx(0.71)
    results = merge(results, "w", world, "dkt", 2, {"auc": 0.60}, settings | {"hyper_parameters": {"lr": 1e-2}})
    assert sorted(results["worlds"]["w"]["models"]["dkt"]["folds"]) == ["2"]
    with pytest.raises(Exception, match="other folds"):
        merge(results, "w", world | {"folds": {"k": 5}}, "dkt", 0, {"auc": 0.7}, settings)


def test_a_pykt_model_off_its_published_rate_is_stored_beside_its_default_run():
    from kt_benchmark import DEFAULTS, model_settings, stored_name

    assert stored_name("akt", 1e-4) == "akt@lr0.0001" and stored_name("akt", None) == "akt"
    assert stored_name("ktirt_sakt", 1e-4) == "ktirt_sakt"  # ktirt's engines take --set train.lr=...
    settings = model_settings("akt", {}, {}, 30, 5, 1, 42, pykt_lr=1e-4)
    assert settings["hyper_parameters"]["learning_rate"] == 1e-4 and DEFAULTS["akt"]["learning_rate"] == 1e-5


@pytest.fixture(scope="module")
def multi_skill_raw(tiny_tables, tmp_path_factory):
    ev = tiny_tables.events
    skills = ev["skill_ids"].to_pylist()
    others = sorted({s for row in skills for s in row})
    skills = [row + [others[(i // 5) % len(others)]] if i % 5 == 0 and others[(i // 5) % len(others)] not in row else row
              for i, row in enumerate(skills)]
    ev = ev.set_column(ev.schema.get_field_index("skill_ids"), "skill_ids", pa.array(skills, ev["skill_ids"].type))
    return events_as_assistments_2009(ev, tmp_path_factory.mktemp("a09"))


def test_benchmark_end_to_end(multi_skill_raw, tmp_path):
    from kt_benchmark import main

    results, out = tmp_path / "kt_benchmark.json", tmp_path / "out"
    args = ["--source", "assistments_2009", "--raw-dir", str(multi_skill_raw), "--name", "tiny", "--folds", "2",
            "--max-epochs", "1", "--patience", "1", "--set", "model.emb_size=16", "--results", str(results),
            "--out-dir", str(out), "--control-tolerance", "0.5"]  # tiny data: a shuffled AUC is noisy
    r = CliRunner().invoke(main, [*args, "--models", "ktirt_sakt,dkt"])
    assert r.exit_code == 0, r.output + repr(r.exception)
    # a second run of one model on one fold merges into the same file
    r = CliRunner().invoke(main, [*args, "--models", "sakt", "--folds-to-run", "1"])
    assert r.exit_code == 0, r.output + repr(r.exception)
    world = json.loads(results.read_text())["worlds"]["tiny"]
    assert world["data"]["multi_skill_share"] > 0.1 and len(world["data"]["events_sha256"]) == 64
    assert set(world["models"]) == {"ktirt_sakt", "dkt", "sakt"}
    assert world["models"]["sakt"]["n_folds"] == 1 and world["models"]["dkt"]["n_folds"] == 2
    from ktirt.sources import load_source
    users = load_source("assistments_2009", multi_skill_raw).events["user_id"].to_numpy(zero_copy_only=False).astype(str)
    folds = user_folds(users, 2, world["folds"]["seed"], world["folds"]["val_share"])
    assert world["folds"]["test_users_sha256"] == [ids_digest(f["test"]) for f in folds]
    assert not set(folds[0]["test"]) & set(folds[1]["test"])
    for f in ("0", "1"):
        recs = {m: world["models"][m]["folds"][f] for m in world["models"] if f in world["models"][m]["folds"]}
        assert len({r["scored_sha256"] for r in recs.values()}) == 1  # the same responses for every model
        assert len({r["scored_responses"] for r in recs.values()}) == 1
        assert ids_digest(scored_rows(users, folds[int(f)]["test"])) == recs["dkt"]["scored_sha256"]
        for m, rec in recs.items():
            assert 0 < rec["auc"] < 1 and rec["epochs"] == 1 and rec["train_seqs_per_s"] > 0
            frame = pd.read_csv(out / "tiny" / f"{m}_fold{f}.csv")
            test = frame[frame["split"] == "test"]
            assert len(test) == rec["scored_responses"] and set(test["user_id"].astype(str)) <= set(folds[int(f)]["test"])
            assert list(frame.columns) == ["user_id", "item_id", "timestamp", "split", "kc_ids", "y_true", "y_pred"]
            # the AUC recorded is the AUC of the predictions written, recomputed here and by kt-audit where installed
            assert roc_auc_score(test["y_true"], test["y_pred"]) == pytest.approx(rec["auc"], abs=1e-4)
            if KT_AUDIT:
                assert rec["kt_audit"]["ok"] and rec["kt_audit"]["recomputed_test_auc"] == pytest.approx(rec["auc"], abs=1e-4)
            else:
                assert rec["kt_audit"] == {"status": "kt-audit not installed"}
            controls = rec["controls"]
            assert controls["ok"] == 1 and controls["future_masking"] == {
                "ok": 1, "max_change": controls["future_masking"]["max_change"], "checked": controls["future_masking"]["checked"]}
            assert controls["future_masking"]["max_change"] <= 1e-5 and controls["future_masking"]["checked"] > 10
            assert 0 < controls["shuffled_labels"]["auc"] < 1 and controls["shuffled_labels"]["epochs"] == 1
    for m, rec in world["models"].items():
        aucs = [r["auc"] for r in rec["folds"].values()]
        assert rec["auc_mean"] == pytest.approx(np.mean(aucs), abs=1e-6)
        assert rec["failed"] is False and rec["controls_failed_folds"] == [] and rec["controls_checked_folds"]
    # the shuffled-label control alone, rerun on a stored fold: the rest of the record kept
    before = world["models"]["dkt"]["folds"]["0"]
    r = CliRunner().invoke(main, [*args, "--models", "dkt", "--folds-to-run", "0", "--shuffled-control-only"])
    assert r.exit_code == 0, r.output + repr(r.exception)
    after = json.loads(results.read_text())["worlds"]["tiny"]["models"]["dkt"]["folds"]["0"]
    assert {k: v for k, v in after.items() if k != "controls"} == {k: v for k, v in before.items() if k != "controls"}
    assert after["controls"]["future_masking"] == before["controls"]["future_masking"]
    r = CliRunner().invoke(main, [*args, "--models", "sakt", "--folds-to-run", "0", "--shuffled-control-only"])
    assert r.exit_code != 0 and "holds no result of sakt on fold 0" in r.output


def test_the_blend_stacks_members_trained_once_per_fold_and_goes_through_both_controls(multi_skill_raw, tmp_path,
                                                                                       monkeypatch):
    import _kt_runners as runners
    from kt_benchmark import main

    trained = []
    for name, run in list(runners.KTIRT_RUNNERS.items()):
        monkeypatch.setitem(runners.KTIRT_RUNNERS, name, lambda *a, _n=name, _r=run: trained.append(_n) or _r(*a))
    monkeypatch.setattr(runners, "_RUNS", {})
    results = tmp_path / "kt_benchmark.json"
    r = CliRunner().invoke(main, ["--source", "assistments_2009", "--raw-dir", str(multi_skill_raw), "--name", "tiny",
                                  "--folds", "2", "--folds-to-run", "0", "--max-epochs", "1", "--patience", "1",
                                  "--set", "model.emb_size=16", "--results", str(results), "--out-dir",
                                  str(tmp_path / "out"), "--control-tolerance", "0.5",
                                  "--models", "ktirt_sakt,ktirt_wdirt,ktirt_dkt,ktirt_blend"])
    assert r.exit_code == 0, r.output + repr(r.exception)
    # each member once on the fold and once on its shuffled labels (WD-IRT once more: future masking retrains it);
    # the blend trained nothing of its own
    assert sorted(trained) == sorted(["ktirt_sakt"] * 2 + ["ktirt_wdirt"] * 3 + ["ktirt_dkt"] * 2 + ["ktirt_blend"] * 2)
    models = json.loads(results.read_text())["worlds"]["tiny"]["models"]
    blend = models["ktirt_blend"]["folds"]["0"]
    assert set(blend["weights"]) == {"sakt", "wdirt", "dkt", "intercept"} and 0 < blend["auc"] < 1
    assert blend["scored_sha256"] == models["ktirt_sakt"]["folds"]["0"]["scored_sha256"]
    assert blend["controls"]["future_masking"]["ok"] == 1 and blend["controls"]["future_masking"]["checked"] > 10
    assert 0 < blend["controls"]["shuffled_labels"]["auc"] < 1
    assert set(models["ktirt_blend"]["settings"]) == {"model", "train", "wdirt", "dkt", "blend"}


@pytest.fixture(scope="module")
def single_skill_raw(tiny_tables, tmp_path_factory):
    """Every response with one skill: the skill_builder_data.csv's skill ids are then bare numbers ("11")."""
    ev = tiny_tables.events
    skills = pa.array([row[:1] for row in ev["skill_ids"].to_pylist()], ev["skill_ids"].type)
    ev = ev.set_column(ev.schema.get_field_index("skill_ids"), "skill_ids", skills)
    return events_as_assistments_2009(ev, tmp_path_factory.mktemp("a09_single"))


@pytest.mark.skipif(not KT_AUDIT, reason="kt-audit is not installed (requirements-dev.txt)")
@pytest.mark.parametrize("raw", ["single_skill_raw", "multi_skill_raw"])
def test_kt_audit_reads_skill_lists_of_single_and_mixed_skill_sources(raw, request, tmp_path):
    """One fold of pyKT's DKT; its tolerance 0 fails the shuffled-label control, so the run exits non-zero, yet the
    fold's result, kt-audit's verdict and the controls are all stored and the model is marked failed."""
    from kt_benchmark import main

    results, out = tmp_path / "kt_benchmark.json", tmp_path / "out"
    r = CliRunner().invoke(main, ["--source", "assistments_2009", "--raw-dir", str(request.getfixturevalue(raw)),
                                  "--name", "tiny", "--folds", "2", "--folds-to-run", "0", "--models", "dkt",
                                  "--max-epochs", "1", "--patience", "1", "--control-tolerance", "0",
                                  "--results", str(results), "--out-dir", str(out)])
    assert r.exit_code == 1 and "leakage control failed" in r.output and "dkt fold 0" in r.output, r.output
    world = json.loads(results.read_text())["worlds"]["tiny"]
    assert (world["data"]["multi_skill_share"] > 0.1) == (raw == "multi_skill_raw")
    model = world["models"]["dkt"]
    rec = model["folds"]["0"]
    assert rec["kt_audit"]["ok"] is True and rec["kt_audit"]["verdict"] in ("pass", "warn", "fail"), rec["kt_audit"]
    assert rec["kt_audit"]["recomputed_test_auc"] == pytest.approx(rec["auc"], abs=1e-4)
    assert rec["controls"]["shuffled_labels"]["ok"] == 0 and rec["controls"]["future_masking"]["ok"] == 1
    assert model["failed"] is True and model["controls_failed_folds"] == ["0"]
    kcs = pd.read_csv(out / "tiny" / "dkt_fold0.csv")["kc_ids"]
    assert kcs.map(type).eq(str).all() and kcs.map(lambda v: json.loads(v) and all(isinstance(k, str) for k in json.loads(v))).all()
    if raw == "single_skill_raw":
        assert kcs.str.fullmatch(r'\["\d+"\]').all()  # the form that read back as integers before


@pytest.mark.skipif(not KT_AUDIT, reason="kt-audit is not installed (requirements-dev.txt)")
def test_an_audit_that_cannot_run_is_a_failed_audit_not_a_crash(tmp_path):
    import _kt_audit

    frame = pd.DataFrame({"user_id": ["u1", "u1", "u2"], "item_id": ["i1", "i2", "i1"],
                          "timestamp": ["2020-01-01T00:00:00.000Z", "2020-01-01T00:00:01.000Z", "2020-01-01T00:00:00.000Z"],
                          "split": ["train", "test", "test"], "kc_ids": [11, 12, 11], "y_true": [1, 0, 1],
                          "y_pred": [0.5, 0.4, 0.7]})
    path = _kt_audit.write_predictions(frame, tmp_path / "bare_numbers.csv")  # the old form: bare skill numbers
    verdict = _kt_audit.audit(path, 1.0)
    assert verdict["ok"] is False and "kc_ids" in verdict["error"], verdict


def test_the_shuffled_control_permutes_each_splits_outcomes_apart(tiny_tables):
    from _kt_controls import shuffled_data
    from _kt_data import BenchData

    data = BenchData(tiny_tables.events, tiny_tables.unit_tests, tiny_tables.items, "synthetic", ROOT)
    split = user_folds(data.users, 3, seed=1, val_share=0.25)[0]
    shuffled = shuffled_data(data, split, seed=7)
    for table, new in ((data.events, shuffled.events), (data.unit_tests, shuffled.unit_tests)):
        user = table["user_id"].to_numpy(zero_copy_only=False).astype(str)
        y, z = (pa.compute.fill_null(t["correct"], -1).to_numpy() for t in (table, new))
        assert ((y == -1) == (z == -1)).all()  # a missing score stays missing
        for part in ("train", "val", "test"):
            rows = np.isin(user, split[part])
            assert z[rows].sum() == y[rows].sum() and (z[rows] != y[rows]).any()  # each side's own outcomes, moved


def test_the_shuffled_control_catches_a_model_reading_its_own_outcome_and_not_one_reading_the_past(tiny_tables):
    """Scored against the test students' shuffled outcomes, which are also the history it reads, a model that
    reads only earlier outcomes sits at 0.5 (with the real test outcomes, the student's previous answer alone
    predicts the next one: the old control's bias), and one that reads the outcome it predicts does not."""
    from _kt_controls import shuffled_labels
    from _kt_data import BenchData

    data = BenchData(tiny_tables.events, tiny_tables.unit_tests, tiny_tables.items, "synthetic", ROOT)
    split = user_folds(data.users, 3, seed=1, val_share=0.25)[0]
    scored = scored_rows(data.users, split["test"])

    def previous_answer(_name, d, _ex, _split, _settings):
        y = d.events["correct"].to_numpy().astype(float)
        return np.r_[0.5, y[:-1]] * 0.8 + 0.1, {"epochs": 1}, None

    def own_answer(_name, d, _ex, _split, _settings):
        return d.events["correct"].to_numpy().astype(float) * 0.8 + 0.1, {"epochs": 1}, None

    honest = shuffled_labels(previous_answer, "past", data, None, split, {}, scored, seed=3, tolerance=0.02)
    real = data.events["correct"].to_numpy()
    assert roc_auc_score(real[scored], np.r_[0.5, real[:-1]][scored]) > 0.55  # what the real history gives away
    assert abs(honest["auc"] - 0.5) < 0.05 and honest["scored_against"] == "shuffled test outcomes"
    leaky = shuffled_labels(own_answer, "own", data, None, split, {}, scored, seed=3, tolerance=0.02)
    assert leaky["auc"] == 1.0 and leaky["ok"] == 0
