"""Simulating the EDM Cup world a batch of classes at a time, so that memory follows `simulate.batch_students`,
not the number of students: at 140,000 students the whole clickstream at once took 16.4 GiB.

A class's students, logs and responses depend on no other class, with one exception: which items drift, and
when, is chosen from every practice visit's item and time. So each batch's visits are drawn first (pass 1,
counting each item's visits), the drifting items chosen, each batch's visits drawn again to find the drifting
items' visit times (pass 2, keeping only those: about 5 % of the visits), the drift times placed, and each
batch's visits drawn a third time from the same generator (pass 3), answered and handed to the layout's writer
(EDM Cup's tables: `TablesWriter`, which lays the batch out as action rows; EdNet KT1's files: `Kt1Writer`).
Batch k draws from its own generator, seeded by (seed, k). A world of at most `batch_students` students is one
batch drawn from the seed's one generator, in the order the whole-world simulator always drew: its files are
the same bytes as before batches existed."""

from __future__ import annotations

import logging
from typing import Callable, Protocol

import numpy as np

from ktirt.simulate.config import SimulationConfig
from ktirt.simulate.responses import choose_drift, draw_visits, place_drift, respond
from ktirt.simulate.world import World

log = logging.getLogger(__name__)


class BatchWriter(Protocol):
    """A layout's writer: takes each answered batch and the batch's generator, counts what it wrote."""

    counts: dict

    def __enter__(self) -> "BatchWriter": ...

    def __exit__(self, *exc) -> None: ...

    def add(self, logs, problems, unit_tests, rng: np.random.Generator) -> None: ...


def class_batches(world: World, batch_students: int) -> list[np.ndarray]:
    """The classes in order, cut into batches of whole classes of about `batch_students` students each."""
    size = np.bincount(world.students["class_index"].to_numpy(), minlength=len(world.classes))
    batch = (np.cumsum(size) - size) // batch_students  # by the students before the class
    return np.split(np.arange(len(world.classes)), np.flatnonzero(np.diff(batch)) + 1)


def write_in_batches(cfg: SimulationConfig, world: World, rng: np.random.Generator,
                     open_writer: Callable[[int], BatchWriter]) -> dict:
    """Every batch of classes answered and written by `open_writer(unit-test rows over all batches)`; returns its
    counts."""
    batches = class_batches(world, cfg.batch_students)
    one = len(batches) == 1
    generator = (lambda k: rng) if one else (lambda k: np.random.default_rng([cfg.seed, k]))
    kept, n_use, n_tests = None, np.zeros(len(world.items), np.int64), 0
    for k, classes in enumerate(batches):
        logs, problems, unit_tests = draw_visits(cfg, world, generator(k), classes)
        n_tests += len(unit_tests)
        n_use += np.bincount(problems["item"].to_numpy(), minlength=len(n_use))
        kept = (logs, problems, unit_tests) if one else None
    drift, q = choose_drift(cfg, world, n_use, rng)
    visits = [kept[1]] if one else (draw_visits(cfg, world, generator(k), c)[1] for k, c in enumerate(batches))
    drifting = [p.loc[np.isin(p["item"].to_numpy(), drift), ["item", "time"]] for p in visits]
    place_drift(world, drift, q, *(np.concatenate([d[c].to_numpy() for d in drifting]) for c in ("item", "time")))
    with open_writer(n_tests) as writer:
        for k, classes in enumerate(batches):
            gen = generator(k)
            logs, problems, unit_tests = kept if one else draw_visits(cfg, world, gen, classes)
            respond(cfg, world, logs, problems, unit_tests, gen)
            writer.add(logs, problems, unit_tests, gen)
            if not one:
                log.info("simulated batch %d of %d (%d classes)", k + 1, len(batches), len(classes))
    return writer.counts
