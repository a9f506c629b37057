"""Run a worker function in 2 spawned gloo processes (the DDP tests of the Trainer, PoseText, the core)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch.multiprocessing as mp


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for MASTER_PORT)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_ranks(
    worker: Callable[..., None], folder: Path, timeout_s: float = 240, world_size: int = 2, attempts: int = 2
) -> None:
    """`worker(rank, world_size, port, str(folder))` in `world_size` spawned processes; fails the test when
    one of them raises, or when they do not finish within `timeout_s` in any of `attempts` tries.

    A stuck rendezvous (seen rarely: both gloo ranks waiting forever on a fresh port) is retried once on
    another port; a worker that raises is never retried, and a real deadlock hangs every attempt."""
    for _ in range(attempts):
        context = mp.start_processes(
            worker, args=(world_size, free_port(), str(folder)), nprocs=world_size, join=False, start_method="spawn"
        )
        deadline = time.monotonic() + timeout_s
        while not context.join(timeout=1):
            if time.monotonic() > deadline:
                for process in context.processes:
                    process.kill()
                break
        else:
            return
    pytest.fail(
        f"the {world_size}-process workers ({worker.__name__}) did not finish within {timeout_s} s "
        f"in {attempts} attempts"
    )
