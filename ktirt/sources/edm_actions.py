"""EDM Cup 2023's action_logs.csv -> one row per visit (a problem within an assignment log): its first response
or help request, when the problem started, and the visit's hint, attempt and help counts.

Only the clickstream is read here; ktirt.sources.edm_cup reads the file in parts (all of a student's rows in one)
and joins each part's visits to students and problems, keeping the graded ones as events. What must hold over
the whole file (one id form, one timestamp unit, known actions) is gathered while it is split (WholeLogChecks).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from ktirt.errors import InputError
from ktirt.sources.ids import IdForms
from ktirt.sources.tables import STRING_DICT, codes
from ktirt.sources.timestamps import NAT, in_unit, unit_factor

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
CODE = {a: i for i, a in enumerate(ACTIONS)}
_UNKNOWN = len(ACTIONS)
NEVER = np.iinfo(np.int64).max
"""a visit's start or first-response time when it has none"""


@dataclass
class Visits:
    """Per visit (one per assignment log x problem pair among the kept action rows)."""

    n_action_rows: int  # rows read, kept or not
    log: np.ndarray  # code into log_vals
    problem: np.ndarray  # code into prob_vals
    log_vals: pa.Array
    prob_vals: pa.Array
    start: np.ndarray  # problem_started time (UTC ms), NEVER without one
    first_ts: np.ndarray  # time of the first response or help request, NEVER without one
    first_act: np.ndarray  # its action code, -1 where never answered
    answered: np.ndarray
    hint_count: np.ndarray
    attempt_count: np.ndarray
    help_requested: np.ndarray


@dataclass
class _Rows:
    """The kept action rows: each one's visit, time (UTC ms) and action code."""

    visit: np.ndarray
    ts: np.ndarray
    act: np.ndarray


ACTION_LOG_COLUMNS = {"assignment_log_id": STRING_DICT, "timestamp": pa.float64(), "problem_id": STRING_DICT,
                      "action": STRING_DICT}
"""the columns of action_logs.csv that make the visits"""
ID_COLUMNS = ("assignment_log_id", "problem_id")


class WholeLogChecks:
    """What must hold over the whole action log, gathered a block at a time while it is read in parts: ids
    written one way (ktirt.sources.ids), one timestamp unit (its range), only known actions (with their counts)."""

    def __init__(self):
        self.forms = {c: IdForms() for c in ID_COLUMNS}
        self.lo, self.hi = np.inf, -np.inf
        self.actions: dict[str, int] = {}  # in the order first met, as one read would list them

    def add(self, block: pa.RecordBatch) -> None:
        for column, forms in self.forms.items():
            forms.add(block[column])
        ts = block["timestamp"].to_numpy(zero_copy_only=False)
        ts = ts[np.isfinite(ts)]
        if len(ts):
            self.lo, self.hi = min(self.lo, ts.min()), max(self.hi, ts.max())
        idx, names = codes(block["action"])
        for name, n in zip(names.to_pylist(), np.bincount(idx[idx >= 0], minlength=len(names))):
            self.actions[name] = self.actions.get(name, 0) + int(n)

    def unit(self, path: Path) -> float:
        """Milliseconds per unit of the timestamps, after the whole-file checks (ids, unit, actions) pass."""
        for column, forms in self.forms.items():
            forms.check(path, column)
        factor = unit_factor(self.lo, self.hi, path, "timestamp") if self.lo <= self.hi else 1.0
        _check_actions(self.actions, path)
        return factor


def read_visits(rows: pa.Table, path: Path, factor: float, dropped: dict, excluded: dict) -> Visits:
    """The visits of some of action_logs.csv's rows (all of a student's, as read_csv would give them: `rows`, with
    ACTION_LOG_COLUMNS; timestamps in a unit of `factor` ms); unusable rows are counted into `dropped`, visits
    started but never answered into `excluded`."""
    ts = in_unit(rows["timestamp"].to_numpy(zero_copy_only=False).astype(np.float64, copy=False), factor)
    log_idx, log_vals = codes(rows["assignment_log_id"])
    prob_idx, prob_vals = codes(rows["problem_id"])
    act_idx, act_vals = codes(rows["action"])
    n_rows = rows.num_rows
    del rows
    act = _action_codes(act_idx, act_vals, path, dropped)
    return Visits(n_rows, log_vals=log_vals, prob_vals=prob_vals,
                  **grouped_visits(log_idx, prob_idx, act, ts, dropped, excluded))


def grouped_visits(log: np.ndarray, problem: np.ndarray, act: np.ndarray, ts: np.ndarray, dropped: dict,
                   excluded: dict) -> dict[str, np.ndarray]:
    """Visits' fields (Visits, less the row count and the values) of action rows given as codes (-1: blank) of
    their log and problem, their action codes (CODE) and their times (int64 ms, NAT: none): the problem actions
    with a time, a log and a problem are kept (the rest counted into `dropped`) and grouped by log and problem."""
    keys, kept = _visit_rows(log, problem, act, ts, dropped)
    n_visits = len(keys["log"])
    return keys | _first_actions(kept, n_visits, excluded) | _help_counts(kept, n_visits)


