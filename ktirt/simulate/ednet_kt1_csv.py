"""Write the default world (`world`, `responses`) as the EdNet KT1 release lays it out, plus its truth in `_truth/`.

    <out>/KT1/u<n>.csv            one file per student: timestamp,solving_id,question_id,user_answer,elapsed_time
    <out>/contents/questions.csv  question_id,bundle_id,explanation_id,correct_answer,part,tags,deployed_at

The same seed gives the same world as `profile: edm_cup` (the same draws, up to the responses), written in
another layout. EdNet has neither unit tests nor open responses, so its questions are the world's graded
practice problems and its rows their answered first responses: `q<n>` is bank item n-1, a multipart problem
is a bundle (`b<n>`, explanation `e<n>`), the skill is the one tag (`1 + its place in the curriculum`; `-1`,
the release's mark for a missing value, where the world withholds the skill code), `part` is 1 + skill mod 7
and part 2 has three choices (a-c), the others four, as in the release. A first response is correct as the
world decided it (a help request first is wrong, as EDM Cup scores it); a wrong one picks another choice
at random. A student's bundle visits (one multipart problem within one assignment log) are numbered from 1
(`solving_id`). The world says how long each answer took, not where each bundle starts within its log: a
log's first bundle is given when the log starts, each next one after the previous one's answers and a
2-8 s pause; a question's timestamp is its bundle's start plus the answers before it, and `elapsed_time` is
the bundle's mean answer time, the same on each of its rows, as the release's bundles show. Students with
no answered question get no file. `data.source: ednet_kt1` reads it with the adapter users run on the
release.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from ktirt.simulate.edm_tables import AppendedFiles, write_response_truth, write_unit_test_truth, write_world_truth
from ktirt.simulate.world import UNGRADED, World

KT1, CONTENTS = "KT1", "contents"
LOG_HEADER = b"timestamp,solving_id,question_id,user_answer,elapsed_time\n"
CHOICES = np.array(list("abcd"))
PARTS = 7
PAUSE_S = (2.0, 8.0)
CHUNK_ROWS = 1_000_000
"""rows formatted as CSV at once: the text of one chunk is in memory while its students' files are written"""


class Kt1Writer:
    """KT1/, contents/ and _truth/ written a batch of classes at a time (ktirt/simulate/batches.py): each batch's
    answered questions become its students' files and its truth rows; the questions, drawn with the first batch,
    and the world's truth are written once. Draws from each batch's `rng` in a fixed order (with the first batch
    the correct answers; then wrong answers, pauses), so one seed gives the same bytes."""

    def __init__(self, world: World, out: Path, start_date: str):
        self.world, self.out, self.start_date = world, out, start_date
        self.view = dataclasses.replace(world, ids={**world.ids, "problem": _ids("q", len(world.items)),
                                                    "student": _ids("u", len(world.students))},
                                        skills=world.skills.assign(code=_ids("", len(world.skills))))
        self.files = AppendedFiles()
        self.questions: pd.DataFrame | None = None
        self.counts = {"responses": 0, "students_with_files": 0, "questions": 0, "bundles": 0}

    def __enter__(self) -> "Kt1Writer":
        return self

    def __exit__(self, *exc) -> None:
        self.files.close()

    def add(self, logs: pd.DataFrame, problems: pd.DataFrame, unit_tests: pd.DataFrame, rng: np.random.Generator) -> None:
        """One answered batch (EdNet has no unit tests: the truth keeps their table's header only)."""
        truth = self.out / "_truth"
        if self.questions is None:
            self.questions = _questions(self.world, rng, self.start_date)
            (self.out / CONTENTS).mkdir(parents=True, exist_ok=True)
            _csv(self.questions.drop(columns=["item", "n_choices", "answer"]), self.out / CONTENTS / "questions.csv")
            write_world_truth(self.view, truth)
            write_unit_test_truth(self.view, unit_tests.iloc[:0], np.array([], dtype=str), np.zeros(0, bool), truth)
            self.counts |= {"questions": len(self.questions), "bundles": int(self.questions["bundle_id"].nunique())}
        rows = _responses(problems, logs, self.questions, rng)
        self.counts["students_with_files"] += _write_kt1(rows, self.questions, self.out / KT1)
        write_response_truth(self.view, rows, rows["solving_id"].astype(str).to_numpy(), truth, self.files)
        self.counts["responses"] += len(rows)


