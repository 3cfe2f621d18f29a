"""The report as one self-contained HTML file: the report's data as JSON, Vega / Vega-Lite / Vega-Embed inlined from
`vl-convert-python` (the bundle the offline plots template uses), and a small script that draws the charts and
tables. No request leaves the page, so it opens by double-click, offline, anywhere.
"""

from __future__ import annotations

import json
import re
from importlib import resources

from ktirt.plots_offline import VEGA_LITE

SLOTS = ("/*__STYLE__*/", "__TITLE__", "/*__BUNDLE__*/", "__DATA__", "/*__SCRIPT__*/")


def _script_safe(code: str) -> str:
    """Script code that cannot close the <script> element it sits in (only `</script` would; a wider replacement
    breaks the bundle's regular expressions such as /</g)."""
    return re.sub(r"</(script)", r"<\\/\1", code, flags=re.I)


def _json_safe(data: dict) -> str:
    """JSON whose strings cannot close the <script> element: `</` is written `<\\/`, which JSON reads as `</`."""
    return json.dumps(data, separators=(",", ":"), allow_nan=False, ensure_ascii=False).replace("</", "<\\/")


def render_page(data: dict, title: str) -> str:
    """The page for `data` (ktirt.report.data.report_data); the same data gives the same bytes."""
    import html

    import vl_convert as vlc

    files = resources.files("ktirt.report")
    parts = {"/*__STYLE__*/": files.joinpath("report.css").read_text(encoding="utf-8"),
             "__TITLE__": html.escape(title),
             "/*__BUNDLE__*/": _script_safe(vlc.javascript_bundle(vl_version=VEGA_LITE)),
             "__DATA__": _json_safe(data),
             "/*__SCRIPT__*/": _script_safe(files.joinpath("report.js").read_text(encoding="utf-8"))}
    page = files.joinpath("report.html").read_text(encoding="utf-8")
    missing = [slot for slot in SLOTS if slot not in page]
    if missing:
        raise RuntimeError(f"report.html lacks the slots {missing}")
    # one pass over the template: text put into a slot is never searched for another slot
    return re.sub("|".join(map(re.escape, SLOTS)), lambda m: parts[m.group(0)], page)
