"""Projections of the representation models: 'layerplus' and its fused token-average, the MLP registries."""

from __future__ import annotations

import pytest
import torch

from poseembroider.models.projections import (
    ENCODER_PROJECTIONS,
    LayerPlus,
    MiniMLP,
    dropout_mask,
    encoder_projection,
    external_projection,
)


def _module_route(projection: LayerPlus, tokens: torch.Tensor, mask_seed: int | None = None) -> torch.Tensor:
    """mean over tokens of the modules' Linear -> ReLU -> dropout, the dropout drawn by `dropout_mask`."""
    linear, relu, dropout = projection
    y = relu(linear(tokens.float()))
    if projection.training and dropout.p > 0:
        torch.manual_seed(mask_seed)
        dropped, scale = dropout_mask(tuple(y.flatten(0, 1).shape), dropout.p)
        y = y.masked_fill(dropped.view(y.shape), 0.0) * scale
    return y.mean(dim=1)


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_project_and_average_equals_the_modules_values_and_gradients(training, dtype):
    torch.manual_seed(0)
    projection = LayerPlus(12, 7, dropout=0.5).train(training)
    tokens = torch.randn(3, 5, 12).to(dtype)
    weights = torch.randn(3, 7)
    results = []
    for fused in (False, True):
        projection.zero_grad()
        torch.manual_seed(1)  # the same dropout draws for both routes
        out = projection.project_and_average(tokens) if fused else _module_route(projection, tokens, mask_seed=1)
        (out * weights).sum().backward()
        results.append((out.detach(), projection[0].weight.grad.clone(), projection[0].bias.grad.clone()))
    (out_a, gw_a, gb_a), (out_b, gw_b, gb_b) = results
    assert out_b.shape == (3, 7) and out_b.dtype == torch.float32
    assert torch.allclose(out_a, out_b, atol=1e-6)
    assert torch.allclose(gw_a, gw_b, atol=1e-5) and torch.allclose(gb_a, gb_b, atol=1e-5)
    plain = projection(tokens.float()).mean(1) if not training else _module_route(projection.eval(), tokens)
    # eval: exactly the modules; training: some activations dropped and the rest scaled by 2
    assert torch.allclose(out_b, plain, atol=1e-6) != training


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_dropout_mask_rate_independence_and_scale(p):
    torch.manual_seed(0)
    dropped, scale = dropout_mask((1000, 1000), p)
    assert dropped.shape == (1000, 1000) and dropped.dtype == torch.bool
    std = (p * (1 - p) / 1e6) ** 0.5
    assert abs(dropped.float().mean().item() - p) < 5 * std
    for lane in range(4):  # each of the 4 elements drawn from one 64-bit word
        assert abs(dropped.flatten()[lane::4].float().mean().item() - p) < 10 * std
    # neighbours independent: P(both dropped) = p^2
    both = (dropped.flatten()[:-1] & dropped.flatten()[1:]).float().mean().item()
    assert abs(both - p * p) < 10 * std
    assert scale == pytest.approx(1 / (1 - p), rel=1e-4)
    torch.manual_seed(0)
    assert torch.equal(dropout_mask((1000, 1000), p)[0], dropped)  # reproducible from the seed


def test_dropout_mask_edges():
    assert not dropout_mask((5, 3), 0.0)[0].any() and dropout_mask((5, 3), 0.0)[1] == 1.0
    dropped, scale = dropout_mask((7,), 1.0)
    assert dropped.all() and scale == 0.0
    with pytest.raises(ValueError, match="dropout probability 1.5"):
        dropout_mask((3,), 1.5)


def test_project_and_average_gradient_of_the_tokens():
    projection = LayerPlus(6, 4).eval()
    tokens = torch.randn(2, 3, 6, dtype=torch.float64, requires_grad=True)
    projection.double()
    assert torch.autograd.gradcheck(lambda x: projection.project_and_average(x), (tokens,))


def test_registries_and_bad_names():
    assert isinstance(encoder_projection("layerplus", 10, 4), LayerPlus) and ENCODER_PROJECTIONS["layerplus"]
    assert isinstance(external_projection("mediummlpxs", 8), MiniMLP)
    assert isinstance(external_projection("none", 8), torch.nn.Identity)
    with pytest.raises(ValueError, match="--encoder_projection_type 'linear'"):
        encoder_projection("linear", 10, 4)
    with pytest.raises(ValueError, match="--external_encoder_projection_type 'big'"):
        external_projection("big", 8)
