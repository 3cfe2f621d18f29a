"""Stages on missing or corrupt intermediates (one line naming the file and the stage that writes it, no
output), interrupted writes, NaN metrics, one-outcome splits, repeated join keys and demo_trace's bad input."""

import json
import shutil
import subprocess
import sys

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import torch
import yaml

from conftest import ROOT, run_stage
from ktirt.early_stopping import EarlyStopping
from ktirt.errors import InputError, SettingsError
from ktirt.events import EVENTS_SCHEMA
from ktirt.exports.join import run_validation, validate_join
from ktirt.io import TEMP_TAG, write_json, write_parquet
from ktirt.irt.wdirt_run import WDIRTSettings, run_wdirt
from ktirt.kt.pykt_format import TEST, TRAIN_VALID, write_pykt
from ktirt.kt.sakt_run import SaktRun, run_sakt
from ktirt.kt.sequences import load_sequences
from ktirt.truth import copy_truth
from test_exports import SAKT_MODEL, SAKT_TRAIN, WDIRT, _hand_built, run  # noqa: F401  (run: the tiny pipeline)


@pytest.fixture(scope="module")
def world(run, tiny_tables, tiny_raw):
    """Every intermediate of the tiny pipeline in one folder, laid out as dvc.yaml lays them out."""
    root = run["root"] / "world"
    (root / "data" / "interim").mkdir(parents=True)
    shutil.copy(run["root"] / "events.parquet", root / "data" / "interim" / "events.parquet")
    write_parquet(tiny_tables.unit_tests, root / "data" / "interim" / "unit_tests.parquet")
    write_parquet(tiny_tables.items, root / "data" / "interim" / "items.parquet")
    write_parquet(tiny_tables.skills, root / "data" / "interim" / "skills.parquet")
    copy_truth(tiny_raw, root / "data" / "interim" / "truth")
    (root / "data" / "splits").mkdir(parents=True)
    (root / "data" / "splits" / "split.json").write_text(json.dumps(run["split"]))
    shutil.copytree(run["root"] / "sakt", root / "models" / "sakt")
    shutil.copytree(run["root"] / "wdirt", root / "models" / "wdirt")
    shutil.copytree(run["exports"], root / "data" / "exports")
    shutil.copytree(run["root"] / "plots", root / "plots" / "sakt")
    for name, value in (("train_loss", 0.6), ("val_auc", 0.7)):  # DVCLive's per-epoch files, as train_sakt writes them
        path = root / "dvclive" / "sakt" / "plots" / "metrics" / f"{name}.tsv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"step\t{name}\n1\t{value}\n2\t{value + 0.01}\n")
    events = run["events"]
    write_json({"events": events.num_rows, "users": len(pc.unique(events["user_id"])), "items": len(pc.unique(events["item_id"]))},
               root / "run_metrics" / "prepare.json")  # the report's inputs, kept apart from the stages' outputs
    for stage, metrics in run["engine_metrics"].items():
        write_json(metrics, root / "run_metrics" / f"{stage}.json")
    write_json(run_validation(run["exports"], root / "data" / "interim" / "events.parquet", 0.5, 3, 0).metrics(),
               root / "run_metrics" / "join.json")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"]["raw_dir"] = str(tiny_raw)
    params["split"]["min_students"] = 5  # the tiny world's 80 students leave 16 validation and 16 test students
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    return root


