"""The `skill_builder` world's static half: skills, the problem bank, classes, students and what each class
assigns. A world deliberately unlike both engines' assumptions (README: the second simulated world).

Mastery is per skill and binary (BKT): a student knows skill k at first contact with probability
L0 = sigmoid(1.2 + ability + ease_k + N(0, 0.6)), ease_k ~ N(0, 0.9); every practice opportunity teaches it
with probability T = sigmoid(logit T_k + 0.4 ability + 0.4 learn_z + N(0, 0.4)), T_k around 0.25; a known
skill is forgotten with probability 1 - exp(-days since its last practice / tau_k), tau_k around 45 days.
A problem answers to its latent states only: P(correct) = 1 - slip_i when every skill it carries is known,
else guess_i, on every answer type. Slip and guess are the item's own, drawn around an answer-type base
with heavy-tailed (Student t, 3 df) perturbations, independent of the skill: difficulty is not centred on a
skill mean. Each skill's bank (about 100 problems) has a popular core and a rarely given rest (RARE), so
about half the problems are answered fewer than 10 times; 17 % of problems also carry one or two
neighbouring skills. Classes get skill builders on a log-normal share of the skills (some re-assigned for
review) and each student does a heavy-tailed number of them (STUDENT_BUILDERS), so activity is skewed;
mastery learning itself is in `skill_builder_responses`. Skills scale with students (110 for 4,150).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ktirt.simulate.portable import PARAMETER, portable

REAL_STUDENTS, REAL_SKILLS = 4150, 110
"""The ASSISTments 2009-2010 skill-builder file this world is shaped after; skills scale with students."""
MIN_SKILLS = 30
CLASS_SIZE = 22
ANSWER_TYPES = {"algebra": (0.52, 0.10), "choose_1": (0.27, 0.30), "fill_in_1": (0.17, 0.10), "choose_n": (0.04, 0.15)}
"""answer_type: (share of problems, base guess rate)"""
BASE_SLIP = 0.10
MULTI_SKILL_SHARE = 0.17
REVIEW_SHARE = 0.12
"""share of a class's skill builders that re-assign an earlier skill (so forgetting shows)"""
ZIPF = 0.3
RARE = (0.45, 0.15)
"""share of a bank's problems that are rarely given (borrowed from other problem sets), and their weight"""
CLASS_SKILLS = (0.7, 0.5)
"""median (a share of all skills) and log-sd of how many skills a class gets skill builders on (log-normal)"""
STUDENT_BUILDERS = (5.0, 2.0)
"""median and log-sd of how many of its class's skill builders a student does (log-normal, at least one)"""
SKILL_NAMES = (
    "Absolute Value", "Addition and Subtraction Fractions", "Addition and Subtraction Integers",
    "Addition and Subtraction Positive Decimals", "Addition Whole Numbers", "Algebraic Simplification",
    "Algebraic Solving", "Angles on Parallel Lines Cut by a Transversal", "Area Circle", "Area Irregular Figure",
    "Area Parallelogram", "Area Rectangle", "Area Trapezoid", "Area Triangle", "Box and Whisker",
    "Calculations with Similar Figures", "Choose an Equation from Given Information", "Circle Graph",
    "Circumference", "Complementary and Supplementary Angles", "Computation with Real Numbers",
    "Congruence", "Conversion of Fraction Decimals Percents", "Counting Methods", "Distributive Property",
    "Divisibility Rules", "Division Fractions", "Effect of Changing Dimensions of a Shape Proportionally",
    "Equation Solving Two or Fewer Steps", "Equation Solving More Than Two Steps", "Equivalent Fractions",
    "Estimation", "Exponents", "Finding Percents", "Finding Slope From Equation",
    "Finding Slope From Situation", "Finding Slope from Ordered Pairs", "Greatest Common Factor",
    "Histogram as Table or Graph", "Interior Angles Figures with More than 3 Sides",
    "Interior Angles Triangle", "Intercept", "Least Common Multiple", "Linear Equations", "Mean",
    "Median", "Mode", "Multiplication and Division Integers", "Multiplication and Division Positive Decimals",
    "Multiplication Fractions", "Multiplication Whole Numbers", "Nets of 3D Figures", "Number Line",
    "Order of Operations +,-,/,* () positive reals", "Order of Operations All", "Ordering Fractions",
    "Ordering Integers", "Ordering Positive Decimals", "Ordering Real Numbers", "Parts of a Polynomial",
    "Pattern Finding", "Percent Discount", "Percent Of", "Percents", "Perimeter of a Polygon",
    "Polynomial Factors", "Prime Number", "Probability of a Single Event", "Probability of Two Distinct Events",
    "Proportion", "Pythagorean Theorem", "Range", "Rate", "Reading a Ruler or Scale", "Recognize Linear Pattern",
    "Reflection", "Rotations", "Rounding", "Scale Factor", "Scatter Plot", "Scientific Notation",
    "Simplifying Expressions positive exponents", "Solving for a variable", "Solving Inequalities",
    "Solving Systems of Linear Equations", "Square Root", "Stem and Leaf Plot", "Surface Area Cylinder",
    "Surface Area Rectangular Prism", "Table", "Translations", "Unit Conversion Within a System",
    "Unit Rate", "Venn Diagram", "Volume Cylinder", "Volume Rectangular Prism", "Volume Sphere",
    "Write Linear Equation from Graph", "Write Linear Equation from Ordered Pairs",
    "Write Linear Equation from Situation", "D.4.8-understanding-concept-of-probabilities",
    "Making Sense of Expressions and Equations", "Quadratic Formula to Solve Quadratic Equation", "Midpoint",
    "Slope", "Exponential Growth",
)
ACCENTED = ("Fracción Division", "Ángulos Obtuse, Acute, and Right", "Números Enteros", "Conversión de Unidades",
            "Área of Composite Figures")
