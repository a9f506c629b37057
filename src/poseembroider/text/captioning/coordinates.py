"""Joint coordinates in the captioning frame, the input of posecodes and paircodes.

Frame: y up, +z the direction the body faces, +x the body's LEFT; metres. Only the heading (yaw) of
the global orientation is removed (the hips are turned to face +z); tilt is kept, so lying, bent-over
or upside-down bodies stay so. No translation: the pelvis stays at the body model's rest position.
Body shape is not considered (mean shape), as in the original pipelines.

Joints: the 52 skeleton joints of the stored pose format (SMPL-X 0-21 and 25-54: body, left hand,
right hand; jaw and eyes dropped), followed by the virtual joints of `VIRTUAL_JOINTS`. Poses given
with 22 joints get flat hands, and their `*_middle2` joints are placed `SYNTHETIC_MIDDLE2_OFFSET`
beyond the wrist along the elbow->wrist direction, as the original pipeline does without fingers.
"""

from __future__ import annotations

import torch

from poseembroider.body.body_model import BodyModel, as_joint_poses
from poseembroider.body.joints import JOINT_INDEX, POSE_52_JOINT_NAMES
from poseembroider.geometry import normalize_global_orient_bedlam

SYNTHETIC_MIDDLE2_OFFSET = 0.1367
"""Metres from the wrist to the middle finger's second joint (the original's dataset mean)."""

VIRTUAL_JOINTS: dict[str, tuple[str, ...]] = {
    "left_hand": ("left_wrist", "left_middle2"),
    "right_hand": ("right_wrist", "right_middle2"),
    "torso": ("pelvis", "neck", "spine3"),
    "left_thigh": ("left_hip", "left_knee"),
    "right_thigh": ("right_hip", "right_knee"),
    "left_shin": ("left_knee", "left_ankle"),
    "right_shin": ("right_knee", "right_ankle"),
    "left_upperarm": ("left_shoulder", "left_elbow"),
    "right_upperarm": ("right_shoulder", "right_elbow"),
    "left_forearm": ("left_elbow", "left_wrist"),
    "right_forearm": ("right_elbow", "right_wrist"),
}
"""Virtual joint -> the joints it is the mean of."""

CAPTION_JOINT_NAMES: tuple[str, ...] = POSE_52_JOINT_NAMES + tuple(VIRTUAL_JOINTS)
"""Names of the (N, 63, 3) coordinates returned by `caption_coordinates`."""
CAPTION_JOINT_INDEX: dict[str, int] = {name: i for i, name in enumerate(CAPTION_JOINT_NAMES)}

_SKELETON_52 = [JOINT_INDEX[name] for name in POSE_52_JOINT_NAMES]  # SMPL-X 0-21, 25-54


def add_virtual_joints(joints52: torch.Tensor) -> torch.Tensor:
    """(N, 52, 3) skeleton joints -> (N, 63, 3) with the virtual joints appended."""
    index = {name: i for i, name in enumerate(POSE_52_JOINT_NAMES)}
    virtual = [joints52[:, [index[p] for p in parts]].mean(dim=1) for parts in VIRTUAL_JOINTS.values()]
    return torch.cat([joints52, torch.stack(virtual, dim=1)], dim=1)


def _synthesise_middle2(joints52: torch.Tensor) -> torch.Tensor:
    """Place the middle2 joints of finger-less poses beyond the wrists, along the forearms."""
    index = {name: i for i, name in enumerate(POSE_52_JOINT_NAMES)}
    joints52 = joints52.clone()
    for side in ("left", "right"):
        elbow, wrist = joints52[:, index[f"{side}_elbow"]], joints52[:, index[f"{side}_wrist"]]
        direction = torch.nn.functional.normalize(wrist - elbow, dim=-1)
        joints52[:, index[f"{side}_middle2"]] = wrist + SYNTHETIC_MIDDLE2_OFFSET * direction
    return joints52


@torch.no_grad()
def caption_coordinates(
    poses: torch.Tensor, body_model: BodyModel, batch_size: int = 1024, normalize_heading: bool = True
) -> torch.Tensor:
    """Joint coordinates of axis-angle poses in the captioning frame.

    Args:
        poses: (N, 22 | 52 | 55, 3) axis-angles (or flat), SMPL-X joint order.
        body_model: the body model used to pose the mean-shape body.
        batch_size: poses per forward pass (bounds memory).
        normalize_heading: remove the yaw of the global orientation (hips facing +z).

    Returns:
        (N, 63, 3) float32: the 52 skeleton joints then the 11 virtual joints (`CAPTION_JOINT_NAMES`).
    """
    poses = as_joint_poses(poses).to(torch.float32)
    has_fingers = poses.shape[1] > 22
    out = []
    for start in range(0, poses.shape[0], batch_size):
        chunk = poses[start : start + batch_size].clone()
        if normalize_heading:
            chunk[:, 0], _ = normalize_global_orient_bedlam(chunk[:, 0])
        joints = body_model(chunk).joints[:, _SKELETON_52].float().cpu()
        out.append(joints if has_fingers else _synthesise_middle2(joints))
    joints52 = torch.cat(out) if out else poses.new_zeros(0, 52, 3)
    return add_virtual_joints(joints52)
