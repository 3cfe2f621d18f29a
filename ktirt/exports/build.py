"""One export run: both engines' outputs over every student, as the joinable tables and two reports.

The events are read a batch of whole students at a time (ktirt.user_batches), so the run holds one batch, not
the log. A first pass gathers what needs every student: the vocabulary check, the skill matrices' width, the
(item, skill) pairs (typical items, the skills table) and the latency histogram (ktirt.streaming_stats); a
second reads the latencies again for the terciles' exact values. The third scores each batch with SAKT (windows scored in fixed runs across the batches' edges, so the numbers
are those of one pass) and appends its rows to the two large tables as it goes; of the rest it keeps what the
reports need (the test responses' behaviours, in a temporary file; each student-skill pair's last mastery)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd
import pyarrow as pa
from tqdm import tqdm

from ktirt.aligned_rows import AlignedReader
from ktirt.events import item_skill_pairs
from ktirt.exports.reports import MasteryParts, SliceRows, behavior_slices
from ktirt.exports.tables import (ROW_GROUP, item_drift_table, item_params_table, predictions_table, skills_table,
                                  student_state_table)
from ktirt.io import parquet_parts, read_parquet, write_parquet, write_text
from ktirt.irt.drift import drifting_item_ids
from ktirt.irt.model_files import EVENT_PREDICTIONS, ITEM_DRIFT, ITEM_PARAMS
from ktirt.kt.sakt_run import check_training_items, load_checkpoint
from ktirt.kt.sakt_training import ModelVocab
from ktirt.kt.scoring import Scorer, known_item_skills, of_responses, scoring_windows, typical_items
from ktirt.kt.sequences import MAX_SKILLS, load_sequences
from ktirt.kt.fixed_runs import in_fixed_runs
from ktirt.heap import freed_memory_returned, heap_trimmed
from ktirt.runtime import resolve_device, seed_everything
from ktirt.settings import ExportSettings  # the export section of params.yaml
from ktirt.user_batches import batches_of
from ktirt.vocab import Vocabulary, padded_index, skill_lists

log = logging.getLogger(__name__)

FIRST_PASS_COLUMNS = ["user_id", "item_id", "skill_ids", "latency_ms"]
SCORING_ROWS = 1 << 19
"""events rows read at a time for scoring (a batch of whole students holds about this many): the export's peak is
one batch's windows, scores and output rows on top of what it holds, so it follows this, not the log"""
STREAMED = ("sakt_predictions", "sakt_student_state")
"""the tables with a row per response, written a batch at a time as they are scored"""


@dataclass
class ExportRun:
    tables: dict[str, pa.Table]
    """the small tables (item_params, item_drift, skills), written with the streamed ones"""
    behavior_slices: pd.DataFrame
    """data/exports/behavior_slices.parquet, and as markdown behavior_slices.md"""
    mastery_report: str
    metrics: dict
    timings: dict = field(default_factory=dict)
    """seconds: for the log and `logs/`, never the tracked metrics (ktirt/timings.py)"""


@dataclass
class _FirstPass:
    width: int = 1
    """the skill matrices' width: the longest skill list (at most MAX_SKILLS)"""
    known_pairs: pd.DataFrame | None = None
    """the (item, skill) pairs of known items, in order of first response (ktirt.kt.scoring.known_item_skills)"""
    event_pairs: pa.Table | None = None
    """the events' distinct (item_id, skill_id) pairs (ktirt.events.item_skill_pairs)"""
    responses: int = 0

    def add(self, known: pd.DataFrame, pairs: pa.Table) -> None:
        """A batch's pairs, merged into the distinct pairs so far (earlier batches first)."""
        known = known if self.known_pairs is None else pd.concat([self.known_pairs, known], ignore_index=True)
        self.known_pairs = known.drop_duplicates(["item", "skill"])
        pairs = pairs if self.event_pairs is None else pa.concat_tables([self.event_pairs, pairs])
        self.event_pairs = pairs.group_by(["item_id", "skill_id"], use_threads=False).aggregate([])


