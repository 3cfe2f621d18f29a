"""What every stage script shares: reading params.yaml, logging, and turning bad input into one clear
error line and a non-zero exit. Stages hold no data or model logic; that lives in `ktirt`."""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import click
import yaml

from ktirt.errors import InputError, SettingsError

PARAMS = "params.yaml"
params_option = click.option("--params", "params_path", default=PARAMS, show_default=True,
                             type=click.Path(dir_okay=False), help="settings file")


def load_params(path: str | Path, section: str) -> dict:
    """One top-level section of params.yaml."""
    path = Path(path)
    if not path.is_file():
        raise InputError("params file not found", path)
    params = yaml.safe_load(path.read_text()) or {}
    if not isinstance(params.get(section), dict):
        raise InputError(f"missing section '{section}'", path)
    return params[section]


def stage(func):
    """Run a stage body with INFO logging; InputError becomes `Error: <file>: <column>: <reason>`, exit 1."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        try:
            return func(*args, **kwargs)
        except InputError as exc:
            if isinstance(exc, SettingsError) and exc.path is None:
                raise click.ClickException(f"{kwargs.get('params_path', PARAMS)}: {exc}") from None
            raise click.ClickException(str(exc)) from None

    return wrapper
