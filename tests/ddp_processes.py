"""Run a worker function in 2 spawned gloo processes (the DDP tests of the Trainer, PoseText, the core)."""

from __future__ import annotations

import faulthandler
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for MASTER_PORT)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _traced_worker(
    rank: int, worker: Callable[..., None], world_size: int, port: int, folder: str, dump_after_s: float
) -> None:
    """Run `worker` for `rank`; if it is still running after `dump_after_s`, write the stacks of all its
    threads to `folder/stacks_rank<rank>.txt` (what a hung test reports)."""
    with open(Path(folder) / f"stacks_rank{rank}.txt", "w") as stacks:
        faulthandler.dump_traceback_later(dump_after_s, file=stacks)
        try:
            worker(rank, world_size, port, folder)
        finally:
            faulthandler.cancel_dump_traceback_later()


def _stacks_of(folder: Path) -> str:
    dumps = [f"--- {path.name}\n{path.read_text()}" for path in sorted(folder.glob("stacks_rank*.txt"))]
    return "\n".join(d for d in dumps if d.strip().count("\n") > 1) or "(no stack dumps)"


def run_ranks(
    worker: Callable[..., None], folder: Path, timeout_s: float = 240, world_size: int = 2, attempts: int = 2
) -> None:
    """`worker(rank, world_size, port, str(folder))` in `world_size` spawned processes; fails the test when
    one of them raises, or when they do not finish within `timeout_s` in any of `attempts` tries (the failure
    shows where each rank was stuck).

    A stuck rendezvous (seen rarely: both gloo ranks waiting forever on a fresh port) is retried once on
    another port; a worker that raises is never retried, and a real deadlock hangs every attempt."""
    for _ in range(attempts):
        context = mp.start_processes(
            _traced_worker,
            args=(worker, world_size, free_port(), str(folder), max(timeout_s - 10, 1)),
            nprocs=world_size,
            join=False,
            start_method="spawn",
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
        f"in {attempts} attempts; stacks of the last attempt:\n{_stacks_of(folder)}"
    )


def ddp_loss_and_grads(step: torch.nn.Module, batch: dict) -> dict[str, torch.Tensor]:
    """{'loss', 'grad.<parameter>'} of one forward/backward of a DDP-wrapped `_TrainingStep` (released on return)."""
    loss = step(batch)["loss"]
    loss.backward()
    grads = {f"grad.{n}": p.grad.clone() for n, p in step.module.model.named_parameters() if p.grad is not None}
    return {"loss": loss.detach(), **grads}
