"""A table written part by part (ktirt.io.parquet_parts) is the same file whether each part is written on the
caller's thread or behind it on another, and a write that fails behind is raised to the caller, leaving no file."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ktirt.io import parquet_parts


def _parts(rng: np.random.Generator) -> list[pa.Table]:
    sizes = rng.integers(0, 700, 12)
    return [pa.table({"user": pa.array([f"u{k}"] * n).dictionary_encode(), "t": rng.random(n)})
            for k, n in enumerate(sizes)]


@pytest.mark.parametrize("end", ["at the block's end", "told"])
def test_writing_behind_gives_the_same_bytes(tmp_path, end):
    parts = _parts(np.random.default_rng(3))
    for behind in (False, True):
        with parquet_parts(tmp_path / f"{behind}.parquet", row_group_size=500, behind=behind) as add:
            for part in parts:
                add(part)
            if end == "told":
                add(None)
    assert (tmp_path / "True.parquet").read_bytes() == (tmp_path / "False.parquet").read_bytes()
    assert pq.read_table(tmp_path / "True.parquet").num_rows == sum(p.num_rows for p in parts)


def test_a_write_failing_behind_is_raised_and_leaves_no_file(tmp_path):
    parts = _parts(np.random.default_rng(4))
    wrong = pa.table({"user": pa.array(["x"] * 600), "t": np.zeros(600)})  # another schema: the writer refuses it
    with pytest.raises(Exception, match="(?i)schema"):
        with parquet_parts(tmp_path / "t.parquet", row_group_size=500, behind=True) as add:
            for part in [parts[0], wrong] + parts[1:]:
                add(part)
    assert list(tmp_path.iterdir()) == []


def test_a_part_after_the_last_is_refused(tmp_path):
    with pytest.raises(ValueError, match="after the last"):
        with parquet_parts(tmp_path / "t.parquet", behind=True) as add:
            add(_parts(np.random.default_rng(5))[0])
            add(None)
            add(_parts(np.random.default_rng(5))[1])
