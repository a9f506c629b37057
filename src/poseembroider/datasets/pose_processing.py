"""Pose normalisation at load time and the joint left/right flip used by the L/R augmentation.

All datasets hand poses to the models in one frame, the one of the original toolkit: AMASS-like,
z up, heading removed. BEDLAM and synthetic poses are stored heading-normalised in the y-up SMPL-X
frame and are turned into that frame by `y_up_to_z_up`; AMASS-derived poses (PoseFix, PoseScript)
have the z Euler angle of their global orientation zeroed. `to_render_frame` goes back to y up for
display.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from poseembroider.body.joints import joint_names_for_count, left_right_permutation
from poseembroider.geometry import (
    flip_left_right,
    normalize_global_orient_amass,
    normalize_global_orient_bedlam,
    y_up_to_z_up,
    z_up_to_y_up,
)


def _bedlam(poses: torch.Tensor) -> torch.Tensor:
    poses = poses.clone()
    normalised, _ = normalize_global_orient_bedlam(poses[..., 0, :])
    poses[..., 0, :] = y_up_to_z_up(normalised)
    return poses


def _amass(poses: torch.Tensor) -> torch.Tensor:
    poses = poses.clone()
    poses[..., 0, :], _ = normalize_global_orient_amass(poses[..., 0, :])
    return poses


POSE_NORMALIZERS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "bedlam": _bedlam,  # y-up SMPL-X frame (BEDLAM, synthetic): hips to the front, then to z up
    "amass": _amass,  # z-up AMASS frame (PoseFix, PoseScript): zero the heading Euler angle
    "none": lambda poses: poses,
}
"""Normalisers by name: (..., J, 3) axis-angles -> (..., J, 3) in the models' z-up frame."""


def normalize_poses(poses: torch.Tensor, scheme: str) -> torch.Tensor:
    if scheme not in POSE_NORMALIZERS:
        raise ValueError(f"unknown pose normalisation {scheme!r}; known: {sorted(POSE_NORMALIZERS)}")
    return POSE_NORMALIZERS[scheme](poses)


def to_render_frame(poses: torch.Tensor) -> torch.Tensor:
    """Poses in the models' z-up frame -> the y-up SMPL-X frame the renderer shows."""
    poses = poses.clone()
    poses[..., 0, :] = z_up_to_y_up(poses[..., 0, :])
    return poses


def flip_poses(poses: torch.Tensor) -> torch.Tensor:
    """Mirror (..., J, 3) poses left/right, J in {22, 52, 55}: swap sides, negate y and z of every
    axis-angle. Valid in the y-up and z-up frames alike (both keep x as the body's left)."""
    return flip_left_right(poses, left_right_permutation(joint_names_for_count(poses.shape[-2])))


def flip_axis_angle(rotvec: torch.Tensor) -> torch.Tensor:
    """Mirror a (..., 3) rotation through the x = 0 plane (e.g. a camera rotation of a flipped image)."""
    return rotvec * rotvec.new_tensor([1.0, -1.0, -1.0])
