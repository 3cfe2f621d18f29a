"""End to end through DVC itself: the real dvc.yaml on a tiny simulation, in a temporary git repository."""

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from conftest import ROOT, TINY, events_as_assistments_2009
from ktirt.irt.plot_tables import OBSERVED_REFERENCE

sys.path.insert(0, str(ROOT / "bench"))  # bench/browser_check.py: the headless-Chromium check

COPY = ["dvc.yaml", "params.yaml", "stages", "ktirt", ".dvc/config", ".dvcignore", ".gitignore",
        "plots/offline_template.html"]
AS_A_USER = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
"""DVC as a user runs it: Python writes its bytecode caches into the ktirt/ folders the stages depend on"""


def sh(*cmd, cwd, env=None):
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env or AS_A_USER)
    assert r.returncode == 0, f"{' '.join(cmd)}\n{r.stdout}\n{r.stderr}"
    return r.stdout


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    if shutil.which("dvc") is None:
        pytest.fail("dvc is not installed: pip install -r requirements-dev.txt")
    repo = tmp_path_factory.mktemp("pipeline")
    for name in COPY:
        src, dst = ROOT / name, repo / name
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, dst)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["simulate"].update(TINY)
    params["split"]["min_students"] = 5  # TINY's 80 students leave 12 validation and 12 test students
    params["train"]["epochs"] = params["wdirt"]["epochs"] = params["dkt"]["epochs"] = 3  # about DVC, not how well models fit
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh("git", "init", "-q", cwd=repo)
    sh("git", "add", "-A", cwd=repo)
    sh("git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "init", cwd=repo)
    sh("dvc", "repro", cwd=repo)
    sh("git", "add", "-A", cwd=repo)  # the baseline, which a test that resets the repository goes back to
    sh("git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "baseline", cwd=repo)
    return repo


def test_repro_builds_every_artifact(repo):
    for out in ["data/raw/synthetic/action_logs.csv", "data/raw/synthetic/_truth/items.parquet",
                "data/interim/events.parquet", "data/interim/unit_tests.parquet", "data/splits/split.json",
                "data/processed/pykt/train_valid_sequences.csv", "data/processed/pykt/keyid2idx.json",
                "models/sakt/model.pt", "dvclive/sakt/metrics.json", "dvclive/wdirt/plots/metrics/val_auc.tsv",
                "data/exports/report.html", "data/exports/behavior_slices.parquet", "metrics/prepare.json",
                "metrics/pykt_adapt.json", "metrics/sakt.json", "models/wdirt/item_params.parquet", "metrics/wdirt.json",
                "data/exports/sakt_predictions.parquet", "data/exports/sakt_student_state.parquet",
                "data/exports/item_params.parquet", "data/exports/item_drift.parquet", "data/exports/join_report.md",
                "metrics/export.json", "metrics/join.json", "plots/join/coverage.csv", "plots/offline_template.html",
                "models/dkt/predictions.parquet", "metrics/dkt.json", "dvclive/dkt/metrics.json",
                "data/exports/blend_predictions.parquet", "metrics/blend.json", "dvc.lock"]:
        assert (repo / out).exists(), out
    split = json.loads((repo / "data/splits/split.json").read_text())
    assert len(split["train"]) + len(split["val"]) + len(split["test"]) == TINY["n_students"]
    _assert_coverage_is_what_the_tables_give(repo)
    _assert_the_blend_joins_the_predictions(repo)
    assert not (repo / "docs").exists()  # the README's figure is never a pipeline output


def _assert_the_blend_joins_the_predictions(repo, members=("sakt", "wdirt", "dkt")):
    """Every SAKT prediction has exactly one p_blend on the same keys, and metrics/blend.json weighs the members."""
    keys = ["user_id", "item_id", "timestamp"]
    sakt = _columns(repo, "data/exports/sakt_predictions.parquet", *keys, "split")
    blend = _columns(repo, "data/exports/blend_predictions.parquet", *keys, "p_blend")
    joined = sakt.merge(blend, on=keys, how="outer", validate="one_to_one", indicator=True)
    assert len(joined) == len(sakt) == len(blend) and (joined["_merge"] == "both").all()
    metrics = json.loads((repo / "metrics/blend.json").read_text())
    assert set(metrics["weights"]) == {*members, "intercept"}
    assert metrics["responses"]["test"] == int((sakt["split"] == "test").sum())
    assert {"blend", "sakt", "wdirt", "dkt", "item_mean"} <= set(metrics["test_auc"])


def _columns(repo, path, *columns):
    return pq.read_table(repo / path, columns=list(columns)).to_pandas()


def _assert_coverage_is_what_the_tables_give(repo):
    """The join's and WD-IRT's coverage metrics equal the shares recomputed here from the tables themselves
    (join.min_coverage is 0.8: the stage itself fails below it)."""
    exported = _columns(repo, "data/exports/item_params.parquet", "item_id")["item_id"]
    predicted = _columns(repo, "data/exports/sakt_predictions.parquet", "item_id")["item_id"]
    join = json.loads((repo / "metrics/join.json").read_text())
    assert join["coverage"] == pytest.approx(predicted.isin(set(exported)).mean(), abs=1e-6)
    bank = _columns(repo, "models/wdirt/item_params.parquet", "item_id", "difficulty").dropna()
    events = _columns(repo, "data/interim/events.parquet", "item_id")["item_id"]
    wdirt = json.loads((repo / "metrics/wdirt.json").read_text())
    assert wdirt["item_coverage_of_events"] == pytest.approx(events.isin(set(bank["item_id"])).mean(), abs=1e-6)


def test_second_repro_has_nothing_to_do(repo):
    assert "Data and pipelines are up to date" in sh("dvc", "repro", cwd=repo)
    shown = sh("dvc", "metrics", "show", cwd=repo)
    assert "events" in shown and "metrics/join.json" in shown and "coverage" in shown


@pytest.fixture
def s3_endpoint():
    """A local S3 server (moto's) on the loopback with one empty bucket, `ktirt-team`: nothing leaves the machine."""
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    endpoint = "http://{}:{}".format(*server.get_host_and_port())
    boto3.client("s3", endpoint_url=endpoint, **S3_KEYS).create_bucket(Bucket="ktirt-team")
    yield endpoint
    server.stop()


S3_KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}


def test_a_fresh_clone_pulls_every_output_from_an_s3_remote_and_has_nothing_to_recompute(repo, s3_endpoint, tmp_path):
    """The README's "Sharing data and models" recipe against a local S3 server: `dvc push` from this checkout,
    then a fresh clone's `dvc pull` brings the events, models and exports, byte for byte, `dvc status` is clean
    and `dvc repro` runs no stage."""
    env = {**AS_A_USER, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    sh("dvc", "remote", "add", "-d", "team", "s3://ktirt-team/ktirt", cwd=repo)
    sh("dvc", "remote", "modify", "team", "endpointurl", s3_endpoint, cwd=repo)  # any S3-compatible server
    sh("git", "add", "-A", cwd=repo)
    sh("git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "the remote", cwd=repo)
    assert "files pushed" in sh("dvc", "push", cwd=repo, env=env)

    clone = tmp_path / "clone"
    sh("git", "clone", "-q", str(repo), str(clone), cwd=tmp_path)
    assert not (clone / "data/interim/events.parquet").exists()
    sh("dvc", "pull", cwd=clone, env=env)
    for out in ("data/interim/events.parquet", "models/sakt/model.pt", "models/wdirt/item_params.parquet",
                "data/exports/sakt_predictions.parquet", "data/exports/item_params.parquet", "data/exports/report.html"):
        assert (clone / out).read_bytes() == (repo / out).read_bytes(), out
    assert "Data and pipelines are up to date" in sh("dvc", "status", cwd=clone, env=env)
    out = sh("dvc", "repro", cwd=clone, env=env)
    assert "Running stage" not in out and "Data and pipelines are up to date" in out


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium. Missing, the tests fail with how to install it (set KTIRT_SKIP_BROWSER=1 to skip them
    knowingly on a machine that cannot have it; CI never does)."""
    from browser_check import BrowserMissing, chromium

    try:
        session = chromium()
    except BrowserMissing as exc:
        if os.environ.get("KTIRT_SKIP_BROWSER"):
            pytest.skip(f"KTIRT_SKIP_BROWSER is set: {exc}")
        pytest.fail(str(exc))
    yield session
    session.quit()


def test_report_draws_offline_in_a_real_browser_and_responds(repo, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from browser_check import check_report, console_errors, screenshot_sections

    page = repo / "data/exports/report.html"
    result = check_report(browser, page)
    assert result["problems"] == []  # no console error, no network request, no empty chart
    assert set(result["marks"]) == {"items", "drift", "skill_spread", "skill_hist", "skill_curve", "trajectory", "roc", "calibration"}
    items = pq.read_table(repo / "data/exports/item_params.parquet", columns=["item_id", "skill_ids"]).to_pandas()
    assert browser.execute_script("return window.reportViews.items.data('source_0').length") == len(items)

    def table_rows(table_id):
        return [[td.text for td in tr.find_elements(By.TAG_NAME, "td")]
                for tr in browser.find_element(By.ID, table_id).find_elements(By.CSS_SELECTOR, "tbody tr")]

    skill = items["skill_ids"].iloc[0][0]
    before = len(table_rows("item-table"))
    browser.find_element(By.ID, "item-search").send_keys(skill)
    shown = table_rows("item-table")
    assert 0 < len(shown) < before and all(skill in row[1] for row in shown)
    assert len(shown) == sum(skill in " ".join(s) for s in items["skill_ids"])

    def trajectory():
        return browser.execute_script("return window.reportViews.trajectory.data('source_0').map(r => r.item_id + r.time)")

    first = trajectory()
    select = Select(browser.find_element(By.ID, "student-select"))
    assert len(select.options) == min(yaml.safe_load((repo / "params.yaml").read_text())["report"]["students"], TINY["n_students"])
    select.select_by_index(3)
    second = trajectory()
    assert first and second and second != first
    assert len(table_rows("trajectory-table")) == len(second)
    assert console_errors(browser) == []
    shots = screenshot_sections(browser, os.environ.get("KTIRT_SCREENSHOTS") or tmp_path)
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in shots) and len(shots) == 5


def test_the_item_charts_keep_a_readable_scale_when_items_are_extreme(repo, browser, tmp_path):
    """Issue 25: one item at 39.36 logits stretched the difficulty axis to -5..40 and squashed every other item
    into a column. The repro's page, then the same page with three items made extreme and a drifting item whose
    difficulty after its change is (added if the run flagged none): the axes stay inside +-DIFFICULTY_AXIS_BOUND,
    every item is still drawn (the extreme ones at the edge), and the page says how many lie beyond."""
    from selenium.webdriver.common.by import By

    from browser_check import check_report
    from ktirt.report.data import DIFFICULTY_AXIS_BOUND as BOUND, difficulty_axis
    from ktirt.report.page import render_page
    from test_report import _page_data

    def shown(page):
        assert check_report(browser, page)["problems"] == []
        x = "window.reportViews.items.scale('x')"
        return {"domain": browser.execute_script(f"return {x}.domain()"),
                "edges": browser.execute_script(f"return [{x}(-1e9), {x}(1e9), ...{x}.range()]"),
                "drawn": browser.execute_script("return window.reportViews.items.data('source_0').length"),
                "note": browser.find_element(By.ID, "items-outside").text,
                "drift_domain": browser.execute_script("return window.reportViews.drift.scale('x').domain()")
                if len(data["drifting"]["item_id"]) else None,
                "drift_note": browser.find_element(By.ID, "drift-outside").text}

    path = repo / "data/exports/report.html"
    data = _page_data(path.read_text(encoding="utf-8"))
    b = pd.Series(data["items"]["difficulty"], dtype=float)
    plain = shown(path)  # the repro's own items: the axis spans them all, nothing is beyond
    assert plain["note"] == "" and plain["domain"][0] <= b.min() and b.max() <= plain["domain"][1]
    assert plain["drawn"] == len(b)
    extreme = {0: 39.36, 1: -25.0, 2: 7.5}
    for row, value in extreme.items():
        data["items"]["difficulty"][row] = value
    data["item_axis"] = difficulty_axis(pd.DataFrame({"difficulty": data["items"]["difficulty"]}))
    if not data["drifting"]["item_id"]:  # tiny runs often flag none: one, as the page's data would have it
        data["drifting"] = {"item_id": [data["items"]["item_id"][3]], "skills": [data["items"]["skills"][3]],
                            "before": [0.5], "after": [0.5], "shift": [0.0], "since": ["2022-10-03"], "n_responses": [40]}
    data["drifting"]["after"][0] = 12.0
    data["drifting"]["shift"][0] = 12.0 - data["drifting"]["before"][0]
    data["drift_axis"] = difficulty_axis(pd.DataFrame({k: data["drifting"][k] for k in ("before", "after")}))
    page = tmp_path / "extreme.html"
    page.write_text(render_page(data, "extreme items"), encoding="utf-8")
    seen = shown(page)
    assert seen["domain"] == data["item_axis"]["domain"] and -BOUND <= seen["domain"][0] < seen["domain"][1] <= BOUND
    assert seen["domain"] == [-BOUND, BOUND] and seen["drawn"] == len(b)  # every item drawn, none dropped
    assert seen["edges"][:2] == seen["edges"][2:]  # a value beyond the axis is drawn at its edge (clamped)
    assert seen["note"].startswith(f"{len(extreme)} items beyond ±{BOUND:g} logits"), seen["note"]
    assert seen["drift_note"].startswith("1 drifting item beyond") and max(seen["drift_domain"]) <= BOUND


def test_plots_show_writes_an_offline_page_with_every_declared_plot(repo, browser, tmp_path):
    from ktirt.plots_offline import external_scripts, page_plots, render_svg
    from browser_check import check_plots_page

    sh("dvc", "plots", "show", "--out", str(tmp_path / "html"), cwd=repo)
    html = (tmp_path / "html" / "index.html").read_text()
    declared = yaml.safe_load((repo / "dvc.yaml").read_text())["plots"]
    plots = page_plots(html)
    assert len(plots) == len(declared) == 9
    assert external_scripts(html) == [] and "cdn.jsdelivr" not in html  # the libraries are inlined
    for name, spec in plots.items():
        assert "<svg" in render_svg(spec), name  # each spec renders with the page's own Vega libraries
    # and in a real browser, offline: every plot draws data marks, no error, no request
    seen = check_plots_page(browser, tmp_path / "html" / "index.html")
    assert seen["problems"] == [] and seen["plots"] == len(declared) == len(seen["marks"])
    assert (repo / "plots/results.png").read_bytes()[:4] == b"\x89PNG"


def test_changing_one_param_reruns_only_what_reads_it(repo):
    out = sh("dvc", "repro", "--dry", "-f", "report", cwd=repo)  # sanity: the stage exists
    assert "report" in out
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["report"]["students"] -= 1
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = sh("dvc", "repro", cwd=repo)
    assert "Running stage 'report'" in out
    for stage in ("simulate", "prepare", "split", "train_sakt", "train_wdirt", "train_dkt", "export", "blend",
                  "validate_join", "figures"):
        assert f"Running stage '{stage}'" not in out, stage
    params["blend"]["members"] = ["sakt", "wdirt"]  # a member switched off: the blend alone reruns
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = sh("dvc", "repro", cwd=repo)
    assert set(re.findall(r"Running stage '(\w+)'", out)) == {"check_params", "blend"}  # check_params checks every section
    _assert_the_blend_joins_the_predictions(repo, ("sakt", "wdirt"))
    sh("git", "checkout", "--", "params.yaml", cwd=repo)
    sh("dvc", "repro", cwd=repo)  # back to the committed baseline's outputs


def test_a_bad_setting_stops_an_experiment_before_any_output_is_removed(repo):
    """`dvc exp run -S train.epochs=abc`: the check_params stage, which every stage depends on, fails first, so DVC
    never reaches train_sakt to remove its outputs."""
    kept = [repo / "models" / "sakt" / "model.pt", repo / "metrics" / "sakt.json", repo / "data" / "exports" / "report.html"]
    before = [p.read_bytes() for p in kept]
    r = subprocess.run(["dvc", "exp", "run", "-S", "train.epochs=abc"], cwd=repo, capture_output=True, text=True,
                       env=AS_A_USER)
    assert r.returncode != 0 and "train.epochs: must be an integer, got 'abc'" in r.stdout + r.stderr
    assert "Running stage 'train_sakt'" not in r.stdout
    assert [p.read_bytes() for p in kept] == before
    sh("git", "checkout", "--", "params.yaml", cwd=repo)


def test_two_queued_experiments_run_at_once_each_rerunning_what_it_changed(repo):
    """`dvc queue start -j 2`: both experiments run at the same time, each in its own workspace, and neither sees
    the other's change: the SAKT setting reruns train_sakt onwards and leaves WD-IRT's figures alone, and the
    WD-IRT setting the reverse. Then `dvc exp show` has their settings and metrics as columns, and `dvc metrics
    diff` compares each with the baseline."""
    sh("git", "reset", "-q", "--hard", cwd=repo)  # back to the committed baseline
    sh("dvc", "checkout", "-f", cwd=repo)
    sh("dvc", "exp", "run", "--queue", "-S", "model.emb_size=16", "-n", "emb16", cwd=repo)
    sh("dvc", "exp", "run", "--queue", "-S", "wdirt.prior_strength=4.0", "-n", "prior4", cwd=repo)
    # the workers it starts keep its output pipes open until they finish: no pipes, so it returns at once
    assert subprocess.run(["dvc", "queue", "start", "-j", "2"], cwd=repo, env=AS_A_USER, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0
    assert _most_running_at_once(repo) == 2

    logs = {name: sh("dvc", "queue", "logs", name, cwd=repo) for name in ("emb16", "prior4")}
    for stage in ("simulate", "prepare", "split", "pykt_adapt"):
        assert f"Running stage '{stage}'" not in logs["emb16"] + logs["prior4"], stage
    assert "Running stage 'train_sakt'" in logs["emb16"] and "Running stage 'train_wdirt'" not in logs["emb16"]
    assert "Running stage 'train_wdirt'" in logs["prior4"] and "Running stage 'train_sakt'" not in logs["prior4"]
    for name in ("emb16", "prior4"):  # DKT reads neither engine: cached; the blend reads both
        assert "Running stage 'train_dkt'" not in logs[name] and "Running stage 'blend'" in logs[name], name
    table = list(csv.DictReader(io.StringIO(sh("dvc", "exp", "show", "--csv", cwd=repo))))
    rows = {r["Experiment"]: r for r in table if r["Experiment"]}
    baseline = next(r for r in table if r["typ"] == "baseline" and r["rev"] != "workspace")
    assert {"emb16", "prior4"} <= set(rows)
    for name in ("test_auc", "unit_test_auc", "difficulty_spearman", "coverage"):  # metrics are columns
        assert rows["emb16"][name] and rows["prior4"][name], name
    assert rows["emb16"]["model.emb_size"] == "16" and rows["prior4"]["wdirt.prior_strength"] == "4.0"
    # each change moves its own engine's figures only
    assert rows["prior4"]["test_auc"] == baseline["test_auc"] != rows["emb16"]["test_auc"]
    assert rows["emb16"]["difficulty_spearman"] == baseline["difficulty_spearman"] != rows["prior4"]["difficulty_spearman"]
    diff = json.loads(sh("dvc", "metrics", "diff", "HEAD", "emb16", "--json", cwd=repo))
    assert "test_auc" in diff["metrics/sakt.json"] and "metrics/wdirt.json" not in diff
    diff = json.loads(sh("dvc", "metrics", "diff", "HEAD", "prior4", "--json", cwd=repo))
    assert "metrics/wdirt.json" in diff and "metrics/sakt.json" not in diff


def _most_running_at_once(repo, timeout_s: float = 600) -> int:
    """Wait for the queue to empty; the most tasks `dvc queue status` showed running at one time. A poll may land
    while a worker rewrites its state file, and DVC then prints the tasks but exits 255 ("Expecting value"): such
    a poll is retried, a run of them fails."""
    most, t0, failed = 0, time.monotonic(), 0
    while time.monotonic() - t0 < timeout_s:
        r = subprocess.run(["dvc", "queue", "status"], cwd=repo, capture_output=True, text=True, env=AS_A_USER)
        failed = 0 if r.returncode == 0 else failed + 1
        assert failed < 5, f"dvc queue status\n{r.stdout}\n{r.stderr}"
        if failed:
            time.sleep(1)
            continue
        states = [line.split()[-1] for line in r.stdout.splitlines()[1:] if line.strip()
                  and not line.startswith("Worker")]
        most = max(most, states.count("Running"))
        if not {"Queued", "Running"} & set(states):
            assert set(states) <= {"Success"}, r.stdout + _logs_of_failed(repo, r.stdout)
            return most
        time.sleep(3)
    raise AssertionError("the queue did not finish")


def _logs_of_failed(repo, status: str) -> str:
    """What `dvc queue logs` kept of each failed task (DVC's own races leave none: treeverse/dvc#10673)."""
    failed = [line.split()[0] for line in status.splitlines() if line.strip().endswith("Failed")]
    return "".join(f"\n--- {task}\n" + subprocess.run(["dvc", "queue", "logs", task], cwd=repo, capture_output=True,
                                                        text=True, env=AS_A_USER).stdout[-3000:] for task in failed)


def test_exp_on_assistments_2009_runs_every_stage_and_says_what_the_source_lacks(repo, tiny_tables, browser, tmp_path):
    from ktirt.plots_offline import page_plots, render_svg
    from browser_check import check_plots_page, check_report

    sh("git", "reset", "-q", "--hard", cwd=repo)
    sh("dvc", "checkout", "-f", cwd=repo)
    events_as_assistments_2009(tiny_tables.events, repo / "data/raw/assistments_2009")
    out = sh("dvc", "exp", "run", "-S", "data.source=assistments_2009", "-S", "data.raw_dir=data/raw/assistments_2009",
             cwd=repo)
    # simulate reads data.source, so it runs, but writes only a note
    assert "Running stage 'simulate'" in out
    assert [p.name for p in (repo / "data/raw/synthetic").iterdir()] == ["NOT_SIMULATED.txt"]
    for stage in ("prepare", "train_sakt", "train_wdirt", "train_dkt", "export", "blend", "validate_join", "report"):
        assert f"Running stage '{stage}'" in out, stage
    assert "oracle" not in json.loads((repo / "metrics/blend.json").read_text())["test_auc"]  # no truth: no ceiling
    prepare = json.loads((repo / "metrics/prepare.json").read_text())
    assert prepare["events"] == tiny_tables.events.num_rows and prepare["source"]["has_unit_tests"] == 0
    wdirt = json.loads((repo / "metrics/wdirt.json").read_text())
    assert wdirt["unit_test_scores"] == 0 and wdirt["has_text_embeddings"] == 0 and "unit_test_auc" not in wdirt
    _assert_coverage_is_what_the_tables_give(repo)
    # no truth, no unit tests: the report shows what there is, and still draws every chart
    seen = check_report(browser, repo / "data/exports/report.html")
    assert seen["problems"] == []
    figures = browser.execute_script("return [...document.querySelectorAll('#run-figures tbody tr')].map(r => r.cells[1].textContent)")
    assert "unit-test AUC" not in figures and "test AUC (next response)" in figures
    # the file's pseudo-timestamps only order the rows: no 1970 dates on the page, the order said instead
    table = browser.execute_script("return document.getElementById('trajectory-table').innerText")
    assert "1970" not in table and "time (none in the source)" in table
    assert "no clock time" in browser.execute_script("return document.getElementById('student-info').textContent")
    # no truth and no clock time: the plots say so rather than going blank, and the page still has all nine
    difficulty = pd.read_csv(repo / "plots/wdirt/difficulty.csv")
    assert len(difficulty) and (difficulty["reference_kind"] == OBSERVED_REFERENCE).all()
    assert "no drift window tested" in pd.read_csv(repo / "plots/wdirt/drift.csv")["note"][0]
    sh("dvc", "plots", "show", "--out", str(tmp_path / "html"), cwd=repo)
    plots = page_plots((tmp_path / "html" / "index.html").read_text())
    assert len(plots) == 9 and all("<svg" in render_svg(spec) for spec in plots.values())
    # in the browser every plot draws, and only the drift plot has no points: its CSV's note says why
    problems = check_plots_page(browser, tmp_path / "html" / "index.html")["problems"]
    assert len(problems) == 1 and problems[0].startswith("plot drew nothing: #WD-IRT_drift")
    assert not (repo / "docs").exists()
    skills = pq.read_table(repo / "data/exports/skills.parquet").to_pydict()
    assert any(d.startswith("Fracción") for d in skills["description"])  # read from the latin-1 file
