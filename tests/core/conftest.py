"""Fixtures of the core tests (helpers in `core_batches`, importable under a unique name)."""

from __future__ import annotations

import pytest
import torch
from core_batches import feature_batch


@pytest.fixture
def features() -> dict[str, torch.Tensor]:
    return feature_batch()
