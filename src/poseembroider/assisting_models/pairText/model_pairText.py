"""PairText (§2.3 of the reference): retrieval between pose pairs (A, B) and the instructions turning A into B;
the evaluation model of instruction generation (R-precision).

    poses_A, poses_B (B, 22, 3) -> shared RetrievalPoseEncoder -> (B, 512) each, unit norm
      -> pose_mlp: concat (B, 1024) -> Linear(1024, 1024) -> LeakyReLU -> Linear(1024, 512) -> LeakyReLU
         -> Linear(512, 512) -> LeakyReLU -> L2 norm                                        -> (B, 512)
    texts (B, L) -> TransformerTextEncoder (frozen DistilBERT -> transformer -> avg, L2)    -> (B, 512)
    loss = symBBC(texts @ pairsᵀ * loss_weight),  loss_weight learnable, initialised at 10

Everything but the pose side is PoseText's (`TextRetrievalModel`): gathered negatives under `torchrun`,
validation R@k (`p2t` = pair-to-text), optimizer groups without the frozen backbone, which is not saved.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from poseembroider.assisting_models.poseText.model_poseText import PoseTextConfig, TextRetrievalModel, batch_tensor
from poseembroider.models.pose_encoder import L2Norm, RetrievalPoseEncoder
from poseembroider.models.pretrained import register_model

__all__ = ["PairText", "PairTextConfig"]


@dataclass
class PairTextConfig(PoseTextConfig):
    """Architecture of PairText: PoseText's fields (same defaults, the published recipe); the pair MLP's
    widths follow `latentD` (2·latentD -> 2·latentD -> latentD -> latentD)."""


@register_model
class PairText(TextRetrievalModel):
    """Pair-instruction retrieval model (see the module docstring); poses (B, J, 3) axis-angles."""

    config_class = PairTextConfig

    def __init__(self, config: PairTextConfig | None = None):
        super().__init__()
        self.config = config or PairTextConfig()
        cfg = self.config
        d = cfg.latentD
        self.pose_encoder = RetrievalPoseEncoder(
            d, cfg.num_body_joints, cfg.num_neurons, cfg.num_neurons_mini, cfg.pose_dropout
        )
        self.pose_mlp = nn.Sequential(
            nn.Linear(2 * d, 2 * d),
            nn.LeakyReLU(),
            nn.Linear(2 * d, d),
            nn.LeakyReLU(),
            nn.Linear(d, d),
            nn.LeakyReLU(),
            L2Norm(),
        )
        self._build_text_side(cfg)

    def encode_pose_pairs(self, poses_A: torch.Tensor, poses_B: torch.Tensor) -> torch.Tensor:
        """Poses A and B, (B, J, 3) each -> (B, latentD) unit-norm pair embeddings.

        A and B go through the shared encoder in two passes, as the original (in training mode its
        batch-norm statistics are those of the A poses, then of the B poses)."""
        if poses_A.shape != poses_B.shape:
            raise ValueError(
                f"poses_A {tuple(poses_A.shape)} and poses_B {tuple(poses_B.shape)} must have the same shape"
            )
        return self.pose_mlp(torch.cat([self.pose_encoder(poses_A), self.pose_encoder(poses_B)], dim=1))

    def embed_batch(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """`batch["poses_A"]`, `batch["poses_B"]` (B, J, 3) and the instructions -> pair and text embeddings."""
        pairs = self.encode_pose_pairs(
            batch_tensor(batch, "poses_A", "PairText"), batch_tensor(batch, "poses_B", "PairText")
        )
        return pairs, self._texts_of(batch)
