"""The embedded default: a seeded simulator that writes the EDM Cup 2023 tables from a known generative
model (see `world` and `responses` for the model), with its ground truth in `_truth/`."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from ktirt.simulate.config import SimulationConfig
from ktirt.simulate.edm_tables import write_tables
from ktirt.simulate.responses import simulate_clickstream
from ktirt.simulate.world import build_world

__all__ = ["SimulationConfig", "simulate"]
log = logging.getLogger(__name__)


def simulate(cfg: SimulationConfig, out_dir: str | Path) -> dict:
    """Write the EDM Cup 2023 files for `cfg` into `out_dir` (which must not exist yet); return counts."""
    rng = np.random.default_rng(cfg.seed)
    world = build_world(cfg, rng)
    clicks = simulate_clickstream(cfg, world, rng)
    out = Path(out_dir)
    counts = write_tables(world, clicks, out, rng, cfg.evaluation_fraction)
    (out / "_truth" / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")
    counts |= {"students": cfg.n_students, "drifting_items": int(world.items["drift"].sum())}
    log.info("simulated %s", ", ".join(f"{k}={v}" for k, v in counts.items()))
    return counts
