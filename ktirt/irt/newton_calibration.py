"""The calibration's solver: block Newton (Fisher scoring) over students, the population rate, items and
skills, each block's equations summed per student / item / skill with `np.bincount`.

Given the items, students are independent of each other (two parameters each: a 2 x 2 system); given the
students, items are independent (difficulty offset, log-discrimination, guessing logit and drift shift: a
4 x 4 system each); the skills' mean difficulties and the population rate are one number each. So a sweep
costs a few passes over the responses, whatever the numbers of students and items, where full-batch L-BFGS
over every parameter needed hundreds of passes (about 1,400 s at EDM-Cup scale). Between sweeps, the moves
that leave every probability unchanged (the scale: a / k with k theta and k b; the location: abilities and
difficulties together; the population rate against the students' rates; a skill's mean against its items'
offsets) are taken exactly to the minimum of the priors and the scale penalty, since block steps only
crawl along them. The skills' mean difficulties have a prior too, around their mean over skills: without it a
skill whose responses are all wrong (or right) runs off with its items. The scale penalty's gradient enters
the items' step, so the loss's optimum is the fixed point (tests/test_wdirt.py checks its gradient by autograd).

Model, per response r of student s on item i (see ktirt/irt/calibration.py):
    theta_r = alpha_s + (rho + rate_s) * log_opportunity_r - shift_i [after the item's change]
    p_r     = c_i + (1 - c_i) * sigmoid(a_i * (theta_r - b_i)),   b_i = mean of its skills' mu + delta_i
    priors: delta_i ~ N(0, 1 / prior_strength), mu_k ~ N(mean of mu, 1 / skill_prior), and those of ell, g, alpha, rate
    a_i     = softplus(l_i) / log 2,   c_i = 0.5 * sigmoid(g_i) for guessable items, else 0

Every equation is a sum over responses, so under torchrun each rank holds a shard of them and the sums are
all-reduced (ktirt.distributed.all_sum): every rank takes the same steps, to the one-process fit.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Callable, Iterable, Iterator

import numpy as np
from scipy.optimize import minimize_scalar

from ktirt.distributed import all_sum, shard_mask, world_size
from ktirt.models import three_pl

log = logging.getLogger(__name__)
MAX_STEP = 1.0  # logits per Newton step and parameter: keeps a far start from overshooting
BACKTRACK = (1.0, 0.5, 0.25, 0.125)
"""the fractions of its Newton step an item may take, the largest that does not raise its own loss (_backtracked)"""
ROUNDING = 1e-12
"""an item's loss may rise by this share of it in a step taken: the sums' rounding, not an overshoot"""
P_EPS = 1e-6
CHUNK = 1 << 21
"""responses whose per-response arrays a step holds at once (about 0.5 GB of them): the sums run a chunk at a
time, so the solver's temporaries stay the same size however many responses there are"""


@dataclass
class Responses:
    student: np.ndarray
    log_opportunity: np.ndarray
    item: np.ndarray
    y: np.ndarray
    after: np.ndarray
    """responses after their item's change point (the shift applies)"""

    def of_this_rank(self) -> "Responses":
        """The responses of this rank's students (ktirt.distributed.shard_mask); all of them in one process."""
        if world_size() == 1:
            return self
        mine = shard_mask(self.student)
        return Responses(*(v[mine] for v in (self.student, self.log_opportunity, self.item, self.y, self.after)))

    @cached_property
    def total(self) -> int:
        """The number of responses over every rank (these are this rank's)."""
        return int(all_sum(len(self.y)))

    def of_items(self, mask: np.ndarray) -> "Responses":
        """The responses to the items `mask` marks."""
        mine = mask[self.item]
        return Responses(*(v[mine] for v in (self.student, self.log_opportunity, self.item, self.y, self.after)))

    def chunks(self) -> Iterator["Responses"]:
        """These responses CHUNK at a time (views, not copies); one chunk when they fit in one."""
        for lo in range(0, max(len(self.y), 1), CHUNK):
            yield Responses(*(v[lo : lo + CHUNK] for v in (self.student, self.log_opportunity, self.item, self.y,
                                                           self.after)))


