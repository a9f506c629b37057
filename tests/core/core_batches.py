"""Small core-model configs and random cached-feature batches for the core tests."""

from __future__ import annotations

import torch

from poseembroider.model import CoreConfig
from tiny_models import TINY_CORE

IMAGE_TOKENS, IMAGE_DIM, TEXT_DIM = 6, 12, 10


def small_config(**overrides) -> CoreConfig:
    values = dict(TINY_CORE, image_feature_dim=IMAGE_DIM, pose_feature_dim=20, text_feature_dim=TEXT_DIM)
    values.update(overrides)
    return CoreConfig(**values)


def feature_batch(batch_size: int = 8, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "image_features": torch.randn(batch_size, IMAGE_TOKENS, IMAGE_DIM, generator=g),
        "pose_features": torch.randn(batch_size, 20, generator=g),
        "text_features": torch.randn(batch_size, TEXT_DIM, generator=g),
    }