def _ids(prefix: str, n: int) -> np.ndarray:
    """prefix1, prefix2, ... (the release's q-, u-, b- and e-ids; bare integers for tags)."""
    return np.char.add(prefix, np.arange(1, n + 1).astype(str)).astype(object)


def _questions(world: World, rng: np.random.Generator, start_date: str) -> pd.DataFrame:
    """questions.csv's rows (and each question's item, choices and correct answer code): the graded practice
    items, in bank order."""
    it = world.items
    item = np.flatnonzero((it["problem_type"] != UNGRADED).to_numpy() & ~it["is_unit_test"].to_numpy())
    skill = it["skill"].to_numpy()[item]
    part = 1 + skill % PARTS
    n_choices = np.where(part == 2, 3, 4)
    answer = rng.integers(0, n_choices)
    bundle = it["multipart_index"].to_numpy()[item] + 1
    tags = np.where(it["has_skill_code"].to_numpy()[item], (skill + 1).astype(str), "-1")
    deployed = int(pd.Timestamp(start_date, tz="UTC").timestamp() * 1000) - 90 * 86_400_000
    return pd.DataFrame({
        "question_id": _ids("q", len(it))[item], "bundle_id": np.char.add("b", bundle.astype(str)),
        "explanation_id": np.char.add("e", bundle.astype(str)), "correct_answer": CHOICES[answer], "part": part,
        "tags": tags, "deployed_at": np.full(len(item), deployed, np.int64),
        "item": item, "n_choices": n_choices, "answer": answer,
    })


