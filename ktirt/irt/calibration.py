"""Item calibration after training: the wide part refitted to convergence against whole-history abilities.

Stochastic training stops when the *deep* part stops improving on validation students, which is early for
the per-item parameters: each sees only a small share of every batch. And the deep part's theta is
one-sided by design (it may only use a student's past, to predict the next response), so a student's
early responses are calibrated against a poor ability: its correlation with the simulator's true ability
is 0.49 over a student's first 5 responses and 0.93 after 50.

Calibration is where the classic IRT step fits: item parameters and student abilities jointly, by maximum a
posteriori, from every training response at once. The ability is a learning curve, as in the Additive
Factors Model but with a learning rate per student:

    ability = intercept_s + (rate + rate_s) * log(1 + the student's earlier responses on the item's skill)

with intercept_s ~ N(0, 1), rate a population learning rate and rate_s ~ N(0, 0.2²). The discriminations'
geometric mean is held at 1, which fixes the ability scale (otherwise abilities could shrink under their
prior while every discrimination grows to match).
Each student's curve uses all their responses, before and after the one it scores, which is right for
describing items and not allowed for predicting; so the deep part's theta is then mapped onto the
calibrated scale (`align_theta`, two numbers), and predictions keep using it.

The fit is block Newton (`ktirt/irt/newton_calibration.py`): a few passes over the responses per sweep,
tens of sweeps (full-batch L-BFGS over every parameter took about 1,400 s at EDM-Cup scale; on the default
it reaches the same loss in 1.8 s and 2.8 s where L-BFGS took 6.2 s and 11.8 s). `align_theta` fits its two
numbers by L-BFGS.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np
import torch
import torch.nn.functional as F

from ktirt.irt import newton_calibration as nc
from ktirt.models.three_pl import GUESS_PRIOR_LOGIT
from ktirt.models.wdirt import WideDeepIRT
from ktirt.settings import WDIRTSettings

log = logging.getLogger(__name__)
INTERCEPT_PRECISION = 1.0
RATE_PRECISION = 1 / 0.2**2
SCALE_PENALTY = 100.0  # per unit of squared mean log-discrimination; large enough to pin it at 0
SWEEPS = WDIRTSettings.model_fields["calibration_sweeps"].default  # declared once, in ktirt/settings.py


@dataclass
class LearningCurves:
    """Per student (by index): the fitted curve; `ability` evaluates it. `difficulty_shift` is per item: how
    much harder its responses after its change point were (0 for items without one). `loss`: the calibration's
    loss at its end."""

    intercept: np.ndarray
    rate: np.ndarray
    population_rate: float
    difficulty_shift: np.ndarray
    loss: float = float("nan")

    def ability(self, student: np.ndarray, log_opportunity: np.ndarray) -> np.ndarray:
        return self.intercept[student] + (self.population_rate + self.rate[student]) * log_opportunity


@contextmanager
def _gradients_only_for(model: WideDeepIRT, trainable: list[torch.nn.Parameter]):
    """Within the block, only `trainable` of the model's parameters take gradients; restored after."""
    before = {p: p.requires_grad for p in model.parameters()}
    for p in model.parameters():
        p.requires_grad_(any(p is t for t in trainable))
    try:
        yield
    finally:
        for p, g in before.items():
            p.requires_grad_(g)


def _lbfgs(params, evaluate: Callable[[bool], torch.Tensor], max_iter: int, what: str = "calibration",
           every_s: float = 15.0) -> tuple[float, float]:
    """Full-batch L-BFGS on `evaluate(backward)`, the objective (summed over chunks of the data, each chunk's
    gradient taken as it is summed when `backward`); logs its progress (evaluations, objective, elapsed) every
    `every_s` seconds, so a long calibration is never silent."""
    opt = torch.optim.LBFGS(params, max_iter=max_iter, line_search_fn="strong_wolfe", tolerance_grad=1e-7,
                            tolerance_change=1e-10, history_size=20)
    start = last = time.perf_counter()
    evaluations = 0

    def closure():
        nonlocal last, evaluations
        opt.zero_grad()
        loss = evaluate(True)
        evaluations += 1
        if time.perf_counter() - last >= every_s:
            last = time.perf_counter()
            log.info("%s: %d evaluations (at most %d iterations), objective %.6f, %.0f s", what, evaluations,
                     max_iter, loss.item(), last - start)
        return loss

    with torch.no_grad():
        before = float(evaluate(False))
    opt.step(closure)
    with torch.no_grad():
        return before, float(evaluate(False))


