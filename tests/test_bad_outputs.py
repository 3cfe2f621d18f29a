"""Outputs that cannot be written: a stage writes all of its outputs or none, refuses an output path it could not
write before any work, and says why in one line (README, "Bad input" -> "Intermediates and failures")."""

import errno
import importlib
import json
import os
import shutil
import stat
import sys
from pathlib import Path
from types import SimpleNamespace

import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner

from conftest import ROOT, params_file, run_stage
from ktirt.errors import InputError
from ktirt.io import TEMP_TAG, atomic_path, write_json, write_parquet
from test_bad_intermediates import EVENTS, SPLIT, _demo, _one_error_line, _user_skill, world  # noqa: F401 (fixture)
from test_exports import run  # noqa: F401  (the tiny pipeline, for export and demo_trace)

sys.path.insert(0, str(ROOT / "stages"))
STAGES = {name: importlib.import_module(name) for name in yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]}


def _invoke(stage: str, *args) -> str:
    """A stage in-process (click's runner): its one error line, checked to be the only one, with no traceback."""
    r = CliRunner().invoke(STAGES[stage].main, [str(a) for a in args])
    assert r.exit_code == 1 and isinstance(r.exception, SystemExit), (r.exception, r.output[-2000:])
    errors = [line for line in r.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "Traceback" not in r.output, r.output[-2000:]
    return errors[0]


def _no_temps(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if TEMP_TAG in p.name]


def _failing_writer(monkeypatch, nth: int, code: int, name_the_file: bool) -> list:
    """pyarrow's parquet writer failing with `code` from its nth file on: as pyarrow does on a full disk (errno 28
    in the message, no file name) or as the OS does (the temporary's name)."""
    real, calls = pq.write_table, []

    def write(table, where, *args, **kwargs):
        calls.append(Path(where))
        if len(calls) >= nth:
            if name_the_file:
                raise OSError(code, os.strerror(code), str(where))
            raise OSError(code, f"Error writing bytes to file. Detail: [errno {code}] {os.strerror(code)}")
        return real(table, where, *args, **kwargs)

    monkeypatch.setattr(pq, "write_table", write)
    return calls


# all or none -----------------------------------------------------------------------------------------------------

WRITE_FAILURES = [(errno.ENOSPC, False, "no space left on device"), (errno.EACCES, True, "permission denied"),
                  (errno.EROFS, True, "read-only file system")]


@pytest.mark.parametrize("code, named, words", WRITE_FAILURES, ids=[w for *_, w in WRITE_FAILURES])
def test_prepare_failing_on_its_second_output_leaves_none(tmp_path, tiny_raw, monkeypatch, code, named, words):
    """The first table is written, the second fails: no table, no temporary, not even the folder made for them;
    the line names the real output (never the temporary) and says why in words."""
    p = params_file(tmp_path, data={"source": "synthetic", "raw_dir": str(tiny_raw), "part_mb": 512})
    out = tmp_path / "out" / "interim"
    calls = _failing_writer(monkeypatch, 2, code, named)
    line = _invoke("prepare", "--params", p, "--out-dir", out, "--metrics", tmp_path / "out" / "prepare.json")
    assert line == f"Error: {out / calls[1].name}: cannot write: {words}"
    assert not (tmp_path / "out").exists() and _no_temps(tmp_path)


@pytest.mark.parametrize("full_at", ["sakt_student_state.parquet", "item_drift.parquet"])
def test_export_on_a_full_disk_leaves_none_of_its_tables(world, tiny_tables, tmp_path, monkeypatch, full_at):
    """The issue's case: sakt_predictions.parquet written, a later table finds the disk full: one streamed as it
    is scored (written part by part beside sakt_predictions), or one written whole after them."""
    work = tmp_path / "w"
    shutil.copytree(world, work)
    write_parquet(tiny_tables.skills, work / "data" / "interim" / "skills.parquet")
    (work / "data" / "new_exports").mkdir()  # an existing folder: kept, and left empty
    if full_at == "item_drift.parquet":
        calls = _failing_writer(monkeypatch, 2, errno.ENOSPC, False)
    else:
        calls = _failing_part_writer(monkeypatch, full_at)
    monkeypatch.chdir(work)
    line = _invoke("export", "--params", "params.yaml", "--skills", "data/interim/skills.parquet", "--out", "data/new_exports",
                   "--metrics", "metrics/new_export.json", "--timings", "logs/new_export.json")
    assert line == f"Error: data/new_exports/{full_at}: cannot write: no space left on device"
    assert calls[0].name == ("sakt_predictions.parquet" if full_at != "item_drift.parquet" else "item_params.parquet")
    assert not list((work / "data" / "new_exports").iterdir())
    assert not (work / "metrics" / "new_export.json").exists() and not (work / "logs").exists() and _no_temps(work)


def _failing_part_writer(monkeypatch, name: str) -> list:
    """pyarrow's part-by-part parquet writer failing on a full disk (as pyarrow says it) for the file `name`."""
    calls = []

    class Writer(pq.ParquetWriter):
        def __init__(self, where, *args, **kwargs):
            calls.append(Path(where))
            self.full = Path(where).name == name
            super().__init__(where, *args, **kwargs)

        def write_table(self, table, *args, **kwargs):
            if self.full:
                raise OSError(errno.ENOSPC, f"Error writing bytes to file. Detail: [errno {errno.ENOSPC}] {os.strerror(errno.ENOSPC)}")
            return super().write_table(table, *args, **kwargs)

    monkeypatch.setattr(pq, "ParquetWriter", Writer)
    return calls


def test_an_interrupted_transaction_leaves_the_previous_outputs(tmp_path):
    """Ctrl-C (or any exception) after some outputs are written: the old ones stay as they were, the new ones and
    their temporaries are gone; without an error every output is in place."""
    from ktirt.io import outputs

    write_json({"run": 1}, tmp_path / "metrics.json")
    with pytest.raises(KeyboardInterrupt), outputs():
        write_json({"run": 2}, tmp_path / "metrics.json")
        write_json({"run": 2}, tmp_path / "new" / "deep" / "other.json")
        raise KeyboardInterrupt
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"run": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]
    with outputs():
        write_json({"run": 3}, tmp_path / "metrics.json")
        with atomic_path(tmp_path / "folder") as tmp:
            tmp.mkdir()
            (tmp / "a.txt").write_text("a")
        assert json.loads((tmp_path / "metrics.json").read_text()) == {"run": 1}  # nothing renamed before the end
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"run": 3} and (tmp_path / "folder" / "a.txt").exists()
    assert _no_temps(tmp_path)


