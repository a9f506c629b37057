"""Trainable projections of the representation models (original_system.md §2.5).

- encoder projections (`--encoder_projection_type`), applied to each frozen feature (to each image token
  for the exact image mode): 'layerplus' = Linear(in, D) -> ReLU -> Dropout(0.1);
- external projections (`--external_encoder_projection_type`), applied to the one token per modality:
  'none' (identity, PoseEmbroider), 'minimlp' (Linear-ReLU-Linear), 'mediummlpxs' (three linear layers,
  the Aligner's);
- `MiniMLP`, also used for PoseEmbroider's reprojection heads: weights trunc_normal(std 0.02), zero biases,
  optional L2-normalised output.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from timm.layers import trunc_normal_
from torch import nn


class MiniMLP(nn.Module):
    """(..., in_dim) -> (..., out_dim): Linear-ReLU-Linear, or with `three_layers`
    Linear-ReLU-Linear-ReLU-Dropout-Linear; L2-normalised output when `normalize`."""

    def __init__(
        self,
        in_dim: int,
        hidden_dim: int,
        out_dim: int,
        three_layers: bool = False,
        dropout: float = 0.1,
        normalize: bool = False,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Linear(in_dim, hidden_dim), nn.ReLU()]
        if three_layers:
            layers += [nn.Linear(hidden_dim, hidden_dim), nn.ReLU(), nn.Dropout(dropout)]
        layers.append(nn.Linear(hidden_dim, out_dim))
        self.layers = nn.Sequential(*layers)
        self.normalize = normalize
        for module in self.layers:
            if isinstance(module, nn.Linear):
                trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layers(x)
        return F.normalize(x, dim=-1) if self.normalize else x


class LayerPlus(nn.Sequential):
    """Linear(in_dim, out_dim) -> ReLU -> Dropout: the 'layerplus' encoder projection, (..., in) -> (..., out).

    `project_and_average` is the exact image mode's use of it: every token projected, then averaged, in one
    fused autograd function."""

    def __init__(self, in_dim: int, out_dim: int, dropout: float = 0.1) -> None:
        super().__init__(nn.Linear(in_dim, out_dim), nn.ReLU(), nn.Dropout(dropout))

    def project_and_average(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, T, in) tokens (any float dtype) -> (B, out) = `self(tokens.float()).mean(1)`."""
        linear, _, dropout = self
        p = dropout.p if self.training else 0.0
        return _ProjectReluDropoutMean.apply(tokens, linear.weight, linear.bias, p)


DROPOUT_LEVELS = 65536
"""`dropout_mask` resolution: p is rounded to a multiple of 1 / DROPOUT_LEVELS."""


def dropout_mask(shape: tuple[int, ...], p: float, device: torch.device | str = "cpu") -> tuple[torch.Tensor, float]:
    """(dropped, scale): a boolean mask of `shape`, True with probability p (rounded to a multiple of 1/65536)
    independently per element, and the dropout scale 1 / (1 - p) of the kept elements (0 when all drop).

    16 random bits per element, 4 elements per 64-bit draw of torch's generator (so `torch.manual_seed`
    reproduces it): on CPU about 5x cheaper than `bernoulli_` (one generator call per element), which took
    a fifth of an exact-mode training step over the (B*192, 512) image activations."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability {p} is not in [0, 1]")
    numel = math.prod(shape)
    levels_dropped = round(p * DROPOUT_LEVELS)
    if levels_dropped == DROPOUT_LEVELS:
        return torch.ones(shape, dtype=torch.bool, device=device), 0.0
    words = torch.randint(-(2**63), 2**63 - 1, ((numel + 3) // 4,), dtype=torch.int64, device=device)
    dropped = words.view(torch.int16)[:numel] < levels_dropped - DROPOUT_LEVELS // 2  # int16 uniform on [-2^15, 2^15)
    return dropped.view(shape), DROPOUT_LEVELS / (DROPOUT_LEVELS - levels_dropped)


class _ProjectReluDropoutMean(torch.autograd.Function):
    """mean_t dropout(relu(x_t W^T + b)) over the T tokens of each sample, with one saved (B*T, out) boolean.

    Autograd over the separate modules keeps the ReLU output, the dropout mask and an expanded gradient,
    each (B, T, out) floats, and makes three passes over them backward; this function applies ReLU and
    dropout in place and keeps only where the output is non-zero: there the derivative of the output
    with respect to the pre-activation is the dropout scale 1 / (1 - p), elsewhere 0. Dropout masks come
    from `dropout_mask` (p rounded to a multiple of 1/65536)."""

    @staticmethod
    def forward(ctx, tokens: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, p: float) -> torch.Tensor:
        batch, count, in_dim = tokens.shape
        flat = tokens.reshape(-1, in_dim).to(weight.dtype)
        y = torch.addmm(bias, flat, weight.t()).relu_()  # (B*T, out)
        scale = 1.0
        if p > 0:
            dropped, scale = dropout_mask(y.shape, p, y.device)
            y.masked_fill_(dropped, 0.0)
        ctx.save_for_backward(flat, weight, y > 0)
        ctx.shape, ctx.scale, ctx.token_dtype = tokens.shape, scale, tokens.dtype
        return y.view(batch, count, -1).mean(1) * scale  # the mean is linear: scale after it

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        flat, weight, nonzero = ctx.saved_tensors
        batch, count, _ = ctx.shape
        grad_pre = nonzero.view(batch, count, -1) * (grad_out * (ctx.scale / count)).unsqueeze(1)
        grad_pre = grad_pre.view(batch * count, -1)  # (B*T, out)
        grad_tokens = None
        if ctx.needs_input_grad[0]:
            grad_tokens = (grad_pre @ weight).view(ctx.shape).to(ctx.token_dtype)
        grad_weight = grad_pre.t() @ flat if ctx.needs_input_grad[1] else None
        grad_bias = grad_pre.sum(0) if ctx.needs_input_grad[2] else None
        return grad_tokens, grad_weight, grad_bias, None


ENCODER_PROJECTIONS: dict[str, Callable[[int, int], nn.Module]] = {"layerplus": LayerPlus}
"""`--encoder_projection_type` choices: (frozen feature width, latentD) -> module."""

EXTERNAL_PROJECTIONS: dict[str, Callable[[int], nn.Module]] = {
    "none": lambda dim: nn.Identity(),
    "minimlp": lambda dim: MiniMLP(dim, dim, dim),
    "mediummlpxs": lambda dim: MiniMLP(dim, dim, dim, three_layers=True),
}
"""`--external_encoder_projection_type` choices: latentD -> module."""


def _lookup(table: dict, name: str, flag: str):
    try:
        return table[name]
    except KeyError:
        raise ValueError(f"{flag} {name!r} is not one of {sorted(table)}") from None


def encoder_projection(name: str, in_dim: int, out_dim: int) -> nn.Module:
    return _lookup(ENCODER_PROJECTIONS, name, "--encoder_projection_type")(in_dim, out_dim)


def external_projection(name: str, dim: int) -> nn.Module:
    return _lookup(EXTERNAL_PROJECTIONS, name, "--external_encoder_projection_type")(dim)
