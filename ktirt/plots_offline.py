"""An HTML template for `dvc plots show` that works offline.

DVC's default page loads Vega, Vega-Lite and Vega-Embed from a CDN, so it shows nothing without a network.
This template inlines the three libraries, bundled by the `vl-convert-python` package (no download), and
keeps DVC's placeholders; `.dvc/config` points `plots.html_template` at it. It is a source file in git, not a
stage output, so `dvc plots show` works on a fresh clone before any `dvc repro`; after changing this module, its
Jinja2 template (ktirt/plots_offline.html) or the `vl-convert-python` pin, regenerate it with
`python bench/offline_template.py` (a test fails until then).
"""

from __future__ import annotations

import json
import logging
from html.parser import HTMLParser
from pathlib import Path

VEGA_LITE = "5.8"
"""DVC's templates are written for Vega-Lite 5 (they use both `params` and the older `selection`)."""
TEMPLATE = "plots/offline_template.html"
"""Where `.dvc/config` (`plots.html_template`) expects the page template, from the repository root."""

TEMPLATE_SOURCE = "plots_offline.html"
"""The Jinja2 template of that page, package data beside this module."""


def offline_template(vl_version: str = VEGA_LITE) -> str:
    """The page template, the Vega libraries inlined; DVC's placeholders ({plot_divs}, {refresh_tag}) kept."""
    import vl_convert as vlc

    from ktirt.html_templates import render

    bundle = vlc.javascript_bundle(vl_version=vl_version)
    for placeholder in ("{plot_divs}", "{refresh_tag}", "{scripts}"):
        if placeholder in bundle:  # DVC fills placeholders by plain replacement: the bundle must not contain one
            raise RuntimeError(f"the Vega bundle contains DVC's placeholder {placeholder}")
    return render("ktirt", TEMPLATE_SOURCE, vega=vlc.get_vega_version(), vega_lite=vl_version,
                  vega_embed=vlc.get_vega_embed_version(), bundle=bundle)


def write_template(path: str | Path = TEMPLATE) -> Path:
    """Regenerate the committed template (atomically: DVC never reads half a page)."""
    from ktirt.io import write_text

    write_text(offline_template(), path)
    logging.getLogger(__name__).info("wrote %s", path)
    return Path(path)


class _PageReader(HTMLParser):
    """What page_plots and external_scripts need from a page, read by the standard library's HTML parser (it knows
    where a script ends; a regular expression also finds tags inside the bundle's strings): every script's `src`,
    and every inline script's text with the id of the div it opens, if any."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sources: list[str] = []
        self.scripts: list[tuple[str | None, str]] = []  # (id of the div the script is the first child of, text)
        self._div_id: str | None = None  # the id of the div just opened, until anything else comes
        self._script: tuple[str | None, list[str]] | None = None  # the script being read: its div's id, its text so far

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attrs = dict(attrs)
        if tag == "script":
            self.sources += [attrs["src"]] if attrs.get("src") else []
            self._script = (self._div_id, [])
        self._div_id = attrs.get("id") if tag == "div" else None

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            self._script[1].append(data)  # a script's text may come in more than one piece
        elif data.strip():
            self._div_id = None

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._script is not None:
            self.scripts.append((self._script[0], "".join(self._script[1])))
            self._script = None
        self._div_id = None


def _read(html: str) -> _PageReader:
    reader = _PageReader()
    reader.feed(html)
    reader.close()
    return reader


def _spec(code: str) -> dict | None:
    """The spec in DVC's plot script (`var spec = {...}; vegaEmbed(...)`), or None for any other script."""
    head, eq, rest = code.partition("=")
    if head.split() != ["var", "spec"]:
        return None
    rest = rest.lstrip()
    spec, end = json.JSONDecoder().raw_decode(rest)
    tail = rest[end:].lstrip()
    return spec if isinstance(spec, dict) and tail.startswith(";") and tail[1:].lstrip().startswith("vegaEmbed") else None


def page_plots(html: str) -> dict[str, dict]:
    """The Vega-Lite spec of every plot on a page `dvc plots show` wrote, by its div id: DVC writes each plot as a
    <div id="..."> whose first child is the script holding its spec."""
    out = {}
    for div_id, code in _read(html).scripts:
        if div_id and (spec := _spec(code)) is not None:
            out[div_id] = spec
    return out


def external_scripts(html: str) -> list[str]:
    """Script sources the page would fetch from a network (none on an offline page)."""
    return [src for src in _read(html).sources if src.lower().startswith(("http://", "https://"))]


def render_svg(spec: dict, vl_version: str = VEGA_LITE) -> str:
    """Render one spec headlessly with the same bundled Vega libraries the page inlines (no browser, no network)."""
    import vl_convert as vlc

    return vlc.vegalite_to_svg(spec, vl_version=vl_version)

