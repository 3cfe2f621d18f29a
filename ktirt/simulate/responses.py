"""The dynamic half of the generative model: when each student works, how each first response comes about,
and the clickstream it leaves.

For a practice problem of item i met by student s at their n-th opportunity on the item's skill:

    p_solve = c_i + (1 - c_i) * sigmoid(a_i * (theta_s + eta_s * log(1 + n) - b_i(t)))
    p_help  = sigmoid(help_bias_s - 0.8 * logit(p_solve))          # weaker students ask for help first
    first action: a help request with p_help (hint, answer, explanation, video or tutor), else a
    response, correct with p_solve; so P(first response correct) = (1 - p_help) * p_solve
    latency ~ LogNormal(type base + 0.7 * (1 - p_solve) + speed_s, 0.45), halved for help requests

After a wrong first response the student retries (success chance p_solve + 0.35, + 0.15 after help) up to
the assignment's max_attempts, then asks for the answer. Unit-test scores use p_solve without help.
Everything is vectorised over the problems of a batch of classes at once (ktirt/simulate/batches.py: EDM-Cup
scale is about 7.5 M problems, 27 M actions, simulated in batches of `simulate.batch_students`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ktirt.simulate.config import SimulationConfig
from ktirt.simulate.portable import SECONDS, portable
from ktirt.simulate.world import DAY, UNGRADED, World

# action vocabulary, in the order a problem's rows are laid out
SLOTS = ["assignment_resumed", "problem_started", "first", "hint_requested", "wrong_response",
         "correct_response", "answer_requested", "continue_selected", "problem_finished"]
HELP_TYPES = ["hint_requested", "answer_requested", "explanation_requested", "skill_related_video_requested", "live_tutor_requested"]
HELP_WEIGHTS = np.array([0.75, 0.12, 0.06, 0.04, 0.03])
ACTIONS = ["assignment_started", "assignment_resumed", "assignment_finished", "problem_started", "problem_finished",
           "correct_response", "wrong_response", "open_response", "continue_selected", *HELP_TYPES]
CODE = {a: i for i, a in enumerate(ACTIONS)}
LATENCY_BASE = {"Multiple Choice": 3.3, "Number": 3.7, UNGRADED: 4.6}
ABANDON_SHARE, RESUME_SHARE = 0.03, 0.08


@dataclass
class Clickstream:
    logs: pd.DataFrame
    problems: pd.DataFrame
    unit_tests: pd.DataFrame
    actions: dict[str, np.ndarray]


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _excl_cumsum(x):
    out = np.zeros(len(x), dtype=np.int64)
    np.cumsum(x[:-1], out=out[1:])
    return out


def _expand(counts: np.ndarray):
    """For groups with `counts` members: the group of every member and its rank inside the group."""
    group = np.repeat(np.arange(len(counts)), counts)
    rank = np.arange(len(group)) - np.repeat(_excl_cumsum(counts), counts)
    return group, rank


def clickstream_of(logs: pd.DataFrame, problems: pd.DataFrame, unit_tests: pd.DataFrame, rng) -> Clickstream:
    """The action rows that answered visits leave (`respond`'s output), with the visits."""
    return Clickstream(logs, problems, unit_tests, _action_rows(logs, problems, rng))


def draw_visits(cfg: SimulationConfig, world: World, rng: np.random.Generator, classes: np.ndarray):
    """(assignment logs, practice problems, unit-test problems) of the students of `classes` (class indices in
    order): when each log starts and which problems it shows, before any response."""
    logs = _assignment_logs(cfg, world, rng, classes)
    return logs, _practice_problems(world, logs, rng), _unit_test_problems(world, logs, rng)


def respond(cfg: SimulationConfig, world: World, logs: pd.DataFrame, problems: pd.DataFrame, unit_tests: pd.DataFrame,
            rng: np.random.Generator) -> None:
    """Each visit's first response and each unit-test score (columns added in place), once the drifts are chosen."""
    _opportunities(cfg, world, problems, unit_tests)
    _respond(world, logs, problems, rng)
    _score_unit_tests(world, unit_tests, rng)


def _assignment_logs(cfg: SimulationConfig, world: World, rng, classes: np.ndarray) -> pd.DataFrame:
    n_classes, n_units, n_asg = len(classes), cfg.units_per_class, cfg.assignments_per_unit
    year_start = pd.Timestamp(cfg.start_date, tz="UTC").timestamp()
    unit_gap = rng.uniform(20, 30, (n_classes, n_units))
    unit_day = world.classes["start_day"].to_numpy()[classes][:, None] + np.cumsum(unit_gap, axis=1) - unit_gap[:, :1]
    steps = rng.uniform(2, 4, (n_classes, n_units, n_asg + 1))
    steps[:, :, 0] = 0
    steps[:, :, n_asg] = rng.uniform(3, 5, (n_classes, n_units))
    release_day = np.floor(unit_day[:, :, None] + np.cumsum(steps, axis=2))
    release = year_start + release_day * DAY + 13 * 3600  # 8 am US Eastern
    ut_seq = world.sequences.index[world.sequences["is_unit_test"]].to_numpy()
    seq = np.concatenate([world.class_sequences[classes], ut_seq[world.class_units[classes]][:, :, None]], axis=2)
    slot = np.broadcast_to(np.arange(n_asg + 1), seq.shape)
    unit = np.broadcast_to(np.arange(n_units)[None, :, None], seq.shape)
    klass = np.broadcast_to(classes[:, None, None], seq.shape)
    ca = pd.DataFrame({"class_index": klass.ravel(), "unit": unit.ravel(), "slot": slot.ravel(),
                       "sequence": seq.ravel(), "release": release.ravel()})
    ca["is_unit_test"] = ca["slot"] == n_asg
    ca["max_attempts"] = rng.choice([1, 3, 10], len(ca), p=[0.15, 0.55, 0.3])
    ca["available_core_tutoring"] = rng.choice(["answer", "hint", "explanation"], len(ca), p=[0.5, 0.35, 0.15])
    ca["score_viewable"] = (rng.random(len(ca)) < 0.8).astype(np.int8)
    ca["continuous_score_viewable"] = (rng.random(len(ca)) < 0.6).astype(np.int8)

    class_of = world.students["class_index"].to_numpy()
    mine = np.flatnonzero(np.isin(class_of, classes))
    students_by_class = mine[np.argsort(class_of[mine], kind="stable")]
    class_size = np.bincount(class_of, minlength=len(world.classes))[classes]
    class_offset = _excl_cumsum(class_size)
    position = np.searchsorted(classes, ca["class_index"].to_numpy())  # the class's place among `classes`
    ca_of_log, member = _expand(class_size[position])
    logs = ca.iloc[ca_of_log].reset_index(drop=True)
    logs["student"] = students_by_class[class_offset[position[ca_of_log]] + member]
    logs["due"] = logs["release"] + 7 * DAY
    delay = rng.exponential(DAY, len(logs)) + rng.uniform(0, 6 * 3600, len(logs))
    logs["start"] = np.minimum(logs["release"] + delay, logs["due"] + 2 * DAY)
    logs["end"] = np.nan
    return logs


def _practice_problems(world: World, logs: pd.DataFrame, rng) -> pd.DataFrame:
    practice = np.flatnonzero(~logs["is_unit_test"].to_numpy())
    seq = logs["sequence"].to_numpy()[practice]
    length = world.sequences["length"].to_numpy()[seq]
    start = world.sequences["start"].to_numpy()[seq]
    k, position = _expand(length)
    abandon_at = np.where(rng.random(len(practice)) < ABANDON_SHARE, rng.integers(0, length), length)
    resume_at = np.where(rng.random(len(practice)) < RESUME_SHARE, rng.integers(1, np.maximum(length, 2)), -1)
    keep = position <= abandon_at[k]
    k, position = k[keep], position[keep]
    logs["abandoned"] = False
    logs.loc[practice[abandon_at < length], "abandoned"] = True
    return pd.DataFrame(
        {
            "log": practice[k],
            "item": world.seq_items[start[k] + position],
            "position": position,
            "started_only": position == abandon_at[k],
            "resumed": position == resume_at[k],
            "student": logs["student"].to_numpy()[practice[k]],
            "time": logs["start"].to_numpy()[practice[k]],
        }
    )


def _unit_test_problems(world: World, logs: pd.DataFrame, rng) -> pd.DataFrame:
    tests = np.flatnonzero(logs["is_unit_test"].to_numpy())
    seq = logs["sequence"].to_numpy()[tests]
    length = world.sequences["length"].to_numpy()[seq]
    k, position = _expand(length)
    logs.loc[tests, "end"] = logs.loc[tests, "start"] + rng.uniform(15, 45, len(tests)) * 60
    return pd.DataFrame(
        {
            "log": tests[k],
            "item": world.seq_items[world.sequences["start"].to_numpy()[seq][k] + position],
            "student": logs["student"].to_numpy()[tests[k]],
            "time": logs["start"].to_numpy()[tests[k]],
        }
    )


def choose_drift(cfg: SimulationConfig, world: World, n_use: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
    """Drifting items, from how many practice visits each item had (`n_use`): graded practice items met by at least
    40 students, each with its shift; returns them and the quantile (30-70 %) of the item's own period of use at
    which its shift happens (`place_drift`), so both sides of it are observed."""
    items = world.items
    eligible = np.flatnonzero((n_use >= 40) & (items["problem_type"] != UNGRADED).to_numpy() & ~items["is_unit_test"].to_numpy())
    n_drift = min(round(cfg.drift_fraction * len(items)), len(eligible))
    drift = np.sort(rng.choice(eligible, n_drift, replace=False))
    q = rng.uniform(0.3, 0.7, n_drift)
    items.loc[drift, "drift"] = True
    items.loc[drift, "drift_shift"] = rng.choice([-1.0, 1.0], n_drift) * cfg.drift_shift
    return drift, q


def place_drift(world: World, drift: np.ndarray, q: np.ndarray, item: np.ndarray, time: np.ndarray) -> None:
    """Each drifting item's drift time: the visit at quantile `q` of its visits in time order (`item`, `time`: the
    practice visits of the drifting items, any others among them ignored)."""
    mine = np.isin(item, drift)
    item, time = item[mine], time[mine]
    n_use = np.bincount(item, minlength=len(world.items))
    times = time[np.lexsort((time, item))]
    at = _excl_cumsum(n_use)[drift] + np.floor(q * n_use[drift]).astype(np.int64)
    world.items.loc[drift, "drift_time"] = times[at]


def _opportunities(cfg: SimulationConfig, world: World, problems: pd.DataFrame, unit_tests: pd.DataFrame) -> None:
    """Prior practice on the item's skill: opportunities before each practice problem and before each test."""
    skill = world.items["skill"].to_numpy()
    n_skills = cfg.n_skills
    pk = problems["student"].to_numpy() * n_skills + skill[problems["item"].to_numpy()]
    order = np.lexsort((problems["position"].to_numpy(), problems["time"].to_numpy(), pk))
    sorted_key = pk[order]
    new_group = np.r_[True, sorted_key[1:] != sorted_key[:-1]]
    group_start = np.maximum.accumulate(np.where(new_group, np.arange(len(order)), 0))
    opp = np.empty(len(order), dtype=np.int64)
    opp[order] = np.arange(len(order)) - group_start
    problems["opportunity"] = opp
    # for a unit test: practice rows of the same (student, skill) that started before it
    t0 = min(problems["time"].min(), unit_tests["time"].min())
    comp = sorted_key * 10**10 + (problems["time"].to_numpy()[order] - t0).astype(np.int64)
    uk = unit_tests["student"].to_numpy() * n_skills + skill[unit_tests["item"].to_numpy()]
    q = uk * 10**10 + (unit_tests["time"].to_numpy() - t0).astype(np.int64)
    unit_tests["opportunity"] = np.searchsorted(comp, q, "left") - np.searchsorted(comp, uk * 10**10, "left")


def _p_solve(world: World, student, item, time, opportunity):
    it, st = world.items, world.students
    b = it["b"].to_numpy()[item]
    drift_time = it["drift_time"].to_numpy()[item]
    b_eff = b + np.where(time >= np.nan_to_num(drift_time, nan=np.inf), it["drift_shift"].to_numpy()[item], 0.0)
    ability = st["theta"].to_numpy()[student] + st["learning_rate"].to_numpy()[student] * np.log1p(opportunity)
    c = it["c"].to_numpy()[item]
    return c + (1 - c) * _sigmoid(it["a"].to_numpy()[item] * (ability - b_eff)), b_eff


def _respond(world: World, logs: pd.DataFrame, problems: pd.DataFrame, rng) -> None:
    it, st = world.items, world.students
    item, student = problems["item"].to_numpy(), problems["student"].to_numpy()
    n = len(problems)
    p, b_eff = _p_solve(world, student, item, problems["time"].to_numpy(), problems["opportunity"].to_numpy())
    graded = it["problem_type"].to_numpy()[item] != UNGRADED
    logit = np.log(p) - np.log1p(-p)
    p_help = _sigmoid(st["help_bias"].to_numpy()[student] - 0.8 * logit)
    helps = graded & (rng.random(n) < p_help)
    correct = graded & ~helps & (rng.random(n) < p)

    weights = np.broadcast_to(HELP_WEIGHTS, (n, len(HELP_TYPES))).copy()
    weights[it["n_hints"].to_numpy()[item] == 0, 0] = 0
    weights[~it["has_explanation"].to_numpy()[item], 2] = 0
    cum = np.cumsum(weights, axis=1)
    help_kind = np.argmax(cum > rng.random(n)[:, None] * cum[:, -1:], axis=1)
    help_codes = np.array([CODE[h] for h in HELP_TYPES])
    first = np.where(~graded, CODE["open_response"],
                     np.where(helps, help_codes[help_kind], np.where(correct, CODE["correct_response"], CODE["wrong_response"])))

    ptype = it["problem_type"].to_numpy()[item]
    base = pd.Series(ptype).map(LATENCY_BASE).fillna(3.9).to_numpy()
    latency = np.exp(base + 0.7 * (1 - p) + st["speed"].to_numpy()[student] + rng.normal(0, 0.45, n))
    # to the millisecond, as recorded: np.exp's last bit differs by CPU and would move summed timestamps
    latency = portable(np.clip(np.where(helps, 0.5 * latency, latency), 1.0, 1200.0), SECONDS)

    problems["p_solve"] = p
    problems["p_correct"] = np.where(graded, (1 - p_help) * p, np.nan)
    problems["b_effective"] = b_eff
    problems["graded"] = graded
    problems["first_action"] = first
    problems["latency"] = latency
    problems["n_hints"] = it["n_hints"].to_numpy()[item]
    problems["correct"] = correct


def _score_unit_tests(world: World, unit_tests: pd.DataFrame, rng) -> None:
    p, _ = _p_solve(world, unit_tests["student"].to_numpy(), unit_tests["item"].to_numpy(),
                    unit_tests["time"].to_numpy(), unit_tests["opportunity"].to_numpy())
    unit_tests["p_correct"] = p
    unit_tests["score"] = (rng.random(len(p)) < p).astype(np.int8)


@dataclass
class _Layout:
    """Where every log's and every problem's rows go in the action table: a log's rows are its start row,
    its problems' rows slot by slot, then its finish row (none when abandoned)."""

    practice_logs: np.ndarray  # the logs with practice problems, sorted
    finished: np.ndarray  # per practice log: not abandoned, so it has a finish row
    per_log: np.ndarray  # per practice log: its number of rows
    log_offset: np.ndarray  # per practice log: its first row
    prob_offset: np.ndarray  # per problem: its first row
    slot_offset: np.ndarray  # per problem and slot: the slot's first row after prob_offset

    @property
    def ends(self) -> np.ndarray:
        """The finish rows of the finished logs."""
        return (self.log_offset + self.per_log - 1)[self.finished]


@dataclass
class _Rows:
    """The action table under construction: per row its log, item (-1: none), action code, seconds since the
    previous row of its log, and hint ordinal (-1: none)."""

    log: np.ndarray
    item: np.ndarray
    action: np.ndarray
    inc: np.ndarray
    hint: np.ndarray


def _action_rows(logs: pd.DataFrame, problems: pd.DataFrame, rng) -> dict[str, np.ndarray]:
    """Lay out every problem's clickstream rows (slot by slot) and every log's start and finish rows. The rng
    is drawn in a fixed order (extra hints, retries, then each slot's time steps in SLOTS order): one seed,
    one clickstream."""
    counts = _slot_counts(logs, problems, rng)
    layout = _layout(logs, problems, counts)
    rows = _log_rows(layout)
    _fill_problem_rows(rows, layout, counts, problems, rng)
    timestamp = _timestamps(rows, layout, logs)
    return {"log": rows.log, "item": rows.item, "action": rows.action, "timestamp": timestamp, "hint_ordinal": rows.hint}


def _slot_counts(logs: pd.DataFrame, problems: pd.DataFrame, rng) -> np.ndarray:
    """How many rows of each SLOTS action every problem leaves: more hints after a first hint, retries after
    a wrong first response or help (success chance p_solve + 0.35, + 0.15 after help) up to max_attempts,
    then the answer."""
    n = len(problems)
    first = problems["first_action"].to_numpy()
    answered = ~problems["started_only"].to_numpy()
    graded = problems["graded"].to_numpy()
    p = problems["p_solve"].to_numpy()
    max_att = logs["max_attempts"].to_numpy()[problems["log"].to_numpy()]

    is_help = np.isin(first, [CODE[h] for h in HELP_TYPES])
    first_hint = first == CODE["hint_requested"]
    first_answer = first == CODE["answer_requested"]
    hints_avail = problems["n_hints"].to_numpy()
    extra_hints = np.where(first_hint & answered, rng.binomial(np.maximum(hints_avail - 1, 0), 0.5), 0)
    retry = answered & graded & (first != CODE["correct_response"]) & ~first_answer
    r = np.minimum(0.95, p + 0.35 + 0.15 * is_help)
    wrong_before_success = rng.geometric(r) - 1
    remaining = max_att - (first == CODE["wrong_response"])
    wrong = np.where(retry, np.minimum(wrong_before_success, remaining), 0)
    success = retry & (wrong_before_success < remaining)
    gave_up = retry & ~success

    counts = np.zeros((n, len(SLOTS)), dtype=np.int64)
    counts[:, 0] = problems["resumed"].to_numpy()
    counts[:, 1] = 1
    counts[:, 2] = answered
    counts[:, 3] = extra_hints
    counts[:, 4] = wrong
    counts[:, 5] = success | (first_answer & answered)
    counts[:, 6] = gave_up
    counts[:, 7] = gave_up
    counts[:, 8] = answered
    return counts


def _layout(logs: pd.DataFrame, problems: pd.DataFrame, counts: np.ndarray) -> _Layout:
    """Row offsets of logs, problems and slots, from the slot counts (problems are in log order)."""
    prob_log = problems["log"].to_numpy()
    practice_logs = np.unique(prob_log)
    log_pos = np.searchsorted(practice_logs, prob_log)
    per_problem = counts.sum(axis=1)
    finished = ~logs["abandoned"].to_numpy()[practice_logs]
    per_log = 1 + np.bincount(log_pos, weights=per_problem, minlength=len(practice_logs)).astype(np.int64) + finished
    log_offset = _excl_cumsum(per_log)
    prob_cum = _excl_cumsum(per_problem)
    first_prob_of_log = np.searchsorted(log_pos, np.arange(len(practice_logs)))
    prob_offset = log_offset[log_pos] + 1 + prob_cum - prob_cum[first_prob_of_log][log_pos]
    slot_offset = np.cumsum(counts, axis=1) - counts
    return _Layout(practice_logs, finished, per_log, log_offset, prob_offset, slot_offset)


def _log_rows(layout: _Layout) -> _Rows:
    """The table, allocated once, with every log's assignment_started and (when finished) assignment_finished rows."""
    total = int(layout.per_log.sum())
    rows = _Rows(log=np.empty(total, dtype=np.int32), item=np.full(total, -1, dtype=np.int32),
                 action=np.empty(total, dtype=np.int8), inc=np.empty(total, dtype=np.float64),
                 hint=np.full(total, -1, dtype=np.int8))
    starts, ends, finished = layout.log_offset, layout.ends, layout.finished
    rows.log[starts], rows.item[starts], rows.action[starts], rows.inc[starts] = (
        layout.practice_logs, -1, CODE["assignment_started"], 0.0)
    rows.log[ends], rows.item[ends], rows.action[ends], rows.inc[ends] = (
        layout.practice_logs[finished], -1, CODE["assignment_finished"], 1.0)
    return rows


def _fill_problem_rows(rows: _Rows, layout: _Layout, counts: np.ndarray, problems: pd.DataFrame, rng) -> None:
    """Write every problem's rows slot by slot, drawing each slot's time steps for all problems at once."""
    prob_log, item = problems["log"].to_numpy(), problems["item"].to_numpy()
    first = problems["first_action"].to_numpy()
    for s, name in enumerate(SLOTS):
        prob, j = _expand(counts[:, s])
        pos = layout.prob_offset[prob] + layout.slot_offset[prob, s] + j
        rows.log[pos] = prob_log[prob]
        rows.item[pos] = -1 if name == "assignment_resumed" else item[prob]
        rows.action[pos] = first[prob] if name == "first" else CODE[name]
        if name == "first":
            rows.hint[pos] = np.where(first[prob] == CODE["hint_requested"], 0, -1)
        elif name == "hint_requested":
            rows.hint[pos] = 1 + j
        rows.inc[pos] = _slot_steps(name, prob, problems, rng)


def _slot_steps(name: str, prob: np.ndarray, problems: pd.DataFrame, rng) -> np.ndarray:
    """Seconds from the previous row to each row of slot `name` (`prob`: the problem of each row): the first
    action takes the problem's latency, the rest a typical pause for their kind."""
    m = len(prob)
    if name == "assignment_resumed":
        return rng.uniform(2 * 3600, 30 * 3600, m)
    if name == "problem_started":
        return rng.uniform(2, 8, m)
    if name == "first":
        return problems["latency"].to_numpy()[prob]
    if name == "continue_selected":
        return rng.uniform(1, 4, m)
    if name == "problem_finished":
        return np.full(m, 0.5)
    return rng.exponential(20, m)  # hint_requested and the responses


def _timestamps(rows: _Rows, layout: _Layout, logs: pd.DataFrame) -> np.ndarray:
    """Each row's time: its log's start plus the steps so far within the log; a finished log's end is its
    last row's time (written into `logs`)."""
    cs = np.cumsum(rows.inc)
    base = np.repeat(cs[layout.log_offset] - rows.inc[layout.log_offset], layout.per_log)
    timestamp = logs["start"].to_numpy()[rows.log] + (cs - base)
    logs.loc[layout.practice_logs[layout.finished], "end"] = timestamp[layout.ends]
    return timestamp
