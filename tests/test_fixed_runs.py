"""Windows scored in fixed runs across the edges of the batches they come from, the scores routed back to each
batch's rows (ktirt/kt/fixed_runs.py): what keeps a batched pass's numbers those of one pass."""

import numpy as np
import pytest
import torch

from ktirt.kt.fixed_runs import in_fixed_runs


def _part(first: int, rows: int):
    """A part of `rows` rows (global rows first..), one window of one position per row, scoring it."""
    index = torch.arange(first, first + rows)[:, None]
    return {"index": index, "score": torch.ones_like(index, dtype=torch.bool)}


@pytest.mark.parametrize("sizes", [[5, 7, 3], [0, 4, 0, 9, 0], [8, 8], [1], [0]])
def test_every_row_gets_its_own_score_and_runs_keep_their_size(sizes):
    runs, first, parts = [], 0, []
    for k, n in enumerate(sizes):
        parts.append((f"part {k}", n, _part(first, n)))
        first += n

    def score(chunk):
        runs.append(len(chunk["score"]))
        index = chunk["index"][chunk["score"]].numpy()
        return [(index, np.stack([index * 10.0, -index], axis=1))]

    out = list(in_fixed_runs(iter(parts), 4, score))
    assert [p for p, _ in out] == [p for p, _, _ in parts]  # every part, in order, even one without rows
    first = 0
    for (_, values), n in zip(out, sizes):
        rows = np.arange(first, first + n)
        if n:
            assert np.array_equal(values, np.stack([rows * 10.0, -rows], axis=1))
        first += n
    assert all(r % 4 == 0 for r in runs[:-1])  # runs follow the size, not the parts' edges


def test_a_row_scored_twice_or_never_is_refused():
    parts = [("a", 3, _part(0, 2))]  # three rows, windows for two
    with pytest.raises(RuntimeError, match="exactly once"):
        list(in_fixed_runs(iter(parts), 4, lambda c: [(c["index"][c["score"]].numpy(), np.ones(2))]))
