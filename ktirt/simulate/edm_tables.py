"""Write a simulated world and its clickstream as the EDM Cup 2023 release's files (real names, columns and
value formats), plus the ground truth in `_truth/` for oracle AUC, parameter recovery and drift checks."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ktirt.simulate.ids import random_ids
from ktirt.simulate.portable import PARAMETER, PROBABILITY, portable
from ktirt.simulate.responses import ACTIONS, Clickstream, clickstream_of
from ktirt.simulate.world import DOMAINS, World

log = logging.getLogger(__name__)
CHUNK_ROWS = 2_000_000


class AppendedFiles:
    """The release's files, each written as batch after batch of rows arrive (a CSV's header once, a parquet
    file's schema from its first batch); one batch gives the bytes of one whole-table write."""

    def __init__(self) -> None:
        self._writers: dict[Path, pacsv.CSVWriter | pq.ParquetWriter] = {}
        self._schemas: dict[Path, pa.Schema] = {}
        self.rows: dict[Path, int] = {}

    def csv(self, df: pd.DataFrame | pa.Table, path: Path) -> None:
        self._append(df, path, lambda schema: pacsv.CSVWriter(path, schema, write_options=pacsv.WriteOptions(
            quoting_style="needed")))

    def parquet(self, df: pd.DataFrame, path: Path) -> None:
        self._append(df, path, lambda schema: pq.ParquetWriter(path, schema))

    def _append(self, df: pd.DataFrame | pa.Table, path: Path, open_writer) -> None:
        table = df if isinstance(df, pa.Table) else pa.Table.from_pandas(df, preserve_index=False)
        if path not in self._writers:
            self._writers[path], self._schemas[path] = open_writer(table.schema), table.schema
        self._writers[path].write_table(table.cast(self._schemas[path]))
        self.rows[path] = self.rows.get(path, 0) + table.num_rows

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()


def _csv(df: pd.DataFrame | pa.Table, path: Path) -> None:
    """A whole table as one file (the world's tables)."""
    files = AppendedFiles()
    files.csv(df, path)
    files.close()


def _datetime_text(seconds: np.ndarray) -> np.ndarray:
    """'2022-09-06 13:42:07.123' (UTC), blank where missing, as assignment_details has them."""
    ms = np.where(np.isfinite(seconds), np.round(np.nan_to_num(seconds) * 1000), 0).astype("int64")
    text = np.char.replace(np.datetime_as_string(ms.astype("datetime64[ms]"), unit="ms"), "T", " ")
    return np.where(np.isfinite(seconds), text, "")


def _vectors(x: np.ndarray) -> list[str]:
    return ["[" + ", ".join(f"{v:.4f}" for v in row) + "]" for row in x]


@dataclass(frozen=True)
class _HelpIds:
    """Hint and explanation ids with each item's place among them: the detail tables and action_logs.csv
    must name the same hint and explanation for an item."""

    hint_ids: np.ndarray
    hint_offset: np.ndarray  # per item: the index of its first hint in hint_ids
    expl_ids: np.ndarray
    expl_of_item: np.ndarray  # per item: its index in expl_ids, -1 without an explanation


