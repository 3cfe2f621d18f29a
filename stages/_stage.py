"""What every stage script shares: reading params.yaml, logging, checking its output paths before any work, writing
its outputs all or none, and turning bad input into one clear error line and a non-zero exit. Stages hold no data
or model logic; that lives in `ktirt`."""

from __future__ import annotations

import contextlib
import functools
import logging
import signal
import sys
import threading
from pathlib import Path

import click
import yaml

CHECKOUT = Path(__file__).resolve().parents[1]
if str(CHECKOUT) not in sys.path:
    # the ktirt/ beside this script, which dvc.yaml lists as the stage's deps, even when the editable install
    # (`pip install -e .`) points at another checkout (a fresh clone's `pip install` moves it there)
    sys.path.insert(0, str(CHECKOUT))

from ktirt.errors import InputError, SettingsError, one_line  # noqa: E402
from ktirt.io import check_output, outputs  # noqa: E402
from ktirt.settings import check_params  # noqa: E402

PARAMS = "params.yaml"
LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"


class _UniqueKeys(yaml.SafeLoader):
    """YAML that refuses a key given twice in one mapping (`dvc repro` refuses it too; a plain YAML reader keeps
    the last value, so a stage run by hand would silently train another model)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"key '{key}' given twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


params_option = click.option("--params", "params_path", default=PARAMS, show_default=True,
                             type=click.Path(dir_okay=False), help="settings file")
events_option = click.option("--events", default="data/interim/events.parquet", show_default=True)
split_option = click.option("--split", "split_path", default="data/splits/split.json", show_default=True)
truth_option = click.option("--truth", "truth_folder", default="data/interim/truth", show_default=True,
                            help="the simulator's truth, for the oracle (empty for real data)")


class OutputPath(click.ParamType):
    """The type of every option that names an output (a "file" or a "folder"), checked as the command line is read,
    before any work: a device, a pipe or a folder where a file goes (writing over /dev/null would replace the device),
    a file where a folder goes, or a folder that takes no new files is one line (ktirt.io.check_output)."""

    name = "path"

    def __init__(self, kind: str = "file"):
        self.kind = kind

    def convert(self, value, param, ctx):
        try:
            check_output(value, self.kind)
        except InputError as exc:
            raise click.ClickException(one_line(str(exc))) from None
        return value


def load_params(path: str | Path, section: str | None) -> dict:
    """One top-level section of params.yaml (all of them for None), once the whole file has passed
    ktirt.settings' checks (every stage calls this first, so a bad setting for any stage stops the run before work
    starts); a key given twice in a mapping is refused too."""
    path = Path(path)
    if not path.is_file():
        raise InputError("params file not found", path)
    try:
        params = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeys)
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (byte offset {exc.start})", path) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise InputError(f"not valid YAML{where}: {getattr(exc, 'problem', None) or exc}", path) from None
    checked = check_params(params)
    return checked if section is None else checked[section]


@contextlib.contextmanager
def _unwinding_on_sigterm():
    """SIGTERM (a queue or torchrun stopping a stage) as an exit that unwinds: the stage's temporaries, unfinished
    outputs and training shards are removed as on any error. The previous handler is put back after (tests run
    stages inside pytest); only the main thread may set one."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _terminated(signum, frame):
    raise SystemExit(128 + signum)


def stage(func):
    """Run a stage body with INFO logging and its outputs all or none (ktirt.io.outputs: each written to a
    temporary, all renamed into place once every one is written). InputError becomes `Error: <file>: <column>:
    <reason>`, and an OSError about one file `Error: <file>: <reason>`, control characters escaped; exit 1."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
        try:
            with _unwinding_on_sigterm(), outputs():
                return func(*args, **kwargs)
        except InputError as exc:
            if isinstance(exc, SettingsError) and exc.path is None:
                raise click.ClickException(one_line(f"{kwargs.get('params_path', PARAMS)}: {exc}")) from None
            raise click.ClickException(one_line(str(exc))) from None
        except OSError as exc:
            if exc.filename is None:  # not about one file: let its traceback show
                raise
            raise click.ClickException(one_line(f"{exc.filename}: {exc.strerror or exc}")) from None

    return wrapper
