"""Contrastive losses of the retrieval models (PoseText, PairText, PoseEmbroider, Aligner).

Scores are cosine similarities of L2-normalised embeddings multiplied by a learnable scale (the original's
`loss_weight`, a 1-element parameter initialised at 10). "Batch-based classification" (BBC): row i of the
score matrix must pick column i among the batch.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

TEMPERATURE_INIT = 10.0
"""Initial value of the learnable scale applied to cosine scores (original: `FloatTensor((10,))`)."""

RetrievalLoss = Callable[[torch.Tensor], torch.Tensor]


def bbc(scores: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of each row against its diagonal column.

    scores: (B, C) with C >= B; row i's positive is column i (extra columns are negatives only).
    Returns the mean over rows (scalar).
    """
    if scores.dim() != 2 or scores.shape[1] < scores.shape[0]:
        raise ValueError(f"bbc: expected scores of shape (B, C) with C >= B, got {tuple(scores.shape)}")
    targets = torch.arange(scores.shape[0], device=scores.device)
    return F.cross_entropy(scores, targets)


def symmetric_bbc(scores: torch.Tensor) -> torch.Tensor:
    """(BBC(scores) + BBC(scoresᵀ)) / 2 over a square (B, B) score matrix (the original's `symBBC`)."""
    if scores.dim() != 2 or scores.shape[0] != scores.shape[1]:
        raise ValueError(f"symBBC: expected a square (B, B) score matrix, got {tuple(scores.shape)}")
    return (bbc(scores) + bbc(scores.t())) / 2


RETRIEVAL_LOSSES: dict[str, RetrievalLoss] = {"BBC": bbc, "symBBC": symmetric_bbc}
"""The `--retrieval_loss` choices, by their original names."""


def get_retrieval_loss(name: str) -> RetrievalLoss:
    """The loss registered as `name` ('symBBC', 'BBC'); unknown names list the known ones."""
    try:
        return RETRIEVAL_LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown retrieval loss {name!r}; known: {sorted(RETRIEVAL_LOSSES)}") from None


def learnable_temperature(init: float = TEMPERATURE_INIT) -> nn.Parameter:
    """The learnable 1-element scale of the cosine scores, shape (1,)."""
    return nn.Parameter(torch.tensor([float(init)]))


def scaled_scores(queries: torch.Tensor, targets: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """`queries @ targetsᵀ * scale`: (B, D) x (C, D) -> (B, C); inputs are expected L2-normalised."""
    return queries @ targets.t() * scale
