"""The core models under DDP (2 gloo processes on CPU): the loss over embeddings gathered from both ranks and
the averaged gradients equal those of one process with the whole batch."""

from __future__ import annotations

import dataclasses
import socket
import time

import pytest
import torch
import torch.multiprocessing as mp
from core_ddp_worker import core_ddp_worker

from conftest import feature_batch, small_config
from poseembroider.model import REPRESENTATION_MODELS


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("name", ["PoseEmbroider", "Aligner"])
def test_two_ranks_match_one_process_with_the_whole_batch(name, tmp_path):
    config = small_config(triplet_partial=True)
    torch.manual_seed(0)
    model = REPRESENTATION_MODELS[name](config).eval()
    batch = feature_batch(12)
    torch.save(
        {**batch, "model": name, "config": dataclasses.asdict(config), "state": model.state_dict()},
        tmp_path / "inputs.pt",
    )
    context = mp.start_processes(
        core_ddp_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=False, start_method="spawn"
    )
    deadline = time.monotonic() + 240
    while not context.join(timeout=1):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail("the 2-process core workers did not finish within 240 s")

    loss = model.training_step(batch)["loss"]
    loss.backward()
    for rank in range(2):
        result = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        assert torch.allclose(result["loss"], loss.detach(), atol=1e-5)
        compared = 0
        for pname, p in model.named_parameters():
            if p.grad is not None:
                assert torch.allclose(result[f"grad.{pname}"], p.grad, atol=1e-5), pname
                compared += 1
        assert compared > 5
