"""The one id rule of every source, and skill fields that list several codes.

An id is text. A spreadsheet or a float column turns `70001` into `70001.0` in part of an export, and a
quoted field may carry spaces, so that one student would become two. Every id column of every source is
read through `normalise_ids`: surrounding whitespace is stripped and an integral float (`70001.0`,
`70001.00`) becomes its integer text (`70001`); nothing else changes, so `007` and `7` stay two ids (an id
with leading zeros is a code, not a number). A float cannot keep leading zeros, though: where a column holds
`7.0` and also `007` or `07`, which one `7.0` was is unknowable, and the run stops naming both.

Skill fields go through `skill_code_lists`, which applies the same rule to each code.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ktirt.errors import InputError

INTEGRAL_FLOAT = r"^([0-9]+)\.0+$"
PADDED = r"^0[0-9]+$"
"""an id written with leading zeros"""
SEPARATORS = ",;_|"
"""what separates the codes of a skill field listing several skills"""
_SPLIT = re.compile(f"[{re.escape(SEPARATORS)}]")


def _combined(values: pa.ChunkedArray | pa.Array) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def _rule(text: pa.Array) -> pa.Array:
    """The id rule on string values (vectorised)."""
    return pc.replace_substring_regex(pc.utf8_trim_whitespace(text), INTEGRAL_FLOAT, r"\1")


def normalise_ids(values: pa.ChunkedArray | pa.Array, path, column: str, refuse: bool = True) -> pa.Array:
    """`values` (string or dictionary of strings) under the id rule; the same array where nothing changes.

    A dictionary column is normalised through its dictionary (one entry per distinct id, not per row).
    refuse=False leaves an ambiguous pair (`7.0` and `007`) to the file's IdForms, which names it as one read
    would: for a block of a file, where another path checks the whole file only."""
    arr = _combined(values)
    text = arr.dictionary if pa.types.is_dictionary(arr.type) else arr
    new = _rule(text)
    if new.equals(text):
        return arr
    if refuse:
        _refuse_ambiguous(pc.unique(text), path, column)
    if not pa.types.is_dictionary(arr.type):
        return new
    distinct = pc.unique(new)
    remap = pc.index_in(new, value_set=distinct)
    return pa.DictionaryArray.from_arrays(remap.take(arr.indices).cast(arr.indices.type), distinct)


class IdForms:
    """The id rule's check across the blocks of a file read a block at a time: the distinct values that are
    written as integral floats or with leading zeros (few, or none), so that `7.0` in one block and `007` in
    another stop the run as they would in one read."""

    def __init__(self):
        self.seen: dict[str, None] = {}  # in the order first met, as one read would list them

    def add(self, values: pa.ChunkedArray | pa.Array) -> None:
        arr = _combined(values)
        text = pc.utf8_trim_whitespace((arr.dictionary if pa.types.is_dictionary(arr.type) else pc.unique(arr)).drop_null())
        either = pc.or_(pc.match_substring_regex(text, INTEGRAL_FLOAT), pc.match_substring_regex(text, PADDED))
        self.seen.update(dict.fromkeys(text.filter(either).to_pylist()))

    def check(self, path, column: str) -> None:
        _refuse_ambiguous(pa.array(list(self.seen), pa.string()), path, column)


def _refuse_ambiguous(distinct: pa.Array, path, column: str) -> None:
    """Stop where an integral float (`7.0`) may stand for an id written with leading zeros (`007`)."""
    trimmed = pc.utf8_trim_whitespace(distinct.drop_null())
    written = trimmed.filter(pc.match_substring_regex(trimmed, INTEGRAL_FLOAT))
    padded = trimmed.filter(pc.match_substring_regex(trimmed, PADDED))
    if not len(written) or not len(padded):
        return
    integer = pc.replace_substring_regex(written, INTEGRAL_FLOAT, r"\1")
    number = lambda a: pc.if_else(pc.equal(pc.utf8_ltrim(a, "0"), ""), "0", pc.utf8_ltrim(a, "0"))  # noqa: E731
    f = pd.DataFrame({"n": number(integer).to_pandas(), "integer": integer.to_pandas(), "float": written.to_pandas()})
    p = pd.DataFrame({"n": number(padded).to_pandas(), "padded": padded.to_pandas()})
    both = f.merge(p, on="n")
    both = both[both["integer"] != both["padded"]]
    if len(both):
        a, b = both.iloc[0]["float"], both.iloc[0]["padded"]
        raise InputError(f"ids '{a}' and '{b}' may be the same id: '{a}' was written as a number, which drops "
                         "leading zeros, so which id it stands for is unknown; write every id as text", path, column)


def skill_code_lists(values: pa.ChunkedArray | pa.Array, path, column: str) -> tuple[pa.ListArray, int]:
    """Per row, its skill codes (empty where the field is blank), and how many rows listed several codes.

    A field such as `13,14` (codes separated by one of `, ; _ |`) is the list of its parts when every part is a
    code on its own somewhere in the column; it stays one code when none is (`ratio_tables`); when only some
    are, the run stops, since the field is neither a known list nor a code of its own."""
    arr = _combined(values)
    if not pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_encode()
    codes = _rule(arr.dictionary).to_pylist()
    alone = {c for c in codes if c}
    lists = [_codes_of(c, alone, path, column) for c in codes]
    indices = arr.indices.fill_null(len(lists))  # a blank field (null) picks the trailing empty list
    per_value = pa.array([*lists, []], pa.list_(pa.string()))
    lengths = np.array([len(x) for x in lists] + [0])
    rows = per_value.take(indices)
    counts = np.bincount(indices.to_numpy(zero_copy_only=False), minlength=len(lengths))
    return rows, int(counts[lengths > 1].sum())


def _codes_of(code: str | None, alone: set[str], path, column: str) -> list[str]:
    """The codes one distinct field value stands for (see skill_code_lists)."""
    if not code:
        return []
    if not _SPLIT.search(code):
        return [code]
    parts = _rule(pa.array([p for p in _SPLIT.split(code) if p.strip()], pa.string())).to_pylist()
    known = [p for p in parts if p in alone]
    if not known:
        return [code]
    if len(known) < len(parts):
        missing = next(p for p in parts if p not in alone)
        raise InputError(f"skill field '{code}' reads as a list of skills ('{known[0]}' is a skill on its own "
                         f"elsewhere in the file) but '{missing}' is not one: write one skill code per part, or a "
                         f"code without any of '{SEPARATORS}'", path, column)
    return list(dict.fromkeys(parts))


def described_codes(codes: pa.ChunkedArray, descriptions: pa.ChunkedArray, path, column: str) -> tuple[list, list]:
    """(codes, descriptions) of the rows whose skill field holds one code and that have a description, in file
    order: a field listing several codes describes none of them alone."""
    lists, _ = skill_code_lists(codes, path, column)
    descriptions = _combined(descriptions)
    keep = pc.and_(pc.equal(pc.list_value_length(lists), 1), pc.is_valid(descriptions))
    return pc.list_flatten(lists.filter(keep)).to_pylist(), descriptions.filter(keep).to_pylist()
