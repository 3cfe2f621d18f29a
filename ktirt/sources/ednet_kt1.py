"""EdNet KT1 (Riiid's Santa, a TOEIC tutor: one CSV per student) -> canonical events.

The raw folder (`data.raw_dir`) holds the release as it unzips:

    KT1/u<n>.csv            EdNet-KT1: timestamp,solving_id,question_id,user_answer,elapsed_time
    contents/questions.csv  EdNet-Contents: question_id,bundle_id,explanation_id,correct_answer,part,tags,deployed_at

One event per row: `user_id` is the file's name without `.csv` (the release names each file after its user,
`u1`), `item_id` the question_id, `skill_ids` the question's tags (`;`-separated integers, in the order written;
`-1`, the release's mark for a missing value, is no tag), `timestamp` the unix milliseconds at which the
question was given (the release's unit: seconds stop the run), `correct` whether user_answer is the
question's correct_answer, `action_sequence_id` the solving_id (the student's n-th bundle session, so an id
together with user_id), `latency_ms` the elapsed_time (for a bundle the release repeats the bundle's time on
each question; a negative one is missing). KT1 records one answer per question and no help:
`help_requested` false, `hint_count` 0, `attempt_count` 1. Every question is multiple choice (a-d), so
`problem_type` is "Multiple Choice", the name under which Wide & Deep IRT fits a guessing floor.

Rows without a timestamp, question, answer or solving_id are counted under `dropped`; a question answered
again in the same solving_id is not a first response (counted under `excluded`). A user_answer or
correct_answer outside a-d, a question_id that questions.csv lacks, a tag that is not an integer, timestamps
in another unit or a missing questions.csv stop the run, naming the file and column. There are no unit
tests, text embeddings or skill descriptions (the tags are bare numbers).
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ktirt.errors import InputError
from ktirt.events import sort_codes
from ktirt.heap import heap_trimmed
from ktirt.sources.canonical import SourceTables, add_counts, events_table, unit_tests_table
from ktirt.sources.csv_folder import FolderTable, csv_files, read_csv_files
from ktirt.sources.files import check_raw_folder
from ktirt.sources.ids import IdForms, normalise_ids
from ktirt.sources.rows import duplicate_rows, kept
from ktirt.sources.tables import STRING_DICT, Ledger, codes, read_csv, reading, require_unique
from ktirt.sources.timestamps import HIGH_MS, LOW_MS, to_utc_ms

log = logging.getLogger(__name__)
__all__ = ["KT1", "QUESTIONS", "load", "problem_types"]

KT1 = "KT1"
QUESTIONS = "contents/questions.csv"
LOG_COLUMNS = {"timestamp": pa.int64(), "solving_id": STRING_DICT, "question_id": STRING_DICT, "user_answer": STRING_DICT,
               "elapsed_time": pa.int64()}
ID_COLUMNS = ("solving_id", "question_id")
CHOICES = ("a", "b", "c", "d")
PROBLEM_TYPE = "Multiple Choice"
NO_TAG = "-1"


@dataclass
class _Questions:
    """questions.csv, one row per question."""

    ids: pa.Array
    answer: np.ndarray  # the correct answer's place in CHOICES
    tags: pa.ListArray
    facts: dict[str, int]


def load(raw_dir: str | Path, part_bytes: int | None = None) -> SourceTables:
    """The canonical tables of an EdNet KT1 folder. Without `part_bytes` the events are one table; with it, parts
    of whole students in the events' order, about `part_bytes` of KT1's files each, read as they are consumed
    (SourceTables.event_parts)."""
    raw = Path(raw_dir)
    check_raw_folder(raw)
    with reading() as ledger:
        questions = _questions(raw / QUESTIONS)
    files = csv_files(raw / KT1)
    users = normalise_ids(pa.array([p.stem for p in files], pa.string()), raw / KT1, "user_id")
    tables = SourceTables(None, unit_tests_table(None), {}, {"repeated_in_session": 0},
                          {"has_unit_tests": 0, "has_text_embeddings": 0, "has_timestamps": 1})
    tables.events = _event_parts(raw / KT1, files, users, questions, ledger, tables, part_bytes)
    return tables if part_bytes else tables.whole()


def _parts(files: list[Path], users: pa.Array, part_bytes: int | None) -> list[np.ndarray]:
    """The files of each part (indices into `files`): students in id order, about `part_bytes` of files a part
    (all of them without), a student's files always in one part."""
    order = np.argsort(sort_codes(users), kind="stable")
    if not part_bytes:
        return [order]
    user = sort_codes(users)[order]
    part = np.cumsum([os.stat(files[i]).st_size for i in order]) // part_bytes
    first_of_user = np.maximum.accumulate(np.where(np.r_[True, user[1:] != user[:-1]], np.arange(len(order)), 0))
    part = part[first_of_user]  # a student's later files go where their first went
    return np.split(order, np.flatnonzero(np.diff(part)) + 1)


