"""One export run: both engines' outputs over every student, as the joinable tables and two reports."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from ktirt.errors import InputError
from ktirt.exports.reports import behavior_slice_table, behavior_slices, mastery_report
from ktirt.exports.tables import (Exports, item_drift_table, item_params_table, predictions_table, skills_table,
                                  student_state_table)
from ktirt.io import read_parquet, write_parquet, write_text
from ktirt.irt.drift import drifting_item_ids
from ktirt.irt.model_files import EVENT_PREDICTIONS, ITEM_DRIFT, ITEM_PARAMS
from ktirt.kt.sakt_run import check_vocabulary, load_checkpoint
from ktirt.kt.scoring import score_responses, typical_items
from ktirt.runtime import resolve_device, seed_everything
from ktirt.settings import ExportSettings  # the export section of params.yaml

log = logging.getLogger(__name__)


@dataclass
class ExportRun:
    exports: Exports
    behavior_slices: pd.DataFrame
    """data/exports/behavior_slices.parquet, and as markdown behavior_slices.md"""
    mastery_report: str
    metrics: dict
    timings: dict
    """seconds: for the log and `logs/`, never the tracked metrics (ktirt/timings.py)"""

    def write(self, out_dir: str | Path) -> None:
        self.metrics |= self.exports.write(out_dir)
        write_parquet(pa.Table.from_pandas(self.behavior_slices, preserve_index=False), Path(out_dir) / "behavior_slices.parquet")
        write_text(behavior_slices(self.behavior_slices), Path(out_dir) / "behavior_slices.md")
        write_text(self.mastery_report, Path(out_dir) / "mastery_report.md")


def _read(path: Path, what: str) -> pa.Table:
    return read_parquet(path, what)


def run_export(events: pa.Table, split: dict, sakt_checkpoint: str | Path, wdirt_dir: str | Path,
               descriptions: dict[str, str], s: ExportSettings) -> ExportRun:
    t0 = time.perf_counter()
    seed_everything(0, s.threads)
    wdirt_dir = Path(wdirt_dir)
    params = item_params_table(_read(wdirt_dir / ITEM_PARAMS, "train_wdirt"))
    drift = item_drift_table(_read(wdirt_dir / ITEM_DRIFT, "train_wdirt"))
    wd_events = _read(wdirt_dir / EVENT_PREDICTIONS, "train_wdirt")
    if wd_events.num_rows != events.num_rows or not wd_events["item_id"].equals(events["item_id"]):
        raise InputError("does not line up with events.parquet (rerun train_wdirt)", wdirt_dir / EVENT_PREDICTIONS, "item_id")

    device = resolve_device(s.device)
    model, vocab, mv = load_checkpoint(sakt_checkpoint, map_location=device)
    seqs = check_vocabulary(vocab, events, split, sakt_checkpoint)
    difficulty = dict(zip(params["item_id"].to_pylist(), params["difficulty"].to_pylist()))
    typical = typical_items(seqs, vocab, mv, difficulty, s.mastery_items)
    predicted, mastery = score_responses(model.to(device), seqs, mv, typical, s.batch_size, device)
    predictions = predictions_table(events, seqs, predicted)
    state, no_skill = student_state_table(events, seqs, vocab, mastery)
    skills = skills_table(params, events, descriptions)
    flagged = drifting_item_ids(drift)
    slices = behavior_slice_table(events, predictions, wd_events["predicted"].to_numpy().astype(np.float64), flagged)
    report, figures = mastery_report(state, skills, params, drift, s.falling_drop)
    tables = {"sakt_predictions": predictions, "sakt_student_state": state, "item_params": params, "item_drift": drift,
              "skills": skills}
    metrics = {"responses_without_skill": no_skill, "skills_with_typical_items": int((typical[1:] >= 0).any(1).sum()),
               **figures}
    timings = {"seconds": round(time.perf_counter() - t0, 2)}
    log.info("exported %d predictions, %d student-state rows, %d items, %d drift windows in %.1f s",
             predictions.num_rows, state.num_rows, params.num_rows, drift.num_rows, timings["seconds"])
    return ExportRun(Exports(tables), slices, report, metrics, timings)
