"""Where and how reproducibly torch runs: device choice and seeding shared by both engines; and how much freed
memory a stage streaming the log gives back."""

from __future__ import annotations

import sys

import numpy as np
import torch

from ktirt.errors import SettingsError


def resolve_device(name: str) -> torch.device:
    """`auto`: CUDA when torch sees a GPU, else CPU; anything else is passed to torch, if this machine has it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    wrong = device_problem(name)
    if wrong:
        raise SettingsError(f"device: {wrong}")
    return torch.device(name)


def device_problem(name: str) -> str | None:
    """Why torch cannot run on `name` on this machine (None when it can): a one-line setting error rather
    than torch's traceback at the first tensor moved there."""
    dev = torch.device(name)
    if dev.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            return f"torch sees no CUDA GPU on this machine (use auto or cpu), got {name!r}"
        if (dev.index or 0) >= n:
            return f"this machine has {n} CUDA GPU(s), cuda:0 to cuda:{n - 1}, got {name!r}"
    if dev.type == "mps" and not torch.backends.mps.is_available():
        return f"torch sees no Apple MPS device on this machine (use auto or cpu), got {name!r}"
    return None


def seed_everything(seed: int, threads: int) -> None:
    """Same settings, same numbers: seeded numpy and torch, a fixed thread count, and deterministic kernels
    (scatter-adds in embedding and index backward passes are otherwise summed in a racy order)."""
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    deterministic_kernels()


def deterministic_kernels() -> None:
    """torch's deterministic-kernel flag. `torch.use_deterministic_algorithms` also sets the inductor compiler's
    option, and importing that compiler costs about 1.5 s in every stage; no stage compiles, so the flag alone
    is set, unless the compiler is already loaded (someone compiling gets its option set too)."""
    if "torch._inductor.config" in sys.modules:
        torch.use_deterministic_algorithms(True, warn_only=True)
    else:
        torch._C._set_deterministic_algorithms(True, warn_only=True)
