"""Exact duplicate rows in a table of several blocks, and a lookup table read by its key
(ktirt.sources.tables.read_csv with `key`): only the columns asked for are parsed, and only the rows whose key
repeats are read again in full, yet the rows kept, the exact duplicates counted and the lines dropped as corrupt
are those of reading every column."""

import numpy as np
import pyarrow as pa
import pytest

from ktirt.sources import tables
from ktirt.sources.rows import duplicate_rows

COLUMNS = {"log": pa.string(), "student": pa.string(), "start": pa.string()}


def _lines(rng: np.random.Generator, n: int) -> list[str]:
    rows = [f"L{i},S{i % 37},2022-09-{1 + i % 28:02d} 10:00:00,T{i % 5},{i % 3}" for i in range(n)]
    rows[n // 2] = rows[3]                                   # an exact duplicate, far from its original
    rows[n // 2 + 1] = rows[5][:-1] + "9"                    # log L5 again, differing only in a column not asked for
    rows[n - 1] = rows[n - 2] = ",S1,2022-09-01 10:00:00,T1,1"  # no log, twice: an exact duplicate too
    rows[n - 3] = ",S2,2022-09-01 10:00:00,T1,1"             # no log, another row
    rows[7] = rows[7].replace("L7", "7.0")                   # '7.0' and '7': one id under the id rule, but two
    rows[11] = rows[11].replace("L11", "7")                  # keys as written, so no exact duplicate: both kept
    order = rng.permutation(n - 10)                          # the rest in any order, the last rows kept last
    return [rows[i] for i in order] + rows[n - 10:]


def test_a_row_repeated_in_another_block_is_a_duplicate():
    """Text is coded per call: coded a block at a time, 'x' had one code in each block and its repeat went unseen."""
    blocks = [pa.record_batch({"text": ["x", "y"], "number": [1, 2], "code": pa.array(["a", "b"]).dictionary_encode()}),
              pa.record_batch({"text": ["q", "x"], "number": [3, 1], "code": pa.array(["b", "a"]).dictionary_encode()})]
    table = pa.Table.from_batches(blocks).unify_dictionaries()
    assert duplicate_rows(table).tolist() == [3]
    assert duplicate_rows(table.set_column(1, "number", pa.array([1, 2, 3, 4]))).tolist() == []


def test_text_columns_are_compared_on_the_rows_that_repeat_the_others():
    """Plain text is not hashed (a split carries the columns read only for this rule so): a row is a duplicate only
    if its text repeats too, a missing value apart from an empty one, a row of text alone compared in full."""
    code = pa.array(["a", "a", "a", "b", "a", "a"]).dictionary_encode()
    number = pa.array([1.0, 1.0, 1.0, 1.0, 1.0, 2.0])
    text = pa.array([b"x", b"y", b"x", b"x", None, b"x"], pa.binary())
    assert duplicate_rows(pa.table({"code": code, "n": number, "text": text})).tolist() == [2]
    blank = pa.array([b"", None, b"", b"", None, b""], pa.binary())
    assert duplicate_rows(pa.table({"code": code, "n": number, "text": blank})).tolist() == [2, 4]
    assert duplicate_rows(pa.table({"text": text, "blank": blank})).tolist() == [2, 3, 5]


@pytest.mark.parametrize("start", [pa.string(), tables.STRING_DICT], ids=["text", "dictionary"])
@pytest.mark.parametrize("corrupt", [False, True], ids=["clean file", "with NUL lines"])
def test_reading_by_key_keeps_what_reading_every_column_keeps(tmp_path, monkeypatch, corrupt, start):
    monkeypatch.setattr(tables, "BLOCK_BYTES", 1 << 10)  # many blocks: a duplicate and its original in different ones
    lines = _lines(np.random.default_rng(0), 400)
    if corrupt:
        lines[20] = lines[20][:4] + "\0" + lines[20][4:]
    path = tmp_path / "details.csv"
    path.write_text("\n".join(["log, student ,start, teacher,section"] + lines) + "\n")  # names read stripped

    read = {}
    for key in (None, "log"):
        with tables.reading() as ledger:
            t = tables.read_csv(path, COLUMNS | {"start": start}, ids=("log", "student"), key=key)
        read[key] = t, ledger
    (every, every_ledger), (keyed, keyed_ledger) = read[None], read["log"]
    assert keyed.equals(every)
    assert keyed_ledger.duplicate_rows == every_ledger.duplicate_rows == {"details.csv": 2}
    assert keyed_ledger.corrupt_rows == every_ledger.corrupt_rows == {"details.csv": int(corrupt)}
    assert keyed["log"].to_pylist().count("L5") == 2, "rows differing in a column not asked for are both kept"
    assert keyed["log"].null_count == 2


def test_a_key_that_never_repeats_is_read_once(tmp_path, monkeypatch):
    path = tmp_path / "details.csv"
    path.write_text("log,student,start,teacher\n" + "".join(f"L{i},S{i},2022-09-01,T\n" for i in range(50)))
    monkeypatch.setattr(tables, "csv_blocks", lambda *a, **k: pytest.fail("read again with no key repeated"))
    with tables.reading() as ledger:
        assert tables.read_csv(path, COLUMNS, key="log").num_rows == 50
    assert ledger.duplicate_rows == {"details.csv": 0}