class TablesWriter:
    """The release's tables written a batch of classes at a time: each batch's logs, unit-test scores, action rows
    and truth appended, the world's tables (problems, hints, explanations, sequences) with the first batch. A
    batch draws from its `rng` in this fixed order (log ids; with the first batch, hint and explanation ids and
    their details; the withheld unit tests), so one seed gives the same bytes. Log ids are distinct across
    batches: one drawn again by a later batch is redrawn."""

    def __init__(self, world: World, out: Path, evaluation_fraction: float, n_tests: int):
        self.world, self.out, self.evaluation_fraction, self.n_tests = world, out, evaluation_fraction, n_tests
        self.files = AppendedFiles()
        self.help_ids: _HelpIds | None = None
        self.log_ids_taken = np.zeros(0, dtype="S10")
        self.counts = {"action_rows": 0, "assignment_logs": 0, "problems": len(world.items), "unit_test_scores": 0}
        out.mkdir(parents=True, exist_ok=True)

    def __enter__(self) -> "TablesWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.files.close()

    def add(self, logs: pd.DataFrame, problems: pd.DataFrame, tests: pd.DataFrame, rng: np.random.Generator) -> None:
        """One answered batch: its action rows laid out, then its tables and truth written."""
        world, out = self.world, self.out
        clicks = clickstream_of(logs, problems, tests, rng)
        log_ids = self._fresh_log_ids(rng, len(logs))
        if self.help_ids is None:
            self.help_ids = _help_ids(world.items, self.n_tests, rng)
            _write_problems(world, out)
            _write_hints(world, self.help_ids, rng, out)
            _write_explanations(world, self.help_ids, rng, out)
            _write_sequences(world, out)
            write_world_truth(world, out / "_truth")
        _write_assignments(world, logs, log_ids, out, self.files)
        withheld = _write_unit_test_scores(tests, log_ids, world.ids["problem"], rng, self.evaluation_fraction, out,
                                           self.files)
        h = self.help_ids
        self.counts["action_rows"] += _write_action_logs(clicks, logs, log_ids, world.ids["problem"], h.hint_ids,
                                                         h.hint_offset, h.expl_ids, h.expl_of_item, out, self.files)
        _write_batch_truth(world, clicks, log_ids, withheld, out / "_truth", self.files)
        self.counts["assignment_logs"] += len(logs)
        self.counts["unit_test_scores"] += len(tests)

    def _fresh_log_ids(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """`n` log ids none of the earlier batches took (the first batch's draw as it is)."""
        ids = random_ids(rng, n)
        clash = np.isin(ids.astype("S10"), self.log_ids_taken)
        while clash.any():
            ids[clash] = random_ids(rng, int(clash.sum()))
            _, first = np.unique(ids, return_index=True)
            clash = np.isin(ids.astype("S10"), self.log_ids_taken)
            clash[np.setdiff1d(np.arange(n), first)] = True  # an id two logs of this batch now share: the later's
        self.log_ids_taken = np.concatenate([self.log_ids_taken, ids.astype("S10")])
        return ids


def _help_ids(items: pd.DataFrame, n_tests: int, rng: np.random.Generator) -> _HelpIds:
    """Hints and explanations take their ids from one draw that also holds one id per unit-test row, which nothing
    uses: the draw's size is part of the seeded stream, so it stays."""
    n_hints = items["n_hints"].to_numpy()
    n_expl = items["has_explanation"].to_numpy().astype(int)
    extra_ids = random_ids(rng, int(n_hints.sum() + n_expl.sum()) + n_tests)
    expl_of_item = np.full(len(items), -1)
    expl_of_item[n_expl == 1] = np.arange(n_expl.sum())
    return _HelpIds(hint_ids=extra_ids[: n_hints.sum()], hint_offset=np.concatenate([[0], np.cumsum(n_hints)[:-1]]),
                    expl_ids=extra_ids[n_hints.sum() : n_hints.sum() + n_expl.sum()], expl_of_item=expl_of_item)


def _write_problems(world: World, out: Path) -> None:
    """problem_details.csv: the skill code and description are blank where the release leaves an item untagged."""
    ids, items, skills = world.ids, world.items, world.skills
    code = np.where(items["has_skill_code"], skills["code"].to_numpy()[items["skill"]], "")
    desc = np.where(items["has_skill_code"], skills["description"].to_numpy()[items["skill"]], "")
    _csv(pd.DataFrame({
        "problem_id": ids["problem"],
        "problem_multipart_id": ids["multipart"][items["multipart_index"]],
        "problem_multipart_position": items["multipart_position"],
        "problem_type": items["problem_type"],
        "problem_skill_code": code,
        "problem_skill_description": desc,
        "problem_contains_image": items["contains_image"],
        "problem_contains_equation": items["contains_equation"],
        "problem_contains_video": items["contains_video"],
        "problem_text_bert_pca": _vectors(items.attrs["text"]),
    }), out / "problem_details.csv")


def _write_hints(world: World, help_ids: _HelpIds, rng: np.random.Generator, out: Path) -> None:
    """hint_details.csv: a hint's text vector is its problem's plus noise, so hints read like their problem."""
    ids, items = world.ids, world.items
    hint_ids, text = help_ids.hint_ids, items.attrs["text"]
    hint_item = np.repeat(np.arange(len(items)), items["n_hints"].to_numpy())
    _csv(pd.DataFrame({
        "hint_id": hint_ids,
        "hint_creator_id": ids["teacher"][rng.integers(0, len(ids["teacher"]), len(hint_ids))],
        "hint_position": np.arange(len(hint_ids)) - help_ids.hint_offset[hint_item] + 1,
        "hint_contains_image": (rng.random(len(hint_ids)) < 0.1).astype(np.int8),
        "hint_contains_equation": (rng.random(len(hint_ids)) < 0.3).astype(np.int8),
        "hint_contains_video": (rng.random(len(hint_ids)) < 0.01).astype(np.int8),
        "hint_text_bert_pca": _vectors(np.round(text[hint_item] + rng.normal(0, 0.3, (len(hint_ids), text.shape[1])), 4)),
    }), out / "hint_details.csv")


def _write_explanations(world: World, help_ids: _HelpIds, rng: np.random.Generator, out: Path) -> None:
    """explanation_details.csv: at most one explanation per problem, its text vector near the problem's."""
    ids, items = world.ids, world.items
    expl_ids, text = help_ids.expl_ids, items.attrs["text"]
    expl_item = np.flatnonzero(items["has_explanation"].to_numpy().astype(int))
    _csv(pd.DataFrame({
        "explanation_id": expl_ids,
        "explanation_creator_id": ids["teacher"][rng.integers(0, len(ids["teacher"]), len(expl_ids))],
        "explanation_contains_image": (rng.random(len(expl_ids)) < 0.1).astype(np.int8),
        "explanation_contains_equation": (rng.random(len(expl_ids)) < 0.3).astype(np.int8),
        "explanation_contains_video": (rng.random(len(expl_ids)) < 0.02).astype(np.int8),
        "explanation_text_bert_pca": _vectors(np.round(text[expl_item] + rng.normal(0, 0.3, (len(expl_ids), text.shape[1])), 4)),
    }), out / "explanation_details.csv")


def _write_sequences(world: World, out: Path) -> None:
    """sequence_details.csv and sequence_relationships.csv: problem sets and unit tests filed by grade, domain and
    skill code as the release's folders are, each problem set tied to its skill's unit test."""
    ids, skills, seqs = world.ids, world.skills, world.sequences
    sk = skills.iloc[seqs["skill"]].reset_index(drop=True)
    grade = sk["code"].str.split(".").str[0]
    domain = sk["code"].str.split(".").str[1]
    kind = np.where(seqs["is_unit_test"], "Unit Test", "Problem Set")
    rank = seqs.groupby("skill").cumcount().to_numpy()
    _csv(pd.DataFrame({
        "sequence_id": ids["sequence"],
        "sequence_folder_path_level_1": "Simulated Middle School Math (ktirt)",
        "sequence_folder_path_level_2": "Grade " + grade,
        "sequence_folder_path_level_3": domain.map(lambda d: DOMAINS[d][0]),
        "sequence_folder_path_level_4": sk["code"],
        "sequence_folder_path_level_5": kind,
        "sequence_name": [f"{c} {k} {r}" for c, k, r in zip(sk["code"], kind, rank)],
        "sequence_problem_ids": ["[" + ",".join(ids["problem"][world.seq_items[s : s + n]]) + "]"
                                 for s, n in zip(seqs["start"], seqs["length"])],
    }), out / "sequence_details.csv")
    ut_seq = seqs.index[seqs["is_unit_test"]].to_numpy()
    pairs = pd.DataFrame({"u": ut_seq[seqs["skill"][~seqs["is_unit_test"]]], "i": seqs.index[~seqs["is_unit_test"]]})
    _csv(pd.DataFrame({"unit_test_sequence_id": ids["sequence"][pairs["u"]], "in_unit_sequence_id": ids["sequence"][pairs["i"]]}),
         out / "sequence_relationships.csv")


def _write_assignments(world: World, logs: pd.DataFrame, log_ids: np.ndarray, out: Path, files: AppendedFiles) -> None:
    """assignment_details.csv and assignment_relationships.csv: each student's problem-set logs in a unit tied to
    the log of that unit's test, as the competition links them."""
    ids = world.ids
    cls = logs["class_index"].to_numpy()
    files.csv(pd.DataFrame({
        "assignment_log_id": log_ids,
        "teacher_id": ids["teacher"][world.classes["teacher_index"].to_numpy()[cls]],
        "class_id": ids["class"][cls],
        "student_id": ids["student"][logs["student"]],
        "sequence_id": ids["sequence"][logs["sequence"]],
        "assignment_release_date": _datetime_text(logs["release"].to_numpy()),
        "assignment_due_date": _datetime_text(logs["due"].to_numpy()),
        "assignment_start_time": _datetime_text(logs["start"].to_numpy()),
        "assignment_end_time": _datetime_text(logs["end"].to_numpy()),
    }), out / "assignment_details.csv")
    key = ["student", "class_index", "unit"]
    rel = logs.reset_index().merge(logs[logs["is_unit_test"]].reset_index()[key + ["index"]], on=key, suffixes=("", "_test"))
    rel = rel[~rel["is_unit_test"]]
    files.csv(pd.DataFrame({"unit_test_assignment_log_id": log_ids[rel["index_test"]], "in_unit_assignment_log_id": log_ids[rel["index"]]}),
         out / "assignment_relationships.csv")


def _write_unit_test_scores(tests: pd.DataFrame, log_ids: np.ndarray, problem_ids: np.ndarray, rng: np.random.Generator,
                            evaluation_fraction: float, out: Path, files: AppendedFiles) -> np.ndarray:
    """training_ and evaluation_unit_test_scores.csv: whole logs are withheld for evaluation, as in the competition
    (the evaluation rows numbered on from the earlier batches'). Returns which unit-test rows were withheld (the
    truth records it)."""
    test_logs = np.unique(tests["log"])
    held = rng.random(len(test_logs)) < evaluation_fraction
    withheld = np.isin(tests["log"].to_numpy(), test_logs[held])
    t_log, t_item = log_ids[tests["log"]], problem_ids[tests["item"]]
    files.csv(pd.DataFrame({"assignment_log_id": t_log[~withheld], "problem_id": t_item[~withheld], "score": tests["score"][~withheld]}),
              out / "training_unit_test_scores.csv")
    evaluation = out / "evaluation_unit_test_scores.csv"
    first = files.rows.get(evaluation, 0)
    files.csv(pd.DataFrame({"id": np.arange(first, first + withheld.sum()), "assignment_log_id": t_log[withheld],
                            "problem_id": t_item[withheld]}), evaluation)
    return withheld


def _write_action_logs(clicks, logs, log_ids, problem_ids, hint_ids, hint_offset, expl_ids, expl_of_item, out: Path,
                       files: AppendedFiles) -> int:
    a = clicks.actions
    log_arr, prob_arr = pa.array(log_ids), pa.array(problem_ids)
    hint_arr, expl_arr = pa.array(hint_ids), pa.array(expl_ids)
    action_arr = pa.array(ACTIONS)
    expl_code = ACTIONS.index("explanation_requested")
    per_log = {c: logs[c].to_numpy() for c in ("max_attempts", "available_core_tutoring", "score_viewable", "continuous_score_viewable")}
    schema = pa.schema([("assignment_log_id", pa.string()), ("timestamp", pa.float64()), ("problem_id", pa.string()),
                        ("max_attempts", pa.int64()), ("available_core_tutoring", pa.string()), ("score_viewable", pa.int8()),
                        ("continuous_score_viewable", pa.int8()), ("action", pa.string()), ("hint_id", pa.string()),
                        ("explanation_id", pa.string())])
    n = len(a["log"])
    for lo in range(0, max(n, 1), CHUNK_ROWS):  # an empty batch still gives the file its header
        sl = slice(lo, min(n, lo + CHUNK_ROWS))
        lg, it, act = a["log"][sl], a["item"][sl], a["action"][sl]
        hint = np.where(a["hint_ordinal"][sl] >= 0, hint_offset[np.maximum(it, 0)] + a["hint_ordinal"][sl], -1)
        expl = np.where(act == expl_code, expl_of_item[np.maximum(it, 0)], -1)
        cols = [
            log_arr.take(pa.array(lg)),
            pa.array(np.round(a["timestamp"][sl], 3)),
            prob_arr.take(pa.array(it, mask=it < 0)),
            pa.array(per_log["max_attempts"][lg]),
            pa.array(per_log["available_core_tutoring"][lg]),
            pa.array(per_log["score_viewable"][lg]),
            pa.array(per_log["continuous_score_viewable"][lg]),
            action_arr.take(pa.array(act.astype(np.int32))),
            hint_arr.take(pa.array(hint, mask=hint < 0)),
            expl_arr.take(pa.array(expl, mask=expl < 0)),
        ]
        files.csv(pa.Table.from_arrays(cols, schema=schema), out / "action_logs.csv")
    return n


def _write_batch_truth(world: World, clicks: Clickstream, log_ids: np.ndarray, withheld: np.ndarray, truth: Path,
                       files: AppendedFiles) -> None:
    """The batch's responses and unit-test scores with the generative model's values; floats rounded by
    `portable` so the files have one hash on every CPU."""
    pr = clicks.problems
    answered = pr[~pr["started_only"].to_numpy()]
    write_response_truth(world, answered, log_ids[answered["log"]], truth, files)
    write_unit_test_truth(world, clicks.unit_tests, log_ids, withheld, truth, files)


def write_world_truth(world: World, truth: Path) -> None:
    """`items.parquet` and `students.parquet` of the truth, under the ids in `world.ids` and the skill codes in
    `world.skills["code"]` (a writer of another layout passes a world carrying that layout's ids)."""
    truth.mkdir(parents=True, exist_ok=True)
    it, sk, ids = world.items, world.skills, world.ids
    drift_ms = pd.to_datetime(it["drift_time"], unit="s", utc=True).astype("datetime64[ms, UTC]")
    pq.write_table(pa.Table.from_pandas(pd.DataFrame({
        "item_id": ids["problem"],
        "skill_id": sk["code"].to_numpy()[it["skill"]],
        "skill_code_published": it["has_skill_code"].to_numpy(),
        "problem_type": it["problem_type"],
        "is_unit_test_item": it["is_unit_test"],
        "difficulty": portable(it["b"], PARAMETER), "discrimination": portable(it["a"], PARAMETER),
        "guessing": portable(it["c"], PARAMETER),
        "drift": it["drift"], "drift_time": drift_ms, "drift_shift": portable(it["drift_shift"], PARAMETER),
    }), preserve_index=False), truth / "items.parquet")
    st = world.students
    pq.write_table(pa.Table.from_pandas(pd.DataFrame({
        "user_id": ids["student"], "theta": portable(st["theta"], PARAMETER),
        "learning_rate": portable(st["learning_rate"], PARAMETER), "help_bias": portable(st["help_bias"], PARAMETER),
        "speed": portable(st["speed"], PARAMETER), "class_id": ids["class"][st["class_index"]],
    }), preserve_index=False), truth / "students.parquet")


def write_response_truth(world: World, answered: pd.DataFrame, log_ids: np.ndarray, truth: Path,
                         files: AppendedFiles | None = None) -> None:
    """`responses.parquet`: the true probabilities behind each answered problem of `answered`, keyed as the
    adapter's events are (`log_ids`: each row's action_sequence_id)."""
    ids = world.ids
    _parquet(files, pd.DataFrame({
        "action_sequence_id": log_ids,
        "item_id": ids["problem"][answered["item"]],
        "user_id": ids["student"][answered["student"]],
        "graded": answered["graded"].to_numpy(),
        "p_correct": portable(answered["p_correct"].to_numpy(), PROBABILITY),
        "p_solve": portable(answered["p_solve"].to_numpy(), PROBABILITY),
        "difficulty_effective": portable(answered["b_effective"].to_numpy(), PARAMETER),
        "opportunity": answered["opportunity"].to_numpy(),
    }), truth / "responses.parquet")


def write_unit_test_truth(world: World, ut: pd.DataFrame, log_ids: np.ndarray, withheld: np.ndarray, truth: Path,
                          files: AppendedFiles | None = None) -> None:
    """`unit_test_responses.parquet` (header only when `ut` has no rows: a layout without unit tests)."""
    ids = world.ids
    _parquet(files, pd.DataFrame({
        "unit_test_id": log_ids[ut["log"]],
        "item_id": ids["problem"][ut["item"]],
        "user_id": ids["student"][ut["student"]],
        "p_correct": portable(ut["p_correct"], PROBABILITY),
        "score": ut["score"],
        "withheld": withheld,
    }), truth / "unit_test_responses.parquet")


def _parquet(files: AppendedFiles | None, df: pd.DataFrame, path: Path) -> None:
    """`df` appended to `path` through `files`, or, without, written as the whole file."""
    if files is not None:
        files.parquet(df, path)
    else:
        pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path)
