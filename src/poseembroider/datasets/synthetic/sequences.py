"""Smooth pose sequences through 2-4 keyframes, for in-sequence pose pairs (poses a fraction of a second apart).

A sequence is made as follows:

1. the first keyframe is a `PoseSampler` pose; the next keyframes are sampler poses whose key pose has the
   same posture and whose orientation mode is the same (a standing sequence stays standing-ish, a lying one
   lying);
2. keyframes are spread evenly over the sequence; each next keyframe is pulled towards the previous one (a
   blend in the anatomical joint angles of `joint_limits`) until its joints move at most `max_joint_speed`
   m/s at the peak of the eased transition (body frame, heading excluded);
3. frames blend consecutive keyframes in the joint angles with smoothstep easing (zero velocity at each
   keyframe); the heading-free global orientation is slerped with the same easing;
4. the heading turns at a constant rate drawn per sequence (|rate| <= `max_heading_rate_deg` per second).

Because the joint-limit region is convex in the blended angles, every frame is inside the limits when the
keyframes are. Self-penetration is checked on the sampled keyframe candidates, not on every frame.
Bodies: each sequence belongs to a subject (`subject_id`), whose betas are used for every
frame; about `sequences_per_subject` sequences share a subject.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from poseembroider.body.body_model import BodyModel
from poseembroider.body.joints import NUM_BODY_JOINTS
from poseembroider.datasets.synthetic.joint_limits import blend_joint_params, joint_params_to_pose, pose_to_joint_params
from poseembroider.datasets.synthetic.pose_sampler import PoseSampler, SamplerConfig, slerp
from poseembroider.geometry import (
    axis_angle_to_matrix,
    axis_rotation_matrix,
    matrix_to_axis_angle,
    matrix_to_quaternion,
    quaternion_to_matrix,
)

__all__ = ["SequenceBatch", "sample_sequences"]


@dataclass
class SequenceBatch:
    """S sequences of T frames. `poses` (S, T, 22, 3) float32 axis-angles; `joints` (S, T, 22, 3) body joints
    (metres, model frame without translation, as `BodyModel`); `betas` (S, 10) (constant over a sequence);
    `frame_index` (S, T) long; `sequence_id` (S,) long; `subject_id` (S,) long; `fps`; `keyframe_frames`
    (S, 4) long frame of each keyframe (-1 where a sequence has fewer than 4); `key_names`: the first
    keyframe's key pose, per sequence."""

    poses: torch.Tensor
    joints: torch.Tensor
    betas: torch.Tensor
    frame_index: torch.Tensor
    sequence_id: torch.Tensor
    subject_id: torch.Tensor
    fps: float
    keyframe_frames: torch.Tensor
    key_names: list[str]

    @property
    def num_sequences(self) -> int:
        return self.poses.shape[0]

    @property
    def num_frames(self) -> int:
        return self.poses.shape[1]

    @property
    def time(self) -> torch.Tensor:
        """(S, T) seconds since the first frame."""
        return self.frame_index.float() / self.fps


MAX_KEYFRAMES = 4


def _smoothstep(u: torch.Tensor) -> torch.Tensor:
    return u * u * (3.0 - 2.0 * u)


def _heading_free(poses: torch.Tensor, heading: torch.Tensor) -> torch.Tensor:
    """(n, 4) quaternions of Ry(heading)ᵀ @ R(global_orient)."""
    rotation = axis_rotation_matrix(-heading, "y") @ axis_angle_to_matrix(poses[:, 0])
    return matrix_to_quaternion(rotation)


