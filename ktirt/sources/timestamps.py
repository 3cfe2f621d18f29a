"""Source timestamps -> int64 ms since the epoch (UTC), read one way for a whole column.

A value that parses but means the wrong thing is the danger here: unix milliseconds read as seconds
date events in the year 54826, and `dd/mm/yyyy` guessed value by value swaps day and month wherever the day
is 12 or less. So numbers get one unit per column, chosen by magnitude (s, ms, us or ns, whichever puts
them between 1990 and 2100), and text gets one explicit format per column, inferred from the values and
checked on every value; a mix of units, an ambiguous day/month order or an unknown format is refused.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ktirt.errors import InputError

NAT = np.iinfo(np.int64).min
FIRST_YEAR, LAST_YEAR = 1990, 2100
LOW_MS, HIGH_MS = 631_152_000_000, 4_102_444_800_000  # 1990-01-01 and 2100-01-01
UNITS = (("seconds", 1e3), ("milliseconds", 1.0), ("microseconds", 1e-3), ("nanoseconds", 1e-6))
ISO_EXAMPLE = "2022-09-05 07:25:06.894"
_SLASH = r"^\s*(?P<a>\d{1,2})/(?P<b>\d{1,2})/(?P<y>\d{4})(?P<rest>.*)$"
_TIME = re.compile(r"^(?P<sep>[ T])\d{1,2}:\d{2}(?P<sec>:\d{2}(?P<frac>\.\d+)?)?$")


NUMBER_FORM = "unix time as a number (e.g. 1662362706.894: seconds since 1970; ms, us or ns are read too)"
TEXT_FORM = f"date-time text (ISO 8601, e.g. '{ISO_EXAMPLE}')"


def to_utc_ms(values: pa.ChunkedArray | pa.Array, path, column: str, text_only: bool = False,
              unit: str | None = None) -> np.ndarray:
    """Unix times (any one unit) or date-time text (naive text is taken as UTC) as int64 ms; NAT where null.

    `text_only`: the column is date-time text in its release, so numbers there are another export's form and
    stop the run, naming the form expected. `unit` (one of UNITS' names): the release documents the column in
    that unit, so numbers whose magnitude says another unit (seconds where milliseconds are documented) stop
    the run rather than being read in the unit they fit."""
    arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    if pa.types.is_floating(arr.type) or pa.types.is_integer(arr.type):
        return _numbers_to_ms(arr.to_numpy(zero_copy_only=False).astype(np.float64), path, column, unit)
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(pa.string())
    try:
        numbers = pc.cast(arr, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return _text_to_ms(arr, path, column)
    if text_only and numbers.null_count < len(numbers):
        example = arr.filter(numbers.is_valid())[0]
        raise InputError(f"timestamps are numbers (e.g. '{example}'), but this column holds {TEXT_FORM}", path, column)
    return _numbers_to_ms(numbers.to_numpy(zero_copy_only=False), path, column, unit)


def _number(x: float) -> str:
    return np.format_float_positional(x, trim="-")


def _numbers_to_ms(x: np.ndarray, path, column: str, expected: str | None = None) -> np.ndarray:
    """One unit for the column: the one that puts every value between 1990 and 2100 (and, where the release
    documents one, that unit)."""
    v = x[np.isfinite(x)]
    if not len(v):
        return np.full(len(x), NAT, dtype=np.int64)
    if expected is not None:
        _require_unit(v, expected, path, column)
    return in_unit(x, unit_factor(v.min(), v.max(), path, column, v))


def unit_factor(lo: float, hi: float, path, column: str, values: np.ndarray | None = None) -> float:
    """Milliseconds per unit of the one unit that puts `lo` and `hi` (a column's least and greatest values, so every
    value between) between 1990 and 2100; else the error names a value no unit fits, or an example of each unit
    among `values` (the column, or as many of its values as a reader that streams it has kept: its extremes)."""
    unit = next((u for u in UNITS if LOW_MS <= lo * u[1] and hi * u[1] < HIGH_MS), None)
    if unit is None:
        _refuse_units(np.array([lo, hi]) if values is None else values, path, column)
    return unit[1]


def in_unit(x: np.ndarray, factor: float) -> np.ndarray:
    """Numbers (NaN: missing) in a unit of `factor` ms as int64 ms, NAT where missing: what to_utc_ms gives once
    the column's unit is known (unit_factor)."""
    out = np.full(len(x), NAT, dtype=np.int64)
    ok = np.isfinite(x)
    out[ok] = np.round(x[ok] * factor).astype(np.int64)
    return out


def _require_unit(v: np.ndarray, expected: str, path, column: str) -> None:
    """Every value a date in 1990-2100 in the `expected` unit; else name the first that is not, and the unit it
    would be in."""
    ms = dict(UNITS)[expected]
    bad = (v * ms < LOW_MS) | (v * ms >= HIGH_MS)
    if bad.any():
        x = v[bad][0]
        fits = next((name for name, m in UNITS if LOW_MS <= x * m < HIGH_MS), None)
        what = f"is unix {fits}" if fits else f"is no date between {FIRST_YEAR} and {LAST_YEAR} in any unit"
        raise InputError(f"timestamp {_number(x)} {what}, but this column holds unix {expected}", path, column)


def _refuse_units(v: np.ndarray, path, column: str) -> None:
    """No single unit fits: name a value no unit fits, or one example of each unit found."""
    unit_of = np.full(len(v), -1)
    for i, (_, ms) in enumerate(UNITS):
        unit_of[(v * ms >= LOW_MS) & (v * ms < HIGH_MS)] = i
    if (unit_of < 0).any():
        raise InputError(
            f"timestamp {_number(v[unit_of < 0][0])} is not a date between {FIRST_YEAR} and {LAST_YEAR}"
            " in seconds, milliseconds, microseconds or nanoseconds since 1970", path, column)
    found = [f"{_number(v[unit_of == i][0])} ({UNITS[i][0]})" for i in np.unique(unit_of)]
    raise InputError(f"timestamps mix units: {' and '.join(found)}; use one unit for the whole column", path, column)


def _text_to_ms(arr: pa.Array, path, column: str) -> np.ndarray:
    """Parse with the one format inferred for the column; the first value that does not fit is named."""
    arr = pc.utf8_trim_whitespace(arr)
    valid = arr.drop_null()
    if not len(valid):
        return np.full(len(arr), NAT, dtype=np.int64)
    fmt = column_format(valid, path, column)
    out = np.empty(len(arr), np.int64)
    for start in range(0, len(arr), TEXT_SLICE):  # pandas holds a Python string per value: a slice at a time
        text = pd.Series(arr.slice(start, TEXT_SLICE).to_pandas(), dtype=object)
        parsed = pd.to_datetime(text, format=fmt, utc=True, errors="coerce")
        bad = parsed.isna() & text.notna()
        if bad.any():
            raise InputError(f"timestamps do not parse: '{text[bad].iloc[0]}' does not fit the column's format {fmt} "
                             f"(set by '{valid[0]}')", path, column)
        out[start:start + len(text)] = parsed.dt.tz_convert(None).to_numpy(dtype="datetime64[ms]").view(np.int64)
    return out


TEXT_SLICE = 1 << 18
"""date-time texts parsed at a time (2.24 M at once held 0.35 GiB of Python strings and pandas' work)"""


def column_format(valid: pa.Array, path, column: str) -> str:
    """'ISO8601', or a strftime format for `d/m/yyyy`-style text whose day/month order the values prove."""
    first = valid[0].as_py()
    if re.match(r"^\d{4}-\d{1,2}-\d{1,2}", first):
        return "ISO8601"
    if m := re.match(r"^\d{4}/\d{1,2}/\d{1,2}(.*)$", first):
        return "%Y/%m/%d" + _time_format(m.group(1), first, path, column)
    m = re.match(_SLASH, first)
    if not m:
        raise InputError(f"timestamps do not parse: '{first}' is not a date format this reader knows "
                         f"(write ISO 8601, e.g. '{ISO_EXAMPLE}')", path, column)
    return _day_month_order(valid, path, column) + _time_format(m.group("rest"), first, path, column)


def _day_month_order(valid: pa.Array, path, column: str) -> str:
    """%d/%m/%Y or %m/%d/%Y, only when some value has a first or second field above 12 (and none contradicts)."""
    parts = pc.extract_regex(valid, _SLASH).drop_null()
    first = pc.cast(parts.field("a"), pa.int32()).to_numpy(zero_copy_only=False)
    second = pc.cast(parts.field("b"), pa.int32()).to_numpy(zero_copy_only=False)
    text = pc.binary_join_element_wise(parts.field("a"), parts.field("b"), parts.field("y"), "/")
    day_first, month_first = first > 12, second > 12
    if day_first.any() and month_first.any():
        raise InputError(f"dates disagree on day/month order: '{text[int(np.argmax(day_first))]}' is day/month, "
                         f"'{text[int(np.argmax(month_first))]}' is month/day", path, column)
    if day_first.any():
        return "%d/%m/%Y"
    if month_first.any():
        return "%m/%d/%Y"
    raise InputError(f"ambiguous dates: in '{text[0]}' and every other value, day and month could be either way "
                     f"round; write ISO 8601 (e.g. '{ISO_EXAMPLE}')", path, column)


def _time_format(rest: str, first: str, path, column: str) -> str:
    """The time-of-day part after a slash date: '', ' %H:%M', ' %H:%M:%S' or ' %H:%M:%S.%f'."""
    if not rest:
        return ""
    m = _TIME.match(rest)
    if not m:
        raise InputError(f"timestamps do not parse: the time in '{first}' is not HH:MM[:SS[.fff]]", path, column)
    return m.group("sep") + "%H:%M" + (":%S" if m.group("sec") else "") + (".%f" if m.group("frac") else "")
