"""A split's model windows held as shards: in memory while they fit one shard, else on disk and read back one
shard at a time, so training memory is the model, the optimizer and a shard or two, not the log.

A shard is a dict of window tensors (ktirt.kt.sakt_training.window_tensors). Shards are cut between batches of
whole students (ktirt/kt/window_build.py) once they hold `shard_windows` windows. One shard is exactly the
in-memory windows of before: the epoch's order is one `randperm` over them. With several, an epoch visits the
shards in a shuffled order and each shard's windows in a shuffled order (what streaming loaders do), so each
shard is read once per epoch.

Under torchrun every rank cuts its shards at the same global windows and holds its own students' windows of
each (`owned`, per global window), so every rank walks the same global order (ktirt/training.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

Tensors = dict[str, torch.Tensor]
STORED = {"k_resp": torch.int8, "target": torch.int8, "index": torch.int64, "score": torch.bool}
"""how a shard keeps each input (every other one as int32: vocabulary indices and codes); `widened` gives the
model's types back, the same values"""


def stored(t: Tensors) -> Tensors:
    """Window tensors in their compact stored types (about half the bytes)."""
    return {k: v.to(STORED.get(k, torch.int32)) for k, v in t.items()}


def widened(t: Tensors) -> Tensors:
    """Window tensors as the model reads them: indices and codes int64, the target float32."""
    return {k: v if v.dtype in (torch.bool, torch.int64) else v.to(torch.float32 if k == "target" else torch.int64)
            for k, v in t.items()}


@dataclass
class WindowSet:
    """One split's windows: `shards` (tensors, or the file they were saved to), each shard's windows on this rank
    (`sizes`) and on every rank (`global_sizes`), and per global window whether it is this rank's (`owned`,
    None in a single process)."""

    shards: list[Tensors | Path]
    sizes: np.ndarray
    global_sizes: np.ndarray
    owned: np.ndarray | None = None
    targets: int = 0
    """scored positions on this rank"""
    _cache: dict[int, Tensors] = field(default_factory=dict, repr=False)

    @classmethod
    def in_memory(cls, tensors: Tensors) -> "WindowSet":
        """One shard of windows already built (one process)."""
        n = len(tensors["score"])
        return cls([tensors], np.array([n]), np.array([n]), None, int(tensors["score"].sum()))

    def __len__(self) -> int:
        return int(self.sizes.sum())

    @property
    def n_global(self) -> int:
        """Windows over every rank: the examples an epoch's order runs over."""
        return int(self.global_sizes.sum())

    def order(self, gen: torch.Generator) -> torch.Tensor:
        """An epoch's order of the global windows: one permutation when one shard holds them all; else the shards
        in a shuffled order, each one's windows shuffled."""
        if len(self.shards) == 1:
            return torch.randperm(self.n_global, generator=gen)
        starts = np.r_[0, np.cumsum(self.global_sizes)[:-1]]
        parts = [int(starts[k]) + torch.randperm(int(self.global_sizes[k]), generator=gen)
                 for k in torch.randperm(len(self.shards), generator=gen).tolist()]
        return torch.cat(parts)

    def take(self, rows: torch.Tensor) -> Tensors:
        """The windows at this rank's `rows` (the shards they lie in are read; the last one read is kept, as an
        epoch's order runs through one shard after another)."""
        if len(self.shards) == 1:
            return widened({k: v[rows] for k, v in self._kept(0).items()})
        rows = rows.numpy() if isinstance(rows, torch.Tensor) else np.asarray(rows)
        starts = np.r_[0, np.cumsum(self.sizes)]
        which = np.searchsorted(starts, rows, side="right") - 1
        parts = []
        for k in np.unique(which):
            sel = which == k
            local = torch.as_tensor(rows[sel] - starts[k])
            parts.append((np.flatnonzero(sel), {n: v[local] for n, v in self._kept(int(k)).items()}))
        if len(parts) == 1:
            return widened(parts[0][1])
        back = torch.as_tensor(np.argsort(np.concatenate([p[0] for p in parts]), kind="stable"))
        return widened({n: torch.cat([p[1][n] for p in parts])[back] for n in parts[0][1]})

    def shard(self, k: int) -> Tensors:
        """Shard k's tensors (read from disk when saved there)."""
        held = self.shards[k]
        return torch.load(held, weights_only=True) if isinstance(held, Path) else held

    def _kept(self, k: int) -> Tensors:
        if k not in self._cache:
            self._cache.clear()  # before reading the next: one shard in memory
            self._cache[k] = self.shard(k)
        return self._cache[k]

    def chunks(self) -> Iterator[Tensors]:
        """Every shard in order, each read when it is reached and dropped after (for scoring; `widened` by the
        batch)."""
        for k in range(len(self.shards)):
            yield self.shard(k)
