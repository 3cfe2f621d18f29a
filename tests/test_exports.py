"""Joinable exports: key types identical to events.parquet, causal mastery, the join check, demo_trace."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import torch

from conftest import ROOT, params_file
from ktirt.errors import InputError, SettingsError
from ktirt.events import EVENTS_SCHEMA
from ktirt.exports.build import ExportSettings, run_export
from ktirt.exports.join import run_validation, validate_join
from ktirt.exports.trace import match_topic, trace
from ktirt.irt.wdirt_run import WDIRTSettings, run_wdirt
from ktirt.kt.sakt_run import SaktRun, check_vocabulary, load_checkpoint, run_sakt
from ktirt import user_batches
from ktirt.kt.scoring import Scorer, _typical_queries, known_item_skills, score_responses, scoring_windows, typical_items
from ktirt.catalog import skill_descriptions
from ktirt.truth import truth_dir
from ktirt.settings import ModelSettings, TrainSettings
from ktirt.split import split_users

SAKT_MODEL = ModelSettings(emb_size=16, num_heads=2, num_blocks=1, dropout=0.1, seq_len=12, min_item_count=3)
SAKT_TRAIN = TrainSettings(batch_size=16, lr=0.01, epochs=3, patience=2, seed=5, device="cpu", threads=1)
WDIRT = dict(history_len=8, hidden=16, epochs=2, patience=1, batch_size=256, lr=0.02, seed=3, threads=1, drift_min_responses=5)
SETTINGS = ExportSettings(mastery_items=2, threads=1, device="cpu")


@pytest.fixture(scope="module")
def run(tiny_tables, tiny_raw, tmp_path_factory):
    """The tiny simulation through both engines and the export, as the stages would do it."""
    root = tmp_path_factory.mktemp("export")
    events = tiny_tables.events
    split = split_users(events["user_id"].to_numpy(zero_copy_only=False), 0.6, 0.2, seed=3)
    sakt = run_sakt(events, split, SaktRun(SAKT_MODEL, SAKT_TRAIN, truth_dir(tiny_raw)))
    sakt.save(root / "sakt", root / "plots")
    wdirt = run_wdirt(events, tiny_tables.unit_tests, split, WDIRTSettings(**WDIRT))
    wdirt.save(root / "wdirt", root / "plots")
    pq.write_table(events, root / "events.parquet")
    descriptions = skill_descriptions(tiny_tables.skills)
    out = run_export(events, split, root / "sakt" / "model.pt", root / "wdirt", descriptions, SETTINGS, root / "exports")
    return {"root": root, "exports": root / "exports", "split": split, "events": events, "metrics": out.metrics,
            "descriptions": descriptions,
            "engine_metrics": {"sakt": sakt.metrics, "wdirt": wdirt.metrics}}


def _table(run, name):
    return pq.read_table(run["exports"] / f"{name}.parquet")


def test_every_key_is_typed_as_in_events(run):
    for name in ("sakt_predictions", "sakt_student_state", "item_params", "item_drift"):
        schema = pq.read_schema(run["exports"] / f"{name}.parquet")
        for key in ("user_id", "item_id", "timestamp"):
            if key in schema.names:
                assert schema.field(key) == EVENTS_SCHEMA.field(key), (name, key)
        if "skill_id" in schema.names:
            assert schema.field("skill_id").type == pa.string()


def test_predictions_and_state_cover_every_response(run):
    events = run["events"]
    pred = _table(run, "sakt_predictions")
    assert pred.num_rows == events.num_rows
    assert pred["user_id"].equals(events["user_id"]) and pred["timestamp"].equals(events["timestamp"])
    p = pred["predicted"].to_numpy()
    assert np.isfinite(p).all() and ((p > 0) & (p < 1)).all()
    test_users = set(run["split"]["test"])
    assert set(pred.filter(pc.equal(pred["split"], "test"))["user_id"].to_pylist()) == test_users
    state = _table(run, "sakt_student_state").to_pandas()
    m = state["mastery"].to_numpy()
    assert np.isfinite(m).all() and ((m >= 0) & (m <= 1)).all()
    with_skill = pc.sum(pc.greater(pc.list_value_length(events["skill_ids"]), 0)).as_py()
    assert len(state) + run["metrics"]["responses_without_skill"] == events.num_rows == len(state) + (events.num_rows - with_skill)
    # attempts count 1, 2, 3, ... within each student and skill, in time order
    expect = state.groupby(["user_id", "skill_id"], sort=False).cumcount() + 1
    assert (state["n_attempts"] == expect).all()


def test_mastery_is_causal_and_moves_with_the_answer(run):
    """Flipping a student's later answers leaves the mastery before them unchanged and changes the one after."""
    events = run["events"]
    model, vocab, mv = load_checkpoint(run["root"] / "sakt" / "model.pt")
    seqs = check_vocabulary(vocab, events, run["split"], "model.pt")
    params = _table(run, "item_params")
    typical = typical_items(known_item_skills(seqs.item, seqs.skills), vocab, mv, dict(zip(params["item_id"].to_pylist(), params["difficulty"].to_pylist())), 2)
    _, before = score_responses(model, seqs, mv, typical)
    u = 5
    lo, hi = seqs.offsets[u], seqs.offsets[u + 1]
    cut = (lo + hi) // 2
    while seqs.skill[cut] < 0:
        cut += 1
    flipped = seqs.correct.copy()
    flipped[cut:hi] = 1 - flipped[cut:hi]
    seqs.correct = flipped
    _, after = score_responses(model, seqs, mv, typical)
    np.testing.assert_array_equal(before[:cut], after[:cut])
    np.testing.assert_array_equal(before[hi:], after[hi:])
    assert before[cut, 0] != after[cut, 0]