def calibrate_items(model: WideDeepIRT, student: np.ndarray, log_opportunity: np.ndarray, item: np.ndarray,
                    y: np.ndarray, prior_strength: float, *, skill_prior_strength: float, max_sweeps: int = SWEEPS,
                    after_change: np.ndarray | None = None) -> LearningCurves:
    """Refit the model's wide parameters in place, jointly with one learning curve per student, on the
    responses (student index, log(1 + earlier responses on the skill), item, y); the deep part is untouched.
    The loss is the mean negative log-likelihood plus the priors over the number of responses, as in training
    (`prior_strength` on item offsets, discriminations and guessing floors, `skill_prior_strength` on skill means);
    block Newton solves it (ktirt/irt/newton_calibration.py). Under torchrun each rank sums over its shard of
    the students' responses and the sums are all-reduced: every rank ends with the one-process fit.

    `after_change` marks the responses given after their item's difficulty changed (a drift change point):
    those items get a second difficulty, b + shift, for those responses, so that the model's difficulty is
    the item's before the change rather than a blend of two regimes."""
    responses = nc.Responses(student, np.asarray(log_opportunity, np.float64), item, np.asarray(y, np.float64),
                             np.zeros(len(y), bool) if after_change is None else np.asarray(after_change, bool)).of_this_rank()
    return calibrate(model, responses, int(student.max()) + 1 if len(student) else 0, prior_strength,
                     skill_prior_strength=skill_prior_strength, max_sweeps=max_sweeps)


def calibrate(model: WideDeepIRT, responses, n_students: int, prior_strength: float, *, skill_prior_strength: float,
              max_sweeps: int = SWEEPS) -> LearningCurves:
    """calibrate_items on `responses`: this rank's, as newton_calibration.Responses or anything that gives them a
    chunk at a time (`chunks()`, `total`), such as ktirt/irt/target_blocks.py's BlockResponses."""
    n_items = len(model.item_offset)
    with torch.no_grad():
        structure = nc.Structure(model.item_skills.numpy(), model.item_skill_weight.numpy().astype(np.float64),
                                 model.guessable.numpy() > 0, model.cfg.discrimination, prior_strength,
                                 GUESS_PRIOR_LOGIT, INTERCEPT_PRECISION, RATE_PRECISION, SCALE_PENALTY, skill_prior_strength)
        params = nc.Params(*(t.numpy().astype(np.float64) for t in (model.skill_difficulty, model.item_offset,
                                                                    model.item_log_discrimination, model.item_guess_logit)),
                           shift=np.zeros(n_items), alpha=np.zeros(n_students), rate=np.zeros(n_students), rho=0.0)
    before, after, sweeps = nc.solve(structure, params, responses, max_sweeps,
                                     what=f"item calibration ({responses.total:,} responses)")
    with torch.no_grad():
        for target, value in ((model.skill_difficulty, params.mu), (model.item_offset, params.delta),
                              (model.item_log_discrimination, params.ell), (model.item_guess_logit, params.g)):
            target.copy_(torch.as_tensor(value, dtype=target.dtype))
    log.info("item calibration with learning-curve abilities: loss %.5f -> %.5f in %d sweeps on %d responses of %d "
             "students (population learning rate %.3f)", before, after, sweeps, responses.total,
             int(nc.present_students(responses, n_students).sum()), params.rho)
    return LearningCurves(params.alpha, params.rate, params.rho, params.shift, after)


def align_theta(model: WideDeepIRT, theta: np.ndarray, item: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Map the deep part's theta onto the calibrated items' scale: the scale and shift that maximise the
    likelihood of the responses with the item parameters fixed. `theta` is what the model gave before;
    sets the model's theta_scale and theta_shift and returns them."""
    return align_theta_chunks(model, lambda: [(theta, item, y)])


def align_theta_chunks(model: WideDeepIRT, chunks: Callable[[], Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]]]
                       ) -> tuple[float, float]:
    """align_theta on responses given a chunk at a time: `chunks()` yields (theta, item, y) arrays, a fresh pass
    each call; the objective is their mean loss, each chunk's gradient taken in turn."""
    shift0, scale0 = model.theta_shift.clone(), model.theta_scale.clone()
    scale, shift = torch.ones((), requires_grad=True), torch.zeros((), requires_grad=True)
    n = sum(len(c[2]) for c in chunks())

    def evaluate(backward: bool) -> torch.Tensor:
        total = torch.zeros(())
        for theta, item, y in chunks():
            raw = (torch.as_tensor(theta, dtype=torch.float32) - shift0) / scale0
            p = model.probability(scale * raw + shift, torch.as_tensor(item, dtype=torch.long)).clamp(1e-6, 1 - 1e-6)
            loss = F.binary_cross_entropy(p, torch.as_tensor(y, dtype=torch.float32)) * (len(y) / n)
            if backward:
                loss.backward()
            total = total + loss.detach()
        return total

    with _gradients_only_for(model, []):
        _lbfgs([scale, shift], evaluate, 100, "theta alignment")
    scale, shift = scale.item(), shift.item()
    model.theta_scale.fill_(scale)
    model.theta_shift.fill_(shift)
    log.info("deep theta on the calibrated scale: %.3f * theta + %.3f", scale, shift)
    return scale, shift
