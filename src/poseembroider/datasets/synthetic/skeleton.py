"""Fast forward kinematics of the SMPL-X body skeleton, read off a `BodyModel`.

The skeleton joints of SMPL-X do not depend on skinning: they are `J(β) = J_regressor @ (v_template +
shapedirs β)` (linear in the shape β), carried by the kinematic chain. Computing them directly costs a
few hundred flops per pose instead of skinning ~10k vertices, so the sampler can check thousands of poses per
second; `BodySkeleton.joints` equals `BodyModel(...).body_joints` to float precision (tested).

Besides the 22 body joints it places five *end points* attached rigidly to a joint, taken from rest-pose
vertices (hands are flat in our poses, so fingertips move rigidly with the wrist): the head centre (top of the
skull lowered by `HEAD_RADIUS`), the two middle fingertips and the two big toes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from poseembroider.body.body_model import BodyModel
from poseembroider.body.joints import BODY_JOINT_NAMES, JOINT_INDEX, NUM_BODY_JOINTS
from poseembroider.body.skeleton import Skeleton

__all__ = ["END_POINT_NAMES", "BodySkeleton", "SkeletonPose"]

END_POINT_NAMES: tuple[str, ...] = ("head_end", "left_hand_end", "right_hand_end", "left_toe_end", "right_toe_end")
"""Extra points appended after the 22 body joints (indices 22..26)."""

# vertex-joint order of smplx (`VertexJointSelector`): nose, eyes, ears, then the 6 foot points, then
# the 10 fingertips; we take the big toes and the middle fingertips from it
_SMPLX_VERTEX_JOINT = {"left_big_toe": 5, "right_big_toe": 8, "left_middle_tip": 13, "right_middle_tip": 18}
HEAD_RADIUS = 0.09  # metres the head end point sits below the top of the skull (roughly the head's centre)


@dataclass
class SkeletonPose:
    """Posed skeleton: `points` (N, 27, 3) = 22 body joints then `END_POINT_NAMES`; `rotations` (N, 22, 3, 3)
    global joint rotations."""

    points: torch.Tensor
    rotations: torch.Tensor

    @property
    def joints(self) -> torch.Tensor:
        """(N, 22, 3) body joints (pelvis first), metres, model frame."""
        return self.points[:, :NUM_BODY_JOINTS]


class BodySkeleton:
    """Forward kinematics of the 22 body joints (+ end points) for poses (N, 22, 3) and betas (N, <=10),
    on top of the body model's joints-only skeleton (`poseembroider.body.skeleton.Skeleton`)."""

    def __init__(self, body_model: BodyModel):
        self.skeleton = Skeleton(body_model)
        smplx_model = body_model.smplx
        v_template = smplx_model.v_template.double()
        shapedirs = smplx_model.shapedirs.double()  # (V, 3, B)
        self.num_betas = self.skeleton.num_betas
        vertex_ids = smplx_model.vertex_joint_selector.extra_joints_idxs.long()
        top = int(torch.argmax(v_template[:, 1]))
        end_vertices = [
            top,
            int(vertex_ids[_SMPLX_VERTEX_JOINT["left_middle_tip"]]),
            int(vertex_ids[_SMPLX_VERTEX_JOINT["right_middle_tip"]]),
            int(vertex_ids[_SMPLX_VERTEX_JOINT["left_big_toe"]]),
            int(vertex_ids[_SMPLX_VERTEX_JOINT["right_big_toe"]]),
        ]
        end_rest = v_template[end_vertices].clone()
        end_rest[0, 1] -= HEAD_RADIUS
        self.end_rest = end_rest.float()  # (5, 3)
        self.end_dirs = shapedirs[end_vertices][..., : self.num_betas].float()  # (5, 3, B)
        self.end_parents = [JOINT_INDEX[n] for n in ("head", "left_wrist", "right_wrist", "left_foot", "right_foot")]
        self.point_names = BODY_JOINT_NAMES + END_POINT_NAMES

    def rest(self, betas: torch.Tensor | None, batch: int) -> torch.Tensor:
        """(N, 27, 3) rest positions of the joints and end points for shapes `betas` (N, <= num_betas)."""
        joints = self.skeleton.rest(betas, batch)[:, :NUM_BODY_JOINTS]
        ends = self.end_rest.expand(batch, -1, -1)
        if betas is not None:
            betas = torch.as_tensor(betas, dtype=self.end_rest.dtype)
            ends = ends + torch.einsum("pcb,nb->npc", self.end_dirs[..., : betas.shape[1]], betas)
        return torch.cat([joints, ends], dim=1)

    def __call__(self, poses: torch.Tensor, betas: torch.Tensor | None = None) -> SkeletonPose:
        """Pose the skeleton: axis-angles (N, 22, 3) (global orientation first), no translation."""
        poses = torch.as_tensor(poses, dtype=self.end_rest.dtype)
        if poses.dim() != 3 or poses.shape[1:] != (NUM_BODY_JOINTS, 3):
            raise ValueError(f"poses: expected (N, 22, 3) axis-angles, got {tuple(poses.shape)}")
        n = poses.shape[0]
        posed = self.skeleton(poses, betas)
        joints = posed.joints[:, :NUM_BODY_JOINTS]
        rotations = posed.rotations[:, :NUM_BODY_JOINTS]
        rest = self.rest(betas, n)
        ends = []
        for e, p in enumerate(self.end_parents):
            offset = rest[:, NUM_BODY_JOINTS + e] - rest[:, p]
            ends.append(joints[:, p] + (rotations[:, p] @ offset[..., None])[..., 0])
        return SkeletonPose(points=torch.cat([joints, torch.stack(ends, dim=1)], dim=1), rotations=rotations)

    def joints(self, poses: torch.Tensor, betas: torch.Tensor | None = None, batch_size: int = 1024) -> torch.Tensor:
        """(N, 22, 3) body joints of axis-angles (N, 22, 3), posed `batch_size` at a time: the forward
        kinematics' temporaries (global rotations, end points) stay the same size for any N."""
        poses = torch.as_tensor(poses, dtype=self.end_rest.dtype)
        out = torch.empty(poses.shape[0], NUM_BODY_JOINTS, 3, dtype=self.end_rest.dtype)
        for start in range(0, poses.shape[0], batch_size):
            rows = slice(start, start + batch_size)
            out[rows] = self(poses[rows], None if betas is None else betas[rows]).joints
        return out
