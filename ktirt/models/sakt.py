"""SAKT (Pandey & Karypis, 2019): self-attentive knowledge tracing, in plain torch.

The response at position p is predicted by letting the *query* (the item about to be answered) attend
causally over the *interactions* before it: key p is the interaction just before response p (a learned
start token before a student's first response), so query p sees keys 0..p. Items carry their own
embedding **plus** their skill's, and items seen fewer than `min_item_count` times in training use the
skill's alone (item index 0), so cold and unseen items still get a sensible prediction. A per-item and
per-skill bias is added to the output logit.

Dropout sits on the input embeddings and after the attention and feed-forward sublayers, not on the
attention weights: that lets torch use its fused (flash) attention on CPU, and it is most of why this
trains faster than pyKT's SAKT (bench/sakt_vs_pykt.py).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

START = 2  # response code of the start token (0/1 are wrong/right)


@dataclass
class SAKTConfig:
    n_items: int
    """model item vocabulary, index 0 = cold/unknown (no own embedding)"""
    n_skills: int
    """model skill vocabulary, index 0 = none"""
    emb_size: int = 64
    num_heads: int = 4
    num_blocks: int = 1
    dropout: float = 0.2
    seq_len: int = 200

    def to_dict(self) -> dict:
        return asdict(self)


class CausalCrossAttention(nn.Module):
    def __init__(self, d: int, heads: int, dropout: float):
        super().__init__()
        if d % heads:
            raise ValueError(f"model.emb_size={d} must be divisible by model.num_heads={heads}")
        self.heads, self.dropout = heads, dropout
        self.q, self.kv, self.out = nn.Linear(d, d), nn.Linear(d, 2 * d), nn.Linear(d, d)

    def forward(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        b, t, d = query.shape
        q = self.q(query).view(b, t, self.heads, d // self.heads).transpose(1, 2)
        k, v = self.kv(keys).view(b, t, 2, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        h = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.out(h.transpose(1, 2).reshape(b, t, d))


class Block(nn.Module):
    """Attention -> dropout -> residual -> norm, then feed-forward -> dropout -> residual -> norm."""

    def __init__(self, d: int, heads: int, dropout: float):
        super().__init__()
        self.attn = CausalCrossAttention(d, heads, dropout)
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.ffn = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, d))
        self.drop = nn.Dropout(dropout)

    def forward(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        h = self.norm1(query + self.drop(self.attn(query, keys)))
        return self.norm2(h + self.drop(self.ffn(h)))


class SAKT(nn.Module):
    def __init__(self, cfg: SAKTConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.emb_size
        self.item_query = nn.Embedding(cfg.n_items, d, padding_idx=0)
        self.skill_query = nn.Embedding(cfg.n_skills, d, padding_idx=0)
        self.item_interaction = nn.Embedding(3 * cfg.n_items, d)
        self.skill_interaction = nn.Embedding(3 * cfg.n_skills, d)
        self.position = nn.Embedding(cfg.seq_len, d)
        self.blocks = nn.ModuleList(Block(d, cfg.num_heads, cfg.dropout) for _ in range(cfg.num_blocks))
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(d, 1)
        self.item_bias = nn.Embedding(cfg.n_items, 1)
        self.skill_bias = nn.Embedding(cfg.n_skills, 1)
        for bias in (self.item_bias, self.skill_bias):
            nn.init.zeros_(bias.weight)
        with torch.no_grad():
            self.item_query.weight[0].zero_()
            self.item_interaction.weight[:3].zero_()  # cold items interact through their skill alone

    def forward(self, k_item, k_skill, k_resp, q_item, q_skill) -> torch.Tensor:
        """Logits (batch, T): position p predicts response p from keys 0..p. k_resp: 0/1, START, or -1 (pad)."""
        r = k_resp.clamp(min=0)
        x = self.item_interaction(3 * k_item + r) + self.skill_interaction(3 * k_skill + r)
        t = q_item.shape[1]
        x = self.drop(x + self.position.weight[:t])
        h = self.item_query(q_item) + self.skill_query(q_skill)
        for block in self.blocks:
            h = block(h, x)
        return (self.head(h) + self.item_bias(q_item) + self.skill_bias(q_skill)).squeeze(-1)
