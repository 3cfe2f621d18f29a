"""Every bad setting is one line naming the key, before any stage does work (ktirt/settings.py)."""

import ast
import copy
import datetime

import pyarrow.parquet as pq
import pytest
import torch
import yaml

from conftest import ROOT, params_file, run_stage
from ktirt.errors import SettingsError
from ktirt.exports.build import ExportSettings
from ktirt.irt.wdirt_run import WDIRTSettings
from ktirt.kt.sakt_training import TrainSettings
from ktirt.runtime import resolve_device
from ktirt.settings import SECTIONS, ModelSettings, check_params
from ktirt.simulate import SimulationConfig

COMMITTED = yaml.safe_load((ROOT / "params.yaml").read_text())


def _with(section: str, key: str, value) -> dict:
    params = copy.deepcopy(COMMITTED)
    params[section][key] = value
    return params


def _error(params) -> str:
    with pytest.raises(SettingsError) as err:
        check_params(params)
    assert "\n" not in str(err.value)
    return str(err.value)


BAD = [
    # typos: unknown keys in every section, with the nearest known key
    ("split", "tarin", 0.7, "split.tarin: unknown setting (did you mean 'train'?)"),
    ("join", "min_coverge", 0.8, "join.min_coverge: unknown setting (did you mean 'min_coverage'?)"),
    ("pykt", "seqlen", 200, "pykt.seqlen: unknown setting (did you mean 'seq_len'?)"),
    ("data", "raw_dri", "x", "data.raw_dri: unknown setting (did you mean 'raw_dir'?)"),
    ("model", "zzz", 1, "model.zzz: unknown setting (known: emb_size, "),
    # types: "64" is text, true is not a number, 3e-3 is text to YAML
    ("model", "emb_size", "64", "model.emb_size: must be an integer, got '64'"),
    ("train", "epochs", True, "train.epochs: must be an integer, got True"),
    ("train", "batch_size", 64.5, "train.batch_size: must be an integer, got 64.5"),
    ("train", "lr", "3e-3", "train.lr: must be a number, got '3e-3' (YAML reads 3e-3 as text"),
    ("train", "lr", float("nan"), "train.lr: must be a finite number, got nan"),
    ("wdirt", "discrimination", "yes please", "wdirt.discrimination: must be true or false, got 'yes please'"),
    ("simulate", "start_date", datetime.date(2022, 8, 29), 'simulate.start_date: must be text, got datetime.date(2022, 8, 29) (quote it: "2022-08-29")'),
    ("simulate", "start_date", "29/08/2022", "simulate.start_date: must be a date as YYYY-MM-DD, got '29/08/2022'"),
    # ranges
    ("model", "emb_size", 0, "model.emb_size: must be ≥ 1, got 0"),
    ("model", "num_blocks", -1, "model.num_blocks: must be ≥ 1, got -1"),
    ("wdirt", "hidden", -8, "wdirt.hidden: must be ≥ 1, got -8"),
    ("simulate", "n_students", -3, "simulate.n_students: must be ≥ 1, got -3"),
    ("model", "num_heads", 0, "model.num_heads: must be ≥ 1, got 0"),
    ("train", "batch_size", 0, "train.batch_size: must be ≥ 1, got 0"),
    ("wdirt", "batch_size", 0, "wdirt.batch_size: must be ≥ 1, got 0"),
    ("train", "epochs", 0, "train.epochs: must be ≥ 1, got 0"),
    ("model", "dropout", 1.5, "model.dropout: must be in [0, 1), got 1.5"),
    ("wdirt", "dropout", 1, "wdirt.dropout: must be in [0, 1), got 1"),
    ("train", "lr", -0.01, "train.lr: must be > 0, got -0.01"),
    ("wdirt", "lr", 0, "wdirt.lr: must be > 0, got 0"),
    ("pykt", "seq_len", 1, "pykt.seq_len: must be ≥ 2, got 1"),
    ("pykt", "folds", 0, "pykt.folds: must be ≥ 2, got 0"),
    ("pykt", "folds", 1, "pykt.folds: must be ≥ 2, got 1"),
    ("join", "min_coverage", -5, "join.min_coverage: must be in [0, 1], got -5"),
    ("split", "train", 0, "split.train: must be in (0, 1), got 0"),
    ("split", "val", 0, "split.val: must be in (0, 1), got 0"),
    ("simulate", "evaluation_fraction", 0, "simulate.evaluation_fraction: must be in (0, 1), got 0"),
    ("simulate", "evaluation_fraction", 1.2, "simulate.evaluation_fraction: must be in (0, 1), got 1.2"),
    ("simulate", "drift_fraction", 1.0, "simulate.drift_fraction: must be in [0, 1), got 1.0"),
    ("export", "falling_drop", 2, "export.falling_drop: must be in [0, 1], got 2"),
    # caps: values that would exhaust memory or time, or make training diverge, say why
    ("model", "seq_len", 100000, "model.seq_len: must be ≤ 1024 (SAKT's attention holds batch x heads x window^2"),
    ("pykt", "seq_len", 100000, "pykt.seq_len: must be ≤ 1024 ("),
    ("train", "lr", 1.0e6, "train.lr: must be ≤ 1.0 (a larger step makes Adam diverge), got 1000000.0"),
    ("wdirt", "history_len", 100000, "wdirt.history_len: must be ≤ 1000 (a batch scores targets x history_len pairs at once)"),
    ("simulate", "n_students", 10**9, "simulate.n_students: must be ≤ 2000000"),
    ("report", "students", 10**7, "report.students: must be ≤ 100000"),
    # choices, pandas periods, devices
    ("data", "source", "edm_cup_2024", "data.source: must be one of synthetic, edm_cup_2023, assistments_2009, ednet_kt1, got 'edm_cup_2024' (did you mean 'edm_cup_2023'?)"),
    ("simulate", "profile", "skillbuilder", "simulate.profile: must be one of edm_cup, skill_builder, ednet_kt1, got 'skillbuilder' (did you mean 'skill_builder'?)"),
    ("wdirt", "drift_window", "X", "wdirt.drift_window: must be a pandas period frequency of a day or longer (D, W, M, Q, Y), got 'X'"),
    ("wdirt", "drift_window", "ME", "wdirt.drift_window: must be a pandas period frequency"),
    ("wdirt", "drift_window", "h", "wdirt.drift_window: must be a pandas period frequency of a day or longer"),
    ("train", "device", "gpu", "train.device: must be auto, cpu, cuda, cuda:N or mps, got 'gpu'"),
    ("export", "device", "cuda:x", "export.device: must be auto, cpu, cuda, cuda:N or mps, got 'cuda:x'"),
    # the blend's members: a list of known names
    ("blend", "members", ["sakt", "xgboost"], "blend.members: must be one of sakt, wdirt, dkt, got 'xgboost'"),
    ("blend", "members", ["sakt", "wdrit"], "blend.members: must be one of sakt, wdirt, dkt, got 'wdrit' (did you mean 'wdirt'?)"),
    ("blend", "members", "sakt", "blend.members: must be a list, got 'sakt'"),
    ("blend", "members", [], "blend.members: must not be empty, got []"),
    ("blend", "l2", 0, "blend.l2: must be > 0, got 0"),
    ("dkt", "lr", 2.0, "dkt.lr: must be ≤ 1.0 (a larger step makes Adam diverge), got 2.0"),
]


