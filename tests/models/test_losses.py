import math

import pytest
import torch

from poseembroider.models.losses import (
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
