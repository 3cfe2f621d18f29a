"""The static half of the generative model: skills, items, students, classes and what each class is taught.

Items follow a 3PL with drift. Item i has skill k(i), difficulty b_i = d_k + N(0, 0.8) around its skill's
difficulty d_k ~ N(0, 0.6), discrimination a_i = exp(N(0, 0.3)), and a guessing floor c_i only for
guessable types (Multiple Choice U(0.15, 0.35); Check All That Apply and Ordering U(0.05, 0.2)).
A fraction of the practice items drifts: after a date inside its period of use, b_i shifts by
±`drift_shift`. Students have ability theta ~ N(0, 1), a learning rate eta ~ LogNormal(log 0.3, 0.4), a
help-seeking bias and a speed. Classes of `class_size` students take `units_per_class` consecutive
skills of the curriculum; each unit is `assignments_per_unit` problem sets of that skill, then a unit test.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ktirt.simulate.config import SimulationConfig
from ktirt.simulate.ids import random_ids

PROBLEM_TYPES = {
    "Number": 0.44,
    "Ungraded Open Response": 0.35,
    "Multiple Choice": 0.10,
    "Algebraic Expression": 0.04,
    "Exact Match (ignore case)": 0.025,
    "Check All That Apply": 0.02,
    "Exact Fraction": 0.01,
    "Numeric Expression": 0.008,
    "Exact Match (case sensitive)": 0.005,
    "Ordering": 0.002,
}
UNGRADED = "Ungraded Open Response"
GUESSING = {"Multiple Choice": (0.15, 0.35), "Check All That Apply": (0.05, 0.2), "Ordering": (0.05, 0.2)}
NO_SKILL_CODE_SHARE = 0.03
TEXT_DIM = 32
DAY = 86400.0

DOMAINS = {
    "RP": ("Ratios and Proportional Relationships", ["understand ratio concepts", "unit rates", "ratio tables and double number lines", "percent of a quantity", "convert measurement units", "proportional relationships", "constant of proportionality", "multistep ratio and percent problems"]),
    "NS": ("The Number System", ["divide fractions by fractions", "multi-digit division", "decimal operations", "greatest common factor", "positive and negative numbers", "absolute value", "rational numbers on the number line", "coordinate plane distances"]),
    "EE": ("Expressions and Equations", ["numerical expressions with exponents", "write and evaluate expressions", "equivalent expressions", "solve one-step equations", "inequalities", "dependent and independent variables", "linear equations in one variable", "systems of linear equations"]),
    "G": ("Geometry", ["area of triangles and polygons", "volume of prisms", "polygons in the coordinate plane", "nets and surface area", "scale drawings", "angle relationships", "circumference and area of circles", "the Pythagorean theorem"]),
    "SP": ("Statistics and Probability", ["statistical questions", "distributions and their shape", "measures of center", "measures of variability", "random sampling", "probability models", "compound events", "scatter plots and association"]),
    "F": ("Functions", ["define functions", "compare functions", "linear functions", "construct functions to model relationships", "describe function graphs", "rate of change", "initial value", "nonlinear functions"]),
}
GRADE_DOMAINS = {6: ["RP", "NS", "EE", "G", "SP"], 7: ["RP", "NS", "EE", "G", "SP"], 8: ["NS", "EE", "F", "G", "SP"]}


@dataclass
class World:
    skills: pd.DataFrame
    items: pd.DataFrame
    sequences: pd.DataFrame
    seq_items: np.ndarray
    """Item index of every sequence position; sequence s holds seq_items[start_s : start_s + length_s]."""
    students: pd.DataFrame
    classes: pd.DataFrame
    class_units: np.ndarray
    """(class, unit) -> skill index."""
    class_sequences: np.ndarray
    """(class, unit, assignment) -> in-unit sequence index."""
    ids: dict[str, np.ndarray]


def build_world(cfg: SimulationConfig, rng: np.random.Generator) -> World:
    skills = _skills(cfg, rng)
    items, sequences, seq_items = _items(cfg, rng, skills)
    n_classes = -(-cfg.n_students // cfg.class_size)
    students = pd.DataFrame(
        {
            "theta": rng.normal(0.0, 1.0, cfg.n_students),
            "learning_rate": np.exp(rng.normal(np.log(0.3), 0.4, cfg.n_students)),
            "help_bias": rng.normal(-2.3, 0.6, cfg.n_students),
            "speed": rng.normal(0.0, 0.3, cfg.n_students),
            "class_index": rng.permutation(np.arange(cfg.n_students) % n_classes),
        }
    )
    classes = pd.DataFrame(
        {
            "teacher_index": rng.permutation(np.arange(n_classes) // 2),
            "start_day": rng.uniform(0, 50, n_classes),
            "first_skill": rng.integers(0, cfg.n_skills, n_classes),
        }
    )
    class_units = (classes["first_skill"].to_numpy()[:, None] + np.arange(cfg.units_per_class)[None, :]) % cfg.n_skills
    in_unit = sequences[~sequences["is_unit_test"]]
    by_skill = in_unit.groupby("skill").indices
    class_sequences = np.empty((n_classes, cfg.units_per_class, cfg.assignments_per_unit), dtype=np.int64)
    for k, rows in by_skill.items():
        mask = class_units == k
        choices = in_unit.index.to_numpy()[rows]
        for c, u in zip(*np.nonzero(mask)):
            class_sequences[c, u] = rng.choice(choices, cfg.assignments_per_unit, replace=len(choices) < cfg.assignments_per_unit)
    counts = {
        "student": cfg.n_students,
        "teacher": int(classes["teacher_index"].max()) + 1,
        "class": n_classes,
        "problem": len(items),
        "multipart": int(items["multipart_index"].max()) + 1,
        "sequence": len(sequences),
    }
    pool = random_ids(rng, sum(counts.values()))
    ids, start = {}, 0
    for name, n in counts.items():
        ids[name], start = pool[start : start + n], start + n
    return World(skills, items, sequences, seq_items, students, classes, class_units, class_sequences, ids)


def _skills(cfg: SimulationConfig, rng: np.random.Generator) -> pd.DataFrame:
    """Common-Core-shaped codes (`6.RP.A.3b`) in curriculum order, with descriptions to search by words."""
    rows = []
    for grade, domains in GRADE_DOMAINS.items():
        for d_order, dom in enumerate(domains):
            for cluster in "ABC":
                for std in range(1, 9):
                    for sub in ["", "a", "b", "c"]:
                        rows.append((grade, d_order, cluster, std, sub, dom))
    pick = np.sort(rng.choice(len(rows), cfg.n_skills, replace=len(rows) < cfg.n_skills))
    out = []
    for i, r in enumerate(pick):
        grade, _, cluster, std, sub, dom = rows[r]
        name, topics = DOMAINS[dom]
        code = f"{grade}.{dom}.{cluster}.{std}{sub}"
        if any(o["code"] == code for o in out):
            code = f"{code}.{i}"
        out.append({"code": code, "description": f"{name}: {topics[(std - 1) % len(topics)]}"})
    skills = pd.DataFrame(out)
    skills["difficulty"] = rng.normal(0.0, 0.6, len(skills))
    skills.attrs["centroids"] = rng.normal(0.0, 1.0, (len(skills), TEXT_DIM))
    return skills


def _items(cfg: SimulationConfig, rng: np.random.Generator, skills: pd.DataFrame):
    """The item bank, its sequences and each item's place in them. The rng is drawn in a fixed order (types,
    3PL parameters, multiparts, text, then the frame's columns left to right): one seed, one bank."""
    n_items = cfg.items
    skill, is_unit_test = _item_skills(cfg)
    ptype = _problem_types(rng, is_unit_test)
    b, a, c = _irt_parameters(rng, skills, skill, ptype)
    sequences, seq_items, position = _sequences(cfg, skill)
    item_sequence = np.empty(n_items, dtype=np.int64)
    item_position = np.empty(n_items, dtype=np.int64)
    item_sequence[seq_items] = np.repeat(np.arange(len(sequences)), sequences["length"].to_numpy())
    item_position[seq_items] = position
    multipart_index, multipart_position = _multiparts(rng, seq_items, position, n_items)

    centroids = skills.attrs["centroids"]
    text = 0.8 * centroids[skill] + 0.6 * rng.normal(0.0, 1.0, (n_items, TEXT_DIM))
    items = pd.DataFrame(
        {
            "skill": skill,
            "is_unit_test": is_unit_test,
            "problem_type": ptype,
            "b": b,
            "a": a,
            "c": c,
            "sequence": item_sequence,
            "position": item_position,
            "multipart_index": multipart_index,
            "multipart_position": multipart_position,
            "has_skill_code": rng.random(n_items) >= NO_SKILL_CODE_SHARE,
            "n_hints": np.where(ptype == UNGRADED, 0, rng.choice(4, n_items, p=[0.3, 0.3, 0.25, 0.15])),
            "has_explanation": (ptype != UNGRADED) & (rng.random(n_items) < 0.4),
            "contains_image": (rng.random(n_items) < 0.3).astype(np.int8),
            "contains_equation": (rng.random(n_items) < 0.4).astype(np.int8),
            "contains_video": (rng.random(n_items) < 0.02).astype(np.int8),
            "drift": False,
            "drift_shift": 0.0,
            "drift_time": np.nan,
        }
    )
    items.attrs["text"] = np.round(text, 4)
    return items, sequences, seq_items