@pytest.mark.parametrize("section, key, value, message", BAD, ids=[f"{s}.{k}={v!r}" for s, k, v, _ in BAD])
def test_a_bad_setting_is_one_line_naming_the_key(section, key, value, message):
    assert _error(_with(section, key, value)).startswith(message)


@pytest.mark.parametrize("change, message", [
    ({"split": {"train": 0.8, "val": 0.3}}, "split.train + split.val: must be < 1 (test is the rest), got 0.8 + 0.3"),
    ({"model": {"emb_size": 63, "num_heads": 4}}, "model.emb_size: must be divisible by model.num_heads (4), got 63"),
    ({"simulate": {"units_per_class": 30, "n_skills": 24}}, "simulate.units_per_class: must be ≤ simulate.n_skills (24), got 30"),
    ({"simulate": {"n_items": 100, "n_skills": 24}}, "simulate.n_items: must be ≥ 576 for 24 skills"),
    ({"blend": {"members": ["sakt", "dkt", "sakt"]}}, "blend.members: must name each member once, got ['sakt', 'dkt', 'sakt']"),
])
def test_settings_that_must_agree(change, message):
    params = copy.deepcopy(COMMITTED)
    for section, values in change.items():
        params[section] |= values
    assert _error(params).startswith(message)


def test_missing_unknown_and_malformed_sections_and_keys():
    params = copy.deepcopy(COMMITTED)
    del params["pykt"]
    assert _error(params) == "pykt: missing section"
    params = copy.deepcopy(COMMITTED)
    del params["pykt"]["folds"]
    assert _error(params) == "pykt.folds: missing setting"
    params = copy.deepcopy(COMMITTED) | {"modle": {}}
    assert _error(params) == "modle: unknown section (did you mean 'model'?)"
    assert _error(copy.deepcopy(COMMITTED) | {"join": None}) == "join: must be a mapping of settings, got None"
    assert _error(["not", "a", "mapping"]).startswith("must be a mapping of sections (data, simulate,")
    # optional keys (the library's default applies) may be left out; required ones may not
    params = copy.deepcopy(COMMITTED)
    params["wdirt"].pop("wide_lr_factor", None)
    check_params(params)


