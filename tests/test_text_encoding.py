"""Every text the pipeline writes is UTF-8 whatever the machine's locale: Python's default text encoding is the
locale's (cp1252 on Windows, ASCII under a bare C locale without UTF-8 mode), so a write that does not name its
encoding gives other bytes on another machine, or fails on the first accented skill name."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEXT_CALLS = {"read_text", "write_text", "open"}


def _mode(call: ast.Call) -> str | None:
    """The mode an `open(path, mode)` or `path.open(mode)` call names (None: not a constant)."""
    args = call.args[1:] if isinstance(call.func, ast.Name) else call.args
    given = next((k.value for k in call.keywords if k.arg == "mode"), args[0] if args else ast.Constant("r"))
    return given.value if isinstance(given, ast.Constant) else None


def unnamed_encodings(source: str) -> list[int]:
    """The lines of text-mode file calls that leave the encoding to the locale."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call) or any(k.arg == "encoding" for k in node.keywords):
            continue
        method = isinstance(node.func, ast.Attribute)
        name = node.func.attr if method else getattr(node.func, "id", None)
        if name not in TEXT_CALLS or (name != "open" and not method) or (name == "open" and "b" in (_mode(node) or "")):
            continue  # ktirt.io's write_text names it itself
        if name != "open" or isinstance(node.func, ast.Name) or _mode(node) is not None:
            lines.append(node.lineno)
    return lines


def test_the_scan_finds_a_text_call_without_its_encoding():
    source = ('open(p, "w")\nopen(p)\nopen(p, "rb")\nopen(p, "w", encoding="utf-8")\np.read_text()\n'
              'p.write_text(s, encoding="utf-8")\np.open("a")\np.open("wb")\nwrite_text(s, p)\n')
    assert unnamed_encodings(source) == [1, 2, 5, 7]


def test_every_text_read_and_write_of_the_pipeline_names_its_encoding():
    found = {str(p.relative_to(ROOT)): lines for p in sorted([*ROOT.glob("ktirt/**/*.py"), *ROOT.glob("stages/*.py")])
             if (lines := unnamed_encodings(p.read_text(encoding="utf-8")))}
    assert found == {}, "name encoding='utf-8' (or open the file in binary)"


def test_outputs_are_the_same_utf8_bytes_under_an_ascii_locale(tmp_path):
    """The writers every stage uses, run where Python's default encoding is ASCII."""
    script = ("import sys\nfrom ktirt.io import write_json, write_text\n"  # escaped: an ASCII command line
              "write_text('Fracci\\u00f3n \\u2264 3 \\u00d7 2\\n', sys.argv[1] + '/page.md')\n"
              "write_json({'skill': 'Fracci\\u00f3n'}, sys.argv[1] + '/m.json')\n")
    ascii_locale = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0",
                    "PYTHONPATH": str(ROOT)}
    check = subprocess.run([sys.executable, "-c", "import locale; print(locale.getpreferredencoding(False))"],
                           env=ascii_locale, capture_output=True, text=True)
    assert check.stdout.strip().lower() in {"ansi_x3.4-1968", "ascii", "us-ascii"}, check.stdout  # the trap is set
    r = subprocess.run([sys.executable, "-c", script, str(tmp_path)], env=ascii_locale, capture_output=True)
    assert r.returncode == 0, r.stderr.decode("utf-8", "replace")
    assert (tmp_path / "page.md").read_bytes() == "Fracción ≤ 3 × 2\n".encode("utf-8")
    assert (tmp_path / "m.json").read_bytes() == b'{\n  "skill": "Fracci\\u00f3n"\n}\n'