EVENTS, UNIT_TESTS, SPLIT = "data/interim/events.parquet", "data/interim/unit_tests.parquet", "data/splits/split.json"
ITEMS, SKILLS = "data/interim/items.parquet", "data/interim/skills.parquet"
SAKT_CK, PARAMS, PREDICTIONS = "models/sakt/model.pt", "models/wdirt/item_params.parquet", "data/exports/sakt_predictions.parquet"
STAGES = {  # stage: (its outputs, the intermediates it reads with the stage that writes each)
    "split": (["data/splits/new.json"], {EVENTS: "prepare"}),
    "pykt_adapt": (["data/processed/pykt", "metrics/pykt_adapt.json"], {EVENTS: "prepare", SPLIT: "split"}),
    "train_sakt": (["models/new_sakt", "metrics/sakt.json", "plots/new_sakt", "dvclive/new_sakt"], {EVENTS: "prepare", SPLIT: "split"}),
    "train_wdirt": (["models/new_wdirt", "metrics/wdirt.json", "plots/new_wdirt", "dvclive/new_wdirt"],
                    {EVENTS: "prepare", UNIT_TESTS: "prepare", ITEMS: "prepare", SPLIT: "split"}),
    "export": (["data/new_exports", "metrics/export.json"],
               {EVENTS: "prepare", SKILLS: "prepare", SPLIT: "split", SAKT_CK: "train_sakt", PARAMS: "train_wdirt"}),
    "validate_join": (["data/exports/join_report.md", "metrics/join.json", "plots/join"],
                      {EVENTS: "prepare", PREDICTIONS: "export", "data/exports/skills.parquet": "export"}),
    "report": (["data/exports/report.html"], {PREDICTIONS: "export", "run_metrics/sakt.json": "train_sakt",
                                              "data/exports/behavior_slices.parquet": "export", "plots/sakt/roc.csv": "train_sakt"}),
    "figures": (["plots/results.png", "plots/offline_template.html"],
                {"dvclive/sakt/plots/metrics/val_auc.tsv": "train_sakt"}),
}
ARGS = {
    "split": ["--out", "data/splits/new.json"],
    "train_sakt": ["--model-dir", "models/new_sakt", "--plots-dir", "plots/new_sakt", "--live-dir", "dvclive/new_sakt"],
    "train_wdirt": ["--model-dir", "models/new_wdirt", "--plots-dir", "plots/new_wdirt", "--live-dir", "dvclive/new_wdirt"],
    "report": ["--metrics", "run_metrics"],
    "export": ["--out", "data/new_exports"],
    "figures": ["--png", "plots/results.png"],
}
# every file each stage reads, cut in half; and per stage its first file missing (figures draws without a missing table)
CASES = [(stage, path, made_by, how) for stage, (_, reads) in STAGES.items() for i, (path, made_by) in enumerate(reads.items())
         for how in ("missing", "truncated") if how == "truncated" or (i == 0 and stage != "figures")]


def _break(path, how: str) -> None:
    if how == "missing":
        path.unlink()
    else:  # half the bytes: a parquet footer, a zip directory or a JSON object cut off (a CSV: nothing left)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2] if path.suffix not in (".csv", ".tsv") else b"")


def _one_error_line(r) -> str:
    lines = r.stderr.strip().splitlines()
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert [ln for ln in lines if ln.startswith("Error:")] == [lines[-1]], r.stderr[-2000:]
    return lines[-1]


@pytest.mark.parametrize("stage, path, made_by, how", CASES, ids=[f"{s}-{p.split('/')[-1]}-{h}" for s, p, _, h in CASES])
def test_missing_or_truncated_intermediate_is_one_line(world, tmp_path, stage, path, made_by, how):
    work = tmp_path / "w"
    shutil.copytree(world, work)
    _break(work / path, how)
    r = run_stage(stage, *ARGS.get(stage, []), cwd=work)
    line = _one_error_line(r)
    assert line.startswith(f"Error: {path}: ") and f"(written by stage '{made_by}'; run `dvc repro {made_by}`)" in line
    assert ("missing" if how == "missing" else "truncated") in line
    for out in STAGES[stage][0]:
        assert not (work / out).exists(), out
    assert not [p for p in work.rglob(f"*{TEMP_TAG}*")]


def test_wrong_schema_names_the_column(world, tmp_path):
    work = tmp_path / "w"
    shutil.copytree(world, work)
    events = pq.read_table(work / EVENTS)
    pq.write_table(events.set_column(events.schema.get_field_index("correct"), "correct", events["correct"].cast(pa.string())),
                   work / EVENTS)
    line = _one_error_line(run_stage("pykt_adapt", cwd=work))
    assert line == (f"Error: {EVENTS}: column 'correct' is string, expected int8 "
                    "(written by stage 'prepare'; run `dvc repro prepare`)")
    (work / SPLIT).write_text(json.dumps({"seed": 1, "train": ["a"], "val": "b", "test": []}))
    line = _one_error_line(run_stage("split", "--events", EVENTS.replace("events", "nothing"), cwd=work))
    assert "nothing.parquet: missing (written by stage 'prepare'" in line
    line = _one_error_line(run_stage("train_sakt", "--events", str(world / EVENTS), cwd=work))
    assert line.startswith(f"Error: {SPLIT}: key 'val' is not a list of user ids")


# interrupted writes ---------------------------------------------------------------------------------------------

KILLED_WRITE = """
import os, sys
from ktirt.io import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    tmp.write_text("half")
    os._exit(9)  # as kill -9: no `finally` runs
"""


def test_an_interrupted_write_leaves_temps_the_next_write_removes(tmp_path):
    out = tmp_path / "m.json"
    assert subprocess.run([sys.executable, "-c", KILLED_WRITE, str(out)]).returncode == 9
    left = [p.name for p in tmp_path.iterdir()]
    assert not out.exists() and len(left) == 1 and left[0].startswith(f".m.json{TEMP_TAG}")
    legacy = tmp_path / ".m.json.ab12cd_9"  # what the writer before TEMP_TAG left: tempfile.mkdtemp's 8 characters
    legacy.mkdir()
    (legacy / "m.json").write_text("half")
    not_ours = [tmp_path / ".m.json.zz99zz99", tmp_path / ".m.json.keep", tmp_path / ".other.json.ktirt-tmp-x"]
    for p in not_ours:
        p.mkdir()
        (p / "notes.txt").write_text("someone else's")
    write_json({"a": 1}, out)
    assert json.loads(out.read_text()) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["m.json", *(p.name for p in not_ours)])


