"""The embedded default: a seeded simulator that writes the EDM Cup 2023 tables from a known generative
model (see `world` and `responses` for the model), with its ground truth in `_truth/`. `profile:
skill_builder` writes a second world instead, one the engines do not assume, as ASSISTments 2009's
skill-builder file (see `skill_builder` and `skill_builder_responses`); `profile: ednet_kt1` writes the default
world's responses as EdNet KT1's one file per student (see `ednet_kt1_csv`). The default profile is simulated a
batch of classes at a time (see `batches`)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from ktirt.simulate.batches import write_in_batches
from ktirt.simulate.config import SimulationConfig
from ktirt.simulate.ednet_kt1_csv import Kt1Writer
from ktirt.simulate.edm_tables import TablesWriter
from ktirt.simulate.skill_builder import build_skill_builder_world
from ktirt.simulate.skill_builder_csv import write_skill_builder
from ktirt.simulate.skill_builder_responses import work_skill_builders
from ktirt.simulate.world import build_world

__all__ = ["SimulationConfig", "simulate"]
log = logging.getLogger(__name__)


def simulate(cfg: SimulationConfig, out_dir: str | Path) -> dict:
    """Write the EDM Cup 2023 files for `cfg` into `out_dir` (which must not exist yet); return counts."""
    if cfg.profile == "skill_builder":
        return _simulate_skill_builder(cfg, Path(out_dir))
    if cfg.profile == "ednet_kt1":
        return _simulate_ednet_kt1(cfg, Path(out_dir))
    rng = np.random.default_rng(cfg.seed)
    world = build_world(cfg, rng)
    out = Path(out_dir)
    counts = write_in_batches(cfg, world, rng, lambda n_tests: TablesWriter(world, out, cfg.evaluation_fraction, n_tests))
    _write_config(cfg.to_dict(), out)
    counts |= {"students": cfg.n_students, "drifting_items": int(world.items["drift"].sum())}
    log.info("simulated %s", ", ".join(f"{k}={v}" for k, v in counts.items()))
    return counts


def _simulate_skill_builder(cfg: SimulationConfig, out: Path) -> dict:
    """Write `skill_builder_data.csv` and `_truth/` for the skill-builder world (seed and n_students only)."""
    rng = np.random.default_rng(cfg.seed)
    world = build_skill_builder_world(cfg.n_students, rng)
    counts = write_skill_builder(world, work_skill_builders(world, rng), out, rng)
    used = {k: getattr(cfg, k) for k in ("profile", "seed", "n_students")}
    _write_config(used | counts, out)
    log.info("simulated the skill-builder world: %s", ", ".join(f"{k}={v}" for k, v in counts.items()))
    return counts


def _simulate_ednet_kt1(cfg: SimulationConfig, out: Path) -> dict:
    """Write `KT1/`, `contents/questions.csv` and `_truth/` for the default world (every simulate setting applies)."""
    rng = np.random.default_rng(cfg.seed)
    world = build_world(cfg, rng)
    counts = write_in_batches(cfg, world, rng, lambda n_tests: Kt1Writer(world, out, cfg.start_date))
    _write_config(cfg.to_dict() | counts, out)
    log.info("simulated the default world as EdNet KT1: %s", ", ".join(f"{k}={v}" for k, v in counts.items()))
    return counts


def _write_config(config: dict, out: Path) -> None:
    """The settings (and counts) the truth was simulated with, in the simulation's folder (itself written to a
    temporary path that the stage moves into place)."""
    (out / "_truth" / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
