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


def layerplus(in_dim: int, out_dim: int, dropout: float = 0.1) -> nn.Module:
    """Linear(in_dim, out_dim) -> ReLU -> Dropout: the 'layerplus' encoder projection."""
    return nn.Sequential(nn.Linear(in_dim, out_dim), nn.ReLU(), nn.Dropout(dropout))


ENCODER_PROJECTIONS: dict[str, Callable[[int, int], nn.Module]] = {"layerplus": layerplus}
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