def test_the_copies_of_a_window_score_alike_in_one_pass_or_in_several(run):
    """The scorer sends a window's 1 + K x typical copies through SAKT batch_size at a time (the export's peak
    was one pass over all of them): the numbers are those of one pass (bit for bit where measured; a BLAS may
    block a matrix product by its rows, so 1e-6 is allowed)."""
    events = run["events"]
    model, vocab, mv = load_checkpoint(run["root"] / "sakt" / "model.pt")
    seqs = check_vocabulary(vocab, events, run["split"], "model.pt")
    params = _table(run, "item_params")
    typical = typical_items(known_item_skills(seqs.item, seqs.skills), vocab, mv, dict(zip(params["item_id"].to_pylist(), params["difficulty"].to_pylist())), 2)
    _, _, windows = scoring_windows(seqs, mv, model.cfg.seq_len)
    b = {k: v[:16] for k, v in windows.items()}
    n_k, n_typ = b["k_skill"].shape[-1], typical.shape[1]
    queries = _typical_queries(typical, mv, n_k)
    sizes = []
    forward = model.forward
    model.forward = lambda t: (sizes.append(len(t["q_item"])), forward(t))[1]
    with torch.no_grad():
        several = Scorer(model, mv, typical, 16, torch.device("cpu"))._asked(b, queries, n_k, n_typ)
        assert max(sizes) == 16 and len(sizes) == 1 + n_k * n_typ
        one = Scorer(model, mv, typical, 16 * (1 + n_k * n_typ), torch.device("cpu"))._asked(b, queries, n_k, n_typ)
    assert sizes[-1] == 16 * (1 + n_k * n_typ)
    np.testing.assert_allclose(several, one, rtol=0, atol=1e-6)


def test_reports_read_in_a_minute(run):
    slices = (run["exports"] / "behavior_slices.md").read_text()
    for section in ("## By help", "## By latency", "## By problem type", "## By item drift"):
        assert section in slices
    report = (run["exports"] / "mastery_report.md").read_text()
    for section in ("## Mastery at the end of the data", "## Students with falling mastery", "## Skills with the most drifting items"):
        assert section in report
    assert run["metrics"]["student_skill_pairs"] > 0


