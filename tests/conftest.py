"""Shared fixtures: a tiny simulated EDM Cup dataset (seconds to make) and a hand-written one whose every
event is known in advance."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

from ktirt.simulate import SimulationConfig, simulate
from ktirt.sources import load_source
from ktirt.split import split_users

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(seed=11, n_students=80, n_skills=4, class_size=20, units_per_class=2, assignments_per_unit=2,
            problems_per_assignment=8, unit_test_size=3, drift_fraction=0.05)


@pytest.fixture(scope="session")
def tiny_raw(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sim") / "synthetic"
    simulate(SimulationConfig.from_dict(TINY), out)
    return out


@pytest.fixture(scope="session")
def tiny_tables(tiny_raw):
    return load_source("synthetic", tiny_raw)  # the canonical tables, items and skills included


A09_HEADER = ("order_id,assignment_id,user_id,assistment_id,problem_id,original,correct,attempt_count,ms_first_response,"
              "tutor_mode,answer_type,sequence_id,student_class_id,position,type,base_sequence_id,skill_id,skill_name,"
              "teacher_id,school_id,hint_count,hint_total,overlap_time,template_id,answer_id,answer_text,first_action,"
              "bottom_hint,opportunity,opportunity_original")


@pytest.fixture(scope="session")
def split(tiny_tables):
    """The tiny simulation's students split 60 / 20 / 20 (seed 3): the split the engines' tests share."""
    return split_users(tiny_tables.events["user_id"].to_numpy(zero_copy_only=False), 0.6, 0.2, seed=3)


def events_as_assistments_2009(events, folder: Path) -> Path:
    """Write canonical events as a latin-1 `skill_builder_data.csv` with the release's real header: one row per
    (response, skill), chronological order_ids, skill names with accents."""
    ev = events.to_pandas().sort_values(["timestamp", "user_id"], kind="stable").reset_index(drop=True)
    ev["order_id"] = range(1, len(ev) + 1)
    ev = ev.explode("skill_ids")
    codes = sorted(ev["skill_ids"].dropna().unique())
    skill_id = ev["skill_ids"].map({c: str(10 + i) for i, c in enumerate(codes)})
    rows = pd.DataFrame({c: "" for c in A09_HEADER.split(",")}, index=ev.index)
    rows = rows.assign(order_id=ev["order_id"], assignment_id=ev["action_sequence_id"], user_id=ev["user_id"],
                       problem_id=ev["item_id"], correct=ev["correct"], attempt_count=ev["attempt_count"],
                       ms_first_response=ev["latency_ms"], answer_type=ev["problem_type"], skill_id=skill_id,
                       skill_name=ev["skill_ids"].map(lambda c: f"Fracción {c}" if isinstance(c, str) else ""),
                       hint_count=ev["hint_count"], first_action=ev["help_requested"].astype(int), bottom_hint=0)
    folder.mkdir(parents=True, exist_ok=True)
    rows.to_csv(folder / "skill_builder_data.csv", index=False, encoding="latin-1")
    return folder


def params_file(folder: Path, **sections: dict) -> str:
    """The committed params.yaml with some settings changed (section -> {key: value}), written into `folder`:
    every stage checks the whole file (ktirt.settings), so a test's params start from the real ones."""
    import yaml

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for name, values in sections.items():
        params[name] = {**params[name], **values}
    path = Path(folder) / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return str(path)


def run_stage(name: str, *args: str, cwd: Path | None = None):
    """Run a stage script as DVC would, returning a CompletedProcess (its exit status, stdout and stderr, logging
    included). The stage's Click command runs in this process: the stage wrapper, its checks and its error lines are
    the same code, and only the interpreter start and the imports of torch, sklearn and pandas (seconds a stage)
    are paid once per session. tests/test_pipeline_dvc.py runs every stage as its own process, through DVC."""
    return _stage_in_process(name, list(args), cwd)