"""latin-1 names: every world carries some (one in 20 skills, at least one), as real exports do"""


@dataclass
class SkillBuilderWorld:
    skills: pd.DataFrame
    """skill_id, skill_name, ease, logit_learn, tau_days, sequence_id (curriculum order)"""
    items: pd.DataFrame
    """problem_id, assistment_id, template_id, skill (primary), slip, guess, answer_type, hint_total, weight"""
    item_skills: list[tuple[int, ...]]
    """every problem's skills, primary first"""
    banks: list[np.ndarray]
    """skill -> its problems (item indices), most popular first"""
    classes: pd.DataFrame
    """student_class_id, teacher_id, school_id"""
    assignments: pd.DataFrame
    """class, position, skill, assignment_id, day (days after start_date), in the class's order"""
    students: pd.DataFrame
    """user_id, class, ability, learn_z, builders (how many skill builders), quit, help, speed"""


def n_skills(n_students: int) -> int:
    """The real file's 110 skills for 4,150 students, scaled (at least MIN_SKILLS, so heavy users stay heavy)."""
    return max(MIN_SKILLS, round(REAL_SKILLS * n_students / REAL_STUDENTS))


def build_skill_builder_world(n_students: int, rng: np.random.Generator) -> SkillBuilderWorld:
    skills = _skills(n_skills(n_students), rng)
    items, item_skills, banks = _items(skills, rng)
    classes, students = _people(n_students, rng)
    assignments = _assignments(classes, skills, rng)
    return SkillBuilderWorld(skills, items, item_skills, banks, classes, assignments, students)


def _distinct_ints(rng: np.random.Generator, n: int, low: int, high: int) -> np.ndarray:
    return np.sort(rng.choice(np.arange(low, high), n, replace=False))


