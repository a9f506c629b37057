"""`torchrun` data parallelism: process group from the environment, rank helpers, cross-rank gathering.

Launch any training script with `torchrun --nproc_per_node N script.py ...`: `init_distributed` reads
`RANK`, `LOCAL_RANK`, `WORLD_SIZE`, `MASTER_ADDR`, `MASTER_PORT` and joins a process group (nccl on
GPUs, gloo on CPUs). Run as a plain process, every helper is the single-process identity.

Contrastive losses need negatives from every rank: `gather_features(img, txt)` concatenates the
`(B, D)` embeddings of all ranks into `(world_size * B, D)`, in rank order. The other ranks' slices are
constants; the gradient flows through this rank's slice only (open_clip's pattern), scaled by
`world_size`: every rank computes the same loss over the gathered batch, so after DDP averages the
gradients over ranks each parameter receives exactly the gradient of that loss in one process with the
global batch (this is also the backward of `torch.distributed.nn.functional.all_gather`, without its
reduce-scatter). Every rank must pass tensors of the same shape (DistributedSampler ensures it).
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistributedInfo:
    """Where this process stands: its rank among `world_size`, and the device it trains on."""

    rank: int
    local_rank: int
    world_size: int
    device: torch.device
    backend: str | None  # None in a single process


def is_distributed() -> bool:
    """Whether a process group is up (more than a single-process run)."""
    return dist.is_available() and dist.is_initialized()


def get_rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def get_world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def get_local_rank() -> int:
    """Rank on this machine (`LOCAL_RANK` set by torchrun), 0 in a single process."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main_process() -> bool:
    """True on rank 0, the only process that writes files and logs."""
    return get_rank() == 0


def resolve_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """'auto' -> `cuda:<local_rank>` when CUDA is available, else cpu; 'cuda' -> `cuda:<local_rank>`."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"--device {name}: CUDA is not available on this machine (use --device cpu)")
        if device.index is None:
            device = torch.device("cuda", local_rank)
    return device


def init_distributed(device: str = "auto", timeout_minutes: float = 30.0) -> DistributedInfo:
    """Join the torchrun process group when `WORLD_SIZE` > 1 (idempotent); pick this process's device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
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


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def _comm_device() -> torch.device:
    """Device for collective buffers: the current GPU under nccl, else cpu."""
    if is_distributed() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


# --------------------------------------------------------------------------- gathering with gradients

_GATHER_DISABLED = False


@contextmanager
def local_only() -> Iterator[None]:
    """Inside this block `gather_features` / `all_gather_with_grad` return their input unchanged.

    The Trainer validates on rank 0 alone; a `validation_step` that reuses a gathering loss must not
    wait for ranks that are not validating.
    """
    global _GATHER_DISABLED
    previous, _GATHER_DISABLED = _GATHER_DISABLED, True
    try:
        yield
    finally:
        _GATHER_DISABLED = previous


class _ScaleGrad(torch.autograd.Function):
    """Identity forward; backward multiplies the gradient by `scale`."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, scale: float) -> torch.Tensor:  # type: ignore[override]
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        return grad * ctx.scale, None


def all_gather_with_grad(x: torch.Tensor, grad_scale: float | None = None) -> torch.Tensor:
    """`(B, ...)` on each rank -> `(world_size * B, ...)`, rank r's tensor at rows `[r*B, (r+1)*B)`.

    Other ranks' slices carry no gradient; this rank's slice is `x` itself, its gradient multiplied by
    `grad_scale` (default `world_size`, see the module docstring; pass 1 for open_clip's raw local
    gradient). Single process, or inside `local_only()`: returns `x`.
    """
    if _GATHER_DISABLED or not is_distributed() or dist.get_world_size() == 1:
        return x
    world_size, rank = dist.get_world_size(), dist.get_rank()
    gathered = [torch.empty_like(x) for _ in range(world_size)]
    dist.all_gather(gathered, x.detach().contiguous())
    scale = float(world_size if grad_scale is None else grad_scale)
    gathered[rank] = _ScaleGrad.apply(x, scale) if scale != 1.0 else x
    return torch.cat(gathered, dim=0)


def gather_features(*tensors: torch.Tensor, grad_scale: float | None = None) -> tuple[torch.Tensor, ...]:
    """`all_gather_with_grad` of each tensor: `(B, D)` embeddings -> `(world_size * B, D)`, same rank order."""
    return tuple(all_gather_with_grad(t, grad_scale=grad_scale) for t in tensors)


# --------------------------------------------------------------------------- other collectives


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
