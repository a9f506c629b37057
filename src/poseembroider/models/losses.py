"""Contrastive losses of the retrieval models (PoseText, PairText, PoseEmbroider, Aligner), and the
cross-rank gathering of the embeddings they compare.

Scores are cosine similarities of L2-normalised embeddings multiplied by a learnable scale (the original's
`loss_weight`, a 1-element parameter initialised at 10). "Batch-based classification" (BBC): row i of the
score matrix must pick column i among the batch. `batched_*` compute K such losses in one call, for the
core models' K (bundle, target) terms.

Under `torchrun`, contrastive losses need negatives from every rank: `gather_features(x, texts)`
concatenates the `(B, D)` embeddings of all ranks into `(world_size * B, D)`, in rank order. The other
ranks' slices are constants; the gradient flows through this rank's slice only (open_clip's pattern),
scaled by `world_size`: every rank computes the same loss over the gathered batch, so after DDP averages
the gradients over ranks each parameter receives exactly the gradient of that loss in one process with
the global batch (this is also the backward of `torch.distributed.nn.functional.all_gather`, without its
reduce-scatter). Every rank must pass tensors of the same shape (DistributedSampler ensures it). In a
single process, or inside `local_only()`, gathering is the identity. The gathering lives with the losses
(not in `training/`) because the models call it from their `training_step`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from poseembroider.devices import is_distributed

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


def batched_bbc(scores: torch.Tensor) -> torch.Tensor:
    """BBC of K square score matrices at once: scores (K, B, B) -> (K,) losses, term k equal to
    `bbc(scores[k])`; one cross-entropy call instead of K."""
    k, b, _ = scores.shape
    targets = torch.arange(b, device=scores.device).repeat(k)
    return F.cross_entropy(scores.reshape(k * b, b), targets, reduction="none").view(k, b).mean(1)


def batched_symmetric_bbc(scores: torch.Tensor) -> torch.Tensor:
    """symBBC of K square score matrices: (K, B, B) -> (K,), term k equal to `symmetric_bbc(scores[k])`."""
    return (batched_bbc(scores) + batched_bbc(scores.transpose(1, 2))) / 2


BATCHED_LOSSES: dict[str, RetrievalLoss] = {"BBC": batched_bbc, "symBBC": batched_symmetric_bbc}
"""The batched form of each of `RETRIEVAL_LOSSES`, by the same names."""


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


# --------------------------------------------------------------------------- gathering across ranks

_GATHER_DISABLED = False


@contextmanager
def local_only() -> Iterator[None]:
    """Inside this block `gather_features` / `all_gather_with_grad` return their input unchanged.

    The Trainer validates on rank 0 alone; a `validation_step` that reuses a gathering loss must not
    wait for ranks that are not validating.
    """
    global _GATHER_DISABLED
    previous, _GATHER_DISABLED = _GATHER_DISABLED, True
    try:
        yield
    finally:
        _GATHER_DISABLED = previous


class _ScaleGrad(torch.autograd.Function):
    """Identity forward; backward multiplies the gradient by `scale`."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, scale: float) -> torch.Tensor:  # type: ignore[override]
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        return grad * ctx.scale, None


def all_gather_with_grad(x: torch.Tensor, grad_scale: float | None = None) -> torch.Tensor:
    """`(B, ...)` on each rank -> `(world_size * B, ...)`, rank r's tensor at rows `[r*B, (r+1)*B)`.

    Other ranks' slices carry no gradient; this rank's slice is `x` itself, its gradient multiplied by
    `grad_scale` (default `world_size`, see the module docstring; pass 1 for open_clip's raw local
    gradient). Single process, or inside `local_only()`: returns `x`.
    """
    if _GATHER_DISABLED or not is_distributed() or dist.get_world_size() == 1:
        return x
    world_size, rank = dist.get_world_size(), dist.get_rank()
    gathered = [torch.empty_like(x) for _ in range(world_size)]
    dist.all_gather(gathered, x.detach().contiguous())
    scale = float(world_size if grad_scale is None else grad_scale)
    gathered[rank] = _ScaleGrad.apply(x, scale) if scale != 1.0 else x
    return torch.cat(gathered, dim=0)


def gather_features(*tensors: torch.Tensor, grad_scale: float | None = None) -> tuple[torch.Tensor, ...]:
    """`all_gather_with_grad` of each tensor: `(B, D)` embeddings -> `(world_size * B, D)`, same rank order."""
    return tuple(all_gather_with_grad(t, grad_scale=grad_scale) for t in tensors)
