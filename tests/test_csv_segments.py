"""A large CSV parsed in segments on two threads (ktirt/sources/csv_segments.py) gives the streaming reader's rows,
values and errors in its order, whatever the line ends; and the columns a split reads only for the exact-duplicate
rule (ktirt/sources/csv_parts.py, as bytes) keep equal values equal across blocks, and different ones apart."""

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from ktirt.errors import InputError
from ktirt.sources import csv_parts, csv_segments, tables
from ktirt.sources.csv_segments import csv_blocks_in_parallel
from ktirt.sources.tables import csv_blocks, opened, read_header

TYPES = {"user": tables.STRING_DICT, "t": pa.float64(), "note": pa.string(), "n": pa.int64()}


def _write(path: Path, n: int, newline: str = "\n", last_newline: bool = True, bad_row: int | None = None) -> Path:
    rng = np.random.default_rng(n)
    lines = ["user,t,note,n"]
    for i in range(n):
        note = "" if i % 7 == 0 else f'"x, {rng.integers(50)}"'
        lines.append(f"u{rng.integers(30)},{1.6e9 + i * 0.5},{note},{'oops' if i == bad_row else i}")
    path.write_text(newline.join(lines) + (newline if last_newline else ""), newline="")
    return path


def _both(path: Path, forms=None):
    header = read_header(path)
    source, _ = opened(path)
    serial = pa.Table.from_batches(list(csv_blocks(source, path, header, TYPES, forms or {})))
    source, _ = opened(path)
    parallel = pa.Table.from_batches(list(csv_blocks_in_parallel(source, path, header, TYPES, forms or {})))
    return serial, parallel


@pytest.mark.parametrize("newline,last", [("\n", True), ("\r\n", True), ("\n", False)], ids=["lf", "crlf", "no-final"])
def test_segments_give_the_streaming_readers_rows(tmp_path, monkeypatch, newline, last):
    monkeypatch.setattr(tables, "BLOCK_BYTES", 4 << 10)  # about 40 segments
    path = _write(tmp_path / "log.csv", 5000, newline, last)
    serial, parallel = _both(path)
    assert parallel.num_rows == 5000 and parallel.to_pylist() == serial.to_pylist()
    assert parallel.column("user").num_chunks > 10, "parsed in many segments"


def test_a_bad_value_is_the_same_error_after_the_rows_before_it(tmp_path, monkeypatch):
    monkeypatch.setattr(tables, "BLOCK_BYTES", 4 << 10)
    path = _write(tmp_path / "log.csv", 5000, bad_row=3000)
    header = read_header(path)
    errors = []
    for reader in (csv_blocks, csv_blocks_in_parallel):
        rows = 0
        with pytest.raises(InputError) as caught:
            for block in reader(path, path, header, TYPES, {"n": "counts"}):
                rows += block.num_rows
        errors.append((str(caught.value), rows <= 3000))
    assert errors[0] == errors[1] and "'oops'" in errors[0][0] and errors[0][1]


def test_a_file_without_line_feeds_is_read_by_the_streaming_reader(tmp_path, monkeypatch):
    monkeypatch.setattr(tables, "BLOCK_BYTES", 4 << 10)
    monkeypatch.setattr(csv_segments, "_LOOK", 1 << 10)
    path = _write(tmp_path / "log.csv", 3000, "\r")
    serial, parallel = _both(path)
    assert parallel.num_rows == 3000 and parallel.to_pylist() == serial.to_pylist()


def test_rows_apart_in_a_column_read_only_for_duplicates_are_no_duplicates(tmp_path, monkeypatch):
    """Two rows that differ only in a column not asked for, in different blocks, are both kept; the exact repeat
    of one of them, in a third block, is removed and counted."""
    monkeypatch.setattr(tables, "BLOCK_BYTES", 1 << 10)
    filler = [f"u{i % 5},{1.6e9 + i},note {i}" for i in range(200)]
    lines = ["user,t,note", "u1,1600000000.5,first"] + filler + ["u1,1600000000.5,second"] + \
        [f"u9,{1.7e9 + i},late {i}" for i in range(200)] + ["u1,1600000000.5,first"]
    path = tmp_path / "log.csv"
    path.write_text("\n".join(lines) + "\n")
    parts = csv_parts.CsvParts(path, {"user": tables.STRING_DICT, "t": pa.float64()}, (), 2)
    parts.split(lambda block: np.zeros(block.num_rows, np.int64))
    (rows, _) = list(parts.parts())
    assert parts.ledger.duplicate_rows["log.csv"] == 1
    assert rows.num_rows == len(lines) - 2


def test_a_quoted_value_holding_a_line_end_is_never_cut(tmp_path, monkeypatch):
    """A cut inside a quoted value would split its row in two, silently: such a segment (an odd number of quote
    marks) and the rest of the file go to the streaming reader."""
    monkeypatch.setattr(tables, "BLOCK_BYTES", 64)
    monkeypatch.setattr(csv_segments, "_LOOK", 8)
    path = tmp_path / "log.csv"
    path.write_bytes(b"a,b\n" + b"0,x\n" * 15 + b'1,"p\nq,r"\n' + b"2,y\n" * 20)
    header = read_header(path)
    types = {"a": pa.int64(), "b": pa.string()}
    serial = pa.Table.from_batches(list(csv_blocks(path, path, header, types, {})))
    parallel = pa.Table.from_batches(list(csv_blocks_in_parallel(path, path, header, types, {})))
    assert parallel.to_pylist() == serial.to_pylist() and {"a": 1, "b": "p\nq,r"} in parallel.to_pylist()


def test_a_row_with_too_few_columns_is_the_streaming_readers_error(tmp_path, monkeypatch):
    monkeypatch.setattr(tables, "BLOCK_BYTES", 1 << 10)
    path = tmp_path / "log.csv"
    path.write_text("user,t,x\n" + "u1,2,3\n" * 1000 + "u1,2\n")
    header = read_header(path)
    types = {"user": pa.string(), "t": pa.int64(), "x": pa.int64()}
    messages = []
    for reader in (csv_blocks, csv_blocks_in_parallel):
        with pytest.raises(InputError) as caught:
            list(reader(path, path, header, types, {}))
        messages.append(str(caught.value))
    assert messages[0] == messages[1] and "Row #" not in messages[1]


@pytest.mark.parametrize("seed", range(6))
def test_a_parts_slices_join_with_the_dictionary_arrows_unify_and_cut_give(seed):
    """csv_parts._used_values: the slices' values, in one dictionary of the values used, in the order they first
    appear: what uniting the slices' dictionaries (combine_chunks) and keeping the used entries gives. Slices
    carry whole blocks' dictionaries, share values across them, and hold nulls and unused entries."""
    rng = np.random.default_rng(seed)
    words = [f"v{i}" for i in range(30)]
    chunks = []
    for _ in range(int(rng.integers(1, 6))):
        dictionary = pa.array(list(rng.choice(words, int(rng.integers(1, 12)), replace=False)))
        n = int(rng.integers(0, 40))
        indices = pa.array(rng.integers(0, len(dictionary), n), pa.int32(), mask=rng.random(n) < 0.2)
        chunks.append(pa.DictionaryArray.from_arrays(indices, dictionary))
    got = csv_parts._used_values(chunks)
    want = pa.chunked_array(chunks).combine_chunks()
    assert got.to_pylist() == want.to_pylist()
    assert got.dictionary.to_pylist() == list(dict.fromkeys(v for v in want.to_pylist() if v is not None))
