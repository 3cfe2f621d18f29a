"""The EdNet KT1 adapter on a hand-written release folder (the real headers, multi-tag questions), its bad inputs,
and the simulator's ednet_kt1 profile read back through the same adapter."""

import importlib
import json
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from conftest import ROOT, TINY, params_file
from ktirt.errors import InputError
from ktirt.events import EVENTS_SCHEMA, summarize
from ktirt.events_digest import EventsDigest
from ktirt.shape import shape
from ktirt.simulate import SimulationConfig, simulate
from ktirt.sources import csv_folder, ednet_kt1, load_source
from ktirt.sources.unit_tests_digest import UnitTestsDigest

sys.path.insert(0, str(ROOT / "stages"))
prepare = importlib.import_module("prepare")

HEADER = "timestamp,solving_id,question_id,user_answer,elapsed_time"
QUESTIONS = """question_id,bundle_id,explanation_id,correct_answer,part,tags,deployed_at
q1,b1,e1,a,1,1;2,1558093217098
q2,b2,e2,c,3,179;53;183,1558093217098
q3,b2,e2,b,3,53,1558093217098
q4,b3,e3,d,2,-1,1558093217098
q5,b4,e4,a,5,7,1558093217098
"""
LOGS = {
    "u1": ["1565332027449,1,q1,a,45000",
           "1565332057492,2,q2,b,24000",       # a bundle: both questions given at the same moment
           "1565332057492,2,q3,b,24000",
           "1565332085743,3,q4,d,-1"],         # a negative elapsed time is missing
    "u2": ["1565400000000,1,q2,c,30000",
           "1565400000000,1,q2,c,30000",       # an exact duplicate
           "1565400100000,2,q1,,5000",         # no answer
           "1565400200000,2,q1,b,6000",
           "1565400300000,2,q1,a,7000"],       # the same question again in the same session: not a first response
}


def write(folder, logs=LOGS, questions=QUESTIONS):
    (folder / "KT1").mkdir(parents=True)
    (folder / "contents").mkdir()
    (folder / "contents" / "questions.csv").write_text(questions)
    for user, rows in logs.items():
        (folder / "KT1" / f"{user}.csv").write_text("\n".join([HEADER, *rows]) + "\n")
    # u10 sorts between u1 and u2 by name; Windows line ends, no newline after its last line
    (folder / "KT1" / "u10.csv").write_bytes(f"{HEADER}\r\n1565300000000,1,q3,b,1000".encode())
    return folder


def test_every_event_value(tmp_path):
    t = load_source("ednet_kt1", write(tmp_path))
    assert t.events.schema == EVENTS_SCHEMA
    ev = t.events.to_pandas()
    assert list(ev.user_id) == ["u1"] * 4 + ["u10"] + ["u2"] * 2
    assert list(ev.item_id) == ["q1", "q2", "q3", "q4", "q3", "q2", "q1"]
    assert [list(s) for s in ev.skill_ids] == [["1", "2"], ["179", "53", "183"], ["53"], [], ["53"], ["179", "53", "183"],
                                               ["1", "2"]]
    ms = [1565332027449, 1565332057492, 1565332057492, 1565332085743, 1565300000000, 1565400000000, 1565400200000]
    assert t.events["timestamp"].cast("int64").to_pylist() == ms and str(ev.timestamp.dt.tz) == "UTC"
    assert list(ev.correct) == [1, 0, 1, 1, 1, 1, 0]
    assert list(ev.action_sequence_id) == ["1", "2", "2", "3", "1", "1", "2"]
    assert ev.latency_ms.tolist()[:3] == [45000, 24000, 24000] and pd.isna(ev.latency_ms[3])
    assert ev.latency_ms.tolist()[4:] == [1000, 30000, 6000]
    assert not ev.help_requested.any() and set(ev.hint_count) == {0} and set(ev.attempt_count) == {1}
    assert set(ev.problem_type) == {"Multiple Choice"}
    assert t.dropped == {"duplicate_rows": 1, "corrupt_rows": 0, "rows_no_timestamp": 0, "rows_no_question": 0,
                         "rows_no_answer": 1, "rows_no_solving_id": 0}
    assert t.excluded == {"repeated_in_session": 1}
    assert t.features == {"has_unit_tests": 0, "has_text_embeddings": 0, "has_timestamps": 1}
    assert t.reading["multi_skill_from_lists"] == 2 and t.reading["questions_without_tags"] == 1
    assert t.reading["elapsed_time_negative"] == 1 and t.reading["kt1_files"] == 3
    assert t.unit_tests.num_rows == 0
    assert t.items["item_id"].to_pylist() == ["q1", "q2", "q3", "q4", "q5"]  # q5, never answered, from questions.csv
    assert set(t.items["problem_type"].to_pylist()) == {"Multiple Choice"}
    assert t.skills["skill_id"].to_pylist() == ["1", "179", "183", "2", "53"]  # the tags answered (EdNet describes none)


