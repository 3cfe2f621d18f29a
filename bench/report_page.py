"""Benchmark: the HTML report's size, build time and first paint in headless Chromium, at the default and at
EDM-Cup scale, beside the `dvc plots show` page measured in the same run (the baseline: the libraries alone,
the same inlined Vega bundle, a handful of small plots).

    python bench/report_page.py                        # the default run's data/exports/report.html
    python bench/pipeline_scale.py && python bench/report_page.py --run bench/out/pipeline   # EDM-Cup scale

`--run DIR` reads a bench/pipeline_scale.py folder (exports/, the metrics JSONs, plots/) and builds the page there.
Each page is opened in a fresh browser session (nothing cached), `--repeat` times; the medians are printed.
"""

from __future__ import annotations

import logging
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import click
from _measure import ROOT
from browser_check import check_plots_page, check_report, chromium, first_paint_ms

from ktirt.report import build_report

log = logging.getLogger("bench.report_page")
TARGET_MB, TARGET_PAINT_S = 25.0, 3.0


def measure(path: Path, repeat: int, plots_page: bool = False) -> dict:
    paints, ready = [], []
    for _ in range(repeat):
        session = chromium()
        try:
            t0 = time.perf_counter()
            seen = check_plots_page(session, path) if plots_page else check_report(session, path)
            ready.append(time.perf_counter() - t0)
            paints.append(first_paint_ms(session) / 1000)
            if seen["problems"]:
                raise click.ClickException(f"{path}: {'; '.join(seen['problems'])}")
        finally:
            session.quit()
    return {"mb": path.stat().st_size / 1e6, "first_paint_s": statistics.median(paints), "drawn_s": statistics.median(ready)}


@click.command()
@click.option("--run", "run_dir", type=click.Path(file_okay=False), help="a bench/pipeline_scale.py folder (default: this repo)")
@click.option("--students", default=200, show_default=True, help="report.students")
@click.option("--repeat", default=3, show_default=True)
def main(run_dir, students, repeat) -> None:
    """Measure the HTML report's size, build time and first paint in headless Chromium beside `dvc plots show`'s
    page, in one run: prints the medians of --repeat fresh browser sessions."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if run_dir:
        w = Path(run_dir)
        exports, metrics, plots, source = w / "exports", w, w / "plots", "synthetic (EDM-Cup scale)"
    else:
        exports, metrics, plots, source = ROOT / "data/exports", ROOT / "metrics", ROOT / "plots", "synthetic"
    t0 = time.perf_counter()
    html = build_report(exports, metrics, plots, source, students, 10, 0)
    build_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "report.html"
        page.write_text(html, encoding="utf-8")
        report = measure(page, repeat)
        subprocess.run(["dvc", "plots", "show", "--out", str(Path(tmp) / "plots")], cwd=ROOT, check=True, capture_output=True)
        baseline = measure(Path(tmp) / "plots" / "index.html", repeat, plots_page=True)
    print(f"report of {exports}: built in {build_s:.1f} s ({students} students)")
    print(f"{'page':28}{'MB':>8}{'first paint s':>15}{'all drawn s':>13}")
    for name, m in (("report.html", report), ("dvc plots show (baseline)", baseline)):
        print(f"{name:28}{m['mb']:8.2f}{m['first_paint_s']:15.3f}{m['drawn_s']:13.2f}")
    print(f"report / baseline: size {report['mb'] / baseline['mb']:.2f}x, first paint {report['first_paint_s'] / baseline['first_paint_s']:.2f}x")
    print(f"targets: <= {TARGET_MB:.0f} MB {'met' if report['mb'] <= TARGET_MB else 'NOT met'}; first paint <= {TARGET_PAINT_S:.0f} s "
          f"{'met' if report['first_paint_s'] <= TARGET_PAINT_S else 'NOT met'}")


if __name__ == "__main__":
    main()
