"""`torchrun` data parallelism: process group from the environment, rank helpers, collectives.

Launch any training script with `torchrun --nproc_per_node N script.py ...`: `init_distributed` reads
`RANK`, `LOCAL_RANK`, `WORLD_SIZE`, `MASTER_ADDR`, `MASTER_PORT` and joins a process group (nccl on
GPUs, gloo on CPUs). Run as a plain process, every helper is the single-process identity.

The gathering of embeddings with gradient that contrastive losses need (`gather_features`, `local_only`)
lives with those losses, in `models/losses.py`: the models call it from their `training_step`.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from poseembroider.devices import (
    get_local_rank,
    is_distributed,
    resolve_device,
)


@dataclass(frozen=True)
class DistributedInfo:
    """Where this process stands: its rank among `world_size`, and the device it trains on."""

    rank: int
    local_rank: int
    world_size: int
    device: torch.device
    backend: str | None  # None in a single process


def init_distributed(device: str = "auto", timeout_minutes: float = 30.0) -> DistributedInfo:
    """Join the torchrun process group when `WORLD_SIZE` > 1 (idempotent); pick this process's device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = get_local_rank()
    dev = resolve_device(device, local_rank)
    if world_size > 1 and not is_distributed():
        for var in ("RANK", "MASTER_ADDR", "MASTER_PORT"):
            if var not in os.environ:
                raise RuntimeError(f"WORLD_SIZE={world_size} but {var} is not set: launch with torchrun")
        backend = "nccl" if dev.type == "cuda" else "gloo"
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group(backend=backend, init_method="env://", timeout=timedelta(minutes=timeout_minutes))
    if not is_distributed():
        return DistributedInfo(0, 0, 1, dev, None)
    return DistributedInfo(dist.get_rank(), local_rank, dist.get_world_size(), dev, dist.get_backend())


def destroy_distributed() -> None:
    """Leave the process group (no-op in a single process).

    Release every DDP wrapper before: a DDP Reducer holds the group, and one freed after the group is
    unregistered frees the gloo group itself while holding the GIL; the group's destructor then waits for
    its worker threads, one of which may need the GIL to drop a finished work: a deadlock at exit
    (pytorch/pytorch#56297; seen here in 2-process tests, both ranks stuck in `~ProcessGroupGloo`).
    Unregistered last, the group is freed by its Python handle, which releases the GIL."""
    if is_distributed():
        gc.collect()  # DDP wrappers in reference cycles go now, while the group is still registered
        dist.destroy_process_group()


def _comm_device() -> torch.device:
    """Device for collective buffers: the current GPU under nccl, else cpu."""
    if is_distributed() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


# --------------------------------------------------------------------------- collectives


def all_reduce_mean(values: Mapping[str, float]) -> dict[str, float]:
    """Mean over ranks of per-rank numbers (same keys on every rank); identity in a single process."""
    if not is_distributed() or not values:
        return dict(values)
    keys = sorted(values)
    buffer = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=_comm_device())
    dist.all_reduce(buffer, op=dist.ReduceOp.SUM)
    buffer /= dist.get_world_size()
    return dict(zip(keys, buffer.tolist(), strict=True))


def all_gather_objects(obj: Any) -> list[Any]:
    """Every rank's `obj` (rank order), e.g. RNG states to checkpoint on rank 0. Our own processes
    exchange these, nothing is read from disk."""
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def wrap_ddp(module: nn.Module, device: torch.device, find_unused_parameters: bool = False) -> nn.Module:
    """`DistributedDataParallel(module)` when distributed, else `module`. Gradients are averaged
    over ranks at each backward."""
    if not is_distributed():
        return module
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=device_ids, find_unused_parameters=find_unused_parameters)
