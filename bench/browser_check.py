"""Look at a page the way a person does: headless Chromium (Debian's `chromium` and `chromium-driver`; pip cannot
download browsers here), driven by Selenium. Used by the browser tests (tests/test_pipeline_dvc.py) and by
`bench/report_page.py`; it lives here, not in ktirt, because Selenium is a development requirement
(requirements-dev.txt), not the library's.

    python bench/browser_check.py data/exports/report.html --screenshots docs/figures

checks the report (no console error, no network request, every chart drawn) and saves one screenshot per section.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

import click

from ktirt.plots_offline import page_plots

CHROMIUM = ("chromium", "chromium-browser", "google-chrome")
CHROMEDRIVER = ("chromedriver",)
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:", "chrome-error:")
SECTIONS = ("run", "items", "skills", "students", "quality")
INSTALL = "install it with `apt-get install -y chromium chromium-driver` (Debian/Ubuntu), then rerun"
log = logging.getLogger(__name__)


class BrowserMissing(RuntimeError):
    pass


def _which(names: tuple[str, ...]) -> str | None:
    return next((p for p in map(shutil.which, names) if p), None)


def find_browser() -> tuple[str, str]:
    """(chromium, chromedriver) paths, or BrowserMissing saying how to install them."""
    browser, driver = _which(CHROMIUM), _which(CHROMEDRIVER)
    if not browser or not driver:
        raise BrowserMissing(f"headless Chromium not found ({'chromium' if not browser else 'chromedriver'} missing): {INSTALL}")
    return browser, driver


def chromium(width: int = 1400, height: int = 1000):
    """A headless Chromium session that records the console and every network request."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver = find_browser()
    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", f"--window-size={width},{height}",
                "--allow-file-access-from-files", "--hide-scrollbars"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=driver), options=opts)


def open_page(session, path: str | Path, ready_timeout: float = 60.0) -> float:
    """Load a local page and wait until it says it is drawn (`body[data-ready]`); seconds to that point."""
    from selenium.webdriver.support.ui import WebDriverWait

    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such page")
    t0 = time.perf_counter()
    session.get(Path(path).resolve().as_uri())
    WebDriverWait(session, ready_timeout).until(
        lambda s: s.execute_script("return document.body && document.body.dataset.ready || null"))
    state = session.execute_script("return document.body.dataset.ready")
    if state != "true":
        raise AssertionError(f"{path}: the page did not finish drawing ({state}): {console_errors(session)}")
    return time.perf_counter() - t0


def console_errors(session) -> list[str]:
    """Console messages at error level (SEVERE) since the last call."""
    return [e["message"] for e in session.get_log("browser") if e["level"] == "SEVERE"]


def network_requests(session) -> list[str]:
    """Every URL the page asked for that is not the page itself or inline (file:, data:, blob:)."""
    urls = []
    for entry in session.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg["method"] == "Network.requestWillBeSent":
            urls.append(msg["params"]["request"]["url"])
    return [u for u in urls if not u.startswith(LOCAL_SCHEMES)]


MARKS_JS = """
// data marks only (role 'mark'): axes, legends and titles are marks too, drawn even when no data is
const count = (item) => (item.items || []).reduce((n, child) =>
  n + (child.role === 'mark' && child.marktype !== 'group' ? (child.items || []).length : 0) + count(child), 0);
const out = {};
for (const [name, view] of Object.entries(window[arguments[0]] || {})) out[name] = count(view.scenegraph().root);
return out;
"""


def chart_marks(session, views: str = "reportViews") -> dict[str, int]:
    """Drawn marks (points, bars, line segments...) per chart, from each Vega view's scenegraph: the report's
    (`window.reportViews`) or, with views="plotViews", those of a `dvc plots show` page on our template."""
    return session.execute_script(MARKS_JS, views)


def check_plots_page(session, path: str | Path, timeout: float = 60.0) -> dict:
    """Open a `dvc plots show` page (ktirt/plots_offline.py's template) and wait for every plot to be drawn."""
    from selenium.webdriver.support.ui import WebDriverWait

    # the plots the file holds, not the divs parsed so far (on a busy machine that count once read 1 of 9)
    n = len(page_plots(Path(path).read_text(encoding="utf-8")))
    session.get(Path(path).resolve().as_uri())
    WebDriverWait(session, timeout).until(lambda s: s.execute_script(
        "return Object.keys(window.plotViews || {}).length >= arguments[0] || (window.plotErrors || 0) > 0", n))
    marks, problems = _seen(session, "plotViews", "plot")
    problems += [f"{n - len(marks)} plots never drew"] if len(marks) < n else []
    return {"plots": n, "marks": marks, "problems": problems}


def _seen(session, views: str, what: str) -> tuple[dict[str, int], list[str]]:
    """Each chart's data marks, and what a person would notice: a console error, a request, an empty chart."""
    errors, requests, marks = console_errors(session), network_requests(session), chart_marks(session, views)
    return marks, ([f"console error: {e}" for e in errors] + [f"network request: {u}" for u in requests] +
                   [f"{what} drew nothing: {k}" for k, v in sorted(marks.items()) if v == 0])


def first_paint_ms(session) -> float | None:
    """First contentful paint, from the browser's own paint timing."""
    return session.execute_script(
        "const p = performance.getEntriesByName('first-contentful-paint')[0]; return p ? p.startTime : null;")


def screenshot_sections(session, out_dir: str | Path, prefix: str = "report_") -> list[Path]:
    """One PNG per report section, the section element's own box."""
    from selenium.webdriver.common.by import By

    out = []
    for name in SECTIONS:
        el = session.find_element(By.ID, name)
        height = session.execute_script("return arguments[0].getBoundingClientRect().height", el)
        session.set_window_size(1400, int(height) + 200)  # a section taller than the window would be cut
        session.execute_script("arguments[0].scrollIntoView(); window.scrollBy(0, -48);", el)
        path = Path(out_dir) / f"{prefix}{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        el.screenshot(str(path))
        out.append(path)
    return out


def check_report(session, path: str | Path) -> dict:
    """Open the report and check what a person would notice: an error, a request, an empty chart."""
    seconds = open_page(session, path)
    marks, problems = _seen(session, "reportViews", "chart")
    return {"ready_seconds": round(seconds, 2), "first_paint_ms": first_paint_ms(session), "marks": marks,
            "problems": problems}


@click.command()
@click.argument("page", type=click.Path(exists=True, dir_okay=False), default="data/exports/report.html")
@click.option("--screenshots", type=click.Path(file_okay=False), help="save one PNG per section here")
def main(page, screenshots) -> None:
    """Open the report in headless Chromium and check it as a person would (no console error, no request, data in
    every chart); with --screenshots, save one PNG per section (the README's figures come from it)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        session = chromium()
    except BrowserMissing as exc:
        raise click.ClickException(str(exc)) from None
    try:
        result = check_report(session, page)
        if screenshots:
            result["screenshots"] = [str(p) for p in screenshot_sections(session, screenshots)]
    finally:
        session.quit()
    log.info("%s: drawn in %.2f s, first paint %s ms, %d charts", page, result["ready_seconds"], result["first_paint_ms"],
             len(result["marks"]))
    if result["problems"]:
        raise click.ClickException(f"{page}: " + "; ".join(result["problems"]))


if __name__ == "__main__":
    main()
