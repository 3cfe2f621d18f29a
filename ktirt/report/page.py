"""The report as one self-contained HTML file: the report's data as JSON, Vega / Vega-Lite / Vega-Embed inlined from
`vl-convert-python` (the bundle the offline plots template uses), and a small script that draws the charts and
tables. No request leaves the page, so it opens by double-click, offline, anywhere. The page is the Jinja2
template report.html, rendered by ktirt.html_templates like every page ktirt writes.
"""

from __future__ import annotations

from importlib import resources

from markupsafe import Markup

from ktirt.html_templates import render
from ktirt.plots_offline import VEGA_LITE


def render_page(data: dict, title: str) -> str:
    """The page for `data` (ktirt.report.data.report_data); the same data gives the same bytes."""
    import vl_convert as vlc

    files = resources.files("ktirt.report")
    return render("ktirt.report", "report.html", title=title,
                  style=Markup(files.joinpath("report.css").read_text(encoding="utf-8")),  # our own stylesheet, verbatim
                  bundle=vlc.javascript_bundle(vl_version=VEGA_LITE), data=data,
                  script=files.joinpath("report.js").read_text(encoding="utf-8"))