def test_a_batch_boundary_changes_nothing(tmp_path, monkeypatch):
    """Files are read a batch at a time: batches of one file give the same events as one batch."""
    folder = write(tmp_path)
    whole = load_source("ednet_kt1", folder).events
    monkeypatch.setattr(csv_folder, "FILES_PER_BATCH", 1)
    assert load_source("ednet_kt1", folder).events.equals(whole)


def test_parts_of_whole_students_give_the_tables_and_counts_of_one_read(tmp_path):
    """Read in parts (here one student a part), the events come part after part in the events' order, and the
    tables and every count are those of one read."""
    folder = write(tmp_path)
    whole = ednet_kt1.load(folder)
    parted = ednet_kt1.load(folder, part_bytes=1)
    parts = list(parted.event_parts())
    assert len(parts) == 3 and all(len(set(p["user_id"].to_pylist())) == 1 for p in parts)
    assert pa.concat_tables(parts).equals(whole.events)
    digest, one = EventsDigest(0), EventsDigest.of(whole.events, 0)
    for part in parts:
        digest.add(part)
    unit_tests = UnitTestsDigest.of(whole.unit_tests, one)
    assert summarize(digest, unit_tests) == summarize(one, unit_tests)  # solving ids repeat across students
    assert shape(digest) == shape(one)
    for counts in ("dropped", "excluded", "reading", "features"):
        assert getattr(parted, counts) == getattr(whole, counts), counts
        assert list(getattr(parted, counts)) == list(getattr(whole, counts)), f"{counts}: same order in the metrics"


def test_an_id_written_two_ways_in_two_parts_stops_the_run(tmp_path):
    logs = {k: list(v) for k, v in LOGS.items()}
    first, last = sorted(logs)[0], sorted(logs)[-1]
    logs[first][0] = logs[first][0].replace(",1,", ",7.0,", 1)  # solving ids, in two students' files
    logs[last][0] = logs[last][0].replace(",1,", ",007,", 1)
    tables = ednet_kt1.load(write(tmp_path, logs), part_bytes=1)
    with pytest.raises(InputError, match="ids '7.0' and '007' may be the same id"):
        list(tables.event_parts())


def _spoilt(tmp_path, user, row, value):
    logs = {k: list(v) for k, v in LOGS.items()}
    logs[user][row] = value
    return write(tmp_path, logs)


@pytest.mark.parametrize("user, row, value, column, words", [
    ("u2", 3, "1565400200,2,q1,b,6000", "timestamp",
     "timestamp 1565400200 is unix seconds, but this column holds unix milliseconds"),
    ("u1", 1, "1565332057492,2,q99,b,24000", "question_id", "value 'q99' is not in contents/questions.csv"),
    ("u1", 0, "1565332027449,1,q1,e,45000", "user_answer", "value 'e' is not one of a, b, c, d"),
    ("u1", 0, "1565332027449,1,q1,a,45s", "elapsed_time", "value '45s' does not parse: an integer is due"),
])
def test_a_bad_value_names_its_file_and_column(tmp_path, user, row, value, column, words):
    with pytest.raises(InputError) as err:
        load_source("ednet_kt1", _spoilt(tmp_path, user, row, value))
    assert err.value.path.endswith(f"KT1/{user}.csv") and err.value.column == column
    assert words in err.value.reason and "\n" not in str(err.value)


def test_a_missing_questions_file_or_a_bad_header_names_the_file(tmp_path):
    folder = write(tmp_path / "a")
    (folder / "contents" / "questions.csv").unlink()
    with pytest.raises(InputError, match="file not found") as err:
        load_source("ednet_kt1", folder)
    assert err.value.path.endswith("contents/questions.csv")
    folder = write(tmp_path / "b")
    (folder / "KT1" / "u2.csv").write_text("timestamp,solving_id,question,user_answer,elapsed_time\n1565400000000,1,q2,c,1\n")
    with pytest.raises(InputError, match="did you mean 'question'") as err:
        load_source("ednet_kt1", folder)
    assert err.value.path.endswith("KT1/u2.csv") and err.value.column == "question_id"
    folder = write(tmp_path / "c", questions=QUESTIONS.replace("q5,b4,e4,a", "q5,b4,e4,A"))
    with pytest.raises(InputError, match="value 'A' of question q5 is not one of a, b, c, d") as err:
        load_source("ednet_kt1", folder)
    assert err.value.column == "correct_answer"


