"""Ids shaped like EDM Cup 2023's: 9-10 character upper-case alphanumeric strings, all distinct."""

from __future__ import annotations

import numpy as np

_ALPHABET = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", dtype=np.uint8)


def random_ids(rng: np.random.Generator, n: int) -> np.ndarray:
    """`n` distinct ids (numpy unicode array), in random order."""
    out = np.empty(0, dtype="S10")
    while len(out) < n:
        k = int((n - len(out)) * 1.02) + 16
        chars = _ALPHABET[rng.integers(0, len(_ALPHABET), size=(k, 10))]
        chars[:, 0] = _ALPHABET[rng.integers(10, 36, size=k)]  # a letter first, so no id reads as a number
        chars[rng.random(k) < 0.5, 9] = 0  # trailing NUL: numpy drops it, giving a 9-character id
        fresh = np.ascontiguousarray(chars).view("S10").ravel()
        out = np.concatenate([out, fresh])
        _, first = np.unique(out, return_index=True)
        out = out[np.sort(first)]
    return out[:n].astype("U10")
