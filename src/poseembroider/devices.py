"""Where this process runs: device names as users and flags give them ('auto', 'cpu', 'cuda', 'cuda:1') ->
`torch.device`, the process's place in a torchrun job (rank, world size, barrier; a single process when no
process group is up), and its number of torch CPU threads for a block (`torch_threads`).

Small models on a few cores are often faster on one thread than on a team that waits for cores shared with
DataLoader workers or other jobs (an OpenMP team stalls on its slowest member); the quickstart, the pretraining
scripts and the dataset generator choose the count per stage with `torch_threads`.

At the bottom floor so that the front door (`representation`), the feature caches, the scripts and the
Trainer read them alike; joining and leaving a process group stays in `training.distributed`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch
import torch.distributed as dist


@contextlib.contextmanager
def torch_threads(num_threads: int | None) -> Iterator[None]:
    """Run with `num_threads` torch CPU threads (None: unchanged); the previous number is restored after,
    also when the block raises."""
    before = torch.get_num_threads()
    if num_threads is not None:
        if num_threads < 1:
            raise ValueError(f"torch_threads: num_threads must be >= 1 or None, got {num_threads}")
        torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


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


def barrier() -> None:
    """Wait for every rank (nothing to wait for in a single process)."""
    if is_distributed():
        dist.barrier()


def resolve_device(name: str | torch.device = "auto", local_rank: int = 0) -> torch.device:
    """'auto' -> `cuda:<local_rank>` when CUDA is available, else cpu; 'cuda' -> `cuda:<local_rank>`.
    A CUDA device on a machine without CUDA is refused, naming the device asked for."""
    if isinstance(name, torch.device):
        name = str(name)
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ValueError(f"device {name!r} is not a device name ('auto', 'cpu', 'cuda', 'cuda:<i>'): {err}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"--device {name}: CUDA is not available on this machine (use --device cpu)")
        if device.index is None:
            device = torch.device("cuda", local_rank)
    return device
