"""Progress bars only on a terminal: under DVC (stderr is a pipe) a tqdm bar writes one line per refresh into
the log, so every bar is built with `disable=None` (tqdm's "off when not a TTY")."""

import ast
import io
from pathlib import Path

from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]


def _tqdm_calls():
    for path in sorted([*ROOT.glob("ktirt/**/*.py"), *ROOT.glob("stages/*.py"), *ROOT.glob("bench/*.py"), *ROOT.glob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "tqdm":
                yield f"{path.relative_to(ROOT)}:{node.lineno}", node


def test_every_progress_bar_is_off_without_a_terminal():
    calls = list(_tqdm_calls())
    assert len(calls) >= 3  # SAKT training, SAKT scoring, WD-IRT training
    for where, node in calls:
        disable = [k.value for k in node.keywords if k.arg == "disable"]
        assert disable and isinstance(disable[0], ast.Constant) and disable[0].value is None, where


def test_disable_none_writes_nothing_to_a_pipe():
    pipe = io.StringIO()  # not a TTY, like DVC's captured stderr
    for _ in tqdm(range(50), file=pipe, mininterval=0, disable=None):
        pass
    assert pipe.getvalue() == ""
