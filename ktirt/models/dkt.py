"""DKT (Piech et al., 2015): deep knowledge tracing, a recurrent network over a student's interactions, in plain
torch; the blend's third member, of another family than SAKT (attention) and WD-IRT (item response theory).

It reads the inputs SAKT reads (`ktirt.models.sakt.INPUTS`, built by `ktirt.kt.sakt_training.window_tensors`),
so it trains, predicts and is scored on the same windows: position p predicts response p from the
interactions before it (key p is the one just before response p, a start token before a student's first). An
LSTM runs over the keys: each is the mean embedding of its skills paired with the outcome, plus its item's
difficulty scalar times a vector per outcome (a right answer to a hard item says more than one to an easy
item) and its clickstream code. The state after key p meets the question asked at p (its skills) in a small
MLP, whose logit gets the skills' biases added and the item's difficulty subtracted (every item seen in
training has one, shrunk toward 0 by a Gaussian prior, as SAKT's are). No attention and no item embeddings of
its own: what it knows of an item is that one number.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from ktirt.models.dropout import Dropout
from ktirt.models.sakt import skill_mean
from ktirt.settings import DKTSettings, Section, derive


class _Sizes(Section):
    """The network's vocabulary sizes (not settings: the data give them)."""

    n_skills: int = Field(description="model skill vocabulary, index 0 = none")
    n_diff: int = Field(1, description="items with a difficulty of their own + 1 (index 0 = none)")
    n_clicks: int = Field(1, description="clickstream codes + 1 (index 0 = none)")

    def to_dict(self) -> dict:
        return self.model_dump()


DKTConfig = derive("DKTConfig", DKTSettings, ("hidden", "dropout", "seq_len"), base=_Sizes,
                   doc="The network: its vocabulary sizes and the dkt.* settings it is built from.")


class DKT(nn.Module):
    def __init__(self, cfg: DKTConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.hidden
        self.interaction = nn.Embedding(3 * cfg.n_skills, d)
        self.response = nn.Embedding(3, d)
        self.hard_right = nn.Embedding(3, d)
        self.click = nn.Embedding(cfg.n_clicks, d)
        self.skill_query = nn.Embedding(cfg.n_skills, d)
        self.difficulty = nn.Embedding(cfg.n_diff, 1)
        self.skill_bias = nn.Embedding(cfg.n_skills, 1)
        self.lstm = nn.LSTM(d, d, batch_first=True)
        self.drop = Dropout(cfg.dropout)
        self.head = nn.Sequential(nn.Linear(2 * d, d), nn.ReLU(), Dropout(cfg.dropout), nn.Linear(d, 1))
        with torch.no_grad():
            for scalar in (self.difficulty, self.skill_bias):
                nn.init.zeros_(scalar.weight)
            self.click.weight[0].zero_()

    def forward(self, t: dict[str, torch.Tensor]) -> torch.Tensor:
        """Logits (batch, T): position p predicts response p from keys 0..p (ktirt.models.sakt.INPUTS; the
        item-embedding and practice inputs are not read). A window's padding trails it, so it never reaches an
        earlier position (torch's whole-window LSTM is 8x faster on a CPU than reading packed windows)."""
        r = t["k_resp"].clamp(min=0)
        k_skill, q_skill = t["k_skill"], t["q_skill"]
        x = (skill_mean(self.interaction, 3 * k_skill + r.unsqueeze(-1), k_skill > 0) + self.response(r)
             + self.difficulty(t["k_diff"]) * self.hard_right(r) + self.click(t["k_click"]))
        state, _ = self.lstm(self.drop(x))
        question = skill_mean(self.skill_query, q_skill, q_skill > 0)
        bias = skill_mean(self.skill_bias, q_skill, q_skill > 0) - self.difficulty(t["q_diff"])
        return (self.head(torch.cat([self.drop(state), question], -1)) + bias).squeeze(-1)

    def prior_penalty(self, precision: float) -> torch.Tensor:
        """Gaussian prior on the item difficulties (-log density up to a constant; ktirt.kt.sakt_training.fit
        divides it by the training targets)."""
        return 0.5 * precision * self.difficulty.weight.square().sum()
