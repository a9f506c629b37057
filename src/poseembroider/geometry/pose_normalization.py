"""Global-orientation normalisations of the original PoseEmbroider data pipelines.

Every normaliser returns the normalised global orientation (axis-angle) and the *normalising rotation* N
(..., 3, 3) it applied, such that `R_normalised = N @ R_original`. Callers keep N to go back to the original
view (the camera rotation `cam_rot` of a sample is `Nᵀ` composed with the dataset's frame fixes) or to apply
the same normalisation to a second pose (`rotate_global_orient`, e.g. pose B of an in-sequence PoseFix pair).

Frames: BEDLAM poses live in the y-up SMPL-X frame (a rest-pose body stands along +y, faces +z, and its
left hip is on the +x side); AMASS / PoseFix poses live in a z-up frame. `y_up_to_z_up` is the frame change
the original applies to BEDLAM poses "to be in the same configuration as AMASS".
"""

from __future__ import annotations

import math

import torch

from poseembroider.geometry._checks import check_finite, check_same_shape, check_trailing_shape, format_shape
from poseembroider.geometry.rotations import (
    axis_angle_to_matrix,
    axis_rotation_matrix,
    euler_to_matrix,
    matrix_to_axis_angle,
    matrix_to_euler,
)

__all__ = [
    "normalize_global_orient_amass",
    "normalize_global_orient_bedlam",
    "rotate_global_orient",
    "y_up_to_z_up",
    "z_up_to_y_up",
]

AMASS_EULER_CONVENTION = "xyz"
"""R = Rz(z) @ Ry(y) @ Rx(x), angles (x, y, z): extrinsic x, then y, then z (scipy's "xyz")."""


def _check_orient(global_orient: torch.Tensor, name: str = "global_orient") -> None:
    check_trailing_shape(global_orient, name, (3,), "axis-angles")
    check_finite(global_orient, name)


