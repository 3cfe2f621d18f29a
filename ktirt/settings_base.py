"""What every section model of ktirt/settings.py is made of: the base class (strict, frozen, no unknown keys),
the checked kinds of text (dates, devices, pandas periods), `derive` for library classes that take some of a
section's settings, and the one-line messages: `<section>.<key>: <what is wrong>, got <value>`, built from
pydantic's error type and the field's declaration, so pydantic's own error text never reaches the user.
"""

from __future__ import annotations

import difflib
import re
import sys
import warnings
from datetime import date
from types import UnionType
from typing import Annotated, Any, ClassVar, Literal, Union, get_args, get_origin

import pandas as pd
from annotated_types import Ge, Gt, Le, Lt
from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, ValidationError, create_model,
                      model_validator)
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

from ktirt.errors import SettingsError

DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")
KINDS = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "text", "list": "a list"}
OPTIONAL = {"optional": True}


def cap(why: str) -> dict:
    """Marks an upper bound that is a limit on memory or time, not a meaning (a share's 1 is a meaning): a value
    above it is refused saying why, and one below the lower bound names that bound alone."""
    return {"cap": why}
"""Field(json_schema_extra=OPTIONAL): a params file may leave the setting out (its default applies)"""


def _iso_date(value: str) -> str:
    try:
        date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"must be a date as YYYY-MM-DD, got {value!r}") from None
    return value


