"""Cross-rank gathering and DDP: faked collectives on one process, then 2 real gloo processes on CPU."""

from __future__ import annotations

import json

import pytest
import torch
import torch.distributed as dist
from toy_contrastive import LossRecorder, PairDataset, ddp_trainer_config, ddp_worker, make_model, symmetric_infonce

from ddp_processes import run_ranks
from poseembroider.models.pretrained import load_pretrained
from poseembroider.training import distributed as ddp
from poseembroider.training.trainer import Trainer

# --------------------------------------------------------------------------- single process, faked world


def test_single_process_is_identity():
    x = torch.randn(4, 3, requires_grad=True)
    assert not ddp.is_distributed() and ddp.get_rank() == 0 and ddp.get_world_size() == 1 and ddp.is_main_process()
    assert ddp.all_gather_with_grad(x) is x
    a, b = ddp.gather_features(x, x * 2)
    assert a is x and torch.equal(b, x * 2)
    assert ddp.all_reduce_mean({"loss": 1.5}) == {"loss": 1.5}
    assert ddp.all_gather_objects({"k": 1}) == [{"k": 1}]


@pytest.fixture
def fake_world(monkeypatch):
    """Pretend to be rank 1 of 3; the other ranks hold constant tensors (open_clip's test pattern)."""
    world_size, rank = 3, 1
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_world_size", lambda group=None: world_size)
    monkeypatch.setattr(dist, "get_rank", lambda group=None: rank)

    def fake_all_gather(tensor_list, tensor, group=None, async_op=False):
        assert not tensor.requires_grad, "the collective must receive a detached tensor"
        for r, t in enumerate(tensor_list):
            t.copy_(tensor if r == rank else torch.full_like(tensor, float(100 + r)))

    monkeypatch.setattr(dist, "all_gather", fake_all_gather)
    return world_size, rank


@pytest.mark.parametrize("grad_scale, expected_factor", [(None, 3.0), (1.0, 1.0)])
def test_all_gather_with_grad_faked(fake_world, grad_scale, expected_factor):
    world_size, rank = fake_world
    x = torch.randn(2, 4, requires_grad=True)
    gathered = ddp.all_gather_with_grad(x, grad_scale=grad_scale)
    assert gathered.shape == (world_size * 2, 4)
    assert torch.equal(gathered[rank * 2 : rank * 2 + 2], x.detach())
    assert torch.all(gathered[0:2] == 100) and torch.all(gathered[4:6] == 102)
    weights = torch.randn(6, 4)
    (gathered * weights).sum().backward()
    # only the local slice carries gradient; world_size scaling compensates DDP's averaging
    assert torch.allclose(x.grad, expected_factor * weights[2:4])


def test_local_only_disables_gathering(fake_world):
    x = torch.randn(2, 4, requires_grad=True)
    with ddp.local_only():
        assert ddp.all_gather_with_grad(x) is x
    assert ddp.all_gather_with_grad(x).shape == (6, 4)


def test_gathered_contrastive_loss_matches_full_batch_faked(monkeypatch):
    """A rank's loss over gathered embeddings equals the single-process loss over the global batch, and
    its local-slice gradient (before the world_size scaling) is the slice of the single-process gradient."""
    za_all, zb_all = torch.randn(8, 5), torch.randn(8, 5)
    scale = torch.tensor(10.0)
    full_a = za_all.clone().requires_grad_()
    symmetric_infonce(full_a, zb_all, scale).backward()
    rank, world_size = 1, 2
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_world_size", lambda group=None: world_size)
    monkeypatch.setattr(dist, "get_rank", lambda group=None: rank)
    source = {}

    def fake_all_gather(tensor_list, tensor, group=None, async_op=False):
        full = source["full"]
        for r, t in enumerate(tensor_list):
            t.copy_(full[r * 4 : (r + 1) * 4])

    monkeypatch.setattr(dist, "all_gather", fake_all_gather)
    local_a = za_all[4:].clone().requires_grad_()
    source["full"] = za_all
    ga = ddp.all_gather_with_grad(local_a, grad_scale=1.0)
    source["full"] = zb_all
    gb = ddp.all_gather_with_grad(zb_all[4:].clone())
    loss = symmetric_infonce(ga, gb, scale)
    assert torch.allclose(loss, symmetric_infonce(za_all, zb_all, scale))
    loss.backward()
    assert torch.allclose(local_a.grad, full_a.grad[4:], atol=1e-6)


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
