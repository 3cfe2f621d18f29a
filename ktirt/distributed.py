"""Training on several processes (torchrun): the one place that knows about torch.distributed.

A stage run by `torchrun --nproc_per_node N` (or `--nnodes`) is one rank of N: torchrun sets `RANK`,
`LOCAL_RANK`, `WORLD_SIZE` and the rendezvous address, and `join` joins the group through them (env://; NCCL
for CUDA tensors, gloo for CPU ones). Each rank holds its own shard of the students (`shard_mask`: the distinct
students sorted, rank r takes every N-th from the r-th). The epoch loop (ktirt/training.py) wraps the model in
DistributedDataParallel (`data_parallel`) and gives each rank its rows of every global batch (`local_rows`,
`mine`), each rank's loss weighted by its share of the batch (`share`). What must be the same on every rank
(a validation AUC, the calibration's sums, every target's prediction) is combined with `all_sum` and
`fill_in`. Run as one process (no torchrun), every helper here is the identity, so the default pipeline's
numbers are exactly those of the code without it."""

from __future__ import annotations

import atexit
import hashlib
import logging
import os

import numpy as np
import torch
import torch.distributed as dist

from ktirt.errors import SettingsError

log = logging.getLogger(__name__)
LAUNCH_VARIABLES = ("RANK", "LOCAL_RANK", "WORLD_SIZE")
"""what torchrun sets for every process it starts"""


def launched() -> bool:
    """True when this process was started by torchrun (its variables are set)."""
    return all(v in os.environ for v in LAUNCH_VARIABLES)


def world_size() -> int:
    """Processes in the group (1 outside one)."""
    return dist.get_world_size() if dist.is_initialized() else 1


def rank() -> int:
    """This process's rank in the group (0 outside one)."""
    return dist.get_rank() if dist.is_initialized() else 0


def is_main() -> bool:
    """Whether this process writes the outputs: a single process, or rank 0 of a torchrun launch (read from
    torchrun's `RANK`, so it holds before the group is joined and after it is left)."""
    return int(os.environ.get("RANK", "0")) == 0 if launched() else True


def join(device: torch.device) -> torch.device:
    """Join torchrun's group (once per process; left at exit) and return the device this rank trains on: for
    CUDA, the GPU of its `LOCAL_RANK` (one GPU per process); otherwise `device`. CUDA tensors go through NCCL,
    CPU tensors through gloo. Outside torchrun, returns `device` and does nothing."""
    if not launched():
        return device
    if device.type == "cuda":
        local, count = int(os.environ["LOCAL_RANK"]), torch.cuda.device_count()
        if local >= count:
            started = os.environ.get("LOCAL_WORLD_SIZE", local + 1)
            raise SettingsError(f"device: torchrun started {started} processes on this machine but it has {count} "
                                f"CUDA GPU(s): use --nproc_per_node {count} or less")
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        # env://: the rendezvous torchrun set up; a group is joined once (a second one in the same process
        # would meet the first one's keys in torchrun's store)
        dist.init_process_group("cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo")
        atexit.register(dist.destroy_process_group)
        log.info("rank %d of %d (local rank %s), backend %s", rank(), world_size(), os.environ["LOCAL_RANK"],
                 dist.get_backend())
    return device


def reseed_for_rank(seed: int) -> None:
    """In a group, give this rank its own torch and numpy streams (seed + rank: dropout differs between ranks,
    as between the batches of one process); a single process's streams are left as they are."""
    if world_size() > 1:
        torch.manual_seed(seed + rank())
        np.random.seed(seed + rank())


def shard_mask(keys: np.ndarray) -> np.ndarray:
    """The rows whose key (a student) belongs to this rank: the distinct keys sorted, rank r takes every N-th
    from the r-th, so the shards are disjoint, cover every key, and are the same on every run."""
    if world_size() == 1:
        return np.ones(len(keys), bool)
    _, position = np.unique(keys, return_inverse=True)
    return position % world_size() == rank()


