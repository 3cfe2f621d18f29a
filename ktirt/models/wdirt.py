"""Wide & Deep IRT (after the EDM Cup 2023 model): a *deep* part turns a student's clickstream history into
an ability theta, and a *wide* 3PL part with per-item parameters turns theta into P(correct):

    theta = masked mean over history events e of score(e, context(target, e)) + MLP(whole-history summary)
    P     = c_i + (1 - c_i) * sigmoid(a_i * (theta - b_i))

score is an MLP of the event's own features (and its item's text embedding) with one output per context:
how the event stands to the target (recency bucket x shares a skill x same item, `pair_context`). So the
MLP runs once per distinct event of a batch, not once per (target, history event) pair, and each pair only
picks its context's output: the cost grows with events, not events x history, and the function class is
the one an MLP over [event features, one-hot context] has, one output per context value.
The summary (counts, mean correctness and mean residual over the student's whole earlier history, in all
and on the target's skills) is there because a mean cannot count and a window forgets: without it theta
could not tell a student's first problem on a skill from their twentieth.

b_i = mu_skills(i) + delta_i, where mu_skills(i) is the mean difficulty of the item's skills (all of them, for a
multi-skill problem), with a Gaussian prior on delta_i (strength `prior_strength`) so items with few
responses shrink toward their skills' mean difficulty and items never seen get exactly it; weaker priors of
the same strength hold a_i near 1 and c_i near 0.2 until the data say otherwise. The skills' mean difficulties
shrink in turn toward their mean over skills (strength `skill_prior_strength`), so a skill whose every
response is wrong (or right) gets a finite difficulty, not one that runs off with its items. a_i is positive
(softplus; fixed at 1 with `discrimination=False`), and c_i in [0, 0.5) only for guessable item types.
"""

from __future__ import annotations


import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from ktirt.models.dropout import Dropout
from ktirt.models.three_pl import GUESS_CEILING, GUESS_PRIOR_LOGIT, LOG2
from ktirt.settings import Section, WDIRTSettings, derive

GUESSABLE_TYPES = ("Multiple Choice", "Check All That Apply", "Ordering")


class _Sizes(Section):
    """The network's sizes (not settings: the data and the features give them)."""

    n_items: int = Field(description="items in the catalogue")
    n_skills: int = Field(description="skills in the catalogue")
    n_features: int = Field(description="static features per history event (the text embedding comes separately)")
    n_contexts: int = Field(1, description="how a history event can stand to the target (features.history.N_CONTEXTS): "
                            "one score output each")
    text_dim: int = Field(0, description="item text embedding size")
    n_summary: int = Field(0, description="whole-history summary features")

    def to_dict(self) -> dict:
        return self.model_dump()


WDIRTConfig = derive("WDIRTConfig", WDIRTSettings, ("hidden", "dropout", "discrimination"), base=_Sizes,
                     doc="The network: its sizes and the wdirt.* settings it is built from (types, defaults).")


