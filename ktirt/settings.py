"""Every params.yaml setting in one schema (type, range, choices), checked before a stage does any work.

Adding a setting is one line in `SCHEMA`; a rule that ties settings together is one line in `CROSS`. The
library's settings classes (SimulationConfig, WDIRTSettings, ...) run `check_section` too, so code that builds
them without a params file gets the same checks and messages: `<section>.<key>: <what is wrong>, got <value>`.
"""

from __future__ import annotations

import difflib
import math
import re
import warnings
from dataclasses import dataclass
from datetime import date
from typing import Any, Callable

import pandas as pd

from ktirt.errors import SettingsError

SOURCES = ("synthetic", "edm_cup_2023", "assistments_2009")
"""data.source: the keys of `ktirt.sources.SOURCES` (a test keeps them equal), named here because importing
the adapters would make every stage, all of which check params.yaml, depend on ktirt/sources/."""
PROFILES = ("edm_cup", "skill_builder")
"""simulate.profile: the world the simulator writes (edm_cup: EDM Cup 2023's tables, today's default)"""
DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")
KINDS = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "text"}


@dataclass(frozen=True)
class Setting:
    """One key's rule: its kind, an optional range (`low`/`high`, open or closed), choices, literal values
    accepted besides the kind (n_items: auto), and a further check returning what is wrong (or None)."""

    kind: str
    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False
    choices: tuple = ()
    also: tuple = ()
    check: Callable[[Any], str | None] | None = None
    required: bool = True
    """whether a params file must give it (False: the library's default applies)"""

    def problem(self, value) -> str | None:
        if value in self.also and type(value) is str:
            return None
        wrong = self._kind_problem(value)
        if wrong:
            return wrong
        if self.choices and value not in self.choices:
            close = difflib.get_close_matches(str(value), self.choices, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            return f"must be one of {', '.join(self.choices)}, got {value!r}{hint}"
        if not self._in_range(value):
            return f"must be {self.range_text()}, got {value!r}"
        return self.check(value) if self.check else None

    def _kind_problem(self, value) -> str | None:
        ok = {"int": isinstance(value, int) and not isinstance(value, bool),
              "float": isinstance(value, (int, float)) and not isinstance(value, bool),
              "bool": isinstance(value, bool), "str": isinstance(value, str)}[self.kind]
        also = f" or {' or '.join(self.also)}" if self.also else ""
        if not ok:
            return f"must be {KINDS[self.kind]}{also}, got {value!r}{_yaml_hint(self.kind, value)}"
        if self.kind == "float" and not math.isfinite(value):
            return f"must be a finite number, got {value!r}"
        return None

    def _in_range(self, v) -> bool:
        low_ok = self.low is None or (v > self.low if self.open_low else v >= self.low)
        return low_ok and (self.high is None or (v < self.high if self.open_high else v <= self.high))

    def range_text(self) -> str:
        """`≥ 2`, `> 0`, `in [0, 1)`; '' when there is no range."""
        if self.low is not None and self.high is not None:
            return f"in {'(' if self.open_low else '['}{self.low}, {self.high}{')' if self.open_high else ']'}"
        if self.low is not None:
            return f"{'>' if self.open_low else '≥'} {self.low}"
        return "" if self.high is None else f"{'<' if self.open_high else '≤'} {self.high}"


def _yaml_hint(kind: str, value) -> str:
    """YAML 1.1 reads `3e-3` as text and an unquoted 2022-08-29 as a date: say how to write them."""
    if kind == "float" and isinstance(value, str):
        try:
            float(value)
            return f" (YAML reads {value} as text: write it with a decimal point, e.g. 3.0e-3)"
        except ValueError:
            return ""
    if kind == "str" and isinstance(value, date):
        return f' (quote it: "{value.isoformat()}")'
    return ""


def _iso_date(value: str) -> str | None:
    try:
        date.fromisoformat(value)
    except ValueError:
        return f"must be a date as YYYY-MM-DD, got {value!r}"
    return None


def _not_empty(value: str) -> str | None:
    return None if value.strip() else "must not be empty"


def _device(value: str) -> str | None:
    """auto / cpu / cuda / cuda:N / mps, and present on this machine (torch is imported only when asked for a GPU)."""
    if not DEVICE.fullmatch(value):
        return f"must be auto, cpu, cuda, cuda:N or mps, got {value!r}"
    if value in ("auto", "cpu"):
        return None
    from ktirt.runtime import device_problem

    return device_problem(value)


def _period(value: str) -> str | None:
    """A pandas period frequency of a day or longer (drift windows: shorter ones make millions of windows)."""
    wrong = f"must be a pandas period frequency of a day or longer (D, W, M, Q, Y), got {value!r}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            p = pd.Period("2022-01-01", freq=value)
            span = (p + 1).start_time - p.start_time
    except (ValueError, TypeError, FutureWarning, AttributeError):
        return wrong
    return None if span >= pd.Timedelta(days=1) else wrong


def count(low: int = 1, **kw) -> Setting:
    return Setting("int", low=low, **kw)


def number(low=None, high=None, open_low=False, open_high=False, **kw) -> Setting:
    return Setting("float", low=low, high=high, open_low=open_low, open_high=open_high, **kw)


SEED = count(0)
SHARE = number(0, 1)  # [0, 1]
DROPOUT = number(0, 1, open_high=True)
RATE = number(0, open_low=True)  # > 0
DEVICE_SETTING = Setting("str", check=_device)

SCHEMA: dict[str, dict[str, Setting]] = {
    "data": {
        "source": Setting("str", choices=SOURCES),
        "raw_dir": Setting("str", check=_not_empty),
    },
    "simulate": {
        "profile": Setting("str", choices=PROFILES),
        "seed": SEED,
        "n_students": count(),
        "n_skills": count(),
        "n_items": count(also=("auto",)),
        "class_size": count(),
        "units_per_class": count(),
        "assignments_per_unit": count(),
        "problems_per_assignment": count(),
        "unit_test_size": count(),
        "drift_fraction": number(0, 1, open_high=True),
        "drift_shift": number(0),
        "evaluation_fraction": number(0, 1, open_low=True, open_high=True),  # 0 or 1 leaves a score file empty
        "start_date": Setting("str", check=_iso_date),
    },
    "split": {
        "seed": SEED,
        "train": number(0, 1, open_low=True, open_high=True),
        "val": number(0, 1, open_low=True, open_high=True),  # early stopping needs validation students
    },
    "pykt": {
        "seq_len": count(2),  # a window predicts each response from the ones before it
        "folds": count(2),  # fold 0 = validation students, 1.. = training students
    },
    "model": {
        "emb_size": count(),
        "num_heads": count(),
        "num_blocks": count(),
        "dropout": DROPOUT,
        "seq_len": count(2),
        "min_item_count": count(0),
        "item_difficulty": Setting("bool"),
        "item_prior": number(0),
        "multi_skill": Setting("bool"),
        "clickstream": Setting("bool"),
        "recency": Setting("bool"),
        "question_keys": Setting("bool"),
        "practice": Setting("bool"),
        "deep_head": Setting("bool"),
    },
    "train": {
        "batch_size": count(),
        "lr": RATE,
        "epochs": count(),
        "patience": count(),
        "seed": SEED,
        "device": DEVICE_SETTING,
        "threads": count(),
    },
    "wdirt": {
        "history_len": count(),
        "hidden": count(),
        "dropout": DROPOUT,
        "discrimination": Setting("bool"),
        "prior_strength": number(0),
        "batch_size": count(),
        "lr": RATE,
        "wide_lr_factor": number(0, open_low=True, required=False),
        "epochs": count(),
        "patience": count(),
        "seed": SEED,
        "device": DEVICE_SETTING,
        "threads": count(),
        "drift_window": Setting("str", check=_period),
        "drift_z": RATE,
        "drift_fdr": number(0, 1, open_low=True, open_high=True),
        "drift_min_shift": number(0),
        "drift_min_responses": count(),
    },
    "export": {
        "mastery_items": count(),
        "falling_drop": SHARE,
        "batch_size": count(),
        "device": DEVICE_SETTING,
        "threads": count(),
    },
    "join": {
        "min_coverage": SHARE,
        "samples": count(0),
        "seed": SEED,
    },
    "report": {
        "students": count(),
    },
}


def _bank(n_items, n_skills, unit_test_size, problems_per_assignment) -> tuple[str, str] | None:
    need = n_skills * (unit_test_size + problems_per_assignment)
    if n_items != "auto" and n_items < need:
        return ("n_items", f"must be ≥ {need} for {n_skills} skills (one unit test and one problem set each), "
                            f"got {n_items}")
    return None


CROSS: dict[str, list[tuple[tuple[str, ...], Callable]]] = {
    "simulate": [
        (("units_per_class", "n_skills"),
         lambda u, n: u > n and ("units_per_class", f"must be ≤ simulate.n_skills ({n}), got {u}")),
        (("n_items", "n_skills", "unit_test_size", "problems_per_assignment"), _bank),
    ],
    "split": [
        (("train", "val"),
         lambda t, v: t + v >= 1 and ("train + split.val", f"must be < 1 (test is the rest), got {t} + {v}")),
    ],
    "model": [
        (("emb_size", "num_heads"),
         lambda e, h: e % h and ("emb_size", f"must be divisible by model.num_heads ({h}), got {e}")),
    ],
}
"""section -> [(keys, rule)]: a rule gets those keys' values (only when all are given) and returns False/None
or (key, what is wrong)."""


def _unknown(where: str, name: str, known) -> SettingsError:
    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f"did you mean '{close[0]}'?" if close else f"known: {', '.join(known)}"
    return SettingsError(f"{where}: unknown {'setting' if '.' in where else 'section'} ({hint})")


def check_section(section: str, values: dict) -> dict:
    """SettingsError on the first unknown key, wrongly typed or out-of-range value, or broken cross rule of
    one section (keys it does not give are left to the caller's defaults); returns `values`."""
    schema = SCHEMA[section]
    for key, value in values.items():
        if key not in schema:
            raise _unknown(f"{section}.{key}", str(key), schema)
        wrong = schema[key].problem(value)
        if wrong:
            raise SettingsError(f"{section}.{key}: {wrong}")
    for keys, rule in CROSS.get(section, []):
        if all(k in values for k in keys):
            broken = rule(*(values[k] for k in keys))
            if broken:
                raise SettingsError(f"{section}.{broken[0]}: {broken[1]}")
    return values


def check_params(params) -> dict:
    """The whole params file: every section, every required key, nothing unknown; returns `params`."""
    if not isinstance(params, dict):
        raise SettingsError(f"must be a mapping of sections ({', '.join(SCHEMA)}), got {type(params).__name__}")
    for section in params:
        if section not in SCHEMA:
            raise _unknown(str(section), str(section), SCHEMA)
    for section, schema in SCHEMA.items():
        values = params.get(section)
        if values is None and section not in params:
            raise SettingsError(f"{section}: missing section")
        if not isinstance(values, dict):
            raise SettingsError(f"{section}: must be a mapping of settings, got {values!r}")
        missing = [k for k, s in schema.items() if s.required and k not in values]
        if missing:
            raise SettingsError(f"{section}.{missing[0]}: missing setting")
        check_section(section, values)
    return params
