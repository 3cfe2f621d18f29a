"""EDM Cup 2023's two lookup tables, held while the large files are read in parts: assignment_details.csv (each
assignment log's student and start time) and problem_details.csv (each problem's type and skills); and the cut
of the students into parts (StudentCut), by which the action log, the unit-test score files and
assignment_relationships.csv are all split, so that a part of each holds the same students."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ktirt.events import sort_codes
from ktirt.sources.ids import skill_code_lists
from ktirt.sources.key_index import KeyIndex
from ktirt.sources.tables import read_csv, read_header, require_unique, to_utc_ms

ASSIGNMENT_DETAILS = "assignment_details.csv"
PROBLEM_DETAILS = "problem_details.csv"


@dataclass
class Details:
    """assignment_details.csv, keyed by assignment_log_id (the ids held only in `index`); students
    dictionary-encoded. The index answers the action log's parts: Arrow's hash join (`hash_rows`) builds its hash
    of every log anew at each call, so the parts together cost parts x logs (6.3 s at 140,000 students, 0.5 s at
    35,000)."""

    student: pa.DictionaryArray
    start_ms: np.ndarray
    index: KeyIndex  # the row of a log id, built once for every block and part of the files split by student

    def students_of(self, rows: np.ndarray) -> np.ndarray:
        """The student code of each assignment_details row (-1: no row, or a log without a student)."""
        codes = self.student.indices.fill_null(-1).to_numpy(zero_copy_only=False)
        return np.where(rows >= 0, codes[np.maximum(rows, 0)], -1)


@dataclass
class Problems:
    """problem_details.csv, keyed by problem_id (the ids held only in `index`)."""

    problem_type: pa.Array
    skill_ids: pa.ListArray
    has_text: bool
    split_lists: int  # problems whose skill field listed several codes
    index: KeyIndex  # the row of a problem id, as Details.index


def read_assignment_details(path: Path) -> Details:
    """One row per assignment log, read by its key (read_csv's `key`): the table grows with the release (2.24 M
    logs at 140,000 students), so only its three columns are parsed."""
    t = read_csv(path, {"assignment_log_id": pa.string(), "student_id": pa.string(), "assignment_start_time": pa.string()},
                 ids=("assignment_log_id", "student_id"), key="assignment_log_id")
    if t["assignment_log_id"].null_count:
        t = t.filter(pc.is_valid(t["assignment_log_id"]))
    require_unique(t["assignment_log_id"], path, "assignment_log_id")
    start_ms = to_utc_ms(t["assignment_start_time"], path, "assignment_start_time", text_only=True)
    return Details(t["student_id"].combine_chunks().dictionary_encode(), start_ms, KeyIndex(t["assignment_log_id"]))


def read_problem_details(path: Path) -> Problems:
    has_text = "problem_text_bert_pca" in read_header(path)
    t = read_csv(path, {"problem_id": pa.string(), "problem_type": pa.string(), "problem_skill_code": pa.string()},
                 ids=("problem_id",))
    skills, _ = skill_code_lists(t["problem_skill_code"], path, "problem_skill_code")
    valid = pc.is_valid(t["problem_id"])
    t, skills = t.filter(valid), skills.filter(valid)
    require_unique(t["problem_id"], path, "problem_id")
    split = int(pc.sum(pc.greater(pc.list_value_length(skills), 1)).as_py() or 0)
    return Problems(t["problem_type"].combine_chunks(), skills, has_text, split, KeyIndex(t["problem_id"]))


class StudentCut:
    """The students in id order cut into `n` parts of as many students each, and the part of the rows of each
    assignment log: its student's, or part n for a log that is not in assignment_details or has no student. Parts
    follow one another in the order of the students' ids, so rows sorted by student within each part are sorted
    across the parts."""

    def __init__(self, details: Details, n: int):
        students = details.student.dictionary
        part_of_student = sort_codes(students) * n // max(len(students), 1)
        codes = details.student.indices.fill_null(-1).to_numpy(zero_copy_only=False)
        self.n, self.logs = n, details.index
        # the last entry answers row -1 (no such log): part n
        self.part_of_row = np.append(np.where(codes >= 0, part_of_student[np.maximum(codes, 0)], n), n).astype(np.int32)

    def parts(self, rows: np.ndarray) -> np.ndarray:
        """The part of each assignment_details row (`rows`, as `logs.rows` gives them: -1 for a log not there)."""
        return self.part_of_row[rows]
