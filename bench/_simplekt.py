"""simpleKT (Liu et al., "simpleKT: a simple but tough-to-beat baseline for knowledge tracing", ICLR 2023),
written here from the paper because pykt-toolkit 0.0.38, PyPI's latest, ships no simpleKT.

What the paper specifies, with pyKT's default embedding type ("qid"):
- Rasch-style question embedding (AKT's): x_t = c_{k_t} + mu_{q_t} * d_{k_t}, a concept embedding plus the
  question's difficulty vector (zero at the start) times the concept's variation vector; the interaction is
  the concept embedding plus a response embedding.
- Ordinary scaled dot-product attention (no monotonic decay, no context-aware encoders): queries and keys are
  the question embeddings (one shared projection), values the interaction embeddings, each position attending
  to strictly earlier ones; sinusoidal positions; post-norm residual blocks with a feed-forward layer.
- Prediction: an MLP over [knowledge state h_t ; question embedding x_t].

It takes pyKT's calling convention (a dict of qseqs / cseqs / rseqs and their shifted copies) so the benchmark
trains it exactly like pyKT's models."""

from __future__ import annotations

import math

import torch
from torch import nn


def sinusoid(length: int, dim: int) -> torch.Tensor:
    pos = torch.arange(length, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2], table[:, 1::2] = torch.sin(pos * freq), torch.cos(pos * freq)
    return table


class StrictlyCausalBlock(nn.Module):
    """Attention over strictly earlier positions (the first position reads nothing), then a feed-forward layer."""

    def __init__(self, d_model: int, d_ff: int, heads: int, dropout: float):
        super().__init__()
        self.heads, self.d_head = heads, d_model // heads
        self.qk, self.v, self.out = (nn.Linear(d_model, d_model) for _ in range(3))
        self.ff = nn.Sequential(nn.Linear(d_model, d_ff), nn.ReLU(), nn.Dropout(dropout), nn.Linear(d_ff, d_model))
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        for layer in (self.qk, self.v):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
        self.drop1, self.drop2, self.drop_attn = nn.Dropout(dropout), nn.Dropout(dropout), nn.Dropout(dropout)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        return x.view(b, n, self.heads, self.d_head).transpose(1, 2)

    def forward(self, query: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        b, n, d = query.shape
        q = k = self._split(self.qk(query))
        v = self._split(self.v(values))
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.d_head)
        earlier = torch.ones(n, n, dtype=torch.bool, device=query.device).tril(-1)
        scores = scores.masked_fill(~earlier, float("-inf"))
        weights = torch.softmax(scores.masked_fill(~earlier.any(-1, keepdim=True), 0.0), dim=-1)
        weights = weights * earlier.any(-1, keepdim=True)  # the first position attends to nothing
        attended = (self.drop_attn(weights) @ v).transpose(1, 2).reshape(b, n, d)
        x = self.norm1(query + self.drop1(self.out(attended)))
        return self.norm2(x + self.drop2(self.ff(x)))


class SimpleKT(nn.Module):
    def __init__(self, num_c: int, num_q: int, d_model: int = 256, d_ff: int = 256, num_attn_heads: int = 4,
                 n_blocks: int = 2, dropout: float = 0.1, final_fc_dim: int = 256, final_fc_dim2: int = 256,
                 seq_len: int = 200):
        super().__init__()
        self.concept, self.concept_var = nn.Embedding(num_c, d_model), nn.Embedding(num_c, d_model)
        self.response = nn.Embedding(2, d_model)
        self.difficulty = nn.Embedding(num_q + 1, d_model)
        nn.init.zeros_(self.difficulty.weight)
        self.register_buffer("positions", sinusoid(seq_len, d_model), persistent=False)
        self.blocks = nn.ModuleList(StrictlyCausalBlock(d_model, d_ff, num_attn_heads, dropout) for _ in range(n_blocks))
        self.head = nn.Sequential(
            nn.Linear(2 * d_model, final_fc_dim), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(final_fc_dim, final_fc_dim2), nn.ReLU(), nn.Dropout(dropout), nn.Linear(final_fc_dim2, 1))

    def forward(self, batch: dict) -> torch.Tensor:
        """P(correct) at every position of the full windows; position t reads responses before t only."""
        q = torch.cat([batch["qseqs"][:, :1], batch["shft_qseqs"]], 1)
        c = torch.cat([batch["cseqs"][:, :1], batch["shft_cseqs"]], 1)
        r = torch.cat([batch["rseqs"][:, :1], batch["shft_rseqs"]], 1).long()
        mu = self.difficulty(q)
        x = self.concept(c) + mu * self.concept_var(c)
        y = self.concept(c) + self.response(r)
        pos = self.positions[: x.shape[1]]
        h, y = x + pos, y + pos
        for block in self.blocks:
            h = block(h, y)
        return torch.sigmoid(self.head(torch.cat([h, x], -1)).squeeze(-1))
