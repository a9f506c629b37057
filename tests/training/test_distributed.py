"""DDP on one process (the identity), then 2 real gloo processes on CPU: the cross-rank gather
(`models.losses`), DDP gradients and the Trainer against one process with the doubled batch."""

from __future__ import annotations

import json

import pytest
import torch
from toy_contrastive import LossRecorder, PairDataset, ddp_trainer_config, ddp_worker, make_model, symmetric_infonce

from ddp_processes import run_ranks
from poseembroider.devices import get_rank, get_world_size, is_distributed, is_main_process
from poseembroider.models.pretrained import load_pretrained
from poseembroider.training import distributed as ddp
from poseembroider.training.trainer import Trainer

# --------------------------------------------------------------------------- single process


def test_single_process_is_identity():
    assert not is_distributed() and get_rank() == 0 and get_world_size() == 1 and is_main_process()
    assert ddp.all_reduce_mean({"loss": 1.5}) == {"loss": 1.5}
    assert ddp.all_gather_objects({"k": 1}) == [{"k": 1}]


# --------------------------------------------------------------------------- two real processes (gloo)


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """Run `ddp_worker` in 2 spawned gloo processes once; yields the folder with their results."""
    out = tmp_path_factory.mktemp("ddp")
    run_ranks(ddp_worker, out, timeout_s=180)
    return out


def _load(path):
    return torch.load(path, weights_only=True)


def test_real_all_gather_with_grad(two_ranks):
    for rank in range(2):
        result = _load(two_ranks / f"rank{rank}.pt")
        expected = torch.cat([torch.arange(6.0).reshape(2, 3) + 10 * r for r in range(2)])
        assert torch.equal(result["gathered"], expected)
        weights = torch.arange(12.0).reshape(4, 3)
        assert torch.equal(result["x_grad"], weights[rank * 2 : rank * 2 + 2])


def test_ddp_gradients_match_single_process(two_ranks):
    """Contrastive loss over gathered embeddings + DDP averaging == one process with the doubled batch."""
    data = PairDataset(16, seed=1)
    model = make_model(0)
    za, zb = model(data.a, data.b)
    loss = symmetric_infonce(za, zb, model.loss_weight)
    loss.backward()
    for rank in range(2):
        result = _load(two_ranks / f"rank{rank}.pt")
        assert torch.allclose(result["loss"], loss.detach(), atol=1e-6)
        for name, p in model.named_parameters():
            assert torch.allclose(result[f"grad.{name}"], p.grad, atol=1e-6), name


def test_ddp_trainer_matches_single_process_doubled_batch(two_ranks, tmp_path):
    recorder = LossRecorder()
    trainer = Trainer(
        make_model(0),
        PairDataset(64, seed=2),
        PairDataset(24, seed=3),
        ddp_trainer_config(tmp_path / "single", batch_size=16),
        callbacks=[recorder],
    )
    summary = trainer.fit()
    ddp_run = json.loads((two_ranks / "ddp_run_losses.json").read_text())
    assert len(ddp_run["losses"]) == len(recorder.losses) == 8
    assert ddp_run["losses"] == pytest.approx(recorder.losses, abs=1e-4)
    assert ddp_run["summary"]["last_metrics"] == pytest.approx(summary["last_metrics"], abs=1e-4)
    ddp_model = load_pretrained(two_ranks / "ddp_run" / "last")
    for (name, p_ddp), p_single in zip(ddp_model.named_parameters(), trainer.model.parameters(), strict=True):
        assert torch.allclose(p_ddp, p_single, atol=1e-4), name
    # only rank 0 wrote: one log line per step and per epoch
    lines = (two_ranks / "ddp_run" / "log.jsonl").read_text().splitlines()
    assert len(lines) == 8 + 2