def _stage_command(name: str):
    """The Click command `main` of stages/<name>.py, imported once (stages import `_stage` from beside them)."""
    import importlib.util

    if str(ROOT / "stages") not in sys.path:
        sys.path.insert(0, str(ROOT / "stages"))
    module = sys.modules.get(f"ktirt_stage_{name}")
    if module is None:
        spec = importlib.util.spec_from_file_location(f"ktirt_stage_{name}", ROOT / "stages" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[spec.name] = module
    return module.main


def _stage_in_process(name: str, args: list[str], cwd: Path | None):
    import contextlib
    import io
    import logging
    import os
    import subprocess
    import traceback

    command, out, err = _stage_command(name), io.StringIO(), io.StringIO()
    root = logging.getLogger()
    handler, level = logging.StreamHandler(err), root.level
    from _stage import LOG_FORMAT  # importable once a stage is (stages/ is then on sys.path)

    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        with contextlib.chdir(cwd or os.getcwd()), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                command.main(args=args, prog_name=f"{name}.py", standalone_mode=True)
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            except Exception:  # what the interpreter would print before exiting 1
                traceback.print_exc(file=err)
                code = 1
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    return subprocess.CompletedProcess([f"stages/{name}.py", *args], code, out.getvalue(), err.getvalue())


# a hand-written EDM Cup release: two students, one in-unit log each, one unit test
T0 = 1_664_000_000.0


def hand_written_edm(folder: Path, **replace: pd.DataFrame) -> Path:
    """Write the minimal EDM Cup files (real columns); `replace` swaps in a table by file stem."""
    folder.mkdir(parents=True, exist_ok=True)
    a = "assignment_log_id"
    rows = [
        # log L1 (student S1): P1 answered right; P2 hint first; P3 wrong then right; P4 open response; P5 never answered
        ("L1", T0 + 0, None, "assignment_started"),
        ("L1", T0 + 1, "P1", "problem_started"), ("L1", T0 + 31, "P1", "correct_response"), ("L1", T0 + 32, "P1", "problem_finished"),
        ("L1", T0 + 40, "P2", "problem_started"), ("L1", T0 + 45, "P2", "hint_requested"), ("L1", T0 + 50, "P2", "hint_requested"),
        ("L1", T0 + 70, "P2", "correct_response"), ("L1", T0 + 71, "P2", "problem_finished"),
        ("L1", T0 + 80, "P3", "problem_started"), ("L1", T0 + 90, "P3", "wrong_response"), ("L1", T0 + 95, "P3", "correct_response"),
        ("L1", T0 + 96, "P3", "problem_finished"),
        ("L1", T0 + 100, "P4", "problem_started"), ("L1", T0 + 160, "P4", "open_response"), ("L1", T0 + 161, "P4", "problem_finished"),
        ("L1", T0 + 170, "P5", "problem_started"),
        # log L2 (student S2), rows out of order on purpose: P1 answer requested first
        ("L2", T0 + 5000, "P1", "problem_finished"), ("L2", T0 + 4000, "P1", "problem_started"),
        ("L2", T0 + 4010, "P1", "answer_requested"), ("L2", T0 + 4020, "P1", "correct_response"),
        ("L2", T0 + 3999, None, "assignment_started"),
    ]
    logs = pd.DataFrame(rows, columns=[a, "timestamp", "problem_id", "action"])
    logs = logs.assign(max_attempts=3, available_core_tutoring="answer", score_viewable=1, continuous_score_viewable=1,
                       hint_id=None, explanation_id=None)
    logs = logs[[a, "timestamp", "problem_id", "max_attempts", "available_core_tutoring", "score_viewable",
                 "continuous_score_viewable", "action", "hint_id", "explanation_id"]]
    tables = {
        "action_logs": logs,
        "assignment_details": pd.DataFrame({
            a: ["L1", "L2", "U1"], "teacher_id": "T1", "class_id": "C1", "student_id": ["S1", "S2", "S1"],
            "sequence_id": ["Q1", "Q1", "Q2"], "assignment_release_date": "2022-09-20 13:00:00.000",
            "assignment_due_date": "2022-09-27 13:00:00.000",
            "assignment_start_time": ["2022-09-24 06:13:20.000", "2022-09-24 07:19:59.000", "2022-10-01 10:00:00.000"],
            "assignment_end_time": ""}),
        "problem_details": pd.DataFrame({
            "problem_id": ["P1", "P2", "P3", "P4", "P5", "P9"], "problem_multipart_id": ["M1", "M2", "M3", "M4", "M5", "M9"],
            "problem_multipart_position": 1,
            "problem_type": ["Number", "Multiple Choice", "Number", "Ungraded Open Response", "Number", "Number"],
            "problem_skill_code": ["6.RP.A.1", "6.RP.A.1", "", "6.EE.B.5", "6.EE.B.5", "6.EE.B.5"],
            "problem_skill_description": "", "problem_contains_image": 0, "problem_contains_equation": 0,
            "problem_contains_video": 0, "problem_text_bert_pca": "[0.1, 0.2]"}),
        "assignment_relationships": pd.DataFrame({"unit_test_assignment_log_id": ["U1"], "in_unit_assignment_log_id": ["L1"]}),
        "training_unit_test_scores": pd.DataFrame({a: ["U1"], "problem_id": ["P9"], "score": [1]}),
        "evaluation_unit_test_scores": pd.DataFrame({"id": [0], a: ["U1"], "problem_id": ["P1"]}),
    }
    tables |= replace
    for stem, df in tables.items():
        df.to_csv(folder / f"{stem}.csv", index=False)
    return folder


# the tiny simulation plus what the simulator never makes (tricky_tables)
COLD_ITEMS = ("COLD-0", "COLD-1")
"""items only in withheld unit-test rows: no response anywhere"""
RARE_ITEMS = tuple(f"RARE-{k}" for k in range(8))
"""items one student answers once, each a different student: seen fewer times than any threshold, and for
the students outside training, never in training"""
AGAIN = "-again"
"""suffix of the assignment log under which a student answers items again (repeated user-item pairs)"""


@pytest.fixture(scope="session")
def tricky_tables(tiny_tables):
    """tiny_tables with every fourth item (events and unit tests) on two skills, twelve students answering their last three items
    again an hour later, RARE_ITEMS and COLD_ITEMS, so the code paths for them run."""
    import dataclasses

    import pyarrow as pa

    from ktirt.sources.canonical import events_table, unit_tests_table

    ev, ut = tiny_tables.events.to_pandas(), tiny_tables.unit_tests.to_pandas()
    first = pd.concat([ev, ut]).drop_duplicates("item_id").set_index("item_id")["skill_ids"].str[0].sort_index()
    skills = sorted(first.unique())
    second = {i: skills[(skills.index(s) + 1) % len(skills)] for i, s in first.iloc[::4].items()}
    for df in (ev, ut):
        df["skill_ids"] = [[*s, second[i]] if i in second else list(s) for i, s in zip(df["item_id"], df["skill_ids"])]
    users = sorted(ev["user_id"].unique())
    last = ev.groupby("user_id").tail(3)
    again = last[last["user_id"].isin(users[:12])].assign(
        timestamp=lambda d: d["timestamp"] + pd.Timedelta(hours=1), correct=lambda d: 1 - d["correct"],
        action_sequence_id=lambda d: d["action_sequence_id"] + AGAIN)
    rare = ev.groupby("user_id").tail(1).set_index("user_id").loc[[users[9 * k + 4] for k in range(len(RARE_ITEMS))]]
    rare = rare.reset_index().assign(item_id=list(RARE_ITEMS), timestamp=lambda d: d["timestamp"] + pd.Timedelta(hours=2),
                                     correct=[k % 2 for k in range(len(RARE_ITEMS))],
                                     action_sequence_id=lambda d: d["item_id"] + "-log")
    ev = pd.concat([ev, again, rare], ignore_index=True)
    withheld = ut[ut["correct"].isna()].head(len(COLD_ITEMS)).assign(item_id=list(COLD_ITEMS))
    ut = pd.concat([ut, withheld], ignore_index=True)
    events = events_table({f.name: pa.Array.from_pandas(ev[f.name], type=f.type) for f in tiny_tables.events.schema})
    unit_tests = unit_tests_table({f.name: pa.Array.from_pandas(ut[f.name], type=f.type) for f in tiny_tables.unit_tests.schema})
    return dataclasses.replace(tiny_tables, events=events, unit_tests=unit_tests)


# a small simulated world run through both engines and the export, for the end-to-end tests
def simulated_tables(folder: Path, **overrides):
    """TINY with `overrides`, simulated into `folder`: (raw folder, canonical tables, the tests' usual split)."""
    simulate(SimulationConfig.from_dict({**TINY, **overrides}), folder)
    tables = load_source("synthetic", folder)
    return folder, tables, split_users(tables.events["user_id"].to_numpy(zero_copy_only=False), 0.6, 0.2, seed=3)


def run_pipeline(tables, split, root: Path, sakt_run, wdirt_settings, export_settings, truth: Path | None = None) -> dict:
    """What the stages do, in process: train_sakt, train_wdirt and export over `tables`, written under `root`
    as dvc.yaml lays them out (models/, plots/, data/exports/, events.parquet). Returns the engines' results,
    the export run and the paths."""
    import pyarrow.parquet as pq

    from ktirt.catalog import skill_descriptions
    from ktirt.exports.build import run_export
    from ktirt.irt.wdirt_run import run_wdirt
    from ktirt.kt.sakt_run import run_sakt

    root = Path(root)
    sakt = run_sakt(tables.events, split, sakt_run)
    sakt.save(root / "models" / "sakt", root / "plots" / "sakt")
    wdirt = run_wdirt(tables.events, tables.unit_tests, split, wdirt_settings, truth=truth)
    wdirt.save(root / "models" / "wdirt", root / "plots" / "wdirt")
    pq.write_table(tables.events, root / "events.parquet")
    export = run_export(tables.events, split, root / "models" / "sakt" / "model.pt", root / "models" / "wdirt",
                        skill_descriptions(tables.skills), export_settings, root / "exports")
    return {"root": root, "exports": root / "exports", "tables": tables, "events": tables.events, "split": split, "sakt": sakt,
            "wdirt": wdirt, "export": export}


def report_page_data(pipeline: dict, n_students: int, samples: int = 3) -> dict:
    """The report page's data (ktirt.report.data.report_data) over a run_pipeline run, with the metrics files
    the report stage reads written as the stages would."""
    from ktirt.exports.join import run_validation
    from ktirt.io import write_json
    from ktirt.report.data import ReportInputs, report_data

    root, events = pipeline["root"], pipeline["events"]
    metrics = root / "run_metrics"
    write_json({"events": events.num_rows, "users": len(set(events["user_id"].to_pylist()))}, metrics / "prepare.json")
    write_json(pipeline["sakt"].metrics, metrics / "sakt.json")
    write_json(pipeline["wdirt"].metrics, metrics / "wdirt.json")
    write_json(run_validation(pipeline["exports"], root / "events.parquet", 0.99, samples, 0).metrics(), metrics / "join.json")
    return report_data(ReportInputs(pipeline["exports"], metrics, root / "plots", "synthetic"), n_students, samples, 0)


def rewrite_future(events, user: str):
    """`user`'s responses from the middle of their history on, rewritten in everything but item and time:
    outcome flipped, latency changed (a missing one made known), hints and attempts raised, help flipped.
    Returns the events and the row of the first rewritten response (strictly later than the one before)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    ev = events.to_pandas()
    rows = np.flatnonzero(ev["user_id"].to_numpy() == user)
    cut = rows[len(rows) // 2]
    while ev.at[cut, "timestamp"] == ev.at[cut - 1, "timestamp"]:
        cut += 1
    later = rows[rows >= cut]
    ev.loc[later, "correct"] = 1 - ev.loc[later, "correct"]
    ev["latency_ms"] = ev["latency_ms"].astype("Int64")
    ev.loc[later, "latency_ms"] = (ev.loc[later, "latency_ms"].fillna(1_000) * 7 + 45_000).astype("Int64")
    ev.loc[later, "hint_count"] += 2
    ev.loc[later, "attempt_count"] += 1
    ev.loc[later, "help_requested"] = ~ev.loc[later, "help_requested"]
    out = pa.Table.from_pandas(ev, schema=events.schema, preserve_index=False)
    for col in ("correct", "latency_ms", "hint_count", "attempt_count", "help_requested"):
        changed = ~np.asarray(pc.fill_null(pc.equal(out[col], events[col]), False))
        assert changed[later].all() and not changed[np.setdiff1d(np.arange(len(ev)), later)].any(), col
    return out, int(cut)
