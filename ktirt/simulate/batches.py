"""Simulating the EDM Cup world a batch of classes at a time, so that memory follows `simulate.batch_students`,
not the number of students: at 140,000 students the whole clickstream at once took 16.4 GiB.

A class's students, logs and responses depend on no other class, with one exception: which items drift, and
when, is chosen from every practice visit's item and time. So each batch's visits are drawn first (pass 1,
keeping only their items and times), the drifts chosen, and each batch's visits drawn again from the same
generator (pass 2), answered and handed to the layout's writer (EDM Cup's tables: `TablesWriter`, which lays
the batch out as action rows; EdNet KT1's files: `Kt1Writer`).
Batch k draws from its own generator, seeded by (seed, k). A world of at most `batch_students` students is one
batch drawn from the seed's one generator, in the order the whole-world simulator always drew: its files are
the same bytes as before batches existed."""

from __future__ import annotations

import logging

import numpy as np

from typing import Callable, Protocol

from ktirt.simulate.config import SimulationConfig
from ktirt.simulate.responses import choose_drift, draw_visits, respond
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
    kept, items, times, n_tests = None, [], [], 0
    for k, classes in enumerate(batches):
        logs, problems, unit_tests = draw_visits(cfg, world, generator(k), classes)
        n_tests += len(unit_tests)
        items.append(problems["item"].to_numpy(np.int32))
        times.append(problems["time"].to_numpy())
        kept = (logs, problems, unit_tests) if one else None
    choose_drift(cfg, world, np.concatenate(items), np.concatenate(times), rng)
    del items, times
    with open_writer(n_tests) as writer:
        for k, classes in enumerate(batches):
            gen = generator(k)
            logs, problems, unit_tests = kept if one else draw_visits(cfg, world, gen, classes)
            respond(cfg, world, logs, problems, unit_tests, gen)
            writer.add(logs, problems, unit_tests, gen)
            if not one:
                log.info("simulated batch %d of %d (%d classes)", k + 1, len(batches), len(classes))
    return writer.counts