def test_prepare_stops_in_one_line_and_writes_nothing(tmp_path):
    raw = _spoilt(tmp_path / "raw", "u2", 3, "1565400200,2,q1,b,6000")
    params = params_file(tmp_path, data={"source": "ednet_kt1", "raw_dir": str(raw), "part_mb": 512})
    r = CliRunner().invoke(prepare.main, ["--params", params, "--out-dir", str(tmp_path / "out"),
                                          "--metrics", str(tmp_path / "out" / "prepare.json")])
    assert r.exit_code == 1 and not (tmp_path / "out").exists()
    assert r.output.strip().splitlines() == [f"Error: {raw}/KT1/u2.csv: column 'timestamp': timestamp 1565400200 is "
                                             "unix seconds, but this column holds unix milliseconds"]


@pytest.mark.parametrize("batch_students", [10_000, 20])
def test_the_simulated_profile_reads_back_as_the_same_world(tmp_path, batch_students):
    """The ednet_kt1 profile writes the default world's responses in the release's layout: read back, they are
    the same first responses (count, correct rate, latency) as the edm_cup profile's with the same seed, and the
    truth joins every event; in one batch and in batches of 20 students (each profile draws a batch alike)."""
    simulate(SimulationConfig.from_dict(TINY | {"profile": "ednet_kt1", "batch_students": batch_students}), tmp_path / "ednet")
    simulate(SimulationConfig.from_dict(TINY | {"batch_students": batch_students}), tmp_path / "edm")
    kt1 = sorted((tmp_path / "ednet" / "KT1").iterdir())
    assert kt1[0].read_text().splitlines()[0] == HEADER and len(kt1) == TINY["n_students"]
    assert (tmp_path / "ednet" / "contents" / "questions.csv").read_text().startswith(QUESTIONS.splitlines()[0] + "\n")
    ednet, edm = load_source("ednet_kt1", tmp_path / "ednet"), load_source("synthetic", tmp_path / "edm")
    a, b = ednet.events.to_pandas(), edm.events.to_pandas()
    assert len(a) == len(b) and a.correct.mean() == b.correct.mean()
    assert a.user_id.nunique() == b.user_id.nunique()
    # elapsed_time is the bundle's mean answer time, so the mean over all answers is the world's (to the ms)
    assert abs(a.latency_ms.mean() - b.latency_ms.mean()) < 1
    assert sum(ednet.dropped.values()) == 0 and ednet.excluded == {"repeated_in_session": 0}
    truth = pq.read_table(tmp_path / "ednet" / "_truth" / "responses.parquet").to_pandas()
    joined = a.merge(truth, on=["action_sequence_id", "item_id", "user_id"], how="left", validate="one_to_one")
    assert joined.p_correct.notna().all()
    assert json.loads((tmp_path / "ednet" / "_truth" / "config.json").read_text())["responses"] == len(a)


def test_same_seed_same_bytes(tmp_path):
    def digest(folder):
        simulate(SimulationConfig.from_dict(TINY | {"profile": "ednet_kt1", "n_students": 30}), folder)
        return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}

    a, b = digest(tmp_path / "a"), digest(tmp_path / "b")
    assert a == b and np.mean([k.startswith("KT1/u") for k in a]) > 0.5


def test_damaged_files(tmp_path):
    """A line holding NUL bytes is removed and counted; a byte that is not UTF-8 stops the run naming its file."""
    folder = write(tmp_path / "nul")
    with open(folder / "KT1" / "u1.csv", "ab") as f:
        f.write(b"15653320\x0099449,4,q5,a,1000\n")
    t = load_source("ednet_kt1", folder)
    assert t.dropped["corrupt_rows"] == 1 and t.events.num_rows == 7
    folder = write(tmp_path / "latin1")
    with open(folder / "KT1" / "u2.csv", "ab") as f:
        f.write(b"1565400400000,3,q5,\xe9,1000\n")
    with pytest.raises(InputError, match="byte 0xE9 at offset .* is not UTF-8") as err:
        load_source("ednet_kt1", folder)
    assert err.value.path.endswith("KT1/u2.csv")


@pytest.mark.parametrize("source", ["ednet_kt1", "synthetic"])
def test_the_stage_simulates_the_layout_its_source_reads(tmp_path, source):
    simulate_stage = importlib.import_module("simulate")
    params = params_file(tmp_path, data={"source": source, "raw_dir": "data/raw/synthetic", "part_mb": 512},
                         simulate=TINY | {"profile": "ednet_kt1", "n_students": 30})
    r = CliRunner().invoke(simulate_stage.main, ["--params", params, "--out", str(tmp_path / "sim")])
    if source == "ednet_kt1":
        assert r.exit_code == 0, r.output
        assert sorted(p.name for p in (tmp_path / "sim").iterdir()) == ["KT1", "_truth", "contents"]
    else:  # the EDM Cup reader cannot read these files: say which source does, write nothing
        assert r.exit_code == 1 and "read it with data.source: ednet_kt1" in r.output and not (tmp_path / "sim").exists()