def test_the_committed_params_are_valid():
    assert check_params(copy.deepcopy(COMMITTED)) == COMMITTED
    # and n_items: auto, the one non-integer an integer key accepts
    assert COMMITTED["simulate"]["n_items"] == "auto"


@pytest.mark.parametrize("section, cls", [("simulate", SimulationConfig), ("wdirt", WDIRTSettings),
                                          ("export", ExportSettings), ("train", TrainSettings)])
def test_the_schema_knows_every_setting_of_the_library(section, cls):
    """The library's settings classes are the section models (a subclass adds methods, no field): no second list."""
    assert issubclass(cls, SECTIONS[section]) and cls.model_fields.keys() == SECTIONS[section].model_fields.keys()


def test_the_library_classes_check_through_the_schema():
    with pytest.raises(SettingsError, match=r"^wdirt.drift_window: must be a pandas period"):
        WDIRTSettings(drift_window="X")
    with pytest.raises(SettingsError, match=r"^export.mastery_items: must be ≥ 1, got 0$"):
        ExportSettings(mastery_items=0)
    with pytest.raises(SettingsError, match=r"^simulate.seed: must be ≥ 0, got -1$"):
        SimulationConfig.from_dict({"seed": -1})
    assert ModelSettings.from_dict({"emb_size": 8}).emb_size == 8  # partial: the rest are the defaults


@pytest.mark.parametrize("device, message", [
    ("cuda", "train.device: torch sees no CUDA GPU on this machine (use auto or cpu), got 'cuda'"),
    ("cuda:1", "train.device: torch sees no CUDA GPU on this machine (use auto or cpu), got 'cuda:1'"),
])
def test_cuda_without_a_gpu_is_a_setting_error(monkeypatch, device, message):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert _error(_with("train", "device", device)) == message
    with pytest.raises(SettingsError, match="^device: torch sees no CUDA GPU"):
        resolve_device(device)
    check_params(_with("train", "device", "auto"))  # auto falls back to the CPU