def test_a_drifting_multi_skill_item_counts_for_each_of_its_skills():
    from ktirt.exports.reports import mastery_report

    ts = pa.array([0, 1000], pa.timestamp("ms", "UTC"))
    state = pa.table({"user_id": ["u", "u"], "skill_id": ["a", "b"], "timestamp": ts, "mastery": [0.5, 0.6],
                      "n_attempts": [1, 1]})
    skills = pa.table({"skill_id": ["a", "b", "c"], "description": ["", "", ""]})
    params = pa.table({"item_id": ["i1", "i2", "i3"], "skill_id": ["a", "c", None],
                       "skill_ids": pa.array([["a", "b"], ["c"], []], pa.list_(pa.string()))})
    drift = pa.table({"item_id": ["i1", "i2"], "drift_flag": [True, False]})
    report, _ = mastery_report(state, skills, params, drift, drop=0.1)
    rows = report.split("## Skills with the most drifting items")[1]
    assert "| a | 1 | 1 |" in rows and "| b | 1 | 1 |" in rows and "| c | 1 | 0 |" in rows and "(no skill)" in rows


def test_the_join_holds_on_the_tiny_run(run):
    report = run_validation(run["exports"], run["root"] / "events.parquet", 0.99, 3, 0)
    # every event item has parameters and drift windows on this run (measured); the hand-built case below
    # and validate_join's failure tests check shares under 1
    assert report.coverage == 1.0 and report.drift_coverage == 1.0 and not report.mismatches
    assert len(report.samples) == 3 and "| skill |" in report.samples[0]


def _hand_built(folder, params_items=("I1", "I2", "I3"), ts_type=pa.timestamp("ms", tz="UTC"), id_type=pa.string()):
    """Four predictions on four items; item parameters for `params_items` only."""
    folder.mkdir(parents=True, exist_ok=True)
    ts = pa.array([0, 1000, 2000, 3000], pa.int64()).cast(pa.timestamp("ms", tz="UTC")).cast(ts_type)
    keys = [pa.field("user_id", id_type, False), pa.field("item_id", pa.string(), False), pa.field("timestamp", ts_type, False)]
    pq.write_table(pa.table([pa.array(["U1", "U1", "U2", "U2"]).cast(id_type) if id_type == pa.string() else pa.array([1, 1, 2, 2], id_type),
                             pa.array(["I1", "I2", "I3", "I4"]), ts, pa.array(["test"] * 4),
                             pa.array([0.5] * 4, pa.float32()), pa.array([1, 0, 1, 0], pa.int8())],
                            schema=pa.schema([*keys, ("split", pa.string()), ("predicted", pa.float32()), ("actual", pa.int8())])),
                   folder / "sakt_predictions.parquet")
    state = pa.table({"user_id": pa.array(["U1", "U2"]), "skill_id": pa.array(["S", "S"]), "timestamp": ts.slice(0, 2),
                      "item_id": pa.array(["I1", "I3"]), "mastery": pa.array([0.4, 0.6], pa.float32()),
                      "n_attempts": pa.array([1, 1], pa.int32())})
    pq.write_table(state.cast(pa.schema([pa.field("user_id", pa.string(), False), pa.field("skill_id", pa.string(), False),
                                         pa.field("timestamp", pa.timestamp("ms", tz="UTC"), False), pa.field("item_id", pa.string(), False),
                                         ("mastery", pa.float32()), ("n_attempts", pa.int32())])), folder / "sakt_student_state.parquet")
    n = len(params_items)
    item_field = pa.field("item_id", pa.string(), False)
    pq.write_table(pa.table({"item_id": pa.array(list(params_items)), "skill_id": pa.array(["S"] * n),
                             "difficulty": pa.array([0.0] * n), "discrimination": pa.array([1.0] * n),
                             "guessing": pa.array([0.0] * n), "n_responses": pa.array([10] * n)}).cast(
        pa.schema([item_field, ("skill_id", pa.string()), ("difficulty", pa.float64()), ("discrimination", pa.float64()),
                   ("guessing", pa.float64()), ("n_responses", pa.int64())])), folder / "item_params.parquet")
    pq.write_table(pa.table({"item_id": pa.array(["I1", "I2"]), "window_start": ts.slice(0, 2).cast(pa.timestamp("ms", tz="UTC")),
                             "drift_flag": pa.array([False, True])}).cast(
        pa.schema([item_field, pa.field("window_start", pa.timestamp("ms", tz="UTC"), False), ("drift_flag", pa.bool_())])),
        folder / "item_drift.parquet")
    pq.write_table(pa.table({"skill_id": ["S"], "description": ["a skill"], "n_items": pa.array([n], pa.int64())}),
                   folder / "skills.parquet")
    return folder


