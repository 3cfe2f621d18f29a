"""An HTML template for `dvc plots show` that works offline.

DVC's default page loads Vega, Vega-Lite and Vega-Embed from a CDN, so it shows nothing without a network.
This template inlines the three libraries, bundled by the `vl-convert-python` package (no download), and
keeps DVC's placeholders; `.dvc/config` points `plots.html_template` at it. It is a source file in git, not a
stage output, so `dvc plots show` works on a fresh clone before any `dvc repro`; after changing this module, its
Jinja2 template (ktirt/plots_offline.html) or the `vl-convert-python` pin, regenerate it with
`python -m ktirt.plots_offline` (a test fails until then).
"""

from __future__ import annotations

import logging
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


def page_plots(html: str) -> dict[str, dict]:
    """The Vega-Lite spec of every plot on a page `dvc plots show` wrote, by its div id."""
    import json
    import re

    body = html[html.rindex("<body>"):]
    out = {}
    for m in re.finditer(r'<div id\s*=\s*"([^"]+)">\s*<script type\s*=\s*"text/javascript">\s*var spec = (\{.*?\});\s*vegaEmbed',
                         body, flags=re.S):
        out[m.group(1)] = json.loads(m.group(2))
    return out


def external_scripts(html: str) -> list[str]:
    """Script sources the page would fetch from a network (none on an offline page)."""
    import re

    return re.findall(r'<script[^>]*\bsrc\s*=\s*"(https?://[^"]+)"', html)


def render_svg(spec: dict, vl_version: str = VEGA_LITE) -> str:
    """Render one spec headlessly with the same bundled Vega libraries the page inlines (no browser, no network)."""
    import vl_convert as vlc

    return vlc.vegalite_to_svg(spec, vl_version=vl_version)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    write_template(Path(__file__).resolve().parents[1] / TEMPLATE)  # the repository root, whatever the cwd
