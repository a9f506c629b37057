"""`torch_threads`: run a block with a given number of torch CPU threads, then restore the previous number.

Training and evaluation steps of small models on a few cores are often faster on one thread than on a team
that waits for cores shared with DataLoader workers or other jobs (an OpenMP team stalls on the slowest
member); the quickstart and the pretraining scripts choose the count per stage with this.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

__all__ = ["torch_threads"]


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