def test_a_gpu_index_this_machine_lacks(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert _error(_with("wdirt", "device", "cuda:3")) == "wdirt.device: this machine has 1 CUDA GPU(s), cuda:0 to cuda:0, got 'cuda:3'"


def test_every_stage_checks_its_settings_before_anything_else():
    """Each stage's first statement reads params.yaml through load_params, which checks the whole file."""
    for script in sorted((ROOT / "stages").glob("[!_]*.py")):
        main = next(n for n in ast.parse(script.read_text()).body if isinstance(n, ast.FunctionDef) and n.name == "main")
        first = next(n for n in main.body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)))
        calls = {n.func.id for n in ast.walk(first) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
        assert "load_params" in calls, f"{script.name}: the first statement of main() does not call load_params"


# the stage: a bad setting of ANY stage stops even `split` before it reads its input; one line, no output
CLI = [
    ({"split": {"tarin": 0.7}}, "split.tarin: unknown setting (did you mean 'train'?)"),
    ({"pykt": {"seq_len": 1}}, "pykt.seq_len: must be ≥ 2, got 1"),
    ({"wdirt": {"drift_window": "X"}}, "wdirt.drift_window: must be a pandas period frequency"),
    ({"model": {"emb_size": "64"}}, "model.emb_size: must be an integer, got '64'"),
]


@pytest.mark.parametrize("change, message", CLI, ids=[m.split(":")[0] for _, m in CLI])
def test_a_stage_refuses_a_bad_setting_in_one_line(tmp_path, change, message):
    p = params_file(tmp_path, **change)
    out = tmp_path / "out" / "split.json"
    r = run_stage("split", "--params", p, "--events", str(ROOT / "tests" / "no-such-events.parquet"), "--out", str(out))
    assert r.returncode != 0
    errors = [line for line in r.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and errors[0].startswith(f"Error: {p}: {message}"), r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_a_stage_refuses_cuda_on_a_machine_without_one(tmp_path):
    p = params_file(tmp_path, train={"device": "cuda"})
    r = run_stage("split", "--params", p, "--out", str(tmp_path / "s.json"))
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1] == f"Error: {p}: train.device: torch sees no CUDA GPU on this machine (use auto or cpu), got 'cuda'"


def test_a_params_file_that_is_not_yaml(tmp_path):
    p = tmp_path / "params.yaml"
    p.write_text("split:\n  train: [0.7\n")
    r = run_stage("split", "--params", str(p), "--out", str(tmp_path / "s.json"))
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith(f"Error: {p}: not valid YAML at line ")
    assert not (tmp_path / "s.json").exists()


def test_an_integral_float_is_the_integer():
    """`dvc exp run -S model.emb_size=64.0` writes 64.0 into params.yaml: every stage takes it as 64."""
    checked = check_params(_with("model", "emb_size", 64.0))
    assert checked["model"]["emb_size"] == 64 and type(checked["model"]["emb_size"]) is int


def test_a_stage_takes_an_integral_float_and_refuses_a_key_given_twice(tmp_path, tiny_tables):
    ev = tmp_path / "events.parquet"
    pq.write_table(tiny_tables.events, ev)
    outs = []
    for seed in (7, 7.0):
        folder = tmp_path / str(seed)
        folder.mkdir()
        r = run_stage("split", "--params", params_file(folder, split={"seed": seed, "min_students": 5}), "--events", str(ev),
                      "--out", str(folder / "split.json"))
        assert r.returncode == 0, r.stderr
        outs.append((folder / "split.json").read_bytes())
    assert outs[0] == outs[1]
    twice = tmp_path / "twice.yaml"
    twice.write_text((ROOT / "params.yaml").read_text().replace("split:\n", "split:\n  seed: 8\n", 1))
    r = run_stage("split", "--params", str(twice), "--events", str(ev), "--out", str(tmp_path / "t.json"))
    assert r.returncode != 0 and "Traceback" not in r.stderr
    second = twice.read_text().splitlines().index("  seed: 7") + 1  # the repeated key's line
    assert r.stderr.strip().splitlines()[-1] == f"Error: {twice}: not valid YAML at line {second}: key 'seed' given twice"
    assert not (tmp_path / "t.json").exists()