def _check_actions(rows_by_action: dict[str, int], path: Path) -> None:
    """A value outside the release's vocabulary stops the run: a renamed `correct_response` would otherwise make
    every first response look wrong."""
    unknown = [(a, n) for a, n in rows_by_action.items() if n and a not in CODE]
    if unknown:
        more = f" and {len(unknown) - 1} other unknown values" if len(unknown) > 1 else ""
        raise InputError(f"unknown action '{unknown[0][0]}' ({unknown[0][1]} rows){more}; "
                         f"known actions: {', '.join(ACTIONS)}", path, "action")


def _action_codes(act_idx: np.ndarray, act_vals: pa.Array, path: Path, dropped: dict) -> np.ndarray:
    """Action code of each row (_UNKNOWN where blank, counted)."""
    names = act_vals.to_pylist()
    _check_actions(dict(zip(names, np.bincount(act_idx[act_idx >= 0], minlength=len(names)).tolist())), path)
    dropped["action_rows_no_action"] = int((act_idx < 0).sum())
    return action_lut(names)[act_idx]  # -1 (blank action) picks the trailing _UNKNOWN


def action_lut(names: list[str | None]) -> np.ndarray:
    """The action code (CODE) of each of `names`, a value outside ACTIONS an unknown one; one more entry, last,
    for a blank action (index -1)."""
    return np.array([CODE.get(a, _UNKNOWN) for a in names] + [_UNKNOWN], dtype=np.int8)


def _visit_rows(log_idx: np.ndarray, prob_idx: np.ndarray, act: np.ndarray, ts: np.ndarray,
                dropped: dict) -> tuple[dict, _Rows]:
    """Keep the problem actions with a time, a log and a problem (the rest counted as dropped) and group them into
    visits: returns the visits' keys and the kept rows."""
    is_problem_action = act < len(PROBLEM_ACTIONS)
    bad_ts = ts == NAT
    dropped["action_rows_no_timestamp"] = int((bad_ts & is_problem_action).sum())
    dropped["action_rows_no_assignment_log"] = int(((log_idx < 0) & is_problem_action & ~bad_ts).sum())
    dropped["action_rows_no_problem"] = int(((prob_idx < 0) & is_problem_action & ~bad_ts & (log_idx >= 0)).sum())
    keep = is_problem_action & ~bad_ts & (log_idx >= 0) & (prob_idx >= 0)
    rows = np.flatnonzero(keep)
    ts, act = ts[rows], act[rows]
    n_prob = max(int(prob_idx.max(initial=0)) + 1, 1)
    group, uniq = _factorized_runs(log_idx[rows] * np.int64(n_prob) + prob_idx[rows])
    keys = {"log": uniq // n_prob, "problem": uniq % n_prob}
    return keys, _Rows(group, ts, act)


def _factorized_runs(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """pd.factorize(key), for keys that come in runs (a visit's rows follow one another in the log): each run's
    first key is factorized and the rows take their run's code. The same codes and order, since a key's first row
    starts a run; a part's 4 M rows hold about 1 M runs, and hashing those alone halved the grouping's time."""
    starts = np.empty(len(key), dtype=bool)
    starts[:1] = True
    np.not_equal(key[1:], key[:-1], out=starts[1:])
    codes, uniq = pd.factorize(key[starts])
    return codes[np.cumsum(starts) - 1], uniq


def _first_actions(rows: _Rows, n_visits: int, excluded: dict) -> dict[str, np.ndarray]:
    """Each visit's first response or help request at or after its problem_started (the earliest row on a
    tie); a visit without one is counted as started but never answered."""
    group, ts, act = rows.visit, rows.ts, rows.act
    start = np.full(n_visits, NEVER, dtype=np.int64)
    started = act == CODE["problem_started"]
    np.minimum.at(start, group[started], ts[started])
    own_start = start[group]
    cand = (act < len(FIRST_ACTIONS)) & ((own_start == NEVER) | (ts >= own_start))
    del own_start
    first_ts = np.full(n_visits, NEVER, dtype=np.int64)
    np.minimum.at(first_ts, group[cand], ts[cand])
    at_min = cand & (ts == first_ts[group])
    first_row = np.full(n_visits, NEVER, dtype=np.int64)
    np.minimum.at(first_row, group[at_min], np.flatnonzero(at_min))
    answered = first_row != NEVER
    excluded["problems_started_never_answered"] = int((~answered).sum())
    first_act = np.full(n_visits, -1, dtype=np.int8)
    first_act[answered] = act[first_row[answered]]
    return {"start": start, "first_ts": first_ts, "first_act": first_act, "answered": answered}


def _help_counts(rows: _Rows, n_visits: int) -> dict[str, np.ndarray]:
    """Per visit: hints requested, attempts (correct or wrong responses) and whether any help was asked for,
    the clickstream features an event carries."""
    group, act = rows.visit, rows.act
    is_attempt = (act == CODE["correct_response"]) | (act == CODE["wrong_response"])
    is_help = np.isin(act, [CODE[a] for a in HELP_ACTIONS])
    return {
        "hint_count": np.bincount(group[act == CODE["hint_requested"]], minlength=n_visits),
        "attempt_count": np.bincount(group[is_attempt], minlength=n_visits),
        "help_requested": np.bincount(group[is_help], minlength=n_visits) > 0,
    }
