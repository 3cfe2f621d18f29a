"""EDM Cup 2023 (ASSISTments clickstream) -> canonical events and unit-test scores.

One event per first response to a problem within an assignment log, by the ASSISTments convention:
`correct = 1` only when the first action after `problem_started` is `correct_response`; asking for a
hint, the answer, an explanation, a video or a live tutor first counts as incorrect. Ungraded open
responses are not events. The simulator writes the same files, and this module cannot tell them apart.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ktirt.errors import InputError
from ktirt.sources.canonical import SourceTables, events_table, unit_tests_table
from ktirt.sources.tables import NAT, STRING_DICT, codes, read_csv, read_header, require_unique, to_utc_ms

log = logging.getLogger(__name__)

ACTION_LOGS = "action_logs.csv"
ASSIGNMENT_DETAILS = "assignment_details.csv"
PROBLEM_DETAILS = "problem_details.csv"
ASSIGNMENT_RELATIONSHIPS = "assignment_relationships.csv"
TRAINING_SCORES = "training_unit_test_scores.csv"
EVALUATION_SCORES = "evaluation_unit_test_scores.csv"

UNGRADED_TYPE = "Ungraded Open Response"
HELP_ACTIONS = (
    "hint_requested",
    "answer_requested",
    "explanation_requested",
    "skill_related_video_requested",
    "live_tutor_requested",
)
RESPONSE_ACTIONS = ("correct_response", "wrong_response", "open_response")
FIRST_ACTIONS = RESPONSE_ACTIONS + HELP_ACTIONS
PROBLEM_ACTIONS = FIRST_ACTIONS + ("problem_started", "problem_finished", "continue_selected")
ASSIGNMENT_ACTIONS = ("assignment_started", "assignment_resumed", "assignment_finished")
ACTIONS = PROBLEM_ACTIONS + ASSIGNMENT_ACTIONS
_CODE = {a: i for i, a in enumerate(ACTIONS)}
_UNKNOWN = len(ACTIONS)


def load(raw_dir: str | Path) -> SourceTables:
    raw = Path(raw_dir)
    if not raw.is_dir():
        raise InputError("raw data folder not found (see README: real data)", raw)
    details = _assignment_details(raw / ASSIGNMENT_DETAILS)
    problems = _problem_details(raw / PROBLEM_DETAILS)
    dropped: dict[str, int] = {}
    excluded: dict[str, int] = {}
    events = _first_responses(raw / ACTION_LOGS, details, problems, dropped, excluded)
    unit_tests = _unit_tests(raw, details, problems, dropped)
    features = {
        "has_unit_tests": int(unit_tests.num_rows > 0),
        "has_text_embeddings": int(problems.attrs.get("has_text", False)),
        "has_timestamps": 1,
    }
    return SourceTables(events, unit_tests, dropped, excluded, features)


def _assignment_details(path: Path) -> pd.DataFrame:
    t = read_csv(path, {"assignment_log_id": pa.string(), "student_id": pa.string(), "assignment_start_time": pa.string()})
    df = pd.DataFrame(
        {
            "student_id": t["student_id"].to_numpy(zero_copy_only=False),
            "start_ms": to_utc_ms(t["assignment_start_time"], path, "assignment_start_time"),
        },
        index=pd.Index(t["assignment_log_id"].to_numpy(zero_copy_only=False), name="assignment_log_id"),
    )
    df = df[df.index.notna()]
    require_unique(df.index, path, "assignment_log_id")
    df.attrs["path"] = path
    return df


def _problem_details(path: Path) -> pd.DataFrame:
    header_has_text = "problem_text_bert_pca" in read_header(path)
    t = read_csv(path, {"problem_id": pa.string(), "problem_type": pa.string(), "problem_skill_code": pa.string()})
    df = t.to_pandas().set_index("problem_id")
    df = df[df.index.notna()]
    require_unique(df.index, path, "problem_id")
    df.attrs["path"] = path
    df.attrs["has_text"] = header_has_text
    return df


def _first_responses(
    path: Path, details: pd.DataFrame, problems: pd.DataFrame, dropped: dict, excluded: dict
) -> pa.Table:
    t = read_csv(
        path,
        {"assignment_log_id": STRING_DICT, "timestamp": pa.float64(), "problem_id": STRING_DICT, "action": STRING_DICT},
    )
    n_rows = t.num_rows
    ts = to_utc_ms(t["timestamp"], path, "timestamp")
    log_idx, log_vals = codes(t["assignment_log_id"])
    prob_idx, prob_vals = codes(t["problem_id"])
    act_idx, act_vals = codes(t["action"])
    del t
    lut = np.array([_CODE.get(a, _UNKNOWN) for a in act_vals] + [_UNKNOWN], dtype=np.int8)
    act = lut[act_idx]  # -1 (null action) picks the trailing _UNKNOWN
    unknown = act == _UNKNOWN
    if unknown.all():
        raise InputError(f"no known action values (expected e.g. {', '.join(ACTIONS[:4])})", path, "action")
    excluded["action_rows_unknown_action"] = int(unknown.sum())

    is_problem_action = act < len(PROBLEM_ACTIONS)
    bad_ts = ts == NAT
    dropped["action_rows_no_timestamp"] = int((bad_ts & is_problem_action).sum())
    dropped["action_rows_no_assignment_log"] = int(((log_idx < 0) & is_problem_action & ~bad_ts).sum())
    dropped["action_rows_no_problem"] = int(((prob_idx < 0) & is_problem_action & ~bad_ts & (log_idx >= 0)).sum())
    keep = is_problem_action & ~bad_ts & (log_idx >= 0) & (prob_idx >= 0)
    rows = np.flatnonzero(keep)
    ts, act = ts[rows], act[rows]
    key = log_idx[rows] * np.int64(max(len(prob_vals), 1)) + prob_idx[rows]
    group, uniq = pd.factorize(key)
    n_groups = len(uniq)
    g_log = uniq // max(len(prob_vals), 1)
    g_prob = uniq % max(len(prob_vals), 1)

    big = np.iinfo(np.int64).max
    start = np.full(n_groups, big, dtype=np.int64)
    started = act == _CODE["problem_started"]
    np.minimum.at(start, group[started], ts[started])
    cand = (act < len(FIRST_ACTIONS)) & ((start[group] == big) | (ts >= start[group]))
    first_ts = np.full(n_groups, big, dtype=np.int64)
    np.minimum.at(first_ts, group[cand], ts[cand])
    at_min = cand & (ts == first_ts[group])
    first_row = np.full(n_groups, big, dtype=np.int64)
    np.minimum.at(first_row, group[at_min], np.flatnonzero(at_min))
    answered = first_row != big
    excluded["problems_started_never_answered"] = int((~answered).sum())
    first_act = np.full(n_groups, -1, dtype=np.int8)
    first_act[answered] = act[first_row[answered]]

    hint_count = np.bincount(group[act == _CODE["hint_requested"]], minlength=n_groups)
    is_attempt = (act == _CODE["correct_response"]) | (act == _CODE["wrong_response"])
    attempt_count = np.bincount(group[is_attempt], minlength=n_groups)
    is_help = np.isin(act, [_CODE[a] for a in HELP_ACTIONS])
    help_requested = np.bincount(group[is_help], minlength=n_groups) > 0
    del ts, act, group, key

    # join the assignment log to its student, the problem to its type and skill
    student = details["student_id"].reindex(log_vals)
    log_known = student.index.isin(details.index)
    if not log_known.any():
        raise InputError(
            f"none of the {len(log_vals)} assignment logs appear in {ASSIGNMENT_DETAILS}", path, "assignment_log_id"
        )
    prob_known = prob_vals.isin(problems.index)
    if not prob_known.any():
        raise InputError(f"none of the {len(prob_vals)} problems appear in {PROBLEM_DETAILS}", path, "problem_id")
    ptype = problems["problem_type"].reindex(prob_vals).to_numpy(dtype=object)

    graded_first = answered & (first_act != _CODE["open_response"])
    ungraded_type = ptype == UNGRADED_TYPE
    ungraded = answered & ((first_act == _CODE["open_response"]) | ungraded_type[g_prob])
    excluded["ungraded_responses"] = int(ungraded.sum())
    ok = graded_first & ~ungraded
    unknown_log = ok & ~log_known[g_log]
    dropped["responses_unknown_assignment_log"] = int(unknown_log.sum())
    ok &= ~unknown_log
    no_student = ok & student.isna().to_numpy()[g_log]
    dropped["responses_no_student"] = int(no_student.sum())
    ok &= ~no_student
    unknown_prob = ok & ~prob_known[g_prob]
    dropped["responses_unknown_problem"] = int(unknown_prob.sum())
    ok &= ~unknown_prob

    sel = np.flatnonzero(ok)
    lg, pr = g_log[sel], g_prob[sel]
    item_skills = _skill_lists(problems["problem_skill_code"].reindex(prob_vals))
    latency = first_ts[sel] - start[sel]
    has_start = start[sel] != big
    columns = {
        "user_id": pa.array(student.to_numpy(dtype=object)[lg], pa.string()),
        "item_id": pa.array(prob_vals.to_numpy(dtype=object)[pr], pa.string()),
        "skill_ids": item_skills.take(pa.array(pr)),
        "timestamp": first_ts[sel],
        "correct": (first_act[sel] == _CODE["correct_response"]).astype(np.int8),
        "action_sequence_id": pa.array(log_vals.to_numpy(dtype=object)[lg], pa.string()),
        "latency_ms": pa.array(np.where(has_start, latency, 0), pa.int64(), mask=~has_start),
        "help_requested": help_requested[sel],
        "hint_count": np.minimum(hint_count[sel], np.iinfo(np.int16).max).astype(np.int16),
        "attempt_count": np.minimum(attempt_count[sel], np.iinfo(np.int16).max).astype(np.int16),
        "problem_type": pa.array(ptype[pr], pa.string(), from_pandas=True),
    }
    events = events_table(columns)
    log.info("%s: %d action rows -> %d first-response events", path.name, n_rows, events.num_rows)
    return events


def _skill_lists(codes_by_item: pd.Series) -> pa.ListArray:
    """One skill list per item: the problem_skill_code, or empty where the source gives none."""
    values = [[] if pd.isna(c) or not str(c).strip() else [str(c).strip()] for c in codes_by_item]
    return pa.array(values, pa.list_(pa.string()))


def _unit_tests(raw: Path, details: pd.DataFrame, problems: pd.DataFrame, dropped: dict) -> pa.Table:
    train_path, eval_path = raw / TRAINING_SCORES, raw / EVALUATION_SCORES
    if not train_path.exists() and not eval_path.exists():
        log.warning("%s: no unit-test score files; unit_tests.parquet will be empty", raw)
        return unit_tests_table(None)
    parts = []
    if train_path.exists():
        t = read_csv(train_path, {"assignment_log_id": pa.string(), "problem_id": pa.string(), "score": pa.float64()})
        parts.append((train_path, t.to_pandas()))
    if eval_path.exists():
        t = read_csv(eval_path, {"assignment_log_id": pa.string(), "problem_id": pa.string()})
        parts.append((eval_path, t.to_pandas().assign(score=np.nan)))
    for path, df in parts:
        dup = df.duplicated(["assignment_log_id", "problem_id"])
        if dup.any():
            first = df[dup].iloc[0]
            raise InputError(
                f"{int(dup.sum())} duplicate (assignment_log_id, problem_id) rows, e.g. "
                f"({first.assignment_log_id}, {first.problem_id})",
                path,
                "assignment_log_id",
            )
        bad = df["score"].notna() & ~df["score"].isin([0.0, 1.0])
        if bad.any():
            raise InputError(f"scores must be 0 or 1, found {df.loc[bad, 'score'].iloc[0]}", path, "score")
        known = df["assignment_log_id"].isin(details.index)
        if not known.any():
            raise InputError(
                f"none of the {len(df)} unit-test logs appear in {ASSIGNMENT_DETAILS}", path, "assignment_log_id"
            )
    df = pd.concat([d for _, d in parts], ignore_index=True)
    n = len(df)
    df = df[df["assignment_log_id"].isin(details.index)]
    dropped["unit_test_rows_unknown_assignment_log"] = n - len(df)
    df = df.join(details, on="assignment_log_id")
    bad = df["student_id"].isna()
    dropped["unit_test_rows_no_student"] = int(bad.sum())
    df = df[~bad]
    bad = df["start_ms"] == NAT
    dropped["unit_test_rows_no_timestamp"] = int(bad.sum())
    df = df[~bad]
    bad = ~df["problem_id"].isin(problems.index)
    dropped["unit_test_rows_unknown_problem"] = int(bad.sum())
    df = df[~bad].reset_index(drop=True)

    in_unit = _in_unit_logs(raw / ASSIGNMENT_RELATIONSHIPS)
    skills = _skill_lists(problems["problem_skill_code"].reindex(df["problem_id"]))
    score = df["score"].to_numpy()
    columns = {
        "user_id": pa.array(df["student_id"], pa.string()),
        "unit_test_id": pa.array(df["assignment_log_id"], pa.string()),
        "item_id": pa.array(df["problem_id"], pa.string()),
        "skill_ids": skills,
        "timestamp": pa.array(df["start_ms"].to_numpy(), pa.timestamp("ms", tz="UTC")),
        "correct": pa.array(np.nan_to_num(score).astype(np.int8), pa.int8(), mask=np.isnan(score)),
        "in_unit_ids": pa.array([in_unit.get(a, []) for a in df["assignment_log_id"]], pa.list_(pa.string())),
    }
    return unit_tests_table(columns)


def _in_unit_logs(path: Path) -> dict[str, list[str]]:
    t = read_csv(path, {"unit_test_assignment_log_id": pa.string(), "in_unit_assignment_log_id": pa.string()})
    df = t.to_pandas().dropna().drop_duplicates().sort_values(["unit_test_assignment_log_id", "in_unit_assignment_log_id"])
    return df.groupby("unit_test_assignment_log_id")["in_unit_assignment_log_id"].agg(list).to_dict()