def _sums(r: Responses, index: str, values: Callable[[Responses], Iterable[np.ndarray]], n: int,
          only: np.ndarray | None = None) -> np.ndarray:
    """(len(values), n): each of `values(chunk)`, per-response arrays, summed per the chunk's `index` field
    (student, item), over every chunk of `r` and every rank's responses, in one all-reduce. `values` best
    yields them one by one: each is freed once it is summed. With `only` (a mask over items), the responses
    of those items alone (their sums as over all, the same additions in the same order)."""
    def sums(c: Responses) -> np.ndarray:
        if only is not None:
            c = c.of_items(only)
        return np.stack([np.bincount(getattr(c, index), v, n) for v in values(c)])

    return all_sum(_over_chunks(r, sums))


def _over_chunks(r: Responses, total_of: Callable[[Responses], np.ndarray]) -> np.ndarray:
    """`total_of(chunk)` added up over the chunks of `r` (this rank's: the caller all-reduces)."""
    total = None
    for chunk in r.chunks():
        part = total_of(chunk)
        total = part if total is None else total + part
    return total


@dataclass
class Params:
    mu: np.ndarray  # per skill
    delta: np.ndarray  # per item
    ell: np.ndarray  # per item: log-discrimination before softplus
    g: np.ndarray  # per item: guessing logit
    shift: np.ndarray  # per item
    alpha: np.ndarray  # per student
    rate: np.ndarray  # per student
    rho: float