def _event_parts(folder: Path, files: list[Path], users: pa.Array, questions: _Questions, ledger: Ledger,
                 tables: SourceTables, part_bytes: int | None) -> Iterator[pa.Table]:
    """Per part, its files' events; the counts add up part after part and are final after the last, when the id
    rule's check across parts and the check that some row was usable run too."""
    dropped, facts, forms = {}, {}, {c: IdForms() for c in ID_COLUMNS}
    ledger.duplicate_rows[folder.name] = 0
    n_rows = n_events = 0
    for part in _parts(files, users, part_bytes):
        logs = read_csv_files([files[i] for i in part], folder, LOG_COLUMNS, ledger, ID_COLUMNS, forms)
        rows, part_dropped = _usable_rows(logs)
        columns, part_facts = _event_columns(rows, logs, questions)
        first, repeated = _first_responses(columns)
        events = events_table({k: v.take(pa.array(first)) if isinstance(v, pa.Array) else v[first] for k, v in columns.items()})
        add_counts((dropped, facts, tables.excluded), (part_dropped, part_facts, {"repeated_in_session": repeated}))
        n_rows, n_events = n_rows + len(rows) + sum(part_dropped.values()), n_events + events.num_rows
        del logs, columns
        yield events
        del events
        heap_trimmed()
    for column, seen in forms.items():
        seen.check(folder, column)
    if n_rows == sum(dropped.values()):
        raise InputError("no usable rows (every row lacks a timestamp, a question, an answer or a solving_id)", files[0].parent)
    ledger.encodings[folder.name] = "utf8"
    tables.dropped = ledger.dropped() | dropped
    tables.reading = questions.facts | facts | {"kt1_files": len(files)} | ledger.facts()
    log.info("%s: %d rows -> %d events", folder, n_rows, n_events)


def _questions(path: Path) -> _Questions:
    """The answer key and tags of every question; a correct_answer outside a-d or a tag that is not an integer
    stops the run."""
    t = read_csv(path, {"question_id": pa.string(), "correct_answer": pa.string(), "tags": pa.string()}, ids=("question_id",))
    t = t.filter(pc.is_valid(t["question_id"]))
    require_unique(t["question_id"], path, "question_id")
    answer = pc.index_in(pc.utf8_trim_whitespace(t["correct_answer"]), value_set=pa.array(CHOICES))
    if answer.null_count:
        bad = pc.is_null(answer).to_numpy(zero_copy_only=False).argmax()
        raise InputError(f"value '{t['correct_answer'][bad].as_py() or ''}' of question {t['question_id'][bad]} is not "
                         f"one of {', '.join(CHOICES)}", path, "correct_answer")
    tags = _tag_lists(t["tags"].combine_chunks(), t["question_id"], path)
    n = pc.list_value_length(tags).to_numpy(zero_copy_only=False)
    facts = {"multi_skill_from_lists": int((n > 1).sum()), "questions_without_tags": int((n == 0).sum())}
    return _Questions(t["question_id"].combine_chunks(), answer.to_numpy(zero_copy_only=False).astype(np.int8), tags, facts)


def _tag_lists(tags: pa.Array, question_ids: pa.ChunkedArray, path: Path) -> pa.ListArray:
    """Each question's tags: `;`-separated integers under the id rule, in the order written, each once; blank or
    `-1` is none."""
    parts = pc.split_pattern(tags.fill_null(""), ";")
    flat = normalise_ids(pc.list_flatten(parts), path, "tags").to_pylist()
    bad = next((i for i, x in enumerate(flat) if x not in ("", NO_TAG) and not re.fullmatch(r"-?[0-9]+", x)), None)
    if bad is not None:
        question = question_ids[int(pc.list_parent_indices(parts)[bad].as_py())]
        raise InputError(f"tag '{flat[bad]}' of question {question} is not an integer (tags are integers separated "
                         "by ';')", path, "tags")
    offsets = parts.offsets.to_numpy() - parts.offsets[0].as_py()  # positions in `flat`
    lists = [list(dict.fromkeys(x for x in flat[a:b] if x not in ("", NO_TAG))) for a, b in zip(offsets[:-1], offsets[1:])]
    return pa.array(lists, pa.list_(pa.string()))