def _item_skills(cfg: SimulationConfig) -> tuple[np.ndarray, np.ndarray]:
    """Each item's skill (the bank split evenly, in skill order) and whether it is one of its skill's first
    `unit_test_size` items, the unit test's."""
    n_items, n_skills = cfg.items, cfg.n_skills
    per_skill = np.full(n_skills, n_items // n_skills)
    per_skill[: n_items % n_skills] += 1
    skill = np.repeat(np.arange(n_skills), per_skill)
    first_of_skill = np.concatenate([[0], np.cumsum(per_skill)[:-1]])
    rank = np.arange(n_items) - first_of_skill[skill]
    return skill, rank < cfg.unit_test_size


def _problem_types(rng: np.random.Generator, is_unit_test: np.ndarray) -> np.ndarray:
    """Problem types in EDM Cup 2023's shares; unit-test items are drawn again among the graded types only."""
    types = np.array(list(PROBLEM_TYPES))
    probs = np.array(list(PROBLEM_TYPES.values()))
    ptype = types[rng.choice(len(types), len(is_unit_test), p=probs / probs.sum())]
    graded = types != UNGRADED
    gp = probs * graded
    ptype[is_unit_test] = types[rng.choice(len(types), int(is_unit_test.sum()), p=gp / gp.sum())]
    return ptype


def _irt_parameters(rng: np.random.Generator, skills: pd.DataFrame, skill: np.ndarray, ptype: np.ndarray):
    """3PL difficulty (around the skill's), discrimination and a guessing floor for guessable types only."""
    n_items = len(skill)
    b = skills["difficulty"].to_numpy()[skill] + rng.normal(0.0, 0.8, n_items)
    a = np.exp(rng.normal(0.0, 0.3, n_items))
    c = np.zeros(n_items)
    for t, (lo, hi) in GUESSING.items():
        m = ptype == t
        c[m] = rng.uniform(lo, hi, m.sum())
    return b, a, c


def _sequences(cfg: SimulationConfig, skill: np.ndarray) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """One unit test per skill, then the practice items in problem sets of about problems_per_assignment:
    the sequences, the item at every sequence position and each position's rank within its sequence."""
    seq_rows, seq_items = [], []
    for k in range(cfg.n_skills):
        members = np.flatnonzero(skill == k)
        ut, practice = members[: cfg.unit_test_size], members[cfg.unit_test_size :]
        seq_rows.append((k, True, len(seq_items), len(ut)))
        seq_items.extend(ut)
        for chunk in np.array_split(practice, max(1, len(practice) // cfg.problems_per_assignment)):
            seq_rows.append((k, False, len(seq_items), len(chunk)))
            seq_items.extend(chunk)
    sequences = pd.DataFrame(seq_rows, columns=["skill", "is_unit_test", "start", "length"])
    seq_items = np.asarray(seq_items, dtype=np.int64)
    position = np.arange(len(seq_items)) - np.repeat(sequences["start"].to_numpy(), sequences["length"].to_numpy())
    return sequences, seq_items, position


def _multiparts(rng: np.random.Generator, seq_items: np.ndarray, position: np.ndarray, n_items: int):
    """Multipart problems: consecutive problems of a set grouped (a problem joins the previous one with
    chance 0.15); each item's group index and 1-based position in it."""
    starts_group = np.ones(len(seq_items), dtype=bool)
    joins = (rng.random(len(seq_items)) < 0.15) & (position > 0)
    starts_group[joins] = False
    group = np.cumsum(starts_group) - 1
    multipart_pos = np.arange(len(seq_items)) - np.flatnonzero(starts_group)[group] + 1
    multipart_index = np.empty(n_items, dtype=np.int64)
    multipart_position = np.empty(n_items, dtype=np.int64)
    multipart_index[seq_items] = group
    multipart_position[seq_items] = multipart_pos
    return multipart_index, multipart_position