@dataclass
class Structure:
    """What does not move: each item's skills and their weights, which items can guess, priors."""

    skills: np.ndarray  # (n_items, K) skill indices
    weight: np.ndarray  # (n_items, K), rows sum to 1
    guessable: np.ndarray  # bool per item
    discrimination: bool
    prior_strength: float
    guess_prior: float
    intercept_precision: float
    rate_precision: float
    scale_penalty: float
    skill_prior: float = 0.0
    """precision of the skills' mean difficulties around their mean over skills"""

    def difficulty(self, p: Params) -> np.ndarray:
        return (p.mu[self.skills] * self.weight).sum(1) + p.delta

    def discriminations(self, p: Params) -> np.ndarray:
        return three_pl.discrimination(p.ell) if self.discrimination else np.ones_like(p.ell)

    def skill_pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(item, skill, weight) of every slot of `skills`, flat: for sums per skill over items."""
        return np.repeat(np.arange(len(self.skills)), self.skills.shape[1]), self.skills.ravel(), self.weight.ravel()

    def guessing(self, p: Params) -> np.ndarray:
        return three_pl.guessing(p.g, self.guessable)


def _state(st: Structure, p: Params, r: Responses):
    """Per response: theta, a, b, c, s = sigmoid(a (theta - b)), p, the score weight (y - p) / (p (1 - p))
    and 1 / (p (1 - p))."""
    a, b, c = st.discriminations(p)[r.item], st.difficulty(p)[r.item], st.guessing(p)[r.item]
    theta = p.alpha[r.student] + (p.rho + p.rate[r.student]) * r.log_opportunity - np.where(r.after, p.shift[r.item], 0.0)
    prob, s = three_pl.probability(theta, a, b, c)
    prob = np.clip(prob, P_EPS, 1 - P_EPS)
    inv = 1 / (prob * (1 - prob))
    return theta, a, b, c, s, prob, (r.y - prob) * inv, inv


def objective(st: Structure, p: Params, r: Responses) -> float:
    """Mean negative log-likelihood plus the priors over the number of responses (the calibration's loss)."""
    nll = -all_sum(_over_chunks(r, lambda c: np.sum(_log_likelihood(st, p, c)))) / r.total
    items = np.sum(p.delta**2) + np.sum(p.ell**2) * st.discrimination + np.sum(((p.g - st.guess_prior) * st.guessable) ** 2)
    students = st.intercept_precision * np.sum(p.alpha**2) + st.rate_precision * np.sum(p.rate**2)
    scale = st.scale_penalty * float(np.mean(np.log(st.discriminations(p)))) ** 2
    skills = st.skill_prior * np.sum((p.mu - p.mu.mean()) ** 2)
    return float(nll + 0.5 * (st.prior_strength * items + skills + students) / max(r.total, 1) + scale)


def _item_priors(st: Structure, p: Params) -> np.ndarray:
    """Per item, the sum of squares its priors weigh by prior_strength (half of it times prior_strength is its loss)."""
    return p.delta**2 + p.ell**2 * st.discrimination + ((p.g - st.guess_prior) * st.guessable) ** 2


def _log_likelihood(st: Structure, p: Params, c: Responses) -> np.ndarray:
    *_, prob, _, _ = _state(st, p, c)
    return _bernoulli_log_likelihood(c.y, prob)


def _bernoulli_log_likelihood(y: np.ndarray, prob: np.ndarray) -> np.ndarray:
    return y * np.log(prob) + (1 - y) * np.log(1 - prob)


def _backtracked(st: Structure, p: Params, r: Responses, step: np.ndarray, scale_slope: np.ndarray,
                log_likelihood: np.ndarray) -> np.ndarray:
    """`step` (n_items, 4: delta, ell, g, shift) cut back per item to the largest of BACKTRACK's fractions that
    does not raise the item's own loss (its responses' negative log-likelihood, `log_likelihood` at `p` per item,
    its priors and, to first order, the scale penalty: `scale_slope`, its derivative in each item's ell), 0 where
    none does. Fisher scoring on the 3PL's likelihood, which is not concave, can overshoot: an item answered below
    its guessing floor then swings between two points every sweep and the fit never settles (seen at 22 M
    responses). The full step is tried on every response; a smaller one only on the responses of the items
    still refused, which are few."""
    current = -log_likelihood + 0.5 * st.prior_strength * _item_priors(st, p)
    fraction, refused = np.zeros(len(p.delta)), np.ones(len(p.delta), bool)
    for f in BACKTRACK:
        q = replace(p, delta=p.delta + f * step[:, 0], ell=p.ell + f * step[:, 1], g=p.g + f * step[:, 2],
                    shift=p.shift + f * step[:, 3])
        only = None if refused.all() else refused
        loss = -_sums(r, "item", lambda c: [_log_likelihood(st, q, c)], len(p.delta), only)[0]
        loss += 0.5 * st.prior_strength * _item_priors(st, q) + f * step[:, 1] * scale_slope
        taken = refused & (loss <= current + ROUNDING * np.abs(current))  # a step too small to tell from rounding is taken
        fraction[taken] = f
        refused &= ~taken
        if not refused.any():
            break
    return step * fraction[:, None]


def _step(delta: np.ndarray) -> np.ndarray:
    return np.clip(np.nan_to_num(delta), -MAX_STEP, MAX_STEP)


def _students(st: Structure, p: Params, r: Responses) -> None:
    def equations(c: Responses):
        _, a, _, cc, s, _, score, inv = _state(st, p, c)
        d = (1 - cc) * a * s * (1 - s)  # dp/dtheta
        lo = c.log_opportunity
        info = d * d * inv
        return score * d, score * d * lo, info, info * lo, info * lo * lo

    grad_a, grad_r, h11, h12, h22 = _sums(r, "student", equations, len(p.alpha))
    grad_a, grad_r = grad_a - st.intercept_precision * p.alpha, grad_r - st.rate_precision * p.rate
    h11, h22 = h11 + st.intercept_precision, h22 + st.rate_precision
    det = h11 * h22 - h12 * h12
    p.alpha += _step((h22 * grad_a - h12 * grad_r) / det)
    p.rate += _step((h11 * grad_r - h12 * grad_a) / det)

    def rho_equation(c: Responses) -> np.ndarray:
        _, a, _, cc, s, _, score, inv = _state(st, p, c)
        d = (1 - cc) * a * s * (1 - s)
        lo = c.log_opportunity
        return np.array([np.sum(d * d * inv * lo * lo), np.sum(score * d * lo)])

    info_rho, score_rho = all_sum(_over_chunks(r, rho_equation))
    if info_rho > 0:
        p.rho += float(_step(np.array(score_rho / info_rho)))


def _items(st: Structure, p: Params, r: Responses) -> None:
    """One Newton step for each item's (delta, ell, g, shift), then for each skill's mu."""
    n = len(p.delta)
    pairs = [(u, v) for u in range(4) for v in range(u, 4)]

    def equations(c: Responses):
        theta, a, b, cc, s, prob, score, inv = _state(st, p, c)
        ds = s * (1 - s)
        sig_g = 1 / (1 + np.exp(-p.g[c.item]))
        jac = np.stack([-(1 - cc) * a * ds,  # dp / d delta
                        (1 - cc) * (theta - b) * ds / (1 + np.exp(-p.ell[c.item])) / three_pl.LOG2 * st.discrimination,  # d ell
                        (1 - s) * 0.5 * sig_g * (1 - sig_g) * st.guessable[c.item],  # dp / d g
                        -(1 - cc) * a * ds * c.after], axis=1)  # dp / d shift (theta - shift - b: as delta's, after the change)
        return itertools.chain((score * jac[:, k] for k in range(4)), (jac[:, u] * jac[:, v] * inv for u, v in pairs),
                               [c.after.astype(np.float64), _bernoulli_log_likelihood(c.y, prob)])

    sums = _sums(r, "item", equations, n)
    grad = sums[:4].T.copy()
    hess = np.empty((n, 4, 4))
    for k, (u, v) in enumerate(pairs):
        hess[:, u, v] = hess[:, v, u] = sums[4 + k]
    k = st.prior_strength
    # the scale penalty's gradient (in the loss's sum units): without it the optimum would not be a fixed point
    a_items = st.discriminations(p)
    dlog_a = 1 / (1 + np.exp(-p.ell)) / (a_items * three_pl.LOG2)
    scale = 2 * st.scale_penalty * r.total * float(np.mean(np.log(a_items))) / n * dlog_a * st.discrimination
    grad -= np.stack([k * p.delta, (k * p.ell + scale) * st.discrimination, k * (p.g - st.guess_prior) * st.guessable,
                      np.zeros(n)], axis=1)
    active = np.stack([np.ones(n, bool), np.full(n, st.discrimination), st.guessable,
                       sums[-2] > 0], axis=1)
    prior = np.stack([np.full(n, k), np.full(n, k), np.full(n, k), np.full(n, 1e-6)], axis=1)
    both = active[:, :, None] & active[:, None, :]
    hess = np.where(both, hess, 0.0) + np.eye(4) * np.where(active, prior, 1.0)[:, :, None]
    step = _backtracked(st, p, r, _step(np.linalg.solve(hess, np.where(active, grad, 0.0)[..., None])[..., 0]),
                        scale, sums[-1])
    p.delta += step[:, 0]
    p.ell += step[:, 1]
    p.g += step[:, 2]
    p.shift += step[:, 3]
    _skills(st, p, r)


def _skills(st: Structure, p: Params, r: Responses) -> None:
    def equations(c: Responses):
        _, a, _, cc, s, _, score, inv = _state(st, p, c)
        db = -(1 - cc) * a * s * (1 - s)
        return score * db, db * db * inv

    n_items, n_skills = len(p.delta), len(p.mu)
    g_item, h_item = _sums(r, "item", equations, n_items)
    rows, sk, w = st.skill_pairs()
    grad = np.bincount(sk, w * g_item[rows], n_skills) - st.skill_prior * (p.mu - p.mu.mean())
    info = np.bincount(sk, w * w * h_item[rows], n_skills) + st.skill_prior * (1 - 1 / n_skills)
    p.mu += np.where(info > 0, _step(grad / np.maximum(info, 1e-12)), 0.0)


def _recentre(st: Structure, p: Params, present: np.ndarray) -> None:
    """Moves along which the likelihood is flat and only the priors decide, taken exactly (coordinate steps
    crawl along them): abilities and difficulties together (mean intercept 0), the population rate and the
    students' rates (mean 0), and each skill's mean difficulty against its items' offsets (to the minimum of
    their priors, the mean over skills held: exact for single-skill items; with no skill prior, mean offset 0)."""
    t = -p.alpha[present].mean()
    p.alpha[present] += t
    p.mu += t
    m = p.rate[present].mean()
    p.rate[present] -= m
    p.rho += m
    rows, sk, w = st.skill_pairs()
    weight = st.prior_strength * np.bincount(sk, w, len(p.mu)) + st.skill_prior
    pull = st.prior_strength * np.bincount(sk, w * p.delta[rows], len(p.mu)) - st.skill_prior * (p.mu - p.mu.mean())
    offset = np.divide(pull, weight, out=np.zeros(len(p.mu)), where=weight > 0)
    p.mu += offset
    p.delta -= (offset[st.skills] * st.weight).sum(1)


def _rescale(st: Structure, p: Params, n: int) -> None:
    """The scale move: a -> a / k, theta -> k theta, b -> k b leaves every probability unchanged, so only the
    priors and the scale penalty choose k; take their minimum along it."""
    if not st.discrimination:
        return
    a, guess = st.discriminations(p), np.sum(((p.g - st.guess_prior) * st.guessable) ** 2)
    mean_log_a = float(np.mean(np.log(a)))

    def ell(log_k: float) -> np.ndarray:
        x = a * three_pl.LOG2 / math.exp(log_k)
        return x + np.log(-np.expm1(-x))  # softplus inverse

    def loss(log_k: float) -> float:
        k2 = math.exp(2 * log_k)
        items = k2 * np.sum(p.delta**2) + np.sum(ell(log_k) ** 2) + guess
        students = k2 * (st.intercept_precision * np.sum(p.alpha**2) + st.rate_precision * np.sum(p.rate**2))
        students += k2 * st.skill_prior * np.sum((p.mu - p.mu.mean()) ** 2)  # the skills' prior, beside them
        return 0.5 * (st.prior_strength * items + students) / max(n, 1) + st.scale_penalty * (mean_log_a - log_k) ** 2

    log_k = minimize_scalar(loss, bounds=(-1.0, 1.0), method="bounded", options={"xatol": 1e-10}).x
    k = math.exp(log_k)
    p.ell[:] = ell(log_k)
    for v in (p.mu, p.delta, p.shift, p.alpha, p.rate):
        v *= k
    p.rho *= k


def solve(st: Structure, p: Params, r: Responses, max_sweeps: int, tol: float = 1e-9,
          what: str = "calibration", every_s: float = 15.0) -> tuple[float, float, int]:
    """Sweeps until the loss settles (`settled`: two sweeps in a row move it by less than `tol`); returns the
    loss before and after, and the sweeps run."""
    before = last = objective(st, p, r)
    start = shown = time.perf_counter()
    present = present_students(r, len(p.alpha))
    gains = []
    for sweep in range(1, max_sweeps + 1):
        if sweep > 1:  # the flat moves first, so a sweep ends on the items' Newton step (an item without
            _rescale(st, p, r.total)  # responses then sits exactly at its skills' mean)
            if present.any():
                _recentre(st, p, present)
        _students(st, p, r)
        _items(st, p, r)
        loss = objective(st, p, r)
        if time.perf_counter() - shown >= every_s:
            shown = time.perf_counter()
            log.info("%s: sweep %d, loss %.6f, %.0f s", what, sweep, loss, shown - start)
        gains.append(last - loss)
        if settled(gains, tol):
            break
        last = loss
    else:
        log.warning("%s: stopped at its bound of %d sweeps (wdirt.calibration_sweeps), the last moving the loss by "
                    "%.1e", what, max_sweeps, gains[-1])
    return before, loss, sweep


def present_students(r: Responses, n: int) -> np.ndarray:
    """Per student (of `n`), whether any rank's responses are theirs."""
    return all_sum(_over_chunks(r, lambda c: np.bincount(c.student, minlength=n))) > 0


def settled(gains: list[float], tol: float) -> bool:
    """Whether sweeps whose losses fell by `gains` have done: the last two each moved it by less than `tol`. One
    quiet sweep is not enough: the items' joint step overshoots the scale penalty, which the next sweep's scale
    move takes back, so the loss after a sweep rises and falls by turns while the fit settles, and one small
    move can fall between two larger ones."""
    return len(gains) > 1 and max(abs(gains[-1]), abs(gains[-2])) < tol
