"""The core models under DDP (2 gloo processes on CPU): the loss over embeddings gathered from both ranks and
the averaged gradients equal those of one process with the whole batch."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from core_batches import feature_batch, small_config
from core_ddp_worker import core_ddp_worker

from ddp_processes import run_ranks
from poseembroider.model import REPRESENTATION_MODELS


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
    run_ranks(core_ddp_worker, tmp_path, timeout_s=120)

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
