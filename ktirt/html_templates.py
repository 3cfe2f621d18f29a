"""The one way ktirt writes an HTML page: a Jinja2 template shipped in the package, autoescaped, with whatever
goes inside a <script> element passed through `script_safe`. The report (ktirt/report/report.html) and the
offline `dvc plots show` template (ktirt/plots_offline.html) both use it, so neither keeps its own slot scheme
or its own escaper.
"""

from __future__ import annotations

import functools
import json
import re
from importlib import resources

import jinja2
from markupsafe import Markup

_SCRIPT_END = re.compile(r"</(script)", re.I)


def script_safe(value) -> Markup:
    """Text for inside a <script> element that cannot end the element early, where autoescaping would break it.

    A str is code and only `</script` is rewritten, as `<\\/script` (a wider replacement breaks the bundle's
    regular expressions such as /</g). Anything else is data, written as compact JSON in which every `</` is
    `<\\/`, which JSON reads back as `</`."""
    if isinstance(value, str):
        return Markup(_SCRIPT_END.sub(r"<\\/\1", value))
    text = json.dumps(value, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    return Markup(text.replace("</", "<\\/"))


@functools.cache
def _environment(package: str) -> jinja2.Environment:
    """Templates are read from the package's own files (package data), so the installed library finds them."""
    def load(name: str) -> str:
        return resources.files(package).joinpath(name).read_text(encoding="utf-8")

    # StrictUndefined: a value the caller forgot is an error, not an empty slot on a page that looks fine;
    # keep_trailing_newline: the page ends exactly as its template does
    env = jinja2.Environment(loader=jinja2.FunctionLoader(load), autoescape=True, keep_trailing_newline=True,
                             undefined=jinja2.StrictUndefined)
    env.filters["script_safe"] = script_safe
    return env


def render(package: str, template: str, **values) -> str:
    """The page `template` (a file in `package`) with `values` filled in; the same values give the same bytes."""
    return _environment(package).get_template(template).render(**values)
