"""The VPoser encoder trunk, and on it the pose branch of the retrieval models (PoseText, PairText).

The trunk (`vposer_feature_layers`) is shared by the PoseVAE encoder (whose layer-7 output is PoseEmbroider's
frozen pose feature) and `RetrievalPoseEncoder`; it lives here, below both, so that neither model package
imports the other.

Layout of `RetrievalPoseEncoder.encoder` (`nn.Sequential` indices, as the original "retrieval" role):

| idx | layer |
|---|---|
| 0-7 | the PoseVAE encoder trunk (`vposer_feature_layers`): BatchFlatten, BatchNorm1d(3J), Linear(3J, 512), |
|     | LeakyReLU, BatchNorm1d(512), Dropout(0.1), Linear(512, 512), Linear(512, 512) |
| 8 | Linear(512, 32) (`num_neurons_mini` bottleneck) |
| 9 | ReLU |
| 10 | Linear(32, latentD) |
| 11 | L2Norm |

Layers 0-7 have the layer types, shapes and state-dict names of `PoseVAE.pose_encoder.encoder[:8]`, so a
PoseVAE encoder trunk could be copied in; the retrieval models train theirs from scratch, as the original.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["FEATURE_LAYER", "BatchFlatten", "L2Norm", "RetrievalPoseEncoder", "vposer_feature_layers"]

FEATURE_LAYER = 7
"""Index of the trunk layer whose output is the frozen 512-d pose feature (layers 0..7 form the trunk)."""


class BatchFlatten(nn.Module):
    """(B, ...) -> (B, prod(...))."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], -1)


class L2Norm(nn.Module):
    """(..., D) -> the same vectors scaled to unit L2 norm along the last dimension."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=-1)


def vposer_feature_layers(num_body_joints: int = 22, num_neurons: int = 512, dropout: float = 0.1) -> list[nn.Module]:
    """The 8 layers of the VPoser encoder up to its `num_neurons` feature (indices 0..FEATURE_LAYER):
    (B, J, 3) or (B, 3J) axis-angles -> (B, num_neurons). Built in this order, they give the state-dict
    names `<sequential>.1.weight` ... `<sequential>.7.bias` of the original checkpoints."""
    input_dim = num_body_joints * 3
    layers: list[nn.Module] = [
        BatchFlatten(),  # 0
        nn.BatchNorm1d(input_dim),  # 1
        nn.Linear(input_dim, num_neurons),  # 2
        nn.LeakyReLU(),  # 3
        nn.BatchNorm1d(num_neurons),  # 4
        nn.Dropout(dropout),  # 5
        nn.Linear(num_neurons, num_neurons),  # 6
        nn.Linear(num_neurons, num_neurons),  # 7 (no activation between 6 and 7: VPoser's layout)
    ]
    assert len(layers) == FEATURE_LAYER + 1
    return layers


class RetrievalPoseEncoder(nn.Module):
    """Poses (B, J, 3) (or flat (B, 3J)) axis-angles -> (B, latentD) L2-normalised embeddings."""

    def __init__(
        self,
        latentD: int = 512,
        num_body_joints: int = 22,
        num_neurons: int = 512,
        num_neurons_mini: int = 32,
        dropout: float = 0.1,
    ):
        super().__init__()
        self.num_body_joints = num_body_joints
        self.latentD = latentD
        self.encoder = nn.Sequential(
            *vposer_feature_layers(num_body_joints, num_neurons, dropout),
            nn.Linear(num_neurons, num_neurons_mini),  # 8
            nn.ReLU(),  # 9
            nn.Linear(num_neurons_mini, latentD),  # 10
            L2Norm(),  # 11
        )

    def forward(self, poses: torch.Tensor) -> torch.Tensor:
        j = self.num_body_joints
        if not (poses.dim() == 3 and poses.shape[1:] == (j, 3)) and not (poses.dim() == 2 and poses.shape[1] == 3 * j):
            raise ValueError(
                f"poses: RetrievalPoseEncoder(num_body_joints={j}) expects (B, {j}, 3) axis-angles or (B, {3 * j}), "
                f"got {tuple(poses.shape)}"
            )
        return self.encoder(poses)