def _skills(k: int, rng: np.random.Generator) -> pd.DataFrame:
    n_accented = min(len(ACCENTED), max(1, k // 20))
    plain = [SKILL_NAMES[i % len(SKILL_NAMES)] + ("" if i < len(SKILL_NAMES) else f" {i // len(SKILL_NAMES) + 1}")
             for i in range(max(k, len(SKILL_NAMES)))]
    pool = np.array(list(ACCENTED[:n_accented]) + list(np.array(plain)[rng.permutation(len(plain))[: k - n_accented]]))
    names = pool[rng.permutation(k)]
    return pd.DataFrame({
        "skill_id": _distinct_ints(rng, k, 1, max(400, 4 * k)),
        "skill_name": names,
        "ease": portable(rng.normal(0.0, 0.9, k), PARAMETER),
        "logit_learn": portable(rng.normal(np.log(0.25 / 0.75), 0.6, k), PARAMETER),
        "tau_days": portable(np.exp(rng.normal(np.log(45.0), 0.6, k)), PARAMETER),
        "popularity": portable(np.exp(rng.normal(0.0, 0.6, k)), PARAMETER),
        "bank_size": np.maximum(40, np.round(100 * portable(np.exp(rng.normal(0.0, 0.5, k)), PARAMETER))).astype(int),
        "sequence_id": _distinct_ints(rng, k, 5000, 5000 + 40 * k),
    })


def _items(skills: pd.DataFrame, rng: np.random.Generator):
    """The problem bank: per skill, `bank_size` problems with Zipf-like popularity in a random order."""
    k = len(skills)
    size = skills["bank_size"].to_numpy()
    skill = np.repeat(np.arange(k), size)
    n = len(skill)
    rank = np.arange(n) - np.repeat(np.cumsum(size) - size, size)
    weight = (rank + 1.0) ** -ZIPF * np.exp(rng.normal(0.0, 0.5, n)) * np.where(rng.random(n) < RARE[0], RARE[1], 1.0)
    types = np.array(list(ANSWER_TYPES))
    share = np.array([v[0] for v in ANSWER_TYPES.values()])
    t = rng.choice(len(types), n, p=share / share.sum())
    base_guess = np.array([v[1] for v in ANSWER_TYPES.values()])[t]
    logit = lambda p: np.log(p / (1 - p))  # noqa: E731
    guess = 1 / (1 + np.exp(-(logit(base_guess) + 0.6 * np.clip(rng.standard_t(3, n), -6, 6))))
    slip = 1 / (1 + np.exp(-(logit(BASE_SLIP) + 0.7 * np.clip(rng.standard_t(3, n), -6, 6))))
    guess, slip = portable(np.clip(guess, 0.01, 0.6), PARAMETER), portable(np.clip(slip, 0.01, 0.5), PARAMETER)
    item_skills = [(int(s),) for s in skill]
    for i in np.flatnonzero(rng.random(n) < MULTI_SKILL_SHARE):
        extra = 1 + int(rng.random() < 0.15)
        near = [j for j in range(skill[i] - 4, skill[i] + 5) if 0 <= j < k and j != skill[i]]
        item_skills[i] = (int(skill[i]), *map(int, rng.choice(near, extra, replace=False)))
    template = np.cumsum(rng.random(n) < 0.15) + rng.integers(30000, 40000)
    items = pd.DataFrame({
        "problem_id": _distinct_ints(rng, n, 10000, 10000 + 5 * n),
        "assistment_id": _distinct_ints(rng, n, 30000, 30000 + 5 * n),
        "template_id": template,
        "skill": skill,
        "slip": slip,
        "guess": guess,
        "answer_type": types[t],
        "hint_total": rng.choice(5, n, p=[0.15, 0.15, 0.3, 0.25, 0.15]),
        "weight": portable(weight, PARAMETER),
    })
    order = rng.permutation(n)  # ids are not in popularity order
    items["problem_id"] = items["problem_id"].to_numpy()[order]
    banks = [np.flatnonzero(skill == j) for j in range(k)]
    return items, item_skills, banks


def _people(n_students: int, rng: np.random.Generator):
    n_classes = -(-n_students // CLASS_SIZE)
    classes = pd.DataFrame({
        "student_class_id": _distinct_ints(rng, n_classes, 10, 10 + 4 * n_classes),
        "teacher_id": _distinct_ints(rng, n_classes, 20000, 20000 + 8 * n_classes)[rng.permutation(n_classes) // 2 * 2],
        "school_id": rng.integers(1000, 1000 + max(2, n_classes // 6), n_classes),
    })
    students = pd.DataFrame({
        "user_id": _distinct_ints(rng, n_students, 60000, 60000 + 5 * n_students),
        "class": rng.permutation(np.arange(n_students) % n_classes),
        "ability": portable(rng.normal(0.0, 1.0, n_students), PARAMETER),
        "learn_z": portable(rng.normal(0.0, 1.0, n_students), PARAMETER),
        "builders": np.maximum(1, np.round(portable(np.exp(rng.normal(
            np.log(STUDENT_BUILDERS[0]), STUDENT_BUILDERS[1], n_students)), PARAMETER))).astype(int),
        "quit": portable(np.clip(np.exp(rng.normal(np.log(0.03), 0.9, n_students)), 0.0, 0.3), PARAMETER),
        "help": portable(rng.beta(2.0, 3.0, n_students), PARAMETER),
        "speed": portable(rng.normal(0.0, 0.4, n_students), PARAMETER),
    })
    return classes, students


def _assignments(classes: pd.DataFrame, skills: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Each class's skill builders: a heavy-tailed number of skills drawn by popularity, in curriculum order,
    some re-assigned later for review, spread over the school year."""
    k = len(skills)
    pop = skills["popularity"].to_numpy()
    rows = []
    next_id = int(rng.integers(200, 2000))
    for c in range(len(classes)):
        n = int(np.clip(round(np.exp(rng.normal(np.log(CLASS_SKILLS[0] * k), CLASS_SKILLS[1]))), 1, k))
        chosen = []
        for s in np.sort(rng.choice(k, n, replace=False, p=pop / pop.sum())):
            chosen.append(int(s))
            if len(chosen) > 1 and rng.random() < REVIEW_SHARE:
                chosen.append(chosen[int(rng.integers(0, len(chosen) - 1))])
        day = portable(rng.uniform(0, 40) + np.cumsum(rng.exponential(min(7.0, 240.0 / len(chosen)), len(chosen))), PARAMETER)
        for pos, (s, d) in enumerate(zip(chosen, day), start=1):
            next_id += int(rng.integers(1, 40))
            rows.append((c, pos, int(s), next_id, float(d)))
    return pd.DataFrame(rows, columns=["class", "position", "skill", "assignment_id", "day"])