def test_dvclive_log_is_put_back_when_training_fails(tmp_path):
    """DVCLive writes its folder in place while training (what `dvc exp show` reads): a failed stage puts back
    what the folder held, or removes it when there was none."""
    from _training import live_epochs

    from ktirt.io import outputs

    old = tmp_path / "old"
    old.mkdir()
    (old / "metrics.json").write_text('{"step": 7}\n')
    for folder in (old, tmp_path / "new"):
        with pytest.raises(RuntimeError), outputs(), live_epochs(folder) as on_epoch:
            on_epoch(0, {"val_auc": 0.5})
            assert "val_auc" in (folder / "metrics.json").read_text()
            raise RuntimeError("training diverged")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old"]
    assert [p.name for p in old.iterdir()] == ["metrics.json"] and (old / "metrics.json").read_text() == '{"step": 7}\n'


def test_a_writer_that_names_no_errno_on_a_full_disk(tmp_path, monkeypatch):
    """torch.save on a full disk raises RuntimeError("unexpected pos ..."): with no space left, that is what it means."""
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "model.pt"):
        raise RuntimeError("a bug, with space left")
    monkeypatch.setattr(os, "statvfs", lambda _: SimpleNamespace(f_bavail=3, f_frsize=4096, f_flag=0))
    with pytest.raises(InputError, match=r"model\.pt: cannot write: no space left on device$"), atomic_path(tmp_path / "model.pt"):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534")
    assert not list(tmp_path.iterdir())


# checked before the work -------------------------------------------------------------------------------------------

@pytest.fixture
def tiny_inputs(tiny_tables, tmp_path):
    """events.parquet and split.json of the tiny simulation, for split and pykt_adapt."""
    write_parquet(tiny_tables.events, tmp_path / EVENTS)
    users = sorted(set(tiny_tables.events["user_id"].to_pylist()))
    write_json({"train": users[:40], "val": users[40:60], "test": users[60:], "seed": 1}, tmp_path / SPLIT)
    return tmp_path


