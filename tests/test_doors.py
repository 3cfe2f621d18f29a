"""The doors a newcomer opens first say where they lead: every stage's `--help` starts with what it does, what it
reads and what it writes (held against dvc.yaml), every script's with its purpose, and every document the code
and the README cite exists."""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
STAGE_SCRIPTS = sorted(p for p in (ROOT / "stages").glob("*.py") if not p.name.startswith("_"))
SCRIPTS = [ROOT / "demo_trace.py", *sorted(p for p in (ROOT / "bench").glob("*.py") if not p.name.startswith("_")),
           *sorted((ROOT / "scripts").glob("*.py"))]
DVC_STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
SENTENCE = re.compile(r"[A-Z][^:]*: reads .+, writes .+\.")
"""What it does, a colon, then what it reads and what it writes, as one sentence."""


def _stage_main(script: Path):
    """The stage's Click command, imported in-process (stages import `_stage` from their own folder)."""
    if str(script.parent) not in sys.path:
        sys.path.insert(0, str(script.parent))
    spec = importlib.util.spec_from_file_location(f"_doors_{script.stem}", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def _first_paragraph(help_text: str) -> str:
    """The help's first paragraph after the usage line, unwrapped into one line."""
    body = help_text.split("\n\n", 1)[1]
    return " ".join(body.split("\n\n", 1)[0].split())


def _named(path: str, text: str) -> bool:
    """Whether the sentence names `path` (a dvc.yaml dep or out): itself, or a folder holding it (below data/)."""
    if path.startswith("${"):
        return path[2:-1] in text
    parts = Path(path).parts
    candidates = [path] + ["/".join(parts[:k]) + "/" for k in range(len(parts) - 1, 0, -1)]
    return any(c in text for c in candidates if c != "data/")


def test_every_stage_has_a_script_and_the_other_way_round():
    assert {p.stem for p in STAGE_SCRIPTS} == set(DVC_STAGES)


@pytest.mark.parametrize("script", STAGE_SCRIPTS, ids=lambda p: p.stem)
def test_stage_help_starts_with_what_it_reads_and_writes(script):
    result = CliRunner().invoke(_stage_main(script), ["--help"])
    assert result.exit_code == 0, result.output
    first = _first_paragraph(result.output)
    assert SENTENCE.fullmatch(first), f"{script.name} --help should start with 'Does X: reads A, writes B.', got {first!r}"
    reads, writes = first.split(": reads ", 1)[1].split(", writes ", 1)
    stage = DVC_STAGES[script.stem]
    outs = [next(iter(o)) if isinstance(o, dict) else o for o in stage.get("outs", [])]
    checked = DVC_STAGES["check_params"]["outs"]  # every stage waits on the settings check; it reads no data from it
    data_deps = [d for d in stage.get("deps", []) if not d.startswith(("stages/", "ktirt/")) and d not in checked]
    assert not [o for o in outs if not _named(o, writes)], f"{script.name}: the outputs its help does not name"
    assert not [d for d in data_deps if not _named(d, reads)], f"{script.name}: the inputs its help does not name"


def _main_docstring(script: Path) -> str | None:
    tree = ast.parse(script.read_text(encoding="utf-8"))
    main = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "main"), None)
    return ast.get_docstring(main) if main else None


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_script_help_starts_with_its_purpose(script):
    """Click shows `main`'s docstring first; read here without importing the script (benchmarks import torch,
    pyKT or girth)."""
    doc = _main_docstring(script)
    assert doc, f"{script.relative_to(ROOT)}: main() has no docstring, so --help starts with the options"
    first = " ".join(doc.split("\n\n", 1)[0].split())
    assert re.fullmatch(r"[A-Z].{20,}\.", first), f"{script.relative_to(ROOT)}: {first!r} is not a sentence"


CITED_DOC = re.compile(r"(?<![\w/.-])((?:docs/)?[A-Za-z_][A-Za-z0-9_/-]*\.md)\b")
OUTPUT_DOCS = {"behavior_slices.md", "mastery_report.md", "join_report.md"}
"""Markdown the pipeline writes into data/exports/, cited by name but not files of the repository."""


def _citing_files() -> list[Path]:
    code = [p for d in ("ktirt", "stages", "bench") for p in sorted((ROOT / d).rglob("*.py"))]
    return [ROOT / "README.md", ROOT / "demo_trace.py", *code]


def test_every_cited_document_exists():
    missing = []
    for f in _citing_files():
        for m in CITED_DOC.finditer(f.read_text(encoding="utf-8")):
            cited = m.group(1)
            if Path(cited).name in OUTPUT_DOCS or cited.startswith(("data/", "bench/out/")):
                continue
            if not ((ROOT / cited).is_file() or (ROOT / "docs" / cited).is_file()):
                missing.append(f"{f.relative_to(ROOT)}: {cited}")
    assert not missing, f"cited documents that are not in the repository: {missing}"


def test_the_citation_check_catches_a_missing_document():
    text = "schemas as NO_SUCH_CONTRACT.md fixes them; see docs/ARCHITECTURE.md and data/exports/join_report.md"
    assert [m.group(1) for m in CITED_DOC.finditer(text)] == ["NO_SUCH_CONTRACT.md", "docs/ARCHITECTURE.md",
                                                             "data/exports/join_report.md"]
    assert not (ROOT / "NO_SUCH_CONTRACT.md").exists() and (ROOT / "docs" / "ARCHITECTURE.md").is_file()


def test_the_readme_layout_names_every_module():
    """README's Layout lists every module of ktirt/ and every stage and bench script, so a newcomer finds them."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    layout = readme.split("## Layout", 1)[1].split("```")[1]
    files = [p for p in (ROOT / "ktirt").rglob("*.py") if p.name != "__init__.py"] + list((ROOT / "bench").glob("[!_]*.py"))
    missing = sorted(str(p.relative_to(ROOT)) for p in files if p.stem not in layout)
    assert missing == [], f"README's Layout does not name: {missing}"
