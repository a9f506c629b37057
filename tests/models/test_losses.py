"""Contrastive losses (by hand, batched vs one matrix at a time) and the cross-rank gather, its collectives
faked on one process with `monkeypatch` (open_clip's pattern; the real 2-process run is in
tests/training/test_distributed.py)."""

import math

import pytest
import torch
import torch.distributed as dist

from poseembroider.models import losses
from poseembroider.models.losses import (
    BATCHED_LOSSES,
    RETRIEVAL_LOSSES,
    bbc,
    get_retrieval_loss,
    learnable_temperature,
    scaled_scores,
    symmetric_bbc,
)


def test_symmetric_bbc_equals_hand_computed_value_on_2x2():
    scores = torch.tensor([[2.0, 0.0], [1.0, 3.0]])
    row0 = -math.log(math.exp(2) / (math.exp(2) + 1))
    row1 = -math.log(math.exp(3) / (math.exp(1) + math.exp(3)))
    col0 = -math.log(math.exp(2) / (math.exp(2) + math.exp(1)))
    col1 = -math.log(math.exp(3) / (1 + math.exp(3)))
    expected = ((row0 + row1) / 2 + (col0 + col1) / 2) / 2
    assert symmetric_bbc(scores).item() == pytest.approx(expected, rel=1e-6)


def test_bbc_is_asymmetric_and_low_for_a_dominant_diagonal():
    scores = torch.tensor([[5.0, 4.0, 4.9], [0.0, 5.0, 0.0], [0.0, 0.0, 5.0]])
    assert bbc(scores).item() != pytest.approx(bbc(scores.t()).item())
    assert symmetric_bbc(torch.eye(4) * 50).item() < 1e-6


def test_shape_errors_are_named():
    with pytest.raises(ValueError, match="square"):
        symmetric_bbc(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="C >= B"):
        bbc(torch.zeros(3, 2))


def test_registry_and_temperature():
    assert get_retrieval_loss("symBBC") is symmetric_bbc
    with pytest.raises(ValueError, match="unknown retrieval loss 'foo'.*symBBC"):
        get_retrieval_loss("foo")
    scale = learnable_temperature()
    assert scale.shape == (1,) and scale.item() == 10.0 and scale.requires_grad
    q = torch.nn.functional.normalize(torch.randn(3, 4), dim=1)
    assert torch.allclose(scaled_scores(q, q, scale).diagonal(), torch.full((3,), 10.0), atol=1e-5)


@pytest.mark.parametrize("name", sorted(RETRIEVAL_LOSSES))
def test_batched_loss_equals_one_matrix_at_a_time(name):
    scores = torch.randn(5, 7, 7)
    expected = torch.stack([RETRIEVAL_LOSSES[name](s) for s in scores])
    assert torch.allclose(BATCHED_LOSSES[name](scores), expected, atol=1e-6)


# --------------------------------------------------------------------------- gathering across ranks


def test_single_process_gathering_is_the_identity():
    x = torch.randn(4, 3, requires_grad=True)
    assert losses.all_gather_with_grad(x) is x
    a, b = losses.gather_features(x, x * 2)
    assert a is x and torch.equal(b, x * 2)


def _fake_world(monkeypatch, world_size: int, rank: int, fill) -> None:
    """Pretend to be `rank` of `world_size`; `fill(r, t)` writes rank r's tensor into the buffer t."""
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_world_size", lambda group=None: world_size)
    monkeypatch.setattr(dist, "get_rank", lambda group=None: rank)

    def fake_all_gather(tensor_list, tensor, group=None, async_op=False):
        assert not tensor.requires_grad, "the collective must receive a detached tensor"
        for r, t in enumerate(tensor_list):
            t.copy_(tensor if r == rank else fill(r, t))

    monkeypatch.setattr(dist, "all_gather", fake_all_gather)


@pytest.fixture
def fake_world(monkeypatch):
    """Rank 1 of 3; the other ranks hold constant tensors (100 + their rank)."""
    _fake_world(monkeypatch, 3, 1, lambda r, t: torch.full_like(t, float(100 + r)))
    return 3, 1


@pytest.mark.parametrize("grad_scale, expected_factor", [(None, 3.0), (1.0, 1.0)])
def test_all_gather_with_grad_faked(fake_world, grad_scale, expected_factor):
    world_size, rank = fake_world
    x = torch.randn(2, 4, requires_grad=True)
    gathered = losses.all_gather_with_grad(x, grad_scale=grad_scale)
    assert gathered.shape == (world_size * 2, 4)
    assert torch.equal(gathered[rank * 2 : rank * 2 + 2], x.detach())
    assert torch.all(gathered[0:2] == 100) and torch.all(gathered[4:6] == 102)
    weights = torch.randn(6, 4)
    (gathered * weights).sum().backward()
    # only the local slice carries gradient; world_size scaling compensates DDP's averaging
    assert torch.allclose(x.grad, expected_factor * weights[2:4])


def test_local_only_disables_gathering(fake_world):
    x = torch.randn(2, 4, requires_grad=True)
    with losses.local_only():
        assert losses.all_gather_with_grad(x) is x
    assert losses.all_gather_with_grad(x).shape == (6, 4)


def test_gathered_contrastive_loss_matches_full_batch_faked(monkeypatch):
    """A rank's loss over gathered embeddings equals the single-process loss over the global batch, and
    its local-slice gradient (before the world_size scaling) is the slice of the single-process gradient."""
    za_all, zb_all = torch.randn(8, 5), torch.randn(8, 5)
    scale = torch.tensor(10.0)
    full_a = za_all.clone().requires_grad_()
    symmetric_bbc(scaled_scores(full_a, zb_all, scale)).backward()
    source = {}
    _fake_world(monkeypatch, 2, 1, lambda r, t: source["full"][r * 4 : (r + 1) * 4])
    local_a = za_all[4:].clone().requires_grad_()
    source["full"] = za_all
    ga = losses.all_gather_with_grad(local_a, grad_scale=1.0)
    source["full"] = zb_all
    gb = losses.all_gather_with_grad(zb_all[4:].clone())
    loss = symmetric_bbc(scaled_scores(ga, gb, scale))
    assert torch.allclose(loss, symmetric_bbc(scaled_scores(za_all, zb_all, scale)))
    loss.backward()
    assert torch.allclose(local_a.grad, full_a.grad[4:], atol=1e-6)
