"""The shape of a response table: how sparse and skewed it is (per student, per problem, per skill).

These are the figures that tell a real skill-builder file from a simulation built on the engines' own
assumptions (issue 14's table), so metrics/prepare.json records them for every source and the
`skill_builder` world is tested against the real file's.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ktirt.events_digest import EventsDigest

SPARSE = 10
"""a problem answered fewer than this many times is in the long tail"""

REAL_SKILL_BUILDER_2009 = {
    "responses_per_student_median": 20, "responses_per_student_p10": 3, "responses_per_student_p90": 154,
    "responses_per_student_max": 1040, "responses_per_problem_median": 10, "responses_per_problem_mean": 16.3,
    "problems_under_10_share": 0.475, "responses_on_problems_under_10_share": 0.13,
    "multi_skill_response_share": 0.17, "correct_rate": 0.662, "problems_per_skill_median": 122,
}
"""The ASSISTments 2009-2010 skill-builder file's shape (4,150 students, 274,561 first responses; issue 14)."""


def shape(events: EventsDigest | pa.Table) -> dict:
    """The shape statistics of canonical events (one row per first response), from the events or their digest
    (ktirt.events_digest); {} when there are none."""
    digest = EventsDigest.of(events) if isinstance(events, pa.Table) else events
    n = digest.n
    if n == 0:
        return {}
    per_student = digest.per_student()
    per_problem = digest.items()["count_all"].to_numpy(zero_copy_only=False).astype(np.int64)
    sparse = per_problem < SPARSE
    pairs = digest.pairs()
    per_skill = np.asarray(pc.value_counts(pairs["skill_id"]).field("counts"), dtype=np.int64) if pairs.num_rows else np.zeros(1)
    r = lambda x: round(float(x), 4)  # noqa: E731
    return {
        "responses_per_student_median": r(np.median(per_student)),
        "responses_per_student_p10": r(np.percentile(per_student, 10)),
        "responses_per_student_p90": r(np.percentile(per_student, 90)),
        "responses_per_student_max": int(per_student.max()),
        "responses_per_problem_median": r(np.median(per_problem)),
        "responses_per_problem_mean": r(per_problem.mean()),
        "problems_under_10_share": r(sparse.mean()),
        "responses_on_problems_under_10_share": r(per_problem[sparse].sum() / n),
        "multi_skill_response_share": r(digest.multi_skill / n),
        "correct_rate": r(digest.correct / n),
        "problems_per_skill_median": r(np.median(per_skill)),
    }
