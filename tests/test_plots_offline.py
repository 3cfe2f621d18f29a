"""`dvc plots show` works on a fresh clone, before any `dvc repro`: its offline page template is a source file in
git, and it cannot go stale against the generator in ktirt/plots_offline.py."""

from __future__ import annotations

import configparser
import shutil
import subprocess

import yaml

from conftest import ROOT
from ktirt.plots_offline import TEMPLATE, external_scripts, offline_template, page_plots


def _tracked(*paths: str) -> list[str]:
    out = subprocess.run(["git", "ls-files", "--", *paths], cwd=ROOT, capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_committed_template_is_what_the_generator_writes():
    committed = (ROOT / TEMPLATE).read_text()
    assert "{plot_divs}" in committed
    assert committed == offline_template(), "stale: run `python bench/offline_template.py` and commit the template"


def test_page_plots_and_external_scripts_read_tags_not_text_that_looks_like_tags():
    """An HTML parser: markup inside a script's strings is not a tag, and a spec's strings may hold anything."""
    page = """<html><head><script src="https://cdn.example/vega.js"></script><script src="lib/local.js"></script>
    <script>var s = '<script src="https://not.fetched/x.js"><div id="fake"><script>var spec = {};vegaEmbed';</script>
    </head><body>
    <div id = "roc">
        <script type = "text/javascript">
            var spec = {"title": "</div><div id=\\"x\\">", "n": [1, 2]};
            vegaEmbed('#roc', spec);
        </script>
    </div>
    <div id="notes"><p>text</p><script>var spec = {"a": 1}; vegaEmbed('#notes', spec);</script></div>
    </body></html>"""
    assert page_plots(page) == {"roc": {"title": '</div><div id="x">', "n": [1, 2]}}
    assert external_scripts(page) == ["https://cdn.example/vega.js"]


def test_dvc_points_at_the_template_in_git():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / ".dvc" / "config")
    assert (ROOT / ".dvc" / cfg["plots"]["html_template"]).resolve() == (ROOT / TEMPLATE).resolve()
    assert _tracked(TEMPLATE) == [TEMPLATE]
    outs = [o if isinstance(o, str) else next(iter(o)) for s in yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"].values()
            for o in s.get("outs", [])]
    assert TEMPLATE not in outs  # a stage output would be deleted by every repro and missing from a clone


def test_plots_show_on_a_fresh_clone_writes_every_declared_plot(tmp_path):
    """The files a clone has (git-tracked; nothing DVC-cached), then `dvc plots show` with no repro."""
    clone = tmp_path / "clone"
    for rel in _tracked("dvc.yaml", "params.yaml", ".dvc", "plots", "dvclive"):
        (clone / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, clone / rel)
    subprocess.run(["git", "init", "-q"], cwd=clone, check=True)
    proc = subprocess.run(["dvc", "plots", "show", "--out", str(tmp_path / "html")], cwd=clone, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    html = (tmp_path / "html" / "index.html").read_text()
    assert len(page_plots(html)) == len(yaml.safe_load((clone / "dvc.yaml").read_text())["plots"])
