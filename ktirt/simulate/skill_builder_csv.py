"""Write the `skill_builder` world as the ASSISTments 2009-2010 release does, plus its truth in `_truth/`.

`skill_builder_data.csv`: latin-1, the release's 30 columns, one row per (response, skill) so a multi-skill
problem repeats its `order_id`; `order_id` is chronological (with gaps, as other logs interleave), there is
no clock time; rows are grouped by skill, then student, as the release is. `data.source: assistments_2009`
reads it with the adapter users run on the real file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ktirt.simulate.portable import PARAMETER, PROBABILITY, portable
from ktirt.simulate.skill_builder import SkillBuilderWorld

SKILL_BUILDER = "skill_builder_data.csv"
HEADER = ["order_id", "assignment_id", "user_id", "assistment_id", "problem_id", "original", "correct", "attempt_count",
          "ms_first_response", "tutor_mode", "answer_type", "sequence_id", "student_class_id", "position", "type",
          "base_sequence_id", "skill_id", "skill_name", "teacher_id", "school_id", "hint_count", "hint_total",
          "overlap_time", "template_id", "answer_id", "answer_text", "first_action", "bottom_hint", "opportunity",
          "opportunity_original"]
FIRST_ORDER_ID = 20_224_000


def write_skill_builder(world: SkillBuilderWorld, responses: pd.DataFrame, out: Path, rng: np.random.Generator) -> dict:
    """Write the CSV and `_truth/` into `out`; return counts."""
    out.mkdir(parents=True, exist_ok=True)
    resp = responses.sort_values(["time_s", "student"], kind="stable").reset_index(drop=True)
    resp["order_id"] = FIRST_ORDER_ID + np.cumsum(rng.integers(1, 60, len(resp)))
    rows = _rows(world, resp, rng)
    rows.to_csv(out / SKILL_BUILDER, index=False, encoding="latin-1")
    _write_truth(world, resp, out / "_truth")
    multi = resp["item"].map(lambda i: len(world.item_skills[i]) > 1)
    return {"responses": len(resp), "rows": len(rows), "multi_skill_responses": int(multi.sum()),
            "problems_answered": int(resp["item"].nunique()), "skills": len(world.skills)}


def _rows(world: SkillBuilderWorld, resp: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """One row per (response, skill), with the release's columns and value conventions."""
    it, sk, asg, st, cl = world.items, world.skills, world.assignments, world.students, world.classes
    ex = resp.assign(skill=resp["item"].map(lambda i: world.item_skills[i])).explode("skill")
    ex["skill"] = ex["skill"].astype(np.int64)
    ex = ex.sort_values(["order_id", "skill"], kind="stable")
    ex["opportunity"] = ex.groupby(["student", "skill"]).cumcount() + 1
    i, a, s, k = (ex[c].to_numpy() for c in ("item", "assignment", "student", "skill"))
    c = st["class"].to_numpy()[s]
    hint_total = it["hint_total"].to_numpy()[i]
    hints = ex["hint_count"].to_numpy()
    choice = np.isin(it["answer_type"].to_numpy()[i], ["choose_1", "choose_n"])
    seq = sk["sequence_id"].to_numpy()[asg["skill"].to_numpy()[a]]
    df = pd.DataFrame({
        "order_id": ex["order_id"].to_numpy(),
        "assignment_id": asg["assignment_id"].to_numpy()[a],
        "user_id": st["user_id"].to_numpy()[s],
        "assistment_id": it["assistment_id"].to_numpy()[i],
        "problem_id": it["problem_id"].to_numpy()[i],
        "original": 1,
        "correct": ex["correct"].to_numpy(),
        "attempt_count": ex["attempt_count"].to_numpy(),
        "ms_first_response": ex["ms_first_response"].to_numpy(),
        "tutor_mode": "tutor",
        "answer_type": it["answer_type"].to_numpy()[i],
        "sequence_id": seq,
        "student_class_id": cl["student_class_id"].to_numpy()[c],
        "position": asg["position"].to_numpy()[a],
        "type": "MasteryLearning",
        "base_sequence_id": seq,
        "skill_id": sk["skill_id"].to_numpy()[k],
        "skill_name": sk["skill_name"].to_numpy()[k],
        "teacher_id": cl["teacher_id"].to_numpy()[c],
        "school_id": cl["school_id"].to_numpy()[c],
        "hint_count": hints,
        "hint_total": hint_total,
        "overlap_time": ex["overlap_time"].to_numpy(),
        "template_id": it["template_id"].to_numpy()[i],
        "answer_id": pd.array(np.where(choice, 100000 + 7 * i + rng.integers(0, 4, len(ex)), 0), "Int64"),
        "answer_text": np.where(choice, "", rng.integers(1, 200, len(ex)).astype(str)),
        "first_action": ex["first_action"].to_numpy(),
        "bottom_hint": pd.array(np.where(hints > 0, (hints == hint_total).astype(int), 0), "Int64"),
        "opportunity": ex["opportunity"].to_numpy(),
        "opportunity_original": ex["opportunity"].to_numpy(),
    })
    df.loc[~choice, "answer_id"] = pd.NA
    df.loc[hints == 0, "bottom_hint"] = pd.NA
    return df.sort_values(["skill_id", "user_id", "order_id"], kind="stable")[HEADER]