def _not_empty(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def _device(value: str) -> str:
    """auto / cpu / cuda / cuda:N / mps, and present on this machine (torch is imported only when asked for a GPU)."""
    if not DEVICE.fullmatch(value):
        raise ValueError(f"must be auto, cpu, cuda, cuda:N or mps, got {value!r}")
    if value not in ("auto", "cpu"):
        from ktirt.runtime import device_problem

        wrong = device_problem(value)
        if wrong:
            raise ValueError(wrong)
    return value


def _period(value: str) -> str:
    """A pandas period frequency of a day or longer (drift windows: shorter ones make millions of windows)."""
    wrong = f"must be a pandas period frequency of a day or longer (D, W, M, Q, Y), got {value!r}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            p = pd.Period("2022-01-01", freq=value)
            span = (p + 1).start_time - p.start_time
    except (ValueError, TypeError, FutureWarning, AttributeError):
        raise ValueError(wrong) from None
    if span < pd.Timedelta(days=1):
        raise ValueError(wrong)
    return value


IsoDate = Annotated[str, AfterValidator(_iso_date)]
Text = Annotated[str, AfterValidator(_not_empty)]
Device = Annotated[str, AfterValidator(_device)]
Period = Annotated[str, AfterValidator(_period)]


def broken(key: str, what: str) -> PydanticCustomError:
    """A cross rule's failure (raise it from a model validator): `<section>.<key>: <what>`."""
    return PydanticCustomError("cross_rule", "{key}: {what}", {"key": key, "what": what})


class Section(BaseModel):
    """One params.yaml section: strict types (an integer setting refuses "64", true and 64.0; a number accepts an
    integer), finite numbers, no unknown keys, frozen. A bad value raises SettingsError, however it is built."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, allow_inf_nan=False, validate_default=True)
    section: ClassVar[str] = ""
    """its name in params.yaml (set from `Params`)"""
    keys: ClassVar[dict[str, str]] = {}
    """a derived class's fields -> the settings they take (`derive`): `of` reads them, messages name them"""

    def __init__(self, /, **values: Any):
        try:
            super().__init__(**integral_floats(type(self), values))
        except ValidationError as exc:
            raise settings_error(exc, type(self), values) from None

    @classmethod
    def from_dict(cls, values) -> Any:
        """The settings of a mapping (a params.yaml section); the keys it leaves out take their defaults."""
        odd = _odd_key(values)
        if odd is not None:
            raise SettingsError(f"{cls.section}.{odd}: unknown setting ({hint(odd, cls.model_fields)})")
        try:
            return cls.model_validate(integral_floats(cls, values))
        except ValidationError as exc:
            raise settings_error(exc, cls, values) from None

    @classmethod
    def of(cls, settings: Section, **more: Any) -> Any:
        """A derived model (`derive`) from the section's settings, with `more` fields or overrides."""
        return cls(**({k: getattr(settings, v) for k, v in cls.keys.items()} | more))


def integral_floats(model: type[BaseModel], values):
    """An integer setting given as an integral float (`dvc exp run -S model.emb_size=64.0` writes 64.0) takes
    the integer; 64.5 stays a float and is refused as not an integer."""
    if not isinstance(values, dict):
        return values
    ints = {k for k, f in model.model_fields.items() if _kind(f.annotation)[0] == "int"}
    return {k: int(v) if k in ints and type(v) is float and v.is_integer() else v for k, v in values.items()}


def required(model: type[Section]) -> list[str]:
    """The settings a params file must give: all but the OPTIONAL ones."""
    return [k for k, f in model.model_fields.items() if not (f.json_schema_extra or {}).get("optional")]


def _odd_key(values) -> str | None:
    """A key that is not text (YAML's `1: 2`): pydantic would pass it to __init__ as a keyword, and fail."""
    return next((str(k) for k in values if not isinstance(k, str)), None) if isinstance(values, dict) else None


def given(model: type[Section]) -> BeforeValidator:
    """A params file's section gives every setting but the optional ones, each named by text."""

    def check(values):
        missing = [k for k in required(model) if k not in values] if isinstance(values, dict) else []
        if missing:
            raise PydanticCustomError("missing_setting", "missing setting {key}", {"key": missing[0]})
        if _odd_key(values) is not None:
            raise PydanticCustomError("unknown_setting", "unknown setting {key}", {"key": _odd_key(values)})
        return values

    return BeforeValidator(check)


def derive(name: str, section: type[Section], keys, base: type[Section] = Section, doc: str = "",
           rules: bool = False) -> type:
    """A model whose fields are some of `section`'s settings (type, range, default, description): `keys` lists
    them, or maps each field of the new model to the setting it takes. `base` adds fields or methods; `rules`
    carries the section's model validators over (when they read only settings the new model takes)."""
    keys = keys if isinstance(keys, dict) else {k: k for k in keys}
    fields = {k: (section.model_fields[v].annotation, section.model_fields[v]) for k, v in keys.items()}
    validators = {n: model_validator(mode=d.info.mode)(d.func)
                  for n, d in section.__pydantic_decorators__.model_validators.items()} if rules else {}
    module = sys._getframe(1).f_globals.get("__name__")  # the caller's, as create_model itself does
    model = create_model(name, __base__=base, __doc__=doc, __module__=module, __validators__=validators, **fields)
    model.section, model.keys = section.section, keys
    return model


# pydantic's errors -> one line each, naming the setting; the first in file order is reported

RANGE_ERRORS = ("greater_than", "greater_than_equal", "less_than", "less_than_equal")
UNKNOWN_ERRORS = ("extra_forbidden", "invalid_key", "unknown_setting")


def settings_error(exc: ValidationError, model: type[Section], values) -> SettingsError:
    """The first problem of a section's `values` (in the order the mapping gives its keys) as one line."""
    keys = list(values) if isinstance(values, dict) else []
    first = min(exc.errors(), key=lambda err: keys.index(err["loc"][0]) if err["loc"] and err["loc"][0] in keys else -1)
    return SettingsError(line(first, model, values))


def line(err: dict, model: type[Section], values) -> str:
    """One pydantic error of a section model (`loc`: the key, or none for the section as a whole)."""
    loc, kind, ctx, section = err["loc"], err["type"], err.get("ctx") or {}, model.section
    if isinstance(ctx.get("error"), SettingsError):
        return str(ctx["error"])  # a section's own line: pydantic validates a nested section through Section.__init__
    if kind in ("missing_setting", "cross_rule"):  # raised for the section as a whole
        return f"{section}.{ctx['key']}: " + ("missing setting" if kind == "missing_setting" else ctx["what"])
    key = str(loc[0]) if loc else ctx.get("key")
    if key is None:
        return f"{section}: must be a mapping of settings, got {values!r}"
    if kind in UNKNOWN_ERRORS or key not in model.model_fields:
        return f"{section}.{key}: unknown setting ({hint(key, model.model_fields)})"
    if kind == "missing":
        return f"{section}.{model.keys.get(key, key)}: missing setting"
    return f"{section}.{model.keys.get(key, key)}: {_problem(model.model_fields[key], kind, err['input'], ctx)}"


def _problem(field: FieldInfo, kind: str, value, ctx: dict) -> str:
    """What is wrong with one value, by the error's type and the field's declaration."""
    if kind == "value_error":
        return str(ctx["error"])
    if kind == "finite_number":
        return f"must be a finite number, got {value!r}"
    if kind in RANGE_ERRORS:
        return f"must be {_range(field, kind)}, got {value!r}"
    base, choices, also = _kind(field.annotation)
    if kind == "too_short":
        return f"must not be empty, got {value!r}"
    if kind == "literal_error" and choices and (isinstance(value, str) or base == "list"):
        close = difflib.get_close_matches(value, choices, n=1) if isinstance(value, str) else []
        did_you_mean = f" (did you mean '{close[0]}'?)" if close else ""
        return f"must be one of {', '.join(choices)}, got {value!r}{did_you_mean}"
    also = "".join(f" or {a}" for a in also)
    return f"must be {KINDS[base]}{also}, got {value!r}{_yaml_hint(base, value)}"


def _kind(annotation) -> tuple[str, tuple, tuple]:
    """(int/float/bool/str, choices, literal values accepted besides the kind) of a field's type."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return "str", args, ()
    if origin is list:  # a list of choices (blend.members): its entries' choices
        return "list", _kind(args[0])[1], ()
    if origin is Annotated:
        return _kind(args[0])
    if origin in (Union, UnionType):
        base = next(a for a in args if get_origin(a) is not Literal)
        return _kind(base)[0], (), tuple(v for a in args if get_origin(a) is Literal for v in get_args(a))
    return annotation.__name__, (), ()


def _range(field: FieldInfo, kind: str = "") -> str:
    """`≥ 2`, `> 0`, `in [0, 1)`: a field's bounds (those of `int | Literal` too) as the messages write them; a
    capped field (`cap`) names only the bound the value broke, the cap with its reason."""
    meta = list(field.metadata)
    for arg in get_args(field.annotation):
        meta += [m for info in get_args(arg)[1:] if isinstance(info, FieldInfo) for m in info.metadata]
    low = next((("[", m.ge) if isinstance(m, Ge) else ("(", m.gt) for m in meta if isinstance(m, (Ge, Gt))), None)
    high = next(((m.le, "]") if isinstance(m, Le) else (m.lt, ")") for m in meta if isinstance(m, (Le, Lt))), None)
    why = (field.json_schema_extra or {}).get("cap")
    if why and kind.startswith("less_than"):
        return f"{'≤' if high[1] == ']' else '<'} {high[0]} ({why})"
    if low and high and not why:
        return f"in {low[0]}{low[1]}, {high[0]}{high[1]}"
    if low:
        return f"{'≥' if low[0] == '[' else '>'} {low[1]}"
    return f"{'≤' if high[1] == ']' else '<'} {high[0]}"


def hint(name: str, known) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f"did you mean '{close[0]}'?" if close else f"known: {', '.join(known)}"


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
