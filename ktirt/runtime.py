"""Where and how reproducibly torch runs: device choice and seeding shared by both engines."""

from __future__ import annotations

import numpy as np
import torch


def resolve_device(name: str) -> torch.device:
    """`auto`: CUDA when torch sees a GPU, else CPU; anything else is passed to torch."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int, threads: int) -> None:
    """Same settings, same numbers: seeded numpy and torch, a fixed thread count, and deterministic kernels
    (scatter-adds in embedding and index backward passes are otherwise summed in a racy order)."""
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
