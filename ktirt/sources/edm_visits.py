"""Which of EDM Cup's visits (ktirt.sources.edm_actions) become events: joined to assignment_details (the student)
and problem_details (the problem's type), a visit whose first action is a graded response or a help request
is an event; ungraded responses are excluded (not an error), and visits whose log, student or problem is unknown
are dropped, each counted under its first reason. Both ways of reading the action log (ktirt.sources.edm_cup,
ktirt.sources.edm_stream) keep visits by this one rule."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ktirt.sources.edm_actions import CODE, Visits
from ktirt.sources.edm_details import Details, Problems

UNGRADED_TYPE = "Ungraded Open Response"
ACTION_ROW_DROPS = ("action_rows_no_action", "action_rows_no_timestamp", "action_rows_no_assignment_log",
                    "action_rows_no_problem")
RESPONSE_DROPS = ("responses_unknown_assignment_log", "responses_no_student", "responses_unknown_problem")
EXCLUSIONS = ("problems_started_never_answered", "ungraded_responses")


@dataclass
class Joined:
    """The visits' assignment logs joined to assignment_details and their problems to problem_details."""

    log_row: np.ndarray  # per log code: row in assignment_details, -1 where absent
    log_student: np.ndarray  # per log code: student code, -1 where unknown
    prob_row: np.ndarray  # per problem code: row in problem_details, -1 where absent
    ptype: pa.Array  # per problem code: problem_type
    ungraded_type: np.ndarray  # per problem code: an ungraded open response


def join_details(visits: Visits, details: Details, problems: Problems) -> Joined:
    """Join the assignment logs to their students and the problems to their types."""
    log_row, prob_row = details.index.rows(visits.log_vals), problems.index.rows(visits.prob_vals)
    return Joined(log_row, details.students_of(log_row), **problems_joined(prob_row, problems))


def problems_joined(prob_row: np.ndarray, problems: Problems) -> dict[str, np.ndarray | pa.Array]:
    """Joined's problem fields, given each problem code's row in problem_details (-1: absent)."""
    ptype = problems.problem_type.take(pa.array(np.maximum(prob_row, 0)))
    ungraded_type = np.asarray(pc.equal(ptype, UNGRADED_TYPE).fill_null(False)) & (prob_row >= 0)
    return {"prob_row": prob_row, "ptype": ptype, "ungraded_type": ungraded_type}


def usable_visits(visits: Visits, joined: Joined, dropped: dict, excluded: dict) -> np.ndarray:
    """Which answered visits become events: ungraded responses are excluded (not an error); visits whose log,
    student or problem is unknown are dropped, each counted under its first reason."""
    g_log, g_prob = visits.log, visits.problem
    ungraded = visits.answered & ((visits.first_act == CODE["open_response"]) | joined.ungraded_type[g_prob])
    excluded["ungraded_responses"] = int(ungraded.sum())
    ok = visits.answered & ~ungraded
    for reason, bad in (
        ("responses_unknown_assignment_log", joined.log_row[g_log] < 0),
        ("responses_no_student", joined.log_student[g_log] < 0),
        ("responses_unknown_problem", joined.prob_row[g_prob] < 0),
    ):
        dropped[reason] = int((ok & bad).sum())
        ok &= ~bad
    return ok
