"""The `skill_builder` world's dynamic half: students working mastery-learning skill builders.

A skill builder hands out problems of its skill (by popularity, none twice) until three in a row are correct,
at most DAILY_LIMIT a day (a student who hits it comes back another day or abandons) and MAX_PROBLEMS in
all; a student may also quit after any problem (more often after a wrong answer). So students who know the
skill leave after three problems and strugglers stay long. Latent mastery follows `skill_builder`'s BKT
model, with forgetting between practice of a skill.

The truth written for each response, `p_correct`, is what a predictor that knows every true parameter but
not the hidden states can say before the response: a BKT forward filter over the student's past responses
(exact for single-skill problems; across the skills of a multi-skill problem it keeps each skill's marginal).
`p_correct_state`, given the hidden states, is written beside it.
"""

from __future__ import annotations

import bisect
import math
import random

import numpy as np
import pandas as pd

from ktirt.simulate.portable import PROBABILITY, SECONDS
from ktirt.simulate.skill_builder import SkillBuilderWorld

STREAK = 3
DAILY_LIMIT = 10
MAX_PROBLEMS = 40
RETURN_NEXT_DAY = 0.6
DAY = 86400.0
COLUMNS = ["student", "assignment", "item", "time_s", "correct", "p_correct", "p_correct_state", "first_action",
           "hint_count", "attempt_count", "ms_first_response", "overlap_time"]


def _sigmoid(x: float) -> float:
    """Rounded like `portable` (PROBABILITY): the C library's exp may differ in the last bit by CPU."""
    return round(1.0 / (1.0 + math.exp(-x)), PROBABILITY)


class _Student:
    """One student's latent states and the oracle's filter, per skill, created at first contact."""

    def __init__(self, world: SkillBuilderWorld, s: int, r: random.Random):
        st = world.students
        self.ability = float(st["ability"].iat[s])
        self.learn_z = float(st["learn_z"].iat[s])
        self.ease = world.skills["ease"].tolist()
        self.logit_learn = world.skills["logit_learn"].tolist()
        self.tau = (world.skills["tau_days"].to_numpy() * DAY).tolist()
        self.r = r
        self.known: dict[int, bool] = {}
        self.belief: dict[int, float] = {}
        self.learn: dict[int, float] = {}
        self.last: dict[int, float] = {}

    def touch(self, j: int, t: float) -> None:
        """First contact draws the state; later contacts let it fade with the time since the last practice."""
        r = self.r
        if j not in self.known:
            l0 = _sigmoid(1.2 + self.ability + self.ease[j] + r.gauss(0.0, 0.6))
            self.known[j], self.belief[j] = r.random() < l0, l0
            self.learn[j] = _sigmoid(self.logit_learn[j] + 0.4 * self.ability + 0.4 * self.learn_z + r.gauss(0.0, 0.4))
            return
        keep = round(math.exp(-(t - self.last[j]) / self.tau[j]), PROBABILITY)
        if self.known[j] and r.random() > keep:
            self.known[j] = False
        self.belief[j] *= keep

    def answer(self, skills: tuple[int, ...], slip: float, guess: float, t: float) -> tuple[int, float, float]:
        """(correct, filtered P(correct), P(correct | hidden states)), then learning and the filter's update."""
        for j in skills:
            self.touch(j, t)
        p_state = 1.0 - slip if all(self.known[j] for j in skills) else guess
        joint = math.prod(self.belief[j] for j in skills)
        p = guess + (1.0 - slip - guess) * joint
        y = int(self.r.random() < p_state)
        p_all, p_not, p_y = (1.0 - slip, guess, p) if y else (slip, 1.0 - guess, 1.0 - p)
        for j in skills:
            post = (joint * p_all + (self.belief[j] - joint) * p_not) / p_y
            self.belief[j] = post + (1.0 - post) * self.learn[j]
            if not self.known[j] and self.r.random() < self.learn[j]:
                self.known[j] = True
            self.last[j] = t
        return y, p, p_state


