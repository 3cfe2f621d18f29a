"""ktirt.sources.key_index: the row of each id among many, as a dictionary lookup gives it, byte for byte (an id
longer than every key, a prefix of a key, non-ASCII text, nulls, the first row of a repeated key), by binary
search of each value or of a dictionary array's dictionary alike, and whatever the hashes it searches."""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ktirt.sources import key_index
from ktirt.sources.key_index import KeyIndex


def _expected(keys: list[str], values: list[str | None]) -> list[int]:
    first: dict[str, int] = {}
    for row, key in enumerate(keys):
        first.setdefault(key, row)
    return [first.get(v, -1) if v is not None else -1 for v in values]


def test_rows_are_those_of_a_dictionary_lookup():
    keys = ["L10", "L2", "Élève-7", "L1", "70001", "L2", "a b", "ß"]
    values = ["L2", "L1", "L", "L10X", "Élève-7", "Élève", None, "70001.0", "ß", "ss", "a b", "", "L10"]
    index = KeyIndex(pa.array(keys))
    assert index.rows(pa.array(values)).tolist() == _expected(keys, values)
    assert index.rows(pa.array(values).dictionary_encode()).tolist() == _expected(keys, values)
    nulls_encoded = pc.dictionary_encode(pa.array(values), null_encoding="encode")  # a null in the dictionary
    assert index.rows(nulls_encoded).tolist() == _expected(keys, values)


def test_dictionary_and_chunked_values_and_empty_keys():
    keys = pa.chunked_array([["SZK9", "Q1"], ["Q22"]])
    values = pa.array(["Q22", None, "Q1", "Q2", "Q22"]).dictionary_encode()
    assert KeyIndex(keys).rows(values).tolist() == [2, -1, 1, -1, 2]
    assert KeyIndex(keys).rows(pa.chunked_array([["Q1"], ["SZK9", "Q"]])).tolist() == [1, 0, -1]
    two_dictionaries = pa.chunked_array([pa.array(["Q1", "Q"]).dictionary_encode(), pa.array(["SZK9", "Q1"]).dictionary_encode()])
    assert KeyIndex(keys).rows(two_dictionaries).tolist() == [1, -1, 0, 1]
    assert KeyIndex(pa.array([], pa.string())).rows(pa.array(["x"])).tolist() == [-1]
    assert KeyIndex(pa.array([], pa.string())).rows(pa.array(["x", None]).dictionary_encode()).tolist() == [-1, -1]
    assert KeyIndex(pa.array(["x"])).rows(pa.array([], pa.string()).dictionary_encode()).tolist() == []
    assert KeyIndex(pa.array(["x"])).rows(pa.array([], pa.string())).tolist() == []


def test_many_random_ids():
    rng = np.random.default_rng(3)
    alphabet = np.array(list("AB09é"))
    keys = ["".join(rng.choice(alphabet, rng.integers(1, 7))) for _ in range(3000)]
    values = ["".join(rng.choice(alphabet, rng.integers(0, 9))) for _ in range(3000)] + keys[::7]
    got = KeyIndex(pa.array(keys)).rows(pa.array(values))
    assert got.tolist() == _expected(keys, values)
    assert KeyIndex(pa.array(keys)).rows(pa.array(values).dictionary_encode()).tolist() == got.tolist()
    assert (got >= 0).sum() > 400  # both kinds of answer met


def test_keys_sharing_a_hash_are_told_apart_by_their_bytes(monkeypatch):
    """Keys are found by a 64-bit hash, then their bytes: where different keys share a hash (every key one hash,
    or a hash of the first byte alone), every answer is still the dictionary lookup's, the first row of a repeated
    key included."""
    rng = np.random.default_rng(5)
    alphabet = np.array(list("AB0é"))
    keys = ["".join(rng.choice(alphabet, rng.integers(1, 5))) for _ in range(300)]
    values = ["".join(rng.choice(alphabet, rng.integers(0, 6))) for _ in range(300)] + keys[::5] + [None]
    for weak in (lambda v: np.zeros(len(v), np.uint64), lambda v: v.astype("S1").view(np.uint8).astype(np.uint64)):
        monkeypatch.setattr(key_index, "_hashes", weak)
        index = KeyIndex(pa.array(keys))
        assert index.rows(pa.array(values)).tolist() == _expected(keys, values)
        assert index.rows(pa.array(values).dictionary_encode()).tolist() == _expected(keys, values)


def test_keys_come_back_in_row_order_as_one_array():
    # past 16 MiB of fixed-width bytes pyarrow makes them two chunks
    ids = [f"log{i * 7919 % 100003:06d}".ljust(900, "x") for i in range(20000)] + ["é", "a b"]
    keys = KeyIndex(pa.array(ids)).keys()
    assert isinstance(keys, pa.StringArray), "one array: a chunked dictionary made every lookup of a part slow"
    assert keys.to_pylist() == ids
