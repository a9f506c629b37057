"""`count_parameters`: tied weights once, frozen ones left out on request."""

from __future__ import annotations

from torch import nn

from poseembroider.models.parameters import count_parameters


def test_tied_weights_count_once_and_frozen_ones_can_be_left_out():
    embedding = nn.Embedding(10, 4)
    projection = nn.Linear(4, 10)
    projection.weight = embedding.weight  # tied, as a language model's output projection
    model = nn.ModuleDict({"embedding": embedding, "projection": projection})
    assert count_parameters(model) == 10 * 4 + 10  # shared matrix once, plus the projection's bias
    projection.bias.requires_grad_(False)
    assert count_parameters(model, trainable_only=True) == 10 * 4
