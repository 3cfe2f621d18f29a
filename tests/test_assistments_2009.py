"""The ASSISTments 2009 skill-builder adapter on a fixture written with the file's real header."""

import pandas as pd
import pytest

from ktirt.errors import InputError
from ktirt.events import EVENTS_SCHEMA
from ktirt.sources import load_source

from conftest import A09_HEADER as HEADER


def row(order, user, problem, correct, skill, skill_name="Equation Solving", hints=0, ms=12000, first_action=0):
    return (f"{order},5001,{user},7001,{problem},1,{correct},1,{ms},tutor,algebra,3001,11,1,LinearSection,3001,"
            f"{skill},{skill_name},22,33,{hints},3,{ms},44,,x,{first_action},0,1,1")


def write(folder, rows, encoding="utf-8"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "skill_builder_data.csv").write_bytes(("\n".join([HEADER, *rows]) + "\n").encode(encoding))
    return folder


def test_multi_skill_rows_collapse_into_one_event(tmp_path):
    folder = write(tmp_path / "a09", [
        row(30, "U1", "P1", 1, 10),
        row(30, "U1", "P1", 1, 11),          # same response, second skill
        row(20, "U1", "P2", 0, 10, hints=2, first_action=1),
        row(20, "U1", "P2", 0, 10, hints=2, first_action=1),  # an exact duplicate, as the release has
        row(40, "U2", "P1", 0, "", ms=-5),   # no skill, negative latency
        row(50, "", "P1", 1, 10),            # no student
    ])
    t = load_source("assistments_2009", folder)
    assert t.events.schema == EVENTS_SCHEMA
    ev = t.events.to_pandas()
    assert list(ev.user_id) == ["U1", "U1", "U2"]
    assert list(ev.item_id) == ["P2", "P1", "P1"]  # ordered by order_id within the student
    assert [list(s) for s in ev.skill_ids] == [["10"], ["10", "11"], []]
    assert list(ev.correct) == [0, 1, 0]
    assert list(ev.help_requested) == [True, False, False]
    assert pd.isna(ev.latency_ms.iloc[2]) and ev.latency_ms.iloc[0] == 12000
    assert t.dropped["duplicate_rows"] == 1 and t.dropped["rows_no_student"] == 1
    assert t.unit_tests.num_rows == 0
    assert t.features == {"has_unit_tests": 0, "has_text_embeddings": 0, "has_timestamps": 0}


def test_latin1_file_reads(tmp_path):
    folder = write(tmp_path / "l1", [row(1, "U1", "P1", 1, 10, skill_name="Fracción"), row(2, "U1", "P2", 0, 12)], "latin-1")
    assert load_source("assistments_2009", folder).events.num_rows == 2


def test_bad_correct_values_and_missing_column(tmp_path):
    folder = write(tmp_path / "b", [row(1, "U1", "P1", 2, 10), row(2, "U1", "P1", 1, 10)])
    t = load_source("assistments_2009", folder)
    assert t.dropped["rows_correct_not_0_1"] == 1 and t.events.num_rows == 1
    (folder / "skill_builder_data.csv").write_text(HEADER.replace("problem_id", "problem") + "\n" + row(1, "U1", "P1", 1, 10) + "\n")
    with pytest.raises(InputError) as err:
        load_source("assistments_2009", folder)
    assert err.value.column == "problem_id" and "skill_builder_data.csv" in err.value.path


def test_an_order_id_past_the_pseudo_time_range_stops(tmp_path):
    """order_id becomes milliseconds after 1970; one that large would make the pseudo-timestamps read as dates."""
    folder = write(tmp_path / "o", [row(1, "U1", "P1", 1, 10), row(40_000_000_000, "U1", "P2", 0, 10)])
    with pytest.raises(InputError, match="too large") as err:
        load_source("assistments_2009", folder)
    assert err.value.column == "order_id"
    folder = write(tmp_path / "ok", [row(1, "U1", "P1", 1, 10), row(38_000_000, "U1", "P2", 0, 10)])  # the release's scale
    assert load_source("assistments_2009", folder).events.num_rows == 2
