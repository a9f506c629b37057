"""Per-sample pose reconstruction errors: MPJPE, PA-MPJPE, PVE (millimetres) and rotation error (degrees).

Pure functions over batched tensors. Points are in metres (body-model output); errors are returned in
millimetres so that every metric carries its unit in its name (`*_mm`, `*_deg`), unlike the original,
which printed some distances unscaled.

- MPJPE: mean Euclidean distance over the 22 body joints (pelvis + 21 body joints of SMPL-X). Poses
  are posed with the same mean shape and no translation, so the pelvis already coincides and no root
  alignment is needed. (The original's "jts" distance averages over all 127 SMPL-X output joints,
  face landmarks included; MPJPE over the body joints is the usual protocol.)
- PA-MPJPE: the same after a similarity Procrustes alignment of the prediction onto the target.
- PVE: mean Euclidean distance over all mesh vertices (the original's "v2v" distance).
- rotation error: geodesic angle between predicted and target joint rotations, averaged over joints
  (global orientation included, as the original's "rot" distance).
"""

from __future__ import annotations

import math

import torch

from poseembroider.body.joints import NUM_BODY_JOINTS
from poseembroider.geometry import geodesic_distance, procrustes_align

__all__ = [
    "METRIC_NAMES",
    "mean_point_error",
    "pa_mean_point_error",
    "pose_reconstruction_errors",
    "rotation_error_deg",
]

METRIC_NAMES: tuple[str, ...] = ("mpjpe_mm", "pampjpe_mm", "pve_mm", "rot_deg")
"""Keys of `pose_reconstruction_errors`, in display order."""


def mean_point_error(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(..., N, 3) x (..., N, 3) -> (...): mean Euclidean distance over the N points (input units)."""
    return (pred - target).norm(dim=-1).mean(-1)


def pa_mean_point_error(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(..., N, 3) x (..., N, 3) -> (...): `mean_point_error` after aligning `pred` onto `target`
    (scale, rotation, translation; Umeyama)."""
    return mean_point_error(procrustes_align(pred, target).aligned, target)


def rotation_error_deg(pred_rotmat: torch.Tensor, target_rotmat: torch.Tensor) -> torch.Tensor:
    """(..., J, 3, 3) x (..., J, 3, 3) -> (...): mean geodesic angle over the J joints, in degrees."""
    return geodesic_distance(pred_rotmat, target_rotmat).mean(-1) * (180.0 / math.pi)


def pose_reconstruction_errors(
    pred_joints: torch.Tensor,
    target_joints: torch.Tensor,
    pred_vertices: torch.Tensor,
    target_vertices: torch.Tensor,
    pred_rotmat: torch.Tensor,
    target_rotmat: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """Every metric of `METRIC_NAMES` per sample, each (...,).

    Args:
        pred_joints, target_joints: (..., K, 3) body-model joints in metres, K >= 22 (only the first 22,
            the body joints, are used).
        pred_vertices, target_vertices: (..., V, 3) mesh vertices in metres.
        pred_rotmat, target_rotmat: (..., J, 3, 3) joint rotations.
    """
    pj, tj = pred_joints[..., :NUM_BODY_JOINTS, :], target_joints[..., :NUM_BODY_JOINTS, :]
    return {
        "mpjpe_mm": mean_point_error(pj, tj) * 1000.0,
        "pampjpe_mm": pa_mean_point_error(pj, tj) * 1000.0,
        "pve_mm": mean_point_error(pred_vertices, target_vertices) * 1000.0,
        "rot_deg": rotation_error_deg(pred_rotmat, target_rotmat),
    }