def sample_sequences(
    n_sequences: int,
    frames_per_sequence: int,
    fps: float = 30.0,
    seed: int = 0,
    *,
    body_model: BodyModel | None = None,
    sampler_config: SamplerConfig | None = None,
    keyframes: tuple[int, int] = (2, 4),
    max_joint_speed: float = 2.0,
    max_heading_rate_deg: float = 30.0,
    sequences_per_subject: int = 3,
) -> SequenceBatch:
    """S = `n_sequences` smooth sequences of T = `frames_per_sequence` frames at `fps` (see the module docstring).

    Args:
        keyframes: (min, max) number of keyframes per sequence, within 2..4.
        max_joint_speed: bound (m/s) on the peak speed of any body joint relative to the pelvis between two
            keyframes, heading rotation excluded.
        max_heading_rate_deg: bound on the constant turning rate (degrees per second).
    """
    if n_sequences < 1 or frames_per_sequence < 2:
        raise ValueError(
            f"n_sequences >= 1 and frames_per_sequence >= 2 expected, got {n_sequences} and {frames_per_sequence}"
        )
    if not 2 <= keyframes[0] <= keyframes[1] <= MAX_KEYFRAMES:
        raise ValueError(f"keyframes: expected 2 <= min <= max <= {MAX_KEYFRAMES}, got {keyframes}")
    if fps <= 0:
        raise ValueError(f"fps: expected a positive frame rate, got {fps}")
    s, t = n_sequences, frames_per_sequence
    sampler = PoseSampler(seed, body_model, sampler_config)
    g = sampler.generator

    num_keys = torch.randint(keyframes[0], keyframes[1] + 1, (s,), generator=g)
    first = sampler.sample(s)
    posture = sampler.key_posture[first.key_a]
    later = sampler.sample_like(posture.repeat(MAX_KEYFRAMES - 1), first.orientation_mode.repeat(MAX_KEYFRAMES - 1))

    n_subjects = max(1, math.ceil(s / sequences_per_subject))
    cfg = sampler.config
    subject_betas = torch.randn(n_subjects, cfg.num_betas, generator=g).clamp(-cfg.betas_clip, cfg.betas_clip)
    subject_id = torch.randint(n_subjects, (s,), generator=g)
    betas = subject_betas[subject_id]

    # keyframe joint angles (S, K, 22, 3) and heading-free orientations (S, K, 4)
    key_params = torch.empty(s, MAX_KEYFRAMES, NUM_BODY_JOINTS, 3)
    key_orient = torch.empty(s, MAX_KEYFRAMES, 4)
    key_params[:, 0] = pose_to_joint_params(first.poses)
    key_orient[:, 0] = _heading_free(first.poses, first.heading)
    later_params = pose_to_joint_params(later.poses).reshape(MAX_KEYFRAMES - 1, s, NUM_BODY_JOINTS, 3)
    later_orient = _heading_free(later.poses, later.heading).reshape(MAX_KEYFRAMES - 1, s, 4)

    segment_frames = (t - 1) / (num_keys - 1).float()  # (S,) frames per transition
    segment_seconds = segment_frames / fps
    for k in range(1, MAX_KEYFRAMES):
        prev_params, prev_orient = key_params[:, k - 1], key_orient[:, k - 1]
        cand_params, cand_orient = later_params[k - 1], later_orient[k - 1]
        alpha = torch.ones(s)
        # pull the candidate towards the previous keyframe until the peak joint speed is within bounds:
        # smoothstep's peak speed is 1.5x its mean, and the mean is the longest joint path (measured along the
        # blend, which can be curved) over the transition time; paths shrink about linearly with alpha
        allowed = max_joint_speed * segment_seconds / 1.5
        for _ in range(3):
            path = _longest_joint_path(sampler, prev_params, cand_params, prev_orient, cand_orient, alpha, betas)
            alpha = alpha * torch.clamp(0.97 * allowed / path.clamp(min=1e-9), max=1.0)
        key_params[:, k] = blend_joint_params(prev_params, cand_params, alpha[:, None, None])
        key_orient[:, k] = slerp(prev_orient, cand_orient, alpha)

    # frames: segment index and eased weight per (S, T)
    frame = torch.arange(t).float()[None].expand(s, t)
    position = frame / segment_frames[:, None]
    segment = torch.minimum(position.floor().long(), (num_keys - 2)[:, None])
    eased = _smoothstep((position - segment).clamp(0.0, 1.0))
    rows = torch.arange(s)[:, None].expand(s, t)
    params = blend_joint_params(key_params[rows, segment], key_params[rows, segment + 1], eased[..., None, None])
    orient = slerp(key_orient[rows, segment], key_orient[rows, segment + 1], eased)

    heading0 = first.heading
    rate = (torch.rand(s, generator=g) * 2 - 1) * math.radians(max_heading_rate_deg)
    heading = heading0[:, None] + rate[:, None] * frame / fps
    global_rot = axis_rotation_matrix(heading, "y") @ quaternion_to_matrix(orient)
    body = joint_params_to_pose(params)
    poses = torch.cat([matrix_to_axis_angle(global_rot)[..., None, :], body[..., 1:, :]], dim=-2).float()

    flat_betas = betas[:, None].expand(s, t, -1).reshape(s * t, -1)
    joints = sampler.skeleton.joints(poses.reshape(s * t, NUM_BODY_JOINTS, 3), flat_betas).reshape(
        s, t, NUM_BODY_JOINTS, 3
    )

    keyframe_frames = torch.full((s, MAX_KEYFRAMES), -1, dtype=torch.long)
    for k in range(MAX_KEYFRAMES):
        has = k < num_keys
        keyframe_frames[has, k] = torch.round(k * segment_frames[has]).long()
    return SequenceBatch(
        poses=poses,
        joints=joints,
        betas=betas.float(),
        frame_index=torch.arange(t)[None].expand(s, t).clone(),
        sequence_id=torch.arange(s),
        subject_id=subject_id,
        fps=float(fps),
        keyframe_frames=keyframe_frames,
        key_names=first.key_a_names,
    )


def _longest_joint_path(
    sampler: PoseSampler,
    params_a: torch.Tensor,
    params_b: torch.Tensor,
    orient_a: torch.Tensor,
    orient_b: torch.Tensor,
    alpha: torch.Tensor,
    betas: torch.Tensor,
    steps: int = 6,
) -> torch.Tensor:
    """(n,) length (m) of the longest joint path when blending from a towards b up to weight alpha (n,)."""
    n = params_a.shape[0]
    weights = alpha[None] * torch.linspace(0.0, 1.0, steps + 1)[:, None]  # (steps + 1, n)
    params = blend_joint_params(params_a[None], params_b[None], weights[..., None, None])
    orient = slerp(orient_a[None].expand(steps + 1, -1, -1), orient_b[None].expand(steps + 1, -1, -1), weights)
    joints = _joints(
        sampler, params.reshape(-1, NUM_BODY_JOINTS, 3), orient.reshape(-1, 4), betas.repeat(steps + 1, 1)
    ).reshape(steps + 1, n, NUM_BODY_JOINTS, 3)
    return (joints[1:] - joints[:-1]).norm(dim=-1).sum(dim=0).amax(dim=-1)


def _joints(sampler: PoseSampler, params: torch.Tensor, orient: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
    """(n, 22, 3) joints of heading-free poses given by joint angles (n, 22, 3) and orientations (n, 4)."""
    poses = joint_params_to_pose(params)
    poses = torch.cat([matrix_to_axis_angle(quaternion_to_matrix(orient))[:, None], poses[:, 1:]], dim=1)
    return sampler.skeleton(poses, betas).joints
