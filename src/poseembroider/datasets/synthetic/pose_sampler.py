"""Random, plausible SMPL-X body poses: blends of key poses, perturbed, turned, checked.

One candidate pose is made in five steps, all batched:

1. **two key poses** A and B from the library (`key_poses.KEY_POSES`); B shares A's posture (upright, lying,
   inverted) with probability `same_posture_prob`, so most blends are between compatible poses;
2. **blend** in the anatomical joint angles of `joint_limits` (flex, side, twist per joint) with a weight
   w in [0, 1] drawn from the arcsine law (more weight near the key poses than halfway); the limit region is
   convex in these angles, so a blend of two legal poses is legal. Key-pose global orientations are slerped;
3. **perturb** every joint angle with Gaussian noise of a per-joint, per-angle scale (`PERTURBATION_DEG`:
   shoulders and wrists move most, knees mostly flex, collars barely), times a per-sample factor;
4. **orientation**: a random heading (yaw, uniform) on top of, for poses whose key pose is upright, one of
   the modes "keypose" (a small tilt, σ = `tilt_sigma_deg`), "tilted" (20-60° about a random horizontal axis),
   "lying" (on the back, front or a side) or "upside_down"; lying and inverted key poses keep their own
   orientation (plus the small tilt and the heading);
5. **body shape**: betas ~ N(0, 1) per coefficient, clipped to ±`betas_clip`.

A candidate is **rejected** (and drawn again) when a joint leaves its limits (`joint_limits.within_limits`
on the float32 pose) or when the body grossly penetrates itself (`self_penetration.self_penetrating`, core
capsules on the posed skeleton with the candidate's betas, `BodySkeleton` forward kinematics in batches of
`batch_size`). Every draw comes from one `torch.Generator` seeded at construction: the same seed gives the
same poses, call after call.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from poseembroider.body.body_model import BodyModel
from poseembroider.body.joints import BODY_JOINT_NAMES, NUM_BODY_JOINTS
from poseembroider.datasets.synthetic.joint_limits import (
    blend_joint_params,
    joint_params_to_pose,
    pose_to_joint_params,
    within_limits,
)
from poseembroider.datasets.synthetic.key_poses import KEY_POSES, POSTURES, KeyPose
from poseembroider.datasets.synthetic.self_penetration import self_penetrating
from poseembroider.datasets.synthetic.skeleton import BodySkeleton
from poseembroider.geometry import (
    axis_angle_to_matrix,
    axis_angle_to_quaternion,
    axis_rotation_matrix,
    matrix_to_axis_angle,
    quaternion_to_axis_angle,
)

__all__ = ["ORIENTATION_MODES", "PERTURBATION_DEG", "PoseSampler", "SampledPoses", "SamplerConfig", "slerp"]

ORIENTATION_MODES: tuple[str, ...] = ("keypose", "tilted", "lying", "upside_down")

PERTURBATION_DEG: dict[str, tuple[float, float, float]] = {
    # joint kind: (flex, side, twist) standard deviations in degrees at perturbation scale 1
    "spine": (5.0, 4.0, 5.0),
    "neck": (8.0, 6.0, 12.0),
    "head": (8.0, 6.0, 10.0),
    "hip": (12.0, 6.0, 8.0),
    "knee": (14.0, 1.0, 3.0),
    "ankle": (8.0, 5.0, 4.0),
    "foot": (6.0, 2.0, 1.0),
    "collar": (3.0, 3.0, 2.0),
    "shoulder": (16.0, 16.0, 20.0),
    "elbow": (16.0, 1.0, 10.0),
    "wrist": (12.0, 10.0, 15.0),
}


def _perturbation_table() -> torch.Tensor:
    table = torch.zeros(NUM_BODY_JOINTS, 3)
    for j, name in enumerate(BODY_JOINT_NAMES[1:], start=1):
        kind = name.split("_", 1)[1] if name.startswith(("left_", "right_")) else name
        kind = "spine" if kind.startswith("spine") else kind
        table[j] = torch.tensor(PERTURBATION_DEG[kind])
    return torch.deg2rad(table)


@dataclass
class SamplerConfig:
    """Knobs of `PoseSampler` (defaults are the ones the synthetic datasets use)."""

    key_poses: tuple[str, ...] | None = None  # names from KEY_POSES; None = the whole library
    use_cmu_key_poses: bool = False  # add the 108 real CMU poses as key poses (they are also the realism yardstick)
    same_posture_prob: float = 0.85  # P(key pose B has key pose A's posture)
    perturbation_scale: float = 1.0  # global factor on PERTURBATION_DEG
    perturbation_range: tuple[float, float] = (0.2, 1.2)  # per-sample factor, uniform
    mode_probs: tuple[float, float, float, float] = (0.80, 0.08, 0.08, 0.04)  # ORIENTATION_MODES, upright keys
    tilt_sigma_deg: float = 5.0  # small random tilt of every pose
    tilted_range_deg: tuple[float, float] = (20.0, 60.0)  # "tilted" mode
    num_betas: int = 10
    betas_clip: float = 2.5
    penetration_margin: float = 0.0  # metres of core-capsule overlap tolerated
    batch_size: int = 512  # candidates checked per forward-kinematics batch
    max_rounds: int = 100  # give up (error) when slots are still empty after this many redraws


@dataclass
class SampledPoses:
    """n sampled poses. `poses` (n, 22, 3) float32 axis-angles (global orientation first); `betas` (n, 10);
    `joints` (n, 22, 3) posed body joints with those betas (metres, model frame without translation, as
    `BodyModel`); `key_a`, `key_b` (n,) long indices into `key_names` and `blend_weight` (n,) float (0 = pure
    A, 1 = pure B);
    `orientation_mode` (n,) long indices into `ORIENTATION_MODES`; `heading` (n,) float radians: the yaw
    applied last (`R_y(heading)ᵀ @ R(global_orient)` is the pose's own, heading-free orientation);
    `attempts`: candidates drawn, rejected by the joint limits, rejected by self-penetration."""

    poses: torch.Tensor
    betas: torch.Tensor
    joints: torch.Tensor
    key_a: torch.Tensor
    key_b: torch.Tensor
    blend_weight: torch.Tensor
    orientation_mode: torch.Tensor
    heading: torch.Tensor
    key_names: tuple[str, ...]
    attempts: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return self.poses.shape[0]

    @property
    def key_a_names(self) -> list[str]:
        return [self.key_names[i] for i in self.key_a.tolist()]


def slerp(q1: torch.Tensor, q2: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation of unit quaternions (..., 4) (w, x, y, z) along the shorter arc; weight (...)."""
    dot = (q1 * q2).sum(-1, keepdim=True)
    q2 = torch.where(dot < 0, -q2, q2)
    dot = dot.abs().clamp(max=1.0)
    theta = torch.acos(dot)
    sin = torch.sin(theta)
    w = weight[..., None]
    near = sin < 1e-6
    safe = torch.where(near, torch.ones_like(sin), sin)
    a = torch.where(near, 1 - w, torch.sin((1 - w) * theta) / safe)
    b = torch.where(near, w, torch.sin(w * theta) / safe)
    out = a * q1 + b * q2
    return out / out.norm(dim=-1, keepdim=True)


def _uniform(
    shape: Sequence[int] | int, generator: torch.Generator, low: float = 0.0, high: float = 1.0
) -> torch.Tensor:
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    return low + (high - low) * torch.rand(*shape, generator=generator)


def _horizontal_axis_rotation(angle: torch.Tensor, azimuth: torch.Tensor) -> torch.Tensor:
    """(n, 3, 3) rotations by `angle` about the horizontal axis (cos az, 0, sin az)."""
    axis = torch.stack([torch.cos(azimuth), torch.zeros_like(azimuth), torch.sin(azimuth)], dim=-1)
    return axis_angle_to_matrix(axis * angle[:, None])


class PoseSampler:
    """Random poses from key-pose blends (see the module docstring).

    Args:
        seed: seeds the sampler's own `torch.Generator`; all draws come from it.
        body_model: used for the skeleton of the self-penetration test (default `BodyModel()`, the licensed
            SMPL-X file when configured, else the procedural one).
        config: `SamplerConfig`.
    """

    def __init__(self, seed: int = 0, body_model: BodyModel | None = None, config: SamplerConfig | None = None):
        self.config = config or SamplerConfig()
        self.generator = torch.Generator().manual_seed(int(seed))
        self.body_model = BodyModel() if body_model is None else body_model
        self.skeleton = BodySkeleton(self.body_model)
        self._build_library()
        self._sigma = _perturbation_table()
        probs = torch.tensor(self.config.mode_probs, dtype=torch.float64)
        if probs.shape != (len(ORIENTATION_MODES),) or (probs < 0).any() or probs.sum() <= 0:
            raise ValueError(
                f"mode_probs: expected {len(ORIENTATION_MODES)} non-negative weights, got {self.config.mode_probs}"
            )
        self._mode_probs = (probs / probs.sum()).float()

    # ------------------------------------------------------------------------------------------------
    # library

    def _build_library(self) -> None:
        names = self.config.key_poses or tuple(KEY_POSES)
        unknown = [n for n in names if n not in KEY_POSES]
        if unknown:
            raise ValueError(f"key_poses: unknown names {unknown}; known: {list(KEY_POSES)}")
        keys: list[KeyPose] = [KEY_POSES[n] for n in names]
        if self.config.use_cmu_key_poses:
            from poseembroider.data import load_cmu_dev_poses

            cmu = load_cmu_dev_poses()
            keys += [KeyPose(f"cmu_{i:03d}", _remove_heading(p), "upright") for i, p in enumerate(cmu)]
        poses = torch.as_tensor(np.stack([k.pose for k in keys]), dtype=torch.float32)
        bad = ~within_limits(poses)
        if bad.any():
            raise ValueError(
                f"key poses outside the joint limits: {[keys[i].name for i in bad.nonzero().flatten().tolist()]}"
            )
        self.key_names = tuple(k.name for k in keys)
        self.key_params = pose_to_joint_params(poses)  # (K, 22, 3)
        self.key_orient = axis_angle_to_quaternion(poses[:, 0])  # (K, 4)
        posture = torch.tensor([POSTURES.index(k.posture) for k in keys])
        self.key_posture = posture
        members = [torch.nonzero(posture == p).flatten() for p in range(len(POSTURES))]
        width = max(len(m) for m in members)
        self._members = torch.stack(
            [torch.cat([m, m.new_zeros(width - len(m))]) if len(m) else m.new_zeros(width) for m in members]
        )
        self._member_counts = torch.tensor([len(m) for m in members])

    # ------------------------------------------------------------------------------------------------
    # drawing candidates

    def _pick_in_posture(self, posture: torch.Tensor) -> torch.Tensor:
        counts = self._member_counts[posture]
        if (counts == 0).any():
            missing = sorted({POSTURES[p] for p in posture[counts == 0].tolist()})
            raise ValueError(f"no key pose with posture {missing} in the library")
        slot = (torch.rand(posture.shape[0], generator=self.generator) * counts).long().clamp(max=counts - 1)
        return self._members[posture, slot]

    def _draw(
        self, n: int, posture: torch.Tensor | None = None, mode: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """n candidates; optional per-candidate constraints on key pose A's posture and on the orientation mode."""
        g, cfg = self.generator, self.config
        k = len(self.key_names)
        if posture is None:
            key_a = torch.randint(k, (n,), generator=g)
        else:
            key_a = self._pick_in_posture(posture)
        same = torch.rand(n, generator=g) < cfg.same_posture_prob
        key_b = torch.where(same, self._pick_in_posture(self.key_posture[key_a]), torch.randint(k, (n,), generator=g))
        weight = 0.5 - 0.5 * torch.cos(math.pi * torch.rand(n, generator=g))  # arcsine law on [0, 1]

        params = blend_joint_params(self.key_params[key_a], self.key_params[key_b], weight[:, None, None])
        scale = _uniform(n, g, *cfg.perturbation_range) * cfg.perturbation_scale
        noise = torch.randn(n, NUM_BODY_JOINTS, 3, generator=g) * self._sigma * scale[:, None, None]
        body = joint_params_to_pose(params + noise)[:, 1:]

        canonical = self._orientation(key_a, key_b, weight, mode)
        heading = _uniform(n, g, -math.pi, math.pi)
        orient = axis_rotation_matrix(heading, "y") @ canonical["matrix"]
        poses = torch.cat([matrix_to_axis_angle(orient)[:, None], body], dim=1).float()
        betas = (torch.randn(n, cfg.num_betas, generator=g)).clamp(-cfg.betas_clip, cfg.betas_clip)
        return {
            "poses": poses,
            "betas": betas,
            "key_a": key_a,
            "key_b": key_b,
            "blend_weight": weight,
            "orientation_mode": canonical["mode"],
            "heading": heading,
        }

    def _orientation(
        self, key_a: torch.Tensor, key_b: torch.Tensor, weight: torch.Tensor, mode: torch.Tensor | None
    ) -> dict[str, torch.Tensor]:
        """Heading-free global orientations (n, 3, 3) and their modes (n,)."""
        g, cfg = self.generator, self.config
        n = key_a.shape[0]
        key = axis_angle_to_matrix(
            quaternion_to_axis_angle(slerp(self.key_orient[key_a], self.key_orient[key_b], weight))
        )
        drawn = torch.multinomial(self._mode_probs, n, replacement=True, generator=g)
        if mode is None:
            mode = drawn
        upright = self.key_posture[key_a] == POSTURES.index("upright")
        mode = torch.where(upright, mode, torch.zeros_like(mode))

        small = _horizontal_axis_rotation(
            torch.randn(n, generator=g) * math.radians(cfg.tilt_sigma_deg), _uniform(n, g, 0, 2 * math.pi)
        )
        tilt = _horizontal_axis_rotation(
            torch.deg2rad(_uniform(n, g, *cfg.tilted_range_deg)), _uniform(n, g, 0, 2 * math.pi)
        )
        # lying: on the back (x -90), front (x +90), left side (z -90), right side (z +90)
        which = torch.randint(4, (n,), generator=g)
        lying_angles = torch.tensor([-90.0, 90.0, -90.0, 90.0]).deg2rad()[which]
        lying = torch.where(
            (which < 2)[:, None, None],
            axis_rotation_matrix(lying_angles, "x"),
            axis_rotation_matrix(lying_angles, "z"),
        )
        # upside down: head down, front towards -z or +z
        flip_axis = torch.randint(2, (n,), generator=g)
        pi = torch.full((n,), math.pi)
        upside = torch.where(
            (flip_axis == 0)[:, None, None], axis_rotation_matrix(pi, "x"), axis_rotation_matrix(pi, "z")
        )

        eye = torch.eye(3).expand(n, 3, 3)
        extra = torch.where((mode == 1)[:, None, None], tilt, eye)
        extra = torch.where((mode == 2)[:, None, None], lying, extra)
        extra = torch.where((mode == 3)[:, None, None], upside, extra)
        return {"matrix": small @ extra @ key, "mode": mode}

    # ------------------------------------------------------------------------------------------------
    # checking

    def _check(self, poses: torch.Tensor, betas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(limits ok (n,), penetration free (n,), joints (n, 22, 3)) with the skeleton run in batches."""
        limits_ok = within_limits(poses)
        free = torch.zeros_like(limits_ok)
        joints = torch.zeros(poses.shape[0], NUM_BODY_JOINTS, 3)
        idx = limits_ok.nonzero().flatten()
        for start in range(0, idx.numel(), self.config.batch_size):
            part = idx[start : start + self.config.batch_size]
            skel = self.skeleton(poses[part], betas[part])
            free[part] = ~self_penetrating(skel.points, self.skeleton, self.config.penetration_margin)
            joints[part] = skel.joints
        return limits_ok, free, joints

    def _fill(self, n: int, posture: torch.Tensor | None = None, mode: torch.Tensor | None = None) -> SampledPoses:
        """Rejection loop: redraw the empty slots (keeping their constraints) until all n are accepted."""
        out: dict[str, torch.Tensor] | None = None
        joints = torch.zeros(n, NUM_BODY_JOINTS, 3)
        pending = torch.arange(n)
        counts = {"drawn": 0, "rejected_joint_limits": 0, "rejected_self_penetration": 0}
        for _ in range(self.config.max_rounds):
            if pending.numel() == 0:
                break
            cand = self._draw(
                pending.numel(),
                None if posture is None else posture[pending],
                None if mode is None else mode[pending],
            )
            limits_ok, free, cand_joints = self._check(cand["poses"], cand["betas"])
            accepted = limits_ok & free
            counts["drawn"] += pending.numel()
            counts["rejected_joint_limits"] += int((~limits_ok).sum())
            counts["rejected_self_penetration"] += int((limits_ok & ~free).sum())
            if out is None:
                out = {key: torch.zeros((n, *v.shape[1:]), dtype=v.dtype) for key, v in cand.items()}
            slots = pending[accepted]
            for key, value in cand.items():
                out[key][slots] = value[accepted]
            joints[slots] = cand_joints[accepted]
            pending = pending[~accepted]
        if pending.numel():
            raise RuntimeError(
                f"PoseSampler: {pending.numel()} of {n} poses still rejected after {self.config.max_rounds} rounds; "
                "lower the perturbation or the penetration strictness"
            )
        assert out is not None
        return SampledPoses(
            poses=out["poses"],
            betas=out["betas"].float(),
            joints=joints,
            key_a=out["key_a"],
            key_b=out["key_b"],
            blend_weight=out["blend_weight"].float(),
            orientation_mode=out["orientation_mode"],
            heading=out["heading"].float(),
            key_names=self.key_names,
            attempts=counts,
        )

    def sample(self, n: int) -> SampledPoses:
        """n accepted poses (with their betas, joints and provenance)."""
        if n < 0:
            raise ValueError(f"n: expected a non-negative number of poses, got {n}")
        if n == 0:
            return _empty(self.key_names, self.config.num_betas)
        return self._fill(n)

    def sample_like(self, posture: torch.Tensor, mode: torch.Tensor) -> SampledPoses:
        """One accepted pose per entry, whose key pose A has the given posture (indices into `POSTURES`) and
        whose orientation mode is the given one (indices into `ORIENTATION_MODES`; only upright key poses take
        modes other than "keypose"). Used for the keyframes of a sequence."""
        return self._fill(posture.shape[0], posture.long(), mode.long())


def _empty(key_names: tuple[str, ...], num_betas: int) -> SampledPoses:
    z = torch.zeros(0, dtype=torch.long)
    return SampledPoses(
        poses=torch.zeros(0, NUM_BODY_JOINTS, 3),
        betas=torch.zeros(0, num_betas),
        joints=torch.zeros(0, NUM_BODY_JOINTS, 3),
        key_a=z,
        key_b=z,
        blend_weight=torch.zeros(0),
        orientation_mode=z,
        heading=torch.zeros(0),
        key_names=key_names,
        attempts={"drawn": 0, "rejected_joint_limits": 0, "rejected_self_penetration": 0},
    )


def _remove_heading(pose: np.ndarray) -> np.ndarray:
    """Turn a pose about y so that its hips face +z (recorded CMU headings are arbitrary)."""
    from poseembroider.geometry import normalize_global_orient_bedlam

    pose = torch.as_tensor(pose, dtype=torch.float32).clone()
    pose[0] = normalize_global_orient_bedlam(pose[0])[0]
    return pose.numpy()