def _usable_rows(logs: FolderTable) -> tuple[np.ndarray, dict[str, int]]:
    """The rows with a timestamp, a question, an answer and a solving_id (each other row counted under its first
    missing column), and the counts."""
    keep = np.ones(logs.table.num_rows, bool)
    dropped = {}
    for column, reason in (("timestamp", "no_timestamp"), ("question_id", "no_question"), ("user_answer", "no_answer"),
                           ("solving_id", "no_solving_id")):
        missing = keep & pc.is_null(logs.table[column]).to_numpy(zero_copy_only=False)
        dropped[f"rows_{reason}"] = int(missing.sum())
        keep &= ~missing
    return np.flatnonzero(keep), dropped


def _event_columns(rows: np.ndarray, logs: FolderTable, questions: _Questions) -> tuple[dict, dict[str, int]]:
    """The canonical event columns of the usable rows, in file order, and what reading them found."""
    t, where = logs.table.take(pa.array(rows)), logs.file_of_row[rows]
    question = _lookup(t["question_id"], questions.ids, logs, where, "question_id", f"is not in {QUESTIONS}")
    answer = _lookup(t["user_answer"], pa.array(CHOICES), logs, where, "user_answer", f"is not one of {', '.join(CHOICES)}")
    ms = _milliseconds(t["timestamp"].to_numpy(), logs, where)
    elapsed = t["elapsed_time"].combine_chunks()
    negative = pc.fill_null(pc.less(elapsed, 0), False)
    users = normalise_ids(pa.array([p.stem for p in logs.files], pa.string()), logs.files[0].parent, "user_id")
    n = len(rows)
    columns = {
        "user_id": pa.DictionaryArray.from_arrays(pa.array(where, pa.int32()), users),
        "item_id": pa.DictionaryArray.from_arrays(pa.array(question, pa.int32()), questions.ids),
        "skill_ids": questions.tags.take(pa.array(question)),
        "timestamp": ms,
        "correct": (answer == questions.answer[question]).astype(np.int8),
        "action_sequence_id": t["solving_id"].combine_chunks(),
        "latency_ms": pc.if_else(negative, pa.scalar(None, pa.int64()), elapsed),
        "help_requested": np.zeros(n, bool),
        "hint_count": np.zeros(n, np.int16),
        "attempt_count": np.ones(n, np.int16),
        "problem_type": pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), pa.array([PROBLEM_TYPE])),
    }
    return columns, {"elapsed_time_negative": int(pc.sum(negative).as_py() or 0)}


def _lookup(values: pa.ChunkedArray, known: pa.Array, logs: FolderTable, where: np.ndarray, column: str, why: str) -> np.ndarray:
    """Each value's place in `known` (through the column's dictionary); the first value not there stops the run,
    naming the file of its first row."""
    idx, dictionary = codes(values)
    place = pc.index_in(dictionary, value_set=known).fill_null(-1).to_numpy(zero_copy_only=False)
    found = place[idx]
    if (found < 0).any():
        row = int(np.argmax(found < 0))
        raise InputError(f"value '{dictionary[idx[row]]}' {why}", logs.files[where[row]], column)
    return found


def _milliseconds(ms: np.ndarray, logs: FolderTable, where: np.ndarray) -> np.ndarray:
    """The timestamps, which the release gives in unix milliseconds: a value that is no date in 1990-2100 in ms
    (seconds, microseconds) stops the run, naming its file (ktirt.sources.timestamps names the unit it is in)."""
    outside = (ms < LOW_MS) | (ms >= HIGH_MS)
    if outside.any():
        row = int(np.argmax(outside))
        to_utc_ms(pa.array(ms[row:row + 1]), logs.files[where[row]], "timestamp", unit="milliseconds")  # raises
    return ms


def _first_responses(columns: dict) -> tuple[np.ndarray, int]:
    """The rows less a question answered again in the same solving_id, after its first answer in time (ties: the
    earlier line): (rows kept, rows left out). Sorted only when there is such a repeat."""
    key = pa.table({"user": columns["user_id"].indices, "session": codes(columns["action_sequence_id"])[0],
                    "item": columns["item_id"].indices})
    order = np.arange(key.num_rows)
    if len(duplicate_rows(key)):
        order = np.lexsort((columns["timestamp"], key["user"].to_numpy()))  # stable: ties keep the line order
        key = key.take(pa.array(order))
    repeated = duplicate_rows(key)
    return order[kept(len(order), repeated)], len(repeated)


def problem_types(raw_dir: str | Path) -> dict[str, str]:
    """question_id -> "Multiple Choice" for every question of questions.csv (so items.parquet lists them all)."""
    t = read_csv(Path(raw_dir) / QUESTIONS, {"question_id": pa.string()}, ids=("question_id",), drop_duplicates=False)
    return {q: PROBLEM_TYPE for q in pc.unique(t["question_id"].drop_null()).to_pylist()}
