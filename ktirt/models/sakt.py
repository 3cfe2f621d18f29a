"""SAKT (Pandey & Karypis, 2019): self-attentive knowledge tracing, in plain torch, made for sparse,
multi-skill real data.

The response at position p is predicted by letting the *query* (the item about to be answered) attend
causally over the *interactions* before it: key p is the interaction just before response p (a learned
start token before a student's first response), so query p sees keys 0..p.

What it adds to the paper's model, each a `model.*` setting chosen on the `skill_builder` world:
- **skills**: a response carries up to K skills (`model.multi_skill`); their embeddings are averaged, so a
  multi-skill problem is neither reduced to one skill nor counted twice.
- **item difficulty** (`model.item_difficulty`): every item seen in training gets a scalar of its own
  (the Rasch-style embedding of AKT: skill embedding + item scalar x the skill's variation vector, and the
  same scalar as a bias on the logit), shrunk toward 0 (its skills) by a Gaussian prior of precision
  `model.item_prior`, so an item answered 3 times is neither ignored nor over-fitted. Items answered at
  least `model.min_item_count` times also get a full embedding of their own; unseen items use their skills.
- **clickstream** (`model.clickstream`): a past interaction carries its response's help request,
  attempts and latency band (never the target's).
- **recency** (`model.recency`): each head subtracts a learned slope x log(1 + distance) from its
  attention scores, so recent practice weighs more (forgetting).
- **practice** (`model.practice`): the query carries, per skill, how often the student has practised it
  and whether the last attempt was right: counts that attention (a weighted average) cannot form itself.
- **question keys** (`model.question_keys`): attention compares the question asked with the questions
  answered before (AKT, simpleKT), and reads the interactions as values; the paper's SAKT keys on the
  interactions, so whether a past answer was right changes where it looks, not only what it reads.

Dropout sits on the input embeddings and after the attention and feed-forward sublayers, not on the
attention weights: that keeps torch's fused attention on CPU (bench/sakt_vs_pykt.py).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from ktirt.models.dropout import Dropout
from ktirt.settings import ModelSettings, Section, derive

START = 2  # response code of the start token (0/1 are wrong/right)
INPUTS = ("k_item", "k_diff", "k_skill", "k_resp", "k_click", "q_item", "q_diff", "q_skill", "q_practice")
"""Model inputs (batch, T[, K]): item (own embedding, 0 = none), diff (item difficulty index, 0 = none),
skill (model skill indices, 0 = none), resp (0/1, START, -1 pad), click (clickstream code, 0 = none),
practice (per skill slot: the student's attempts so far x last outcome on it, 0 = none)."""


class _Sizes(Section):
    """The network's vocabulary sizes (not settings: the data give them)."""

    n_items: int = Field(description="items with an embedding of their own + 1 (index 0 = none)")
    n_skills: int = Field(description="model skill vocabulary, index 0 = none")
    n_diff: int = Field(1, description="items with a difficulty of their own + 1 (index 0 = none)")
    n_clicks: int = Field(1, description="clickstream codes + 1 (index 0 = none)")
    n_practice: int = Field(1, description="practice codes + 1 (index 0 = none)")

    def to_dict(self) -> dict:
        return self.model_dump()


ARCHITECTURE = ("emb_size", "num_heads", "num_blocks", "dropout", "seq_len", "recency", "question_keys", "deep_head")
"""the model.* settings the network is built from (the others choose its inputs: ModelVocab, the item prior)"""
SAKTConfig = derive("SAKTConfig", ModelSettings, ARCHITECTURE, base=_Sizes, rules=True,
                    doc="The network: its vocabulary sizes and the model.* settings of ARCHITECTURE, their types, "
                        "defaults and rules (`SAKTConfig.of(model_settings, n_items=..., ...)`).")


class CausalCrossAttention(nn.Module):
    def __init__(self, d: int, heads: int, recency: bool):
        super().__init__()
        self.heads = heads
        self.q, self.kv, self.out = nn.Linear(d, d), nn.Linear(d, 2 * d), nn.Linear(d, d)
        # softplus(-2) ~ 0.13 per log-distance unit: a mild initial preference for recent interactions
        self.slope = nn.Parameter(torch.full((heads,), -2.0)) if recency else None

    def forward(self, query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor | None = None) -> torch.Tensor:
        """`values` None: keys and values both come from `keys` (the paper's SAKT)."""
        b, t, d = query.shape
        q = self.q(query).view(b, t, self.heads, d // self.heads).transpose(1, 2)
        if values is None:
            k, v = self.kv(keys).view(b, t, 2, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        else:
            w_k, w_v = self.kv.weight.chunk(2)
            b_k, b_v = self.kv.bias.chunk(2)
            k = F.linear(keys, w_k, b_k).view(b, t, self.heads, d // self.heads).transpose(1, 2)
            v = F.linear(values, w_v, b_v).view(b, t, self.heads, d // self.heads).transpose(1, 2)
        if self.slope is None:
            h = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            h = F.scaled_dot_product_attention(q, k, v, attn_mask=self._recency_mask(t, query.device))
        return self.out(h.transpose(1, 2).reshape(b, t, d))

    def _recency_mask(self, t: int, device) -> torch.Tensor:
        pos = torch.arange(t, device=device)
        dist = (pos[:, None] - pos[None, :]).float()
        bias = -F.softplus(self.slope)[:, None, None] * torch.log1p(dist.clamp(min=0))
        return bias.masked_fill(dist < 0, -math.inf)


class Block(nn.Module):
    """Attention -> dropout -> residual -> norm, then feed-forward -> dropout -> residual -> norm."""

    def __init__(self, d: int, heads: int, dropout: float, recency: bool):
        super().__init__()
        self.attn = CausalCrossAttention(d, heads, recency)
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.ffn = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, d))
        self.drop = Dropout(dropout)

    def forward(self, query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor | None = None) -> torch.Tensor:
        h = self.norm1(query + self.drop(self.attn(query, keys, values)))
        return self.norm2(h + self.drop(self.ffn(h)))


def skill_mean(table: nn.Embedding, index: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Mean embedding over a response's skills: index (..., K), present (..., K) -> (..., d). Without gradients
    (scoring, evaluation) a weighted bag sum (F.embedding_bag): the same numbers, bit for bit, without the
    (..., K, d) tensor of gathered embeddings (0.34 GB, twice, when the export scored 13 x 128 windows a pass).
    Training keeps the gather: with it the trained weights moved in the last bits (the bag's backward sums a
    skill's gradients in another order), enough to change DKT's early stop on the default."""
    w = present.to(table.weight.dtype)
    if torch.is_grad_enabled():
        bag = (table(index) * w.unsqueeze(-1)).sum(-2)
    else:
        k = index.shape[-1]
        bag = F.embedding_bag(index.reshape(-1, k), table.weight, per_sample_weights=w.reshape(-1, k), mode="sum",
                              padding_idx=table.padding_idx).view(*index.shape[:-1], -1)
    return bag / w.sum(-1, keepdim=True).clamp(min=1.0)


class SAKT(nn.Module):
    def __init__(self, cfg: SAKTConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.emb_size
        self.item_query = nn.Embedding(cfg.n_items, d, padding_idx=0)
        self.item_interaction = nn.Embedding(3 * cfg.n_items, d)
        self.skill_query = nn.Embedding(cfg.n_skills, d)
        self.skill_interaction = nn.Embedding(3 * cfg.n_skills, d)
        self.skill_variation = nn.Embedding(cfg.n_skills, d)
        self.interaction_variation = nn.Embedding(3 * cfg.n_skills, d)
        self.difficulty = nn.Embedding(cfg.n_diff, 1)
        self.item_bias = nn.Embedding(cfg.n_diff, 1)
        self.skill_bias = nn.Embedding(cfg.n_skills, 1)
        self.click = nn.Embedding(cfg.n_clicks, d)
        self.practice = nn.Embedding(cfg.n_practice, d, padding_idx=0)
        self.position = nn.Embedding(cfg.seq_len, d)
        self.blocks = nn.ModuleList(Block(d, cfg.num_heads, cfg.dropout, cfg.recency) for _ in range(cfg.num_blocks))
        self.drop = Dropout(cfg.dropout)
        self.head = (nn.Sequential(nn.Linear(2 * d, d), nn.ReLU(), Dropout(cfg.dropout), nn.Linear(d, 1))
                     if cfg.deep_head else nn.Linear(d, 1))
        with torch.no_grad():
            for scalar in (self.difficulty, self.item_bias, self.skill_bias):
                nn.init.zeros_(scalar.weight)
            self.item_query.weight[0].zero_()
            self.item_interaction.weight[:3].zero_()  # items without their own embedding: skills alone
            self.click.weight[0].zero_()

    def forward(self, t: dict[str, torch.Tensor]) -> torch.Tensor:
        """Logits (batch, T): position p predicts response p from keys 0..p (see INPUTS)."""
        r = t["k_resp"].clamp(min=0)
        k_skill, q_skill = t["k_skill"], t["q_skill"]
        k_has, q_has = k_skill > 0, q_skill > 0
        k_sr = 3 * k_skill + r.unsqueeze(-1)
        k_diff = self.difficulty(t["k_diff"])
        x = (skill_mean(self.skill_interaction, k_sr, k_has) + k_diff * skill_mean(self.interaction_variation, k_sr, k_has)
             + self.item_interaction(3 * t["k_item"] + r) + self.click(t["k_click"]))
        position = self.position.weight[: r.shape[1]]
        x = self.drop(x + position)
        practice = t["q_practice"]
        question = self._question(t["q_item"], t["q_diff"], q_skill) + skill_mean(self.practice, practice, practice > 0)
        h = question
        keys = self.drop(self._question(t["k_item"], t["k_diff"], k_skill) + position) if self.cfg.question_keys else x
        for block in self.blocks:
            h = block(h, keys, x if self.cfg.question_keys else None)
        bias = self.item_bias(t["q_diff"]) + skill_mean(self.skill_bias, q_skill, q_has)
        return (self.head(torch.cat([h, question], -1) if self.cfg.deep_head else h) + bias).squeeze(-1)

    def _question(self, item: torch.Tensor, diff: torch.Tensor, skill: torch.Tensor) -> torch.Tensor:
        """A question's embedding: its skills (mean) + its difficulty x their variation + its own embedding."""
        has = skill > 0
        return (skill_mean(self.skill_query, skill, has) + self.difficulty(diff) * skill_mean(self.skill_variation, skill, has)
                + self.item_query(item))

    def prior_penalty(self, precision: float) -> torch.Tensor:
        """Gaussian prior on the item scalars (-log density up to a constant): divide by the number of
        training targets and add to the mean loss, so each item's estimate is shrunk by its evidence."""
        return 0.5 * precision * (self.difficulty.weight.square().sum() + self.item_bias.weight.square().sum())
