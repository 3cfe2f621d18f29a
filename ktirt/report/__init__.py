"""data/exports/report.html: mastery and item health on one offline page (run, item health, skills, students,
model quality), built from the exports and the metrics; bench/browser_check.py checks it in headless Chromium."""

from __future__ import annotations

from pathlib import Path

from ktirt.report.data import ReportInputs, report_data
from ktirt.report.page import render_page


def build_report(exports: Path, metrics: Path, plots: Path, source: str, students: int, samples: int, seed: int) -> str:
    """The page's HTML; `samples` and `seed` are validate_join's, so its sample students come first."""
    data = report_data(ReportInputs(exports, metrics, plots, source), students, samples, seed)
    return render_page(data, f"ktirt report: {source}")
