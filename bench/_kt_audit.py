"""Each model's test predictions in kt-audit's format (user_id, item_id, timestamp, split, kc_ids, y_true, y_pred),
and kt-audit's verdict on them (PyPI kt-audit 0.2.0; skipped, and said so, where it is not installed).

The file also carries the fold's training students' responses (split `train`): kt-audit's multi-KC check and
its cheap history baseline (a depth-4 tree over past-event aggregates, fitted on the train split) need them.
kt-audit refuses a row without a prediction, so those rows carry a placeholder y_pred, the training responses'
correct rate; only test rows are scored, and the verdict recorded is about them.

Skill lists are written as JSON lists of strings (`["11"]`, `["11", "12"]`): kt-audit reads the CSV with pandas,
which reads a column of bare numbers (a source whose responses carry one numeric skill each) as integers that
kt-audit refuses. An audit that cannot run is recorded as a failed audit (`ok: false` and the error), never a
crash: the fold's result is stored before the audit runs."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from ktirt.io import write_csv
from ktirt.vocab import NO_SKILL

log = logging.getLogger(__name__)


def prediction_frame(events: pa.Table, scored: np.ndarray, p: np.ndarray, train_rows: np.ndarray) -> pd.DataFrame:
    y = events["correct"].to_numpy().astype(int)
    rows = np.r_[train_rows, scored]
    kcs = [json.dumps(s or [NO_SKILL]) for s in events["skill_ids"].take(pa.array(rows)).to_pylist()]
    ts = pd.to_datetime(events["timestamp"].cast(pa.int64()).to_numpy()[rows], unit="ms", utc=True)
    return pd.DataFrame({
        "user_id": events["user_id"].to_numpy(zero_copy_only=False)[rows],
        "item_id": events["item_id"].to_numpy(zero_copy_only=False)[rows],
        "timestamp": ts.strftime("%Y-%m-%dT%H:%M:%S.%f").str[:-3] + "Z",
        "split": ["train"] * len(train_rows) + ["test"] * len(scored),
        "kc_ids": kcs,
        "y_true": y[rows],
        "y_pred": np.r_[np.full(len(train_rows), round(float(y[train_rows].mean()), 6)), p[scored]],
    })


def write_predictions(df: pd.DataFrame, path: Path) -> Path:
    """The predictions file kt-audit reads (and a reader can check): written before any audit runs."""
    write_csv(df, path)
    return path


def audit(path: Path, auc: float) -> dict:
    """kt-audit's verdict on the predictions file at `path`: errors, warnings, recomputed test AUC, its baseline;
    `ok: false` with the error where the audit cannot run on it."""
    try:
        from kt_audit import __version__
        from kt_audit.audit import audit_path
        from kt_audit.config import AuditConfig
    except ImportError:
        log.warning("kt-audit is not installed (pip install kt-audit==0.2.0): no audit")
        return {"status": "kt-audit not installed"}
    try:
        report = audit_path(path, AuditConfig(reported_auc=round(auc, 6)))
        found = [f for f in report.findings if f.severity in ("error", "warn")]
        base = next(iter(report.baselines.values()), {})
        recomputed = round(float(report.metrics["test"]["auc"]), 6)
    except Exception as exc:  # kt-audit's own errors and whatever else stops it: the run goes on
        log.error("kt-audit could not audit %s: %s: %s", path, type(exc).__name__, exc)
        return {"ok": False, "tool_version": __version__, "error": f"{type(exc).__name__}: {exc}"[:500]}
    return {"ok": True, "tool_version": __version__, "verdict": report.verdict,
            "errors": sum(f.severity == "error" for f in found), "warnings": sum(f.severity == "warn" for f in found),
            "recomputed_test_auc": recomputed,
            "cheap_baseline_auc": round(float(base["baseline_auc"]), 6) if "baseline_auc" in base else None,
            "findings": [f"{f.severity} {f.check}: {f.message}" for f in found]}