def run_export(events: pa.Table | str | Path, split: dict, sakt_checkpoint: str | Path, wdirt_dir: str | Path,
               descriptions: dict[str, str], s: ExportSettings, out_dir: str | Path) -> ExportRun:
    """Score every student of `events` (a table, or events.parquet's path: read a batch at a time) and write
    data/exports/ into `out_dir`."""
    t0 = time.perf_counter()
    seed_everything(0, s.threads)
    wdirt_dir, out_dir = Path(wdirt_dir), Path(out_dir)
    params = item_params_table(read_parquet(wdirt_dir / ITEM_PARAMS, "train_wdirt"))
    device = resolve_device(s.device)
    model, vocab, mv = load_checkpoint(sakt_checkpoint, map_location=device)
    batches = batches_of(events, rows=SCORING_ROWS)
    slices = SliceRows(drifting_item_ids(read_parquet(wdirt_dir / ITEM_DRIFT, "train_wdirt", columns=["item_id", "drift_flag"])))
    with freed_memory_returned():
        first = _first_pass(batches_of(events, columns=FIRST_PASS_COLUMNS), split, vocab, slices, sakt_checkpoint)
        for t in batches_of(events, columns=["user_id", "latency_ms"])():
            slices.collect(t)  # the latency bands' cuts, before any response is scored
    difficulty = dict(zip(params["item_id"].to_pylist(), params["difficulty"].to_pylist()))
    typical = typical_items(first.known_pairs, vocab, mv, difficulty, s.mastery_items)
    mastery = MasteryParts(vocab.skills, s.falling_drop)
    parts = _scoring_parts(batches, split, vocab, mv, first.width, model.cfg.seq_len, wdirt_dir)
    scored = in_fixed_runs(parts, s.batch_size, Scorer(model.to(device), mv, typical, s.batch_size, device))
    with tqdm(total=first.responses, unit="response", desc="SAKT scoring", leave=False, mininterval=5, disable=None) as bar:
        rows, no_skill = _write_scored(scored, vocab, out_dir, slices, mastery, bar.update)
    drift = item_drift_table(read_parquet(wdirt_dir / ITEM_DRIFT, "train_wdirt"))  # read now: not held while scoring
    tables = {"item_params": params, "item_drift": drift,
              "skills": skills_table(params, first.event_pairs, descriptions)}
    report, figures = mastery.report(tables["skills"], params, drift)
    metrics = {"responses_without_skill": no_skill, "skills_with_typical_items": int((typical[1:] >= 0).any(1).sum()),
               **figures, **{f"rows_{name}": n for name, n in rows.items()},
               **{f"rows_{name}": t.num_rows for name, t in tables.items()}}
    run = ExportRun(tables, slices.table(), report, metrics)
    _write_small(run, out_dir)
    run.timings = {"seconds": round(time.perf_counter() - t0, 2)}
    log.info("exported %d predictions, %d student-state rows, %d items, %d drift windows in %.1f s",
             rows["sakt_predictions"], rows["sakt_student_state"], params.num_rows, drift.num_rows, run.timings["seconds"])
    return run


def _write_scored(scored, vocab: Vocabulary, out_dir: Path, slices: SliceRows, mastery: MasteryParts,
                  progress: Callable[[int], object]) -> tuple[dict, int]:
    """Each scored batch appended to the two per-response tables, and what the reports need of it kept (`progress`
    told each batch's responses); returns the tables' rows and the responses without a skill."""
    rows, no_skill = dict.fromkeys(STREAMED, 0), 0
    with parquet_parts(out_dir / "sakt_predictions.parquet", ROW_GROUP) as add_prediction, \
            parquet_parts(out_dir / "sakt_student_state.parquet", ROW_GROUP) as add_state:
        for (table, seqs, real, wdirt), values in scored:
            predicted, masteries = of_responses(values, real)
            predictions = predictions_table(table, seqs, predicted)
            state, without = student_state_table(table, seqs, vocab, masteries)
            add_prediction(predictions)
            add_state(state)
            slices.add(table, predictions, wdirt)
            mastery.add(state)
            rows["sakt_predictions"] += predictions.num_rows
            rows["sakt_student_state"] += state.num_rows
            no_skill += without
            progress(table.num_rows)
            log.info("scored %d responses of %d students (%d in all)", table.num_rows, len(seqs.users),
                     rows["sakt_predictions"])
            del table, seqs, real, wdirt, values, predicted, masteries, predictions, state  # before the next batch
            heap_trimmed()
    return rows, no_skill


def _first_pass(batches, split: dict, vocab: Vocabulary, slices: SliceRows, checkpoint: str | Path) -> _FirstPass:
    """What needs every student before any is scored; refuses events whose training items differ from the
    ones the checkpoint was trained on (a checkpoint from another dataset or split)."""
    first = _FirstPass()

    def tapped():
        for t in batches():
            skills = padded_index(skill_lists(t["skill_ids"]), vocab.skill_index, MAX_SKILLS)
            first.width = max(first.width, skills.shape[1])
            first.add(known_item_skills(vocab.item_index(t["item_id"].combine_chunks()), skills), item_skill_pairs(t))
            first.responses += t.num_rows
            slices.count(t)
            yield t

    check_training_items(Vocabulary.from_batches(tapped(), split["train"]), vocab, checkpoint)
    return first


def _scoring_parts(batches, split: dict, vocab: Vocabulary, mv: ModelVocab, width: int, L: int, wdirt_dir: Path):
    """Each batch of students as in_fixed_runs takes it: (the batch, its sequences, where its real responses are
    among the positions, WD-IRT's P(correct) of its rows), the positions to score, the windows (global positions)."""
    wdirt = AlignedReader(wdirt_dir / EVENT_PREDICTIONS, "train_wdirt")
    first = 0
    for table in batches():
        with freed_memory_returned():  # the batch's arrays go back to the system when freed (not the model's)
            seqs, _ = load_sequences(table, split, vocab, width)
            real, rows, windows = scoring_windows(seqs, mv, L, first)
        yield (table, seqs, real, wdirt.next_rows(table)), rows, windows
        del windows  # not held while the next batch's are made
        first += rows
    wdirt.finish()


def _write_small(run: ExportRun, out_dir: Path) -> None:
    for name, table in run.tables.items():
        write_parquet(table, out_dir / f"{name}.parquet", ROW_GROUP)
    write_parquet(pa.Table.from_pandas(run.behavior_slices, preserve_index=False), out_dir / "behavior_slices.parquet")
    write_text(behavior_slices(run.behavior_slices), out_dir / "behavior_slices.md")
    write_text(run.mastery_report, out_dir / "mastery_report.md")
