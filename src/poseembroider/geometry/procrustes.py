"""Similarity Procrustes alignment (Umeyama, 1991), batched: the alignment behind PA-MPJPE.

Finds the scale s > 0, proper rotation R and translation t minimising `Σ_i w_i |s R p_i + t - q_i|²` for
predictions p and targets q, and returns the aligned predictions `s R p_i + t`.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from poseembroider.geometry._checks import (
    check_float_tensor,
    check_same_shape,
    check_trailing_shape,
    format_shape,
)

__all__ = ["ProcrustesResult", "procrustes_align"]


class ProcrustesResult(NamedTuple):
    """Output of `procrustes_align`; `aligned = scale * points @ rotationᵀ + translation`."""

    aligned: torch.Tensor  # (..., N, 3) predictions mapped onto the targets
    scale: torch.Tensor  # (...,)
    rotation: torch.Tensor  # (..., 3, 3), det = +1
    translation: torch.Tensor  # (..., 3)


def procrustes_align(
    points: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None
) -> ProcrustesResult:
    """Align `points` (..., N, 3) onto `target` (..., N, 3) with the best similarity transform.

    `weights` (..., N), optional, non-negative: per-point weights; a 0/1 mask drops points (e.g. invisible
    joints). Every batch element needs a positive total weight.

    The rotation is always proper: when the best orthogonal matrix is a reflection (reflected or coplanar
    inputs), the sign of the smallest singular direction is flipped (Umeyama's determinant correction), so
    `rotation` never has determinant -1. Degenerate inputs (all points equal) give scale 0 and translate to
    the target centroid, without NaN. Differentiable (through the SVD) away from repeated singular values.
    """
    check_trailing_shape(points, "points", (3,), "3D points")
    check_trailing_shape(target, "target", (3,), "3D points")
    if points.ndim < 2:
        raise ValueError(f"points: expected (..., N, 3) point sets, got {format_shape(points.shape)}")
    check_same_shape(target, "target", points, "points")
    if weights is None:
        w = torch.ones(points.shape[:-1], dtype=points.dtype, device=points.device)
    else:
        w = check_float_tensor(weights, "weights")
        if w.shape != points.shape[:-1]:
            raise ValueError(
                f"weights: expected {format_shape(points.shape[:-1])} (the shape of points without its last "
                f"dim), got {format_shape(w.shape)}"
            )
        if bool((w < 0).any()) or not bool(torch.isfinite(w).all()):
            raise ValueError("weights: expected finite non-negative values")
        if bool((w.sum(-1) <= 0).any()):
            raise ValueError("weights: every point set needs a positive total weight")
        w = w.to(points.dtype)

    w = w[..., None]  # (..., N, 1)
    total = w.sum(-2, keepdim=True)  # (..., 1, 1)
    mu_p = (w * points).sum(-2, keepdim=True) / total
    mu_q = (w * target).sum(-2, keepdim=True) / total
    x = points - mu_p
    y = target - mu_q
    var_p = (w * x * x).sum((-2, -1)) / total[..., 0, 0]  # (...,)
    cov = (y * w).transpose(-1, -2) @ x / total  # (..., 3, 3): Σ_i w_i y_i x_iᵀ / W

    u, sv, vh = torch.linalg.svd(cov)
    d = torch.sign(torch.linalg.det(u @ vh))
    d = torch.where(d == 0, torch.ones_like(d), d)
    signs = torch.stack([torch.ones_like(d), torch.ones_like(d), d], dim=-1)  # (..., 3)
    rotation = (u * signs[..., None, :]) @ vh
    tiny = torch.finfo(points.dtype).tiny
    scale = (sv * signs).sum(-1) / var_p.clamp(min=tiny)
    translation = mu_q[..., 0, :] - scale[..., None] * (rotation @ mu_p[..., 0, :, None])[..., 0]
    aligned = scale[..., None, None] * points @ rotation.transpose(-1, -2) + translation[..., None, :]
    return ProcrustesResult(aligned, scale, rotation, translation)
