"""Floats the simulator writes, made the same on every x86-64 CPU, so `data/raw/synthetic` has one hash.

numpy computes `exp`, `log` and `log1p` with SIMD code it picks by CPU (AVX-512, AVX2, baseline), and the
variants disagree in the last bit or two for a few per cent of values (measured at the default scale with
`NPY_DISABLE_CPU_FEATURES="AVX512F AVX512_SKX"`: 5 % of latencies, 4 % of `p_solve`, 6 % of discriminations).
Written as they are, those floats give `_truth/*.parquet` another hash on another machine; added up into
timestamps they can move a written millisecond. So every float the simulator writes, or sums into something
it writes, goes through `portable` first, rounded to what it means:

- `PROBABILITY` (6 decimals): probabilities; 1e-6 is far below any AUC or calibration difference we report.
- `PARAMETER` (4 decimals): abilities, difficulties, discriminations, rates, in logits or similar units;
  1e-4 is far below any estimate's standard error (and matches the text vectors' 4 decimals).
- `SECONDS` (3 decimals): durations; the release records times to the millisecond.

Why a decimal grid and not float32: rounding is multiply, round-half-even, divide, each exact IEEE
arithmetic, so equal inputs give equal outputs everywhere; and the coarser the grid, the rarer a flip. The
residual risk: two variants a few ulp apart round apart only when the exact value lies within those few
ulp of a grid midpoint, about 4 * 2**-52 * |x| / 10**-decimals per differing value (4e-10 for a
probability at 1e-6, 4e-11 for a latency of 30 s at 1e-3); summed over the default run's values that
differ, below 1e-4 per run. What this cannot cover: the C library's own `exp`/`log`, which numpy's
random generators use in rare tail draws (a different libm could change a draw; none was seen).

New simulators (e.g. a `skill_builder` world beside this one) should pass their written floats through
`portable` with these constants.
"""

from __future__ import annotations

import numpy as np

PROBABILITY = 6
PARAMETER = 4
SECONDS = 3


def portable(values, decimals: int) -> np.ndarray:
    """`values` as float64 rounded to `decimals` decimals (NaN stays NaN): identical bits on every CPU
    whenever the inputs differ only in their last few bits."""
    return np.round(np.asarray(values, dtype=np.float64), decimals)
