"""The item and skill catalogs (items.parquet, skills.parquet) and the truth folder that `prepare` writes, so
no engine reads a source's raw files: they must say what the adapters say, for every item and skill."""

import json

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from conftest import events_as_assistments_2009, params_file, run_stage
from ktirt.catalog import item_text, item_types, skill_descriptions
from ktirt.events import ITEMS_SCHEMA, SKILLS_SCHEMA
from ktirt.sources import edm_cup, load_source


def test_items_hold_the_sources_types_and_text_for_every_item(tiny_raw, tiny_tables):
    items = tiny_tables.items
    assert items.schema == ITEMS_SCHEMA
    ids = items["item_id"].to_pylist()
    assert ids == sorted(set(ids))
    assert set(pc.unique(tiny_tables.events["item_id"]).to_pylist()) <= set(ids)
    assert set(pc.unique(tiny_tables.unit_tests["item_id"]).to_pylist()) <= set(ids)
    source_types = edm_cup.problem_types(tiny_raw)
    assert set(source_types) <= set(ids)
    pairs = tiny_tables.events.select(["item_id", "problem_type"]).to_pandas().drop_duplicates("item_id")
    expected = source_types | dict(zip(pairs["item_id"], pairs["problem_type"]))  # the events' own type first
    assert item_types(items) == {k: v for k, v in expected.items() if isinstance(v, str)}
    src_ids, src_mat = edm_cup.item_text_embeddings(tiny_raw)
    ids_with_text, mat = item_text(items)
    assert sorted(ids_with_text) == sorted(set(src_ids))
    row = {i: k for k, i in reversed(list(enumerate(src_ids)))}  # an id's first vector, as the engine reads it
    np.testing.assert_array_equal(mat, src_mat[[row[i] for i in ids_with_text]])


def test_skills_hold_every_code_and_the_sources_descriptions(tiny_raw, tiny_tables):
    skills = tiny_tables.skills
    assert skills.schema == SKILLS_SCHEMA
    codes = set(pc.list_flatten(tiny_tables.events["skill_ids"]).to_pylist())
    assert codes <= set(skills["skill_id"].to_pylist())
    assert skill_descriptions(skills) == edm_cup.skill_descriptions(tiny_raw)


def test_a_source_without_a_catalog_still_lists_its_items(tiny_tables, tmp_path):
    raw = events_as_assistments_2009(tiny_tables.events, tmp_path / "a09")
    tables = load_source("assistments_2009", raw)
    assert item_text(tables.items) is None
    assert tables.items.num_rows == len(pc.unique(tables.events["item_id"]))
    assert any(d.startswith("Fracción") for d in skill_descriptions(tables.skills).values())


def test_prepare_writes_the_catalogs_and_the_truth_only_for_a_simulation(tiny_raw, tiny_tables, tmp_path):
    for name, source, raw in (("sim", "synthetic", tiny_raw),
                              ("a09", "assistments_2009", events_as_assistments_2009(tiny_tables.events, tmp_path / "a09raw"))):
        (tmp_path / name).mkdir()
        p = params_file(tmp_path / name, data={"source": source, "raw_dir": str(raw), "part_mb": 512})
        out = tmp_path / name / "interim"
        r = run_stage("prepare", "--params", p, "--out-dir", str(out), "--metrics", str(tmp_path / name / "m.json"))
        assert r.returncode == 0, r.stderr
        assert pq.read_schema(out / "items.parquet").remove_metadata() == ITEMS_SCHEMA
        assert pq.read_schema(out / "skills.parquet").remove_metadata() == SKILLS_SCHEMA
        truth = sorted(f.name for f in (out / "truth").iterdir())
        if source == "synthetic":
            assert truth == sorted(f.name for f in (tiny_raw / "_truth").iterdir())
            assert json.loads((out / "truth" / "config.json").read_text()) == json.loads((tiny_raw / "_truth" / "config.json").read_text())
        else:
            assert truth == []  # real data has no truth, and the folder is still there for the stages that read it


def test_first_occurrences_are_what_pandas_factorize_gives_across_chunks():
    """The catalogs find each id's first row by integer codes, not Python strings: the same ids in the same order
    and the same first rows as pandas' factorize, over a column read in several chunks."""
    import pandas as pd
    import pyarrow as pa

    from ktirt.vocab import first_occurrences

    rng = np.random.default_rng(7)
    ids = [f"i{k}" for k in rng.integers(0, 40, 500)]
    column = pa.chunked_array([ids[:123], ids[123:124], [], ids[124:]], pa.string())
    distinct, first = first_occurrences(column)
    codes, uniques = pd.factorize(np.array(ids, dtype=object))
    assert distinct.to_pylist() == list(uniques)
    np.testing.assert_array_equal(first, np.unique(codes, return_index=True)[1])
    assert [ids[r] for r in first] == list(uniques)