# NaN metrics and one-outcome splits ---------------------------------------------------------------------------

@pytest.mark.parametrize("metrics, key", [({"val_auc": float("nan")}, "val_auc"),
                                          ({"a": 1, "b": {"c": [0.5, float("inf")]}}, "b.c[1]")])
def test_nan_metrics_are_refused_naming_the_key(tmp_path, metrics, key):
    with pytest.raises(InputError, match=rf"m\.json: key '{re_escape(key)}' is (nan|inf): not written"):
        write_json(metrics, tmp_path / "m.json")
    assert not list(tmp_path.iterdir())


def re_escape(s):
    import re

    return re.escape(s)


def test_early_stopping_always_keeps_a_state():
    model = torch.nn.Linear(1, 1)
    stop = EarlyStopping(patience=2)
    assert not stop.step(1, float("nan"), model) and stop.best_state is not None and stop.best_epoch == 1
    with torch.no_grad():
        model.weight.fill_(7.0)
    assert not stop.step(2, 0.6, model) and stop.best_epoch == 2
    assert not stop.step(3, float("nan"), model) and stop.step(4, 0.5, model)  # two epochs without improvement
    with torch.no_grad():
        model.weight.fill_(0.0)
    stop.restore(model)
    assert model.weight.item() == 7.0 and stop.best_score == 0.6


def _all_correct(events: pa.Table, users: list[str]) -> pa.Table:
    mask = pc.is_in(events["user_id"], value_set=pa.array(users))
    correct = pc.if_else(mask, pa.scalar(1, pa.int8()), events["correct"])
    return events.set_column(events.schema.get_field_index("correct"), events.schema.field("correct"), correct)


def test_one_outcome_validation_is_a_clear_error(run, tiny_tables):
    events = _all_correct(run["events"], run["split"]["val"])
    with pytest.raises(InputError, match=r"validation students' responses: all correct, AUC undefined"):
        run_sakt(events, run["split"], SaktRun(SAKT_MODEL, SAKT_TRAIN))
    with pytest.raises(InputError, match=r"validation students' in-unit responses: all correct, AUC undefined"):
        run_wdirt(events, tiny_tables.unit_tests, run["split"], WDIRTSettings(**WDIRT))
    with pytest.raises(InputError, match=r"test students' responses: all correct"):
        run_sakt(_all_correct(run["events"], run["split"]["test"]), run["split"], SaktRun(SAKT_MODEL, SAKT_TRAIN))


def test_one_outcome_validation_stops_train_sakt_before_output(world, tmp_path, run):
    work = tmp_path / "w"
    shutil.copytree(world, work)
    pq.write_table(_all_correct(run["events"], run["split"]["val"]), work / EVENTS)
    line = _one_error_line(run_stage("train_sakt", *ARGS["train_sakt"], cwd=work))
    assert line.startswith("Error: events.parquet: column 'correct': validation students' responses: all correct")
    assert not (work / "models" / "new_sakt").exists() and not (work / "metrics").exists()


# pyKT files: counted as written -------------------------------------------------------------------------------

def test_pykt_counts_what_its_files_hold(run, tmp_path):
    seqs, vocab = load_sequences(run["events"], run["split"])
    with pytest.raises(SettingsError, match="pykt.seq_len: must be at least 2"):
        write_pykt([seqs], seqs.split, vocab, tmp_path / "one", seq_len=1, folds=3, seed=0)
    assert not (tmp_path / "one").exists()
    counts = write_pykt([seqs], seqs.split, vocab, tmp_path / "p", seq_len=3, folds=3, seed=0)
    held = 0
    for name in (TRAIN_VALID, TEST):
        rows = [line.split('"')[5].split(",") for line in (tmp_path / "p" / name).read_text().splitlines()[1:]]
        uids = [line.split(",")[1] for line in (tmp_path / "p" / name).read_text().splitlines()[1:]]
        positions = sum(sum(v != "-1" for v in r) for r in rows)
        held += positions - (len(uids) - len(set(uids)))  # a continuation window repeats one response
    assert counts["responses"] == held == run["events"].num_rows