def _write_truth(world: SkillBuilderWorld, resp: pd.DataFrame, truth: Path) -> None:
    """responses (keyed as the adapter's events: assignment, problem, student), items, skills, students;
    floats rounded by `portable`, so the files have one hash on every CPU."""
    prob, rounded = (lambda x: portable(x, PROBABILITY)), (lambda x: portable(x, PARAMETER))
    truth.mkdir(parents=True, exist_ok=True)
    it, sk, st = world.items, world.skills, world.students
    skill_ids = [[str(sk["skill_id"].iat[j]) for j in skills] for skills in world.item_skills]
    i = resp["item"].to_numpy()
    pq.write_table(pa.table({
        "action_sequence_id": world.assignments["assignment_id"].to_numpy()[resp["assignment"].to_numpy()].astype(str),
        "item_id": it["problem_id"].to_numpy()[i].astype(str),
        "user_id": st["user_id"].to_numpy()[resp["student"].to_numpy()].astype(str),
        "order_id": resp["order_id"].to_numpy(),
        "correct": resp["correct"].to_numpy().astype(np.int8),
        "p_correct": prob(resp["p_correct"].to_numpy()),
        "p_correct_state": prob(resp["p_correct_state"].to_numpy()),
    }), truth / "responses.parquet")
    k = np.array([len(s) for s in world.item_skills])
    slip, guess = it["slip"].to_numpy(), it["guess"].to_numpy()
    p_half = guess + (1 - slip - guess) * 0.5 ** k
    pq.write_table(pa.table({
        "item_id": it["problem_id"].astype(str), "skill_ids": pa.array(skill_ids, pa.list_(pa.string())),
        "answer_type": it["answer_type"], "slip": rounded(slip), "guess": rounded(guess),
        "difficulty": rounded(-np.log(p_half / (1 - p_half))),
    }), truth / "items.parquet")
    pq.write_table(pa.table({
        "skill_id": sk["skill_id"].astype(str), "skill_name": sk["skill_name"], "ease": rounded(sk["ease"].to_numpy()),
        "learn": prob(1 / (1 + np.exp(-sk["logit_learn"].to_numpy()))), "tau_days": rounded(sk["tau_days"].to_numpy()),
    }), truth / "skills.parquet")
    pq.write_table(pa.table({
        "user_id": st["user_id"].astype(str), "ability": rounded(st["ability"].to_numpy()),
        "learn_z": rounded(st["learn_z"].to_numpy()), "builders": st["builders"], "quit": rounded(st["quit"].to_numpy()),
    }), truth / "students.parquet")