def normalize_global_orient_bedlam(
    global_orient: torch.Tensor, hip_vector: torch.Tensor | None = None, *, eps: float = 1e-6
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate the global orientation about the vertical y axis so that the hips face front (y-up frame).

    Args:
        global_orient: (..., 3) axis-angle global orientation in the y-up SMPL-X frame.
        hip_vector: (..., 3) optional hip line in the same frame, from the right hip to the left hip (e.g.
            `joints[..., 1, :] - joints[..., 2, :]` with SMPL-X joint order). Default: the rest-pose hip
            axis (1, 0, 0) rotated by the global orientation, i.e. the first column of `R(global_orient)`.
        eps: relative threshold under which a horizontal projection counts as vertical (degenerate).

    Returns:
        (normalised global orientation (..., 3), normalising rotation N = Ry(φ) (..., 3, 3)) with
        `R_normalised = N @ R(global_orient)`. Afterwards the horizontal (x, z) projection of `N @ hip_vector`
        points along +x, so the body faces +z as in the rest pose.

    Degenerate case: when the hip line is (nearly) vertical (e.g. a body lying on its side), its heading is
    undefined; the rotation is then chosen so that the horizontal projection of the body's forward axis
    `R @ (0, 0, 1)` points along +z instead. If that is vertical too (only possible with a `hip_vector`
    inconsistent with the orientation), N is the identity. Normalising twice changes nothing.
    """
    _check_orient(global_orient)
    rotation = axis_angle_to_matrix(global_orient)
    if hip_vector is None:
        hip = rotation[..., :, 0]
    else:
        check_trailing_shape(hip_vector, "hip_vector", (3,), "3D vectors")
        check_same_shape(hip_vector, "hip_vector", global_orient, "global_orient")
        check_finite(hip_vector, "hip_vector")
        hip = hip_vector.to(global_orient.dtype)
    forward = rotation[..., :, 2]

    hx, hz = hip[..., 0], hip[..., 2]
    fx, fz = forward[..., 0], forward[..., 2]
    use_hip = hx * hx + hz * hz > (eps * eps) * (hip * hip).sum(-1)
    use_forward = ~use_hip & (fx * fx + fz * fz > eps * eps)
    zero, one = torch.zeros_like(hx), torch.ones_like(hx)
    # Ry(φ) maps (hx, hz) onto (r, 0) for φ = atan2(hz, hx), and (fx, fz) onto (0, r) for φ = atan2(-fx, fz).
    phi_hip = torch.atan2(torch.where(use_hip, hz, zero), torch.where(use_hip, hx, one))
    phi_forward = torch.atan2(torch.where(use_forward, -fx, zero), torch.where(use_forward, fz, one))
    phi = torch.where(use_hip, phi_hip, torch.where(use_forward, phi_forward, zero))
    normalizing = axis_rotation_matrix(phi, "y")
    return matrix_to_axis_angle(normalizing @ rotation), normalizing


def normalize_global_orient_amass(global_orient: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Remove the heading about the vertical z axis (z-up frame), as the original does for AMASS / PoseFix.

    R is decomposed as `Rz(z) @ Ry(y) @ Rx(x)` (extrinsic "xyz", see `euler_to_matrix`), z is set to 0 and the
    rotation recomposed as `Ry(y) @ Rx(x)`.

    Returns:
        (normalised global orientation (..., 3), normalising rotation N = Rz(-z) (..., 3, 3)) with
        `R_normalised = N @ R(global_orient)`.

    At gimbal lock (y = ±π/2) the decomposition puts the whole free angle into z (x = 0), so the result is the
    canonical `Ry(±π/2)`. Normalising twice changes nothing.
    """
    _check_orient(global_orient)
    rotation = axis_angle_to_matrix(global_orient)
    angles = matrix_to_euler(rotation, AMASS_EULER_CONVENTION)
    normalizing = axis_rotation_matrix(-angles[..., 2], "z")
    heading_free = torch.cat([angles[..., :2], torch.zeros_like(angles[..., 2:])], dim=-1)
    normalized = euler_to_matrix(heading_free, AMASS_EULER_CONVENTION)
    return matrix_to_axis_angle(normalized), normalizing


def rotate_global_orient(global_orient: torch.Tensor, rotation: torch.Tensor) -> torch.Tensor:
    """Axis-angle of `rotation @ R(global_orient)`: apply a (normalising) world rotation (..., 3, 3)."""
    _check_orient(global_orient)
    check_trailing_shape(rotation, "rotation", (3, 3), "rotation matrices")
    check_finite(rotation, "rotation")
    if rotation.shape[:-2] != global_orient.shape[:-1]:
        raise ValueError(
            f"rotation: expected {format_shape((*global_orient.shape[:-1], 3, 3))} (one per global "
            f"orientation), got {format_shape(rotation.shape)}"
        )
    return matrix_to_axis_angle(rotation @ axis_angle_to_matrix(global_orient))


def _frame_change(global_orient: torch.Tensor, angle: float) -> torch.Tensor:
    _check_orient(global_orient)
    fix = axis_rotation_matrix(global_orient.new_full(global_orient.shape[:-1], angle), "x")
    return matrix_to_axis_angle(fix @ axis_angle_to_matrix(global_orient))


def y_up_to_z_up(global_orient: torch.Tensor) -> torch.Tensor:
    """Frame change y-up -> z-up: `R' = Rx(+π/2) @ R`, (..., 3) axis-angle in and out.

    Rx(π/2) maps the y axis onto the z axis (and z onto -y), so a body standing along +y stands along +z
    afterwards. This is the composition with the rotation vector (π/2, 0, 0) that the original applies to
    normalised BEDLAM poses.
    """
    return _frame_change(global_orient, math.pi / 2)


def z_up_to_y_up(global_orient: torch.Tensor) -> torch.Tensor:
    """Inverse of `y_up_to_z_up`: `R' = Rx(-π/2) @ R`, (..., 3) axis-angle in and out."""
    return _frame_change(global_orient, -math.pi / 2)