class WideDeepIRT(nn.Module):
    def __init__(self, cfg: WDIRTConfig, item_skills: torch.Tensor, guessable: torch.Tensor, item_text: torch.Tensor):
        """item_skills: each item's skill index (n_items,), or all of them (n_items, K) padded with -1."""
        super().__init__()
        self.cfg = cfg
        codes = item_skills.long().reshape(len(item_skills), -1)
        self.register_buffer("item_skills", codes.clamp(min=0))
        self.register_buffer("item_skill_weight", (codes >= 0).float() / (codes >= 0).sum(1, keepdim=True).clamp(min=1))
        self.register_buffer("guessable", guessable.float())
        self.register_buffer("item_text", item_text.float())
        self.event_in = nn.Linear(cfg.n_features, cfg.hidden)
        self.text_in = nn.Linear(cfg.text_dim, cfg.hidden, bias=False)
        self.event_mlp = nn.Sequential(
            nn.ReLU(), Dropout(cfg.dropout), nn.Linear(cfg.hidden, cfg.hidden), nn.ReLU(),
            nn.Linear(cfg.hidden, cfg.n_contexts),
        )
        self.summary_mlp = nn.Sequential(nn.Linear(cfg.n_summary, 32), nn.ReLU(), nn.Linear(32, 1))
        self.theta0 = nn.Parameter(torch.zeros(1))  # ability with no history
        # set by calibration (ktirt.irt.calibration.align_theta): puts theta on the calibrated items' scale
        self.register_buffer("theta_scale", torch.ones(()))
        self.register_buffer("theta_shift", torch.zeros(()))
        self.skill_difficulty = nn.Parameter(torch.zeros(cfg.n_skills))
        self.item_offset = nn.Parameter(torch.zeros(cfg.n_items))
        self.item_log_discrimination = nn.Parameter(torch.zeros(cfg.n_items))
        self.item_guess_logit = nn.Parameter(torch.full((cfg.n_items,), GUESS_PRIOR_LOGIT))

    # the wide part's parameters, as a user reads them
    def skill_mean_difficulty(self) -> torch.Tensor:
        """Per item: the mean difficulty of its skills, where its prior centres it."""
        return (self.skill_difficulty[self.item_skills] * self.item_skill_weight).sum(-1)

    def difficulty(self, item: torch.Tensor | None = None) -> torch.Tensor:
        b = self.skill_mean_difficulty() + self.item_offset
        return b if item is None else b[item]

    def discrimination(self, item: torch.Tensor | None = None) -> torch.Tensor:
        a = F.softplus(self.item_log_discrimination) / LOG2 if self.cfg.discrimination \
            else torch.ones_like(self.item_log_discrimination)
        return a if item is None else a[item]

    def guessing(self, item: torch.Tensor | None = None) -> torch.Tensor:
        c = GUESS_CEILING * torch.sigmoid(self.item_guess_logit) * self.guessable
        return c if item is None else c[item]

    def theta(self, features: torch.Tensor, event_item: torch.Tensor, local: torch.Tensor, context: torch.Tensor,
              mask: torch.Tensor, summary: torch.Tensor) -> torch.Tensor:
        """features (U, F) and event_item (U,) of the batch's distinct history events; local (B, H) each history
        slot's row among them, context (B, H) its pair_context code, mask (B, H); summary (B, n_summary) -> (B,)."""
        text = self.text_in(self.item_text)  # (n_items, hidden), once per batch
        per_event = self.event_mlp(self.event_in(features) + text[event_item])  # (U, n_contexts)
        score = per_event.reshape(-1)[local * self.cfg.n_contexts + context]
        m = mask.float()
        n = m.sum(1)
        mean = torch.where(n > 0, (score * m).sum(1) / n.clamp(min=1), self.theta0.expand_as(n))
        return self.theta_scale * (mean + self.summary_mlp(summary).squeeze(-1)) + self.theta_shift

    def probability(self, theta: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        c = self.guessing(item)
        return c + (1 - c) * torch.sigmoid(self.discrimination(item) * (theta - self.difficulty(item)))

    def prior_penalty(self, strength: float, skill_strength: float) -> torch.Tensor:
        """Negative log of the Gaussian priors: item offsets toward their skills' mean, log-discriminations
        toward 1, and guessing floors (of guessable items) toward 0.2, as IRT software puts priors on them; and
        skills' mean difficulties toward their mean over skills (`skill_strength`), without which a skill whose
        responses are all wrong or all right runs off with its items."""
        guess = ((self.item_guess_logit - GUESS_PRIOR_LOGIT) * self.guessable).pow(2).sum()
        skills = (self.skill_difficulty - self.skill_difficulty.mean()).pow(2).sum()
        items = self.item_offset.pow(2).sum() + self.item_log_discrimination.pow(2).sum() + guess
        return 0.5 * (strength * items + skill_strength * skills)
