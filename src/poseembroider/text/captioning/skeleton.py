"""Joints-only forward kinematics of the body model, for captioning many poses fast.

The captioners need the 55 skeleton joints of the mean-shape body, never its vertices. In SMPL-X the
joints are regressed from the *shaped* rest mesh (before pose blend shapes) and then moved by the
kinematic chain, so for the mean shape they are exactly the rest joints `J_regressor @ v_template`
carried through forward kinematics. Skipping the 10,475-vertex skinning makes this ~100x faster than
`BodyModel.forward` while giving the same joints (checked in the tests).

`SkeletonModel(body_model)` is a drop-in for `caption_coordinates(poses, body_model)`: it is called
like a `BodyModel` and returns an output whose `joints` are the (B, 55, 3) skeleton joints.
"""

from __future__ import annotations

import torch
from smplx.lbs import batch_rigid_transform

from poseembroider.body.body_model import BodyModel, BodyModelOutput, as_joint_poses
from poseembroider.body.joints import NUM_BODY_JOINTS, NUM_JOINTS
from poseembroider.geometry import axis_angle_to_matrix

__all__ = ["SkeletonModel", "skeleton_model"]


def _full_pose(poses: torch.Tensor) -> torch.Tensor:
    """(B, 22 | 52 | 55, 3) -> (B, 55, 3) in SMPL-X order (jaw, eyes and missing hands at rest)."""
    batch, num_joints = poses.shape[:2]
    if num_joints == NUM_JOINTS:
        return poses
    full = poses.new_zeros(batch, NUM_JOINTS, 3)
    full[:, :NUM_BODY_JOINTS] = poses[:, :NUM_BODY_JOINTS]
    if num_joints == 52:
        full[:, 25:] = poses[:, 22:]
    return full


class SkeletonModel(torch.nn.Module):
    """Mean-shape skeleton of a `BodyModel`: forward kinematics only (no vertices, no translation)."""

    def __init__(self, body_model: BodyModel):
        super().__init__()
        smplx_model = body_model.smplx
        with torch.no_grad():
            rest = smplx_model.J_regressor @ smplx_model.v_template  # (55+, 3); SMPL-X has exactly 55
        self.register_buffer("rest_joints", rest[:NUM_JOINTS].float().clone())
        self.register_buffer("parents", smplx_model.parents[:NUM_JOINTS].clone())
        mean = getattr(smplx_model, "pose_mean", None)
        mean = torch.zeros(NUM_JOINTS * 3) if mean is None else mean.reshape(-1)[: NUM_JOINTS * 3].float()
        self.register_buffer("pose_mean", mean.reshape(NUM_JOINTS, 3).clone())

    @torch.no_grad()
    def forward(self, poses: torch.Tensor) -> BodyModelOutput:
        """Pose the skeleton: (B, 22 | 52 | 55, 3) axis-angles -> output with `joints` (B, 55, 3)."""
        poses = _full_pose(as_joint_poses(poses).to(self.rest_joints.dtype)) + self.pose_mean
        batch = poses.shape[0]
        rotations = axis_angle_to_matrix(poses)
        rest = self.rest_joints.expand(batch, -1, -1)
        joints, _ = batch_rigid_transform(rotations, rest, self.parents, dtype=rest.dtype)
        return BodyModelOutput(vertices=joints.new_zeros(batch, 0, 3), joints=joints)


_CACHE: dict[int, tuple[BodyModel, SkeletonModel]] = {}


def skeleton_model(body_model: BodyModel | SkeletonModel | torch.nn.Module) -> torch.nn.Module:
    """The (cached) `SkeletonModel` of a `BodyModel`. A `SkeletonModel`, or any other module called
    like a body model (poses -> output with `joints`), is returned as is."""
    if not isinstance(body_model, BodyModel):
        return body_model
    cached = _CACHE.get(id(body_model))
    if cached is None or cached[0] is not body_model:
        cached = (body_model, SkeletonModel(body_model))
        _CACHE.clear()  # one body model per process in practice; never keep stale ones alive
        _CACHE[id(body_model)] = cached
    return cached[1]