def _private_device(tmp_path) -> Path:
    """A character device of our own (the kernel's null device) where the OS lets us make one, else /dev/null:
    should the check fail, only our own node is replaced (and where none can be made, /dev cannot be written)."""
    try:
        os.mknod(tmp_path / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        return tmp_path / "null"
    except OSError:
        return Path("/dev/null")


def test_split_refuses_a_character_device_and_leaves_it_one(tiny_inputs):
    device = _private_device(tiny_inputs)
    r = run_stage("split", "--events", str(tiny_inputs / EVENTS), "--out", str(device))
    assert _one_error_line(r) == f"Error: {device}: not a regular file (a character device): choose a file path"
    assert stat.S_ISCHR(device.stat().st_mode)


def test_split_refuses_a_named_pipe(tiny_inputs):
    os.mkfifo(tiny_inputs / "pipe")
    r = run_stage("split", "--events", str(tiny_inputs / EVENTS), "--out", str(tiny_inputs / "pipe"))
    assert _one_error_line(r) == f"Error: {tiny_inputs / 'pipe'}: not a regular file (a named pipe): choose a file path"


@pytest.mark.parametrize("option, existing, message", [
    ("--metrics", "folder", "not a regular file (a folder): choose a file path"),
    ("--out", "file", "not a folder (a regular file): choose a folder path"),
])
def test_an_output_of_the_wrong_kind_is_refused_before_the_work(tiny_inputs, option, existing, message):
    """A folder where the metrics go (which the rename would have replaced, contents and all, after the work), a
    file where pyKT's folder goes: refused, and left as they were."""
    there = tiny_inputs / "there"
    there.mkdir() if existing == "folder" else there.write_text("keep me")
    if existing == "folder":
        (there / "notes.txt").write_text("keep me")
    line = _invoke("pykt_adapt", "--events", tiny_inputs / EVENTS, "--split", tiny_inputs / SPLIT, option, there)
    assert line == f"Error: {there}: {message}"
    assert (there / "notes.txt" if existing == "folder" else there).read_text() == "keep me"
    assert not (tiny_inputs / "data" / "processed").exists() and not (tiny_inputs / "metrics").exists()


@pytest.mark.parametrize("flag, words", [(0, "permission denied"), (os.ST_RDONLY, "read-only file system")])
def test_a_read_only_folder_is_refused_before_the_work(tmp_path, monkeypatch, flag, words):
    """os.access on the nearest existing folder, before the input is even read (it is missing here); it names the
    real output. (Simulated: root writes through chmod.)"""
    ro = tmp_path / "ro"
    ro.mkdir()
    real_access, real_statvfs = os.access, os.statvfs
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == ro else real_access(p, mode, **kw))
    monkeypatch.setattr(os, "statvfs", lambda p: SimpleNamespace(f_flag=flag) if Path(p) == ro else real_statvfs(p))
    line = _invoke("split", "--events", tmp_path / "missing.parquet", "--out", ro / "splits" / "split.json")
    assert line == f"Error: {ro / 'splits' / 'split.json'}: cannot write: {words}"


def test_a_read_only_folder_for_real(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    if os.access(ro, os.W_OK):
        pytest.skip("running as root, whom chmod does not stop (the test above simulates it)")
    r = run_stage("split", "--events", str(tmp_path / "missing.parquet"), "--out", str(ro / "split.json"))
    assert _one_error_line(r) == f"Error: {ro / 'split.json'}: cannot write: permission denied"


def test_every_output_dvc_yaml_declares_is_checked_before_the_work():
    """Each stage's outputs in dvc.yaml are the default of an option typed OutputPath (or lie in such a folder)."""
    from _stage import OutputPath

    for name, spec in yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"].items():
        checked = [(p.default, p.type.kind) for p in STAGES[name].main.params if isinstance(p.type, OutputPath)]
        for out in (o if isinstance(o, str) else next(iter(o)) for key in ("outs", "metrics", "plots") for o in spec.get(key, [])):
            assert any(out == d or (kind == "folder" and Path(d) in Path(out).parents) for d, kind in checked), (name, out)


def test_demo_trace_refuses_dev_full_before_printing(run):
    """It used to print the answer, draw into /dev/full and exit 0 with no picture."""
    user, skill = _user_skill(run)
    r = _demo(run, "--student-id", user, "--topic", skill, "--plot", "/dev/full")
    assert _one_error_line(r) == "Error: /dev/full: not a regular file (a character device): choose a file path"
    assert r.stdout == "" and stat.S_ISCHR(os.stat("/dev/full").st_mode)


# one line ---------------------------------------------------------------------------------------------------------

def test_a_newline_in_the_student_id_stays_on_one_line(run):
    _, skill = _user_skill(run)
    r = _demo(run, "--student-id", "U1\nError: forged\r\x1b[2J", "--topic", skill)
    assert r.stderr.count("\n") == 1 and "no student 'U1\\nError: forged\\r\\x1b[2J'" in _one_error_line(r)


def test_a_control_character_in_a_stage_message_is_escaped(tmp_path):
    r = run_stage("split", "--events", str(tmp_path / "a\nb.parquet"), "--out", str(tmp_path / "split.json"))
    assert r.stderr.count("\n") == 1 and _one_error_line(r).startswith(f"Error: {tmp_path}/a\\nb.parquet: missing")