def test_coverage_on_a_hand_built_case(tmp_path):
    report = validate_join(_hand_built(tmp_path / "x"), EVENTS_SCHEMA, n_samples=2)
    assert report.coverage == pytest.approx(3 / 4)  # I4 has no parameters
    assert report.drift_coverage == pytest.approx(2 / 4)
    assert report.user_coverage == 1.0 and not report.mismatches
    assert report.failures(0.7) == []
    assert "only 75.00%" in report.failures(0.8)[0]
    m = report.metrics()
    assert m["coverage"] == 0.75 and m["schema_mismatches"] == 0 and m["rows_sakt_predictions"] == 4


@pytest.mark.parametrize("broken, expect", [
    (dict(ts_type=pa.timestamp("ms")), "sakt_predictions.parquet: column 'timestamp': type timestamp[ms]"),
    (dict(id_type=pa.int64()), "sakt_predictions.parquet: column 'user_id': type int64"),
    (dict(params_items=("I1",)), "sakt_predictions.parquet: column 'item_id': only 25.00%"),
])
def test_the_validator_fails_on_a_broken_export(tmp_path, run, broken, expect):
    folder = _hand_built(tmp_path / "exports", **broken)
    with pytest.raises(InputError, match="the join does not hold") as err:
        run_validation(folder, run["root"] / "events.parquet", 0.8, 2, 0)
    assert expect in str(err.value)
    # the stage: non-zero exit, the problem named, and no report or metrics written
    params_file(tmp_path, join={"min_coverage": 0.8, "samples": 2, "seed": 0})
    r = subprocess.run([sys.executable, str(ROOT / "stages" / "validate_join.py"), "--params", "params.yaml",
                        "--exports", "exports", "--events", str(run["root"] / "events.parquet")],
                       cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode != 0 and expect in r.stderr
    assert not (tmp_path / "exports" / "join_report.md").exists() and not (tmp_path / "metrics").exists()


def _demo(run, *args):
    return subprocess.run([sys.executable, str(ROOT / "demo_trace.py"), "--exports", str(run["exports"]), *args],
                          capture_output=True, text=True, cwd=run["root"])


def test_demo_trace_prints_real_joined_rows_and_draws_the_png(run):
    state = _table(run, "sakt_student_state").to_pandas()
    user, skill = state.iloc[len(state) // 2][["user_id", "skill_id"]]
    r = _demo(run, "--student-id", user, "--topic", skill, "--plot", "trace.png")
    assert r.returncode == 0, r.stderr
    rows = state[(state["user_id"] == user) & (state["skill_id"] == skill)]
    assert f"mastery now {rows['mastery'].iloc[-1]:.2f} after {len(rows)} attempts" in r.stdout
    assert rows["item_id"].iloc[0] in r.stdout and "difficulty" in r.stdout
    assert (run["root"] / "trace.png").read_bytes()[:4] == b"\x89PNG"
    j = json.loads(_demo(run, "--student-id", user, "--topic", skill, "--format", "json").stdout)
    assert len(j["rows"]) == len(rows) and j["rows"][0]["item_id"] == rows["item_id"].iloc[0]
    assert all(r["difficulty"] is not None for r in j["rows"])  # every item met has WD-IRT parameters
    params = _table(run, "item_params").to_pandas().set_index("item_id")
    # the difficulty in effect when the student met the item (the tiny world flags no drift, so every row here is
    # before any change: tests/test_drift_end_to_end.py checks the switch at drift_start on flagged items)
    for row in j["rows"]:
        item = params.loc[row["item_id"]]
        after = pd.notna(item["drift_start"]) and pd.Timestamp(row["timestamp"]) >= item["drift_start"]
        assert row["difficulty"] == pytest.approx(item["difficulty_current" if after else "difficulty"])


def test_demo_trace_shows_no_dates_from_a_source_without_clock_time(run, tmp_path):
    """ASSISTments 2009 events carry 1970-01-01 + order milliseconds: the trace numbers the responses instead of
    printing 1970 dates, and a drift label gives no date."""
    state = _table(run, "sakt_student_state").to_pandas()
    user, skill, item = state.iloc[len(state) // 2][["user_id", "skill_id", "item_id"]]
    stamps = np.unique(run["events"]["timestamp"].to_numpy())

    def order(ts: pd.Series) -> pd.Series:  # each response's place in time, as milliseconds after 1970
        return pd.to_datetime(np.searchsorted(stamps, ts.dt.tz_localize(None).to_numpy().astype(stamps.dtype)), unit="ms", utc=True)

    for name in ("sakt_student_state", "sakt_predictions", "item_params", "skills"):
        t = _table(run, name).to_pandas()
        if "timestamp" in t:
            t["timestamp"] = order(t["timestamp"])
        if name == "item_params":  # the student's item drifted at their first response to it
            met = t["item_id"] == item
            t.loc[met, "drift_start"] = pd.Timestamp(0, unit="ms", tz="UTC")
            t.loc[met, "difficulty_current"] = t.loc[met, "difficulty"] + 1.0
        pq.write_table(pa.Table.from_pandas(t, schema=_table(run, name).schema, preserve_index=False),
                       tmp_path / f"{name}.parquet")
    clocked = trace(run["exports"], user, skill)
    assert clocked.clock_time and " time " in clocked.text().splitlines()[2]
    t = trace(tmp_path, user, skill)
    assert not t.clock_time and "1970" not in t.text() and t.text().splitlines()[2].lstrip().startswith("order")
    assert "after +1.0" in t.text() and " on " not in "".join(t.rows["drift"])
    assert t.to_json()["clock_time"] is False


def test_demo_trace_unknown_ids_say_what_is_close(run):
    state = _table(run, "sakt_student_state").to_pandas()
    user, skill = state.iloc[0][["user_id", "skill_id"]]
    r = _demo(run, "--student-id", user[:-1], "--topic", skill)
    assert r.returncode != 0 and "no student" in r.stderr and user in r.stderr
    r = _demo(run, "--student-id", user, "--topic", "zz.QQ.Z.9")
    assert r.returncode != 0 and "no skill matches topic" in r.stderr and "closest" in r.stderr


def test_topics_by_code_prefix_or_words():
    skills = pd.DataFrame({"skill_id": ["6.RP.A.3b", "6.RP.A.1", "7.EE.B.4"],
                           "description": ["Ratios: percent of a quantity", "Ratios: understand ratio concepts", "Expressions: inequalities"]})
    assert match_topic(skills, "6.RP.A.3b")["skill_id"].tolist() == ["6.RP.A.3b"]
    assert match_topic(skills, "6.rp")["skill_id"].tolist() == ["6.RP.A.3b", "6.RP.A.1"]
    assert match_topic(skills, "ratio concepts")["skill_id"].tolist() == ["6.RP.A.1"]
    assert match_topic(skills, "6.PR").empty


def test_bad_export_settings():
    with pytest.raises(SettingsError, match="export.mastery_item: unknown setting"):
        ExportSettings.from_dict({"mastery_item": 3})
    with pytest.raises(SettingsError):
        ExportSettings.from_dict({"mastery_items": 0})


def test_the_export_over_batches_of_students_writes_the_same_files(run, tmp_path, monkeypatch):
    """events.parquet read 300 rows at a time (several batches, windows scored across their edges): every
    export file, byte for byte, and the metrics are those of the whole table in one batch."""
    monkeypatch.setattr(user_batches, "ROWS_PER_BATCH", 300)
    root = run["root"]
    assert sum(1 for _ in user_batches.user_batches(root / "events.parquet")) > 5
    out = run_export(root / "events.parquet", run["split"], root / "sakt" / "model.pt", root / "wdirt",
                     run["descriptions"], SETTINGS, tmp_path)
    assert out.metrics == run["metrics"]
    names = sorted(p.name for p in run["exports"].iterdir())
    assert names == sorted(p.name for p in tmp_path.iterdir())
    for name in names:
        assert (tmp_path / name).read_bytes() == (run["exports"] / name).read_bytes(), name
