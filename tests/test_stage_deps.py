"""Each stage declares exactly the code it runs: every module in the import closure of its script (within
`ktirt/` and `stages/`) is covered by one of its `deps` in dvc.yaml (the file itself or a folder holding it),
and every code dep covers something the stage imports. A missing dep means a change to that module leaves
the stage's outputs stale while `dvc status` says all is up to date; an extra one reruns it for nothing."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from conftest import ROOT

STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
CODE_ROOTS = ("ktirt", "stages")


def _module_files(name: str, script_dir: Path) -> list[Path]:
    """The files that `import name` runs: a sibling stage module, or ktirt's package `__init__`s down to it."""
    parts = name.split(".")
    if parts[0] != "ktirt":
        sibling = script_dir / f"{name}.py"
        return [sibling] if len(parts) == 1 and sibling.is_file() else []
    out = []
    for i in range(1, len(parts) + 1):
        base = ROOT.joinpath(*parts[:i])
        if (base / "__init__.py").is_file():
            out.append(base / "__init__.py")
        elif base.with_suffix(".py").is_file():
            out.append(base.with_suffix(".py"))
    return out


def _imports(path: Path) -> list[Path]:
    """Module files imported anywhere in `path` (top level or inside functions); `from pkg import mod` counts mod."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found += _module_files(alias.name, path.parent)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += _module_files(node.module, path.parent)
            for alias in node.names:
                sub = _module_files(f"{node.module}.{alias.name}", path.parent)
                found += sub[-1:] if len(sub) > len(_module_files(node.module, path.parent)) else []
    return found


def import_closure(script: Path) -> set[Path]:
    seen, todo = set(), [script]
    while todo:
        f = todo.pop()
        if f not in seen:
            seen.add(f)
            todo += _imports(f)
    return seen


def runs_code(path: Path) -> bool:
    """False for a file that only documents and re-exports (a package's `__init__` with a docstring, imports and
    `__all__`): it runs nothing of its own, and what it imports is in the closure anyway."""
    inert = (ast.Import, ast.ImportFrom)
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            continue
        if isinstance(node, inert) or (isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["__all__"]):
            continue
        return True
    return False


def _script(stage: dict) -> Path:
    cmd = stage["cmd"].split()
    assert cmd[0] == "python" and cmd[1].startswith("stages/"), stage["cmd"]
    return ROOT / cmd[1]


def _code_deps(stage: dict) -> list[str]:
    return [d for d in stage.get("deps", []) if "${" not in d and d.split("/")[0] in CODE_ROOTS]


def _covers(dep: str, f: Path) -> bool:
    d = ROOT / dep
    return f == d or d in f.parents


def test_the_closure_follows_imports_inside_functions_and_packages():
    closure = {str(p.relative_to(ROOT)) for p in import_closure(ROOT / "stages" / "prepare.py")}
    assert {"stages/prepare.py", "stages/_stage.py", "ktirt/__init__.py", "ktirt/errors.py", "ktirt/io.py",
            "ktirt/sources/__init__.py", "ktirt/sources/edm_cup.py"} <= closure
    assert not any(p.startswith("ktirt/models") for p in closure)  # prepare trains nothing
    assert runs_code(ROOT / "ktirt" / "sources" / "__init__.py") and not runs_code(ROOT / "ktirt" / "kt" / "__init__.py")


@pytest.mark.parametrize("name", sorted(STAGES))
def test_every_imported_module_is_a_dep(name):
    stage = STAGES[name]
    deps = _code_deps(stage)
    missing = sorted(str(f.relative_to(ROOT)) for f in import_closure(_script(stage))
                     if runs_code(f) and not any(_covers(d, f) for d in deps))
    assert missing == [], f"dvc.yaml stage {name} imports these but does not list them in deps: {missing}"


@pytest.mark.parametrize("name", sorted(STAGES))
def test_every_code_dep_is_imported(name):
    stage = STAGES[name]
    closure = import_closure(_script(stage))
    unused = [d for d in _code_deps(stage) if not any(_covers(d, f) for f in closure)]
    assert unused == [], f"dvc.yaml stage {name} lists deps it never imports: {unused}"


def test_settings_name_the_sources_the_adapters_provide():
    """ktirt.settings names the sources itself (so no stage imports every adapter); they must not drift apart."""
    from ktirt.settings import SOURCES
    from ktirt.sources import SOURCES as ADAPTERS

    assert SOURCES == tuple(ADAPTERS)
