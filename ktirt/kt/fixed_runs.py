"""Scoring windows in runs of a fixed size across the edges of the batches of students they come from, and routing
the scores back to each batch's rows: a model's arithmetic may depend on what else is in its batch, so scoring
a log batch by batch gives the numbers of one pass over the whole log only when the runs do not follow the
batches (DKT's predictions, the export's predictions and mastery)."""

from __future__ import annotations

from collections import deque
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import torch

from ktirt.kt.window_sets import Tensors


def in_fixed_runs(parts: Iterable[tuple[Any, int, Tensors]], size: int,
                  score: Callable[[Tensors], Iterable[tuple[np.ndarray, np.ndarray]]]) -> Iterator[tuple[Any, np.ndarray]]:
    """Each part's payload with the values `score` gave each of its rows ((rows, columns); the first column must be
    finite), once all its rows are scored. `parts`: (payload, rows, windows), the windows' indices numbering the rows
    across the parts in order; `score` maps a run of windows to (row indices, values) pairs. The windows are scored
    in runs of `size` across the parts' edges; every row must be scored exactly once."""
    waiting: deque = deque()  # [payload, first global row, values or None, rows still to score]
    seen = 0

    def windows() -> Iterator[Tensors]:
        nonlocal seen
        for payload, rows, t in parts:
            waiting.append([payload, seen, None, rows])
            seen += rows
            yield t
            del t  # not held while the next part is made

    for chunk in _rechunked(windows(), size):
        for index, values in score(chunk):
            _route(waiting, index, values.reshape(len(index), -1))
        del chunk  # a view of its part: not held while the next part is made
        yield from _finished(waiting)
    yield from _finished(waiting)  # a last part without rows
    if waiting:
        raise RuntimeError("a response was not scored exactly once")  # guards the windowing invariant


def _route(waiting: deque, index: np.ndarray, values: np.ndarray) -> None:
    """Scores of global rows `index` into the waiting parts that hold those rows."""
    starts = np.array([w[1] for w in waiting])
    part = np.searchsorted(starts, index, side="right") - 1
    for k in np.unique(part):
        w, mine = waiting[k], part == k
        if w[2] is None:
            w[2] = np.full((w[3], values.shape[1]), np.nan)
        w[2][index[mine] - w[1]] = values[mine]
        w[3] -= int(mine.sum())


def _finished(waiting: deque) -> Iterator[tuple[Any, np.ndarray]]:
    """The parts at the front whose rows are all scored, in order, each then let go."""
    while waiting and waiting[0][3] == 0:
        payload, _, values, _ = waiting.popleft()
        if values is not None and np.isnan(values[:, 0]).any():  # as many scores as rows, yet one row unscored
            raise RuntimeError("a response was not scored exactly once")  # guards the windowing invariant
        yield payload, values if values is not None else np.zeros((0, 1))
        del payload, values  # not held while the next part is scored


def _rechunked(parts: Iterable[Tensors], size: int) -> Iterator[Tensors]:
    """The parts' windows in order, regrouped into runs of a multiple of `size` (the last one shorter). A run is a
    view of its part where it can be; the few windows carried to the next part are copied, so a part is freed
    once its runs are scored."""
    carry: Tensors | None = None
    for t in parts:
        n, start = len(t["score"]), 0
        if carry is not None:
            need = size - len(carry["score"])
            if n < need:
                carry = {k: torch.cat([carry[k], v]) for k, v in t.items()}
                continue
            yield {k: torch.cat([carry[k], v[:need]]) for k, v in t.items()}
            start, carry = need, None
        full = start + (n - start) // size * size
        if full > start:
            yield {k: v[start:full] for k, v in t.items()}
        if full < n:
            carry = {k: v[full:].clone() for k, v in t.items()}
        del t  # not held while the next part is made
    if carry is not None and len(carry["score"]):
        yield carry