def log_shard(what: str, ids) -> None:
    """One line naming this rank's shard: how many students and the SHA-256 of their sorted ids (one per
    line), so a run's log shows which students each rank trained on without listing them."""
    if world_size() == 1:
        return
    ids = list(ids)
    if not ids:
        raise SettingsError(f"rank {rank()} of {world_size()} has no {what}: start fewer processes than there are "
                            f"{what}")
    log.info("rank %d of %d trains on %d %s (sha256 of their sorted ids %s)", rank(), world_size(), len(ids), what,
             shard_digest(ids))


def shard_digest(ids) -> str:
    """The digest log_shard shows for these ids: the first 16 hex digits of the SHA-256 of them sorted, one a line."""
    return hashlib.sha256("\n".join(sorted(str(i) for i in ids)).encode()).hexdigest()[:16]


def local_rows(owned: np.ndarray | None) -> torch.Tensor | None:
    """Per example (`owned`: whether this rank holds it), this rank's row for it (its held examples in order),
    -1 for another rank's; None in a single process (or for None)."""
    if owned is None or world_size() == 1:
        return None
    return torch.as_tensor(np.where(owned, np.cumsum(owned) - 1, -1))


def mine(local: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
    """This rank's rows of a global batch of examples (`local`: from local_rows)."""
    rows = local[batch]
    return rows[rows >= 0]


def share(loss: torch.Tensor, weight: int) -> torch.Tensor:
    """This rank's part of a global batch's loss. `loss` is the mean over this rank's `weight` targets (plus a
    term the same for every batch, such as a prior): weighted by this rank's share of the batch's targets (and
    by N, which DDP's averaging divides out), the gradients DDP averages are those of the one-process batch's
    mean loss. `loss` itself in a single process."""
    if world_size() == 1:
        return loss
    return loss * (weight * world_size() / max(all_sum(weight), 1))


def all_sum(x):
    """The sum of `x` (a number or an array) over the ranks, the same on every rank; `x` itself in a single
    process. Booleans are counted (an int64 sum)."""
    if world_size() == 1:
        return x
    arr = np.asarray(x)
    t = torch.tensor(arr.astype(np.int64) if arr.dtype == bool else arr)  # a CPU copy: gloo reduces it
    dist.all_reduce(t)
    out = t.numpy()
    return out if arr.ndim else out.item()


def fill_in(x: np.ndarray) -> np.ndarray:
    """Each rank holds its own entries of `x` (a float array; NaN where another rank's are): every rank gets
    all of them. Exact: each entry is one rank's value plus zeros. `x` itself in a single process."""
    if world_size() == 1:
        return x
    held = ~np.isnan(x)
    values = all_sum(np.where(held, x, 0).astype(x.dtype))
    return np.where(all_sum(held) > 0, values, np.nan).astype(x.dtype)


class _Loss(torch.nn.Module):
    """A batch's loss as a module's forward, so DDP (which hooks a module's forward and backward) can wrap any
    engine's loss function without the engine knowing."""

    def __init__(self, model: torch.nn.Module, loss_fn):
        super().__init__()
        self.model = model
        self.loss_fn = loss_fn

    def forward(self, rows):
        if len(rows) == 0:  # none of this batch is this rank's: zero gradients, but DDP's all-reduce still pairs up
            return sum(p.sum() for p in self.model.parameters()) * 0.0, 0
        return self.loss_fn(rows)


def data_parallel(model: torch.nn.Module, loss_fn):
    """`loss_fn` (rows -> (loss, weight), computed with `model`) wrapped so that its backward averages the
    gradients over the ranks (DistributedDataParallel, which also starts every rank from rank 0's weights;
    buffers are not broadcast at every step: the engines' never change in training). `loss_fn` itself in a
    single process."""
    if world_size() == 1:
        return loss_fn
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(_Loss(model, loss_fn), broadcast_buffers=False)
