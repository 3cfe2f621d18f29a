"""Item calibration with abilities held fixed: the wide part's maximum a posteriori fit, run to convergence.

Stochastic training stops when the *deep* part stops improving on validation students, which is early for
the per-item parameters: each sees only a small share of every batch. Once the abilities are fixed, the
wide part's likelihood (plus its priors) is a smooth, separable problem over all training responses at
once, which full-batch L-BFGS solves in seconds. This is the classic calibration step of IRT software
with known abilities; on the default simulation it raises the recovery of difficulty, discrimination and
guessing over the SGD estimates.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from ktirt.models.wdirt import WideDeepIRT

log = logging.getLogger(__name__)


def calibrate_items(model: WideDeepIRT, theta: np.ndarray, item: np.ndarray, y: np.ndarray, prior_strength: float,
                    max_iter: int = 300) -> float:
    """Refit the model's wide parameters in place on responses (theta, item, y); returns the final loss
    (mean negative log-likelihood plus the priors over the number of responses, as in training)."""
    wide = [model.skill_difficulty, model.item_offset, model.item_log_discrimination, model.item_guess_logit]
    frozen = {p: p.requires_grad for p in model.parameters()}
    for p in model.parameters():
        p.requires_grad_(any(p is w for w in wide))
    th = torch.as_tensor(theta, dtype=torch.float32)
    it = torch.as_tensor(item, dtype=torch.long)
    yy = torch.as_tensor(y, dtype=torch.float32)
    n = max(len(yy), 1)
    opt = torch.optim.LBFGS(wide, max_iter=max_iter, line_search_fn="strong_wolfe", tolerance_grad=1e-7,
                            tolerance_change=1e-10, history_size=20)

    def objective():
        p = model.probability(th, it).clamp(1e-6, 1 - 1e-6)
        return torch.nn.functional.binary_cross_entropy(p, yy) + model.prior_penalty(prior_strength) / n

    def closure():
        opt.zero_grad()
        loss = objective()
        loss.backward()
        return loss

    model.eval()
    with torch.no_grad():
        before = float(objective())
    opt.step(closure)
    with torch.no_grad():
        after = float(objective())
    for p, g in frozen.items():
        p.requires_grad_(g)
    log.info("item calibration with abilities fixed: loss %.5f -> %.5f on %d responses", before, after, len(yy))
    return after