def work_skill_builders(world: SkillBuilderWorld, rng: np.random.Generator) -> pd.DataFrame:
    """Every first response of every student, in each student's time order (columns: COLUMNS)."""
    run = _Run(world, random.Random(int(rng.integers(2**62))))
    by_class = world.assignments.groupby("class").indices
    days = world.assignments["day"].tolist()
    builders, classes = world.students["builders"].tolist(), world.students["class"].tolist()
    r = run.r
    for s in range(len(classes)):
        todo = by_class[classes[s]].tolist()
        kept = sorted(r.sample(todo, min(builders[s], len(todo))))
        student, t = _Student(world, s, r), 0.0
        for a in kept:
            t = max(t + 60.0, round((days[a] + r.expovariate(1.0)) * DAY + 8 * 3600 + r.uniform(0, 7 * 3600), SECONDS))
            t = run.work(student, s, a, t)
    return pd.DataFrame(run.rows, columns=COLUMNS)


class _Run:
    """The world's tables as plain lists (the response loop reads them a million times) and the rows so far."""

    def __init__(self, world: SkillBuilderWorld, r: random.Random):
        it, st = world.items, world.students
        self.r, self.rows = r, []
        self.item_skills = world.item_skills
        self.slip, self.guess, self.hint_total = it["slip"].tolist(), it["guess"].tolist(), it["hint_total"].tolist()
        self.quit, self.help, self.speed = st["quit"].tolist(), st["help"].tolist(), st["speed"].tolist()
        self.skill = world.assignments["skill"].tolist()
        weight = it["weight"].to_numpy()
        self.banks = [b.tolist() for b in world.banks]
        self.cum = [np.cumsum(weight[b]).tolist() for b in world.banks]

    def work(self, student: _Student, s: int, a: int, t: float) -> float:
        """One skill builder from time t until mastery, the limit or quitting; returns the time it ends."""
        r, skill = self.r, self.skill[a]
        used: set[int] = set()
        streak = today = 0
        for _ in range(MAX_PROBLEMS):
            i = self.pick(skill, used)
            y, p, p_state = student.answer(self.item_skills[i], self.slip[i], self.guess[i], t)
            clicks = self.clickstream(s, i, y, p_state)
            self.rows.append((s, a, i, t, y, p, p_state, *clicks))
            streak, today = (streak + 1) * y, today + 1
            if streak >= STREAK or r.random() < self.quit[s] * (1 if y else 3):
                break
            t = round(t + clicks[3] / 1000.0 + r.expovariate(1 / 30.0), SECONDS)
            if today >= DAILY_LIMIT:
                if r.random() >= RETURN_NEXT_DAY:
                    break
                t = round(t + (1.0 + r.expovariate(0.5)) * DAY, SECONDS)
                today = 0
        return t

    def pick(self, skill: int, used: set[int]) -> int:
        """A problem of the skill's bank by popularity, never one this assignment already gave."""
        bank, cum = self.banks[skill], self.cum[skill]
        for _ in range(30):
            i = bank[min(bisect.bisect(cum, self.r.random() * cum[-1]), len(bank) - 1)]
            if i not in used:
                break
        else:
            i = next(b for b in bank if b not in used)
        used.add(i)
        return i

    def clickstream(self, s: int, i: int, y: int, p_state: float) -> tuple:
        """first_action, hint_count, attempt_count, ms_first_response, overlap_time of a response: a wrong
        answer often starts with a hint (ASSISTments scores a hint first as incorrect); struggling is slower."""
        r, there, struggling = self.r, self.hint_total[i], p_state < 0.5
        help_first = (not y) and there > 0 and r.random() < min(0.95, self.help[s] * (1.6 if struggling else 0.8))
        hints = 0
        if help_first:
            hints = 1 + sum(r.random() < 0.5 for _ in range(there - 1))
        elif not y and there > 0 and r.random() < self.help[s]:
            hints = 1 + sum(r.random() < 0.3 for _ in range(there - 1))
        attempts = 1 if y else (0 if help_first and hints == there and r.random() < 0.5 else 1 + int(r.expovariate(0.8)))
        ms = int(round(math.exp(math.log(18000.0) + self.speed[s] + (0.4 if struggling else -0.1) + r.gauss(0.0, 0.7)), SECONDS))
        overlap = ms + int(r.expovariate(1 / 15000.0)) * (1 - y)
        return int(help_first), hints, attempts, ms, overlap