# join keys ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("table, expect", [
    ("item_params", "item_params.parquet: columns (item_id) are not unique: 1 keys repeat, e.g. item_id=I1 (2 rows)"),
    ("sakt_predictions", "sakt_predictions.parquet: columns (user_id, item_id, timestamp) are not unique: 1 keys repeat, "
                         "e.g. user_id=U1, item_id=I1, timestamp=1970-01-01 00:00:00+00:00 (2 rows)"),
    ("item_drift", "item_drift.parquet: columns (item_id, window_start) are not unique"),
    ("skills", "skills.parquet: columns (skill_id) are not unique: 1 keys repeat, e.g. skill_id=S (2 rows)"),
    # a per-student table is checked a student at a time, so it must be sorted by user_id as export writes it
    ("sakt_predictions@end", "sakt_predictions.parquet: not sorted by user_id as export writes it, so its keys "
                             "(user_id, item_id, timestamp) cannot be checked a student at a time (rerun export)"),
])
def test_repeated_join_keys_fail_validate_join(tmp_path, run, table, expect):
    folder = _hand_built(tmp_path / "exports")
    table, _, where = table.partition("@")
    t = pq.read_table(folder / f"{table}.parquet")
    copied = [t, t.slice(0, 1)] if where == "end" or table not in ("sakt_predictions", "sakt_student_state") else \
        [t.slice(0, 1), t]  # a repeated first row keeps the table sorted
    pq.write_table(pa.concat_tables(copied), folder / f"{table}.parquet")
    with pytest.raises(InputError, match="the join does not hold") as err:
        run_validation(folder, run["root"] / "events.parquet", 0.5, 1, 0)
    assert expect in str(err.value)


def test_the_tiny_exports_have_unique_keys_and_a_repeated_one_is_reported(run, tmp_path):
    """validate_join reports what run_validation raises on (so `.duplicates == []` after run_validation could
    never fail): none in the tiny exports, and the one a copied student-state row makes."""
    assert validate_join(run["exports"], EVENTS_SCHEMA, n_samples=1).duplicates == []
    copy = tmp_path / "exports"
    shutil.copytree(run["exports"], copy)
    state = pq.read_table(copy / "sakt_student_state.parquet")
    pq.write_table(pa.concat_tables([state.slice(0, 6), state.slice(5)]), copy / "sakt_student_state.parquet")
    repeated = validate_join(copy, EVENTS_SCHEMA, n_samples=1).duplicates
    assert len(repeated) == 1 and repeated[0].startswith(
        "sakt_student_state.parquet: columns (user_id, skill_id, timestamp, item_id) are not unique: 1 keys repeat")


# demo_trace -------------------------------------------------------------------------------------------------------

def _demo(run, *args, cwd=None):
    return subprocess.run([sys.executable, str(ROOT / "demo_trace.py"), "--exports", str(run["exports"]), *args],
                          capture_output=True, text=True, cwd=cwd or run["root"])


def _user_skill(run):
    state = pq.read_table(run["exports"] / "sakt_student_state.parquet").to_pandas()
    return state.iloc[0][["user_id", "skill_id"]]


@pytest.mark.parametrize("topic, expect", [
    ("", "--topic is empty"), ("   ", "--topic is empty"),
    ("6.([", "--topic '6.([': ( [ cannot be part of a skill code or description word (topics are matched literally"),
    ("ratio.*", "--topic 'ratio.*': * cannot be part"),
])
def test_demo_trace_refuses_empty_and_pattern_topics(run, topic, expect):
    user, _ = _user_skill(run)
    r = _demo(run, "--student-id", user, "--topic", topic)
    assert _one_error_line(r).startswith(f"Error: {expect}") and r.stdout == ""


def test_demo_trace_caps_what_it_echoes(run):
    user, skill = _user_skill(run)
    r = _demo(run, "--student-id", "x" * 100_000, "--topic", skill)
    line = _one_error_line(r)
    assert f"no student '{'x' * 80}…'" in line and len(r.stderr) < 2000
    r = _demo(run, "--student-id", user, "--topic", "fraction " * 5000)
    assert "no skill matches topic" in _one_error_line(r) and len(r.stderr) < 2000


@pytest.mark.parametrize("plot, expect", [("a_file/trace.png", "a_file is a file, not a folder"),
                                          ("a_folder", "'a_folder' is a directory"),  # click's own check
                                          ("trace.xyz", "unknown image type '.xyz'")])
def test_demo_trace_checks_the_plot_path_before_printing(run, tmp_path, plot, expect):
    (tmp_path / "a_file").write_text("")
    (tmp_path / "a_folder").mkdir()
    user, skill = _user_skill(run)
    r = _demo(run, "--student-id", user, "--topic", skill, "--plot", plot, cwd=tmp_path)
    line = _one_error_line(r)
    assert line.startswith("Error: ") and plot in line and expect in line and r.stdout == ""