def _responses(problems: pd.DataFrame, logs: pd.DataFrame, questions: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """The answered first responses to the questions, one row each, in (student, timestamp) order, with the
    KT1 columns (timestamp_ms, solving_id, question, answer, elapsed_ms) and the truth's columns."""
    row_of_item = pd.Series(np.arange(len(questions)), index=questions["item"].to_numpy())
    keep = ~problems["started_only"].to_numpy() & problems["item"].isin(row_of_item.index).to_numpy()
    r = problems[keep].sort_values(["log", "position"], kind="stable").reset_index(drop=True)
    r["question"] = row_of_item.reindex(r["item"].to_numpy()).to_numpy()
    n_choices, right = questions["n_choices"].to_numpy()[r["question"]], questions["answer"].to_numpy()[r["question"]]
    wrong = (right + rng.integers(1, n_choices)) % n_choices
    r["answer"] = np.where(r["correct"].to_numpy(), right, wrong)
    _times(r, logs, questions["bundle_id"].to_numpy(), rng)
    r = r.sort_values(["student", "timestamp_ms", "log", "position"], kind="stable").reset_index(drop=True)
    student = r["student"].to_numpy()
    new_visit = np.r_[True, (student[1:] != student[:-1]) | (r["visit"].to_numpy()[1:] != r["visit"].to_numpy()[:-1])]
    first_row = np.r_[True, student[1:] != student[:-1]]
    count = np.cumsum(new_visit)
    r["solving_id"] = count - np.maximum.accumulate(np.where(first_row, count - 1, 0))
    return r


def _times(r: pd.DataFrame, logs: pd.DataFrame, bundle_of_question: np.ndarray, rng: np.random.Generator) -> None:
    """Add `visit` (one bundle within one log), `timestamp_ms` and `elapsed_ms` to `r` (rows in log, position
    order): whole milliseconds from the world's rounded latencies, so the bytes are the same on any CPU."""
    log, bundle = r["log"].to_numpy(), bundle_of_question[r["question"].to_numpy()]
    visit_start = np.r_[True, (log[1:] != log[:-1]) | (bundle[1:] != bundle[:-1])]
    visit = np.cumsum(visit_start) - 1
    latency = np.round(r["latency"].to_numpy() * 1000).astype(np.int64)
    size = np.bincount(visit)
    total = np.bincount(visit, weights=latency).astype(np.int64)
    pause = np.round(rng.uniform(*PAUSE_S, len(size)) * 1000).astype(np.int64)
    log_of_visit = log[visit_start]
    first_of_log = np.r_[True, log_of_visit[1:] != log_of_visit[:-1]]
    step = np.r_[0, (total + pause)[:-1]]
    offset = np.cumsum(step) - np.maximum.accumulate(np.where(first_of_log, np.cumsum(step), 0))
    start = np.round(logs["start"].to_numpy()[log_of_visit] * 1000).astype(np.int64) + offset
    before = np.cumsum(latency) - latency
    r["visit"] = visit
    r["timestamp_ms"] = start[visit] + before - before[visit_start][visit]
    r["elapsed_ms"] = np.round(total / size).astype(np.int64)[visit]


def _write_kt1(rows: pd.DataFrame, questions: pd.DataFrame, folder: Path) -> int:
    """One `u<n>.csv` per student with rows: the CSV text is made a chunk of students at a time by pyarrow,
    then cut at the students' row ends, so writing a file is one open and one write. Returns files written."""
    folder.mkdir(parents=True, exist_ok=True)
    student = rows["student"].to_numpy()
    starts = np.flatnonzero(np.r_[True, student[1:] != student[:-1]]) if len(rows) else np.zeros(0, np.int64)
    ends = np.r_[starts[1:], len(rows)].astype(np.int64)
    qid = questions["question_id"].to_numpy()
    chunk_start = 0
    while chunk_start < len(starts):  # whole students, about CHUNK_ROWS rows (at least one student)
        chunk_end = max(int(np.searchsorted(ends, starts[chunk_start] + CHUNK_ROWS, "right")), chunk_start + 1)
        lo, hi = starts[chunk_start], ends[chunk_end - 1]
        part = rows.iloc[lo:hi]
        text = _csv_text(pa.table({
            "timestamp": part["timestamp_ms"].to_numpy(), "solving_id": part["solving_id"].to_numpy(),
            "question_id": pa.array(qid[part["question"].to_numpy()], pa.string()),
            "user_answer": pa.array(CHOICES[part["answer"].to_numpy()], pa.string()),
            "elapsed_time": part["elapsed_ms"].to_numpy()}))
        line_end = np.flatnonzero(np.frombuffer(text, np.uint8) == 10) + 1
        cut = np.r_[0, line_end[ends[chunk_start:chunk_end] - lo - 1]]
        for k, s in enumerate(range(chunk_start, chunk_end)):
            (folder / f"u{student[starts[s]] + 1}.csv").write_bytes(LOG_HEADER + text[cut[k]:cut[k + 1]])
        chunk_start = chunk_end
    return len(starts)


def _csv_text(table: pa.Table) -> bytes:
    """`table` as CSV lines without a header (no value needs quotes: numbers, ids and letters; pyarrow refuses one that would)."""
    sink = pa.BufferOutputStream()
    pacsv.write_csv(table, sink, pacsv.WriteOptions(include_header=False, quoting_style="none"))
    return sink.getvalue().to_pybytes()


def _csv(df: pd.DataFrame, path: Path) -> None:
    """`df` as a CSV file with a plain header line (pyarrow's own header quotes every name; the release's does not)."""
    path.write_bytes((",".join(df.columns) + "\n").encode() + _csv_text(pa.Table.from_pandas(df, preserve_index=False)))
