"""Chordal L2 mean of rotations: the rotation closest (Frobenius norm) to the weighted average matrix.

`mean = argmin_{R ∈ SO(3)} Σ_i w_i |R - R_i|_F²`, obtained by projecting `Σ_i w_i R_i` onto SO(3) by SVD.
Used for the mean SMPL-X pose (per-joint mean over the training poses) that the HPS head starts from.
"""

from __future__ import annotations

import torch

from poseembroider.geometry._checks import check_float_tensor, check_trailing_shape, format_shape
from poseembroider.geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle

__all__ = ["chordal_mean", "chordal_mean_axis_angle", "project_to_rotation_matrix"]


def project_to_rotation_matrix(matrix: torch.Tensor) -> torch.Tensor:
    """Closest rotation to each (..., 3, 3) matrix in Frobenius norm ("special Procrustes").

    `M = U S Vᵀ` -> `U diag(1, 1, det(U Vᵀ)) Vᵀ`: the determinant correction makes the result a proper
    rotation even when the closest orthogonal matrix would be a reflection.
    """
    check_trailing_shape(matrix, "matrix", (3, 3), "matrices")
    u, _, vh = torch.linalg.svd(matrix)
    d = torch.sign(torch.linalg.det(u @ vh))
    d = torch.where(d == 0, torch.ones_like(d), d)
    signs = torch.stack([torch.ones_like(d), torch.ones_like(d), d], dim=-1)
    return (u * signs[..., None, :]) @ vh


def _weighted_sum(values: torch.Tensor, weights: torch.Tensor | None, core: int, name: str) -> torch.Tensor:
    """Σ over dim 0 of `values` (N, ..., *core dims), with `weights` of shape (N,) or values.shape[:-core]."""
    if weights is None:
        return values.sum(0)
    w = check_float_tensor(weights, "weights")
    batch = values.shape[: values.ndim - core]
    if w.shape != batch and w.shape != batch[:1]:
        raise ValueError(
            f"weights: expected {format_shape(batch[:1])} or {format_shape(batch)} (leading dims of {name}), "
            f"got {format_shape(w.shape)}"
        )
    if bool((w < 0).any()) or not bool(torch.isfinite(w).all()):
        raise ValueError("weights: expected finite non-negative values")
    w = w.to(values.dtype).reshape(*w.shape, *([1] * (values.ndim - w.ndim)))
    return (w * values).sum(0)


def chordal_mean(rotations: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """(Weighted) chordal mean over the first dim: (N, ..., 3, 3) -> (..., 3, 3).

    E.g. (N, J, 3, 3) rotation matrices of N poses -> (J, 3, 3) per-joint means. `weights`: (N,) or
    (N, ...) non-negative. Left- and right-invariant: mean(A R_i B) = A mean(R_i) B for rotations A, B.
    """
    check_trailing_shape(rotations, "rotations", (3, 3), "rotation matrices")
    if rotations.ndim < 3 or rotations.shape[0] == 0:
        raise ValueError(
            "rotations: expected (N, ..., 3, 3) rotation matrices with N >= 1, "
            f"got {format_shape(rotations.shape)}"
        )
    return project_to_rotation_matrix(_weighted_sum(rotations, weights, 2, "rotations"))


def chordal_mean_axis_angle(axis_angles: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """`chordal_mean` for rotation vectors: (N, ..., 3) axis-angle -> (..., 3) axis-angle."""
    check_trailing_shape(axis_angles, "axis_angles", (3,), "axis-angles")
    if axis_angles.ndim < 2 or axis_angles.shape[0] == 0:
        raise ValueError(
            "axis_angles: expected (N, ..., 3) axis-angles with N >= 1, "
            f"got {format_shape(axis_angles.shape)}"
        )
    matrices = axis_angle_to_matrix(axis_angles)
    return matrix_to_axis_angle(
        project_to_rotation_matrix(_weighted_sum(matrices, weights, 2, "axis_angles"))
    )
