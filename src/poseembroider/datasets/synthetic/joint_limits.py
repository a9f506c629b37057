"""Anatomical joint limits of the 21 SMPL-X body joints, in joint-local anatomical angles.

Every local joint rotation R (axis-angle in the SMPL-X rest frame: y up, the body faces +z, +x is the body's
left) is read as three angles (flex, side, twist) in a per-joint frame: a *twist axis* `a` (the bone, or the
foot / hand axis), a *flexion axis* `u` perpendicular to it and the *side axis* `v = a × u`. Two readings are
used, both defined for every rotation:

- **swing-twist** (spine, neck, head, collars, shoulders, wrists, toes): `R = R_swing @ R_twist`, with the
  twist about `a` and the swing the shortest-arc rotation taking `a` to `R a`; flex and side are the swing's
  rotation-vector components along `u` and `v`. Free of gimbal lock for all reachable poses (it degenerates
  only at a 180° swing), which suits ball joints with large ranges such as the shoulder.
- **joint coordinate system** (hips, knees, ankles, elbows), as the ISB / Grood-Suntay conventions:
  `R = R_u(flex) @ R_v(side) @ R_a(twist)`, flexion first, then ab/adduction about the moved axis, then the
  rotation about the bone. This keeps "twist" the clinical axial rotation for hinge-like joints and for the
  hip (whose flexed-and-abducted poses make shortest-arc swings distort the twist, Codman's paradox); it is
  singular only at side = ±90°, outside these joints' ranges.

Right-side joints are mirrored to the left (`(x, y, z) -> (x, -y, -z)`, as `geometry.flip_left_right`) and
share the left limits, so every signed angle means the same movement on both sides:

| joint | a (twist) | flex > 0 | side > 0 | twist > 0 |
| --- | --- | --- | --- | --- |
| spine1/2/3, neck, head | +y | bend forward | bend to the left | turn to the left |
| hip | -y | thigh forward (flexion) | thigh across the midline (adduction) | internal rotation |
| knee | -y | flexion (foot backward) | shin outward | internal rotation |
| ankle | +z | toes down (plantarflexion) | toes outward | lateral edge up (eversion) |
| foot (toes) | +z | toes down (flexion) | toes outward | lateral edge up |
| collar | +x (left) | shoulder up (elevation) | shoulder forward (protraction) | forward roll |
| shoulder | +x (left) | arm forward (flexion) | arm down (adduction, arm at side ~ +85°) | internal rotation |
| elbow | +x (left) | flexion (forearm forward) | forearm down | pronation |
| wrist | +x (left) | palm side (flexion, palms down in the rest pose) | toward the little finger | pronation |

The allowed (flex, side) region of a joint is a convex union of four quarter-ellipses: with the limits
`flex_lo < 0 < flex_hi` and `side_lo < 0 < side_hi`, (f, s) is inside when `(f / F)² + (s / S)² <= 1`, where
F is `flex_hi` for f >= 0 and `-flex_lo` otherwise (S likewise). The twist range is an interval whose bounds
may move linearly with flexion (the hip's external rotation opens up when the hip is flexed). The whole
region is therefore convex in (flex, side, twist): blending two poses that are inside the limits *in these
angles* (`blend_joint_params`) stays inside. The sampler and the sequence generator rely on that.

The numbers are clinical ranges of motion (AAOS / Kapandji-style values, e.g. knee flexion 0..150°, elbow
0..150°, hip flexion 120-130° and abduction 45°+) widened to cover the real CMU mocap poses of
`poseembroider.data.load_cmu_dev_poses()` with a margin: the measured CMU envelope of each angle is given in
the comments (min..max, degrees); every CMU pose stays within about 0.9 of the way to the swing boundary.
The CMU retarget puts non-zero offsets into the neutral neck (~-19° flex), head (~+26°) and ankles
(~-18° flex), because the mocap rest skeleton differs from the SMPL-X one; the limits include these.
The wrist twist (forearm pronation / supination; the elbow of the CMU retarget is a pure hinge) is left
unlimited: trial 26_04 of the CMU set carries wrist twists of +175° and -176° (a calibration quirk, ~180°
either way), so any proper interval would reject real poses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from poseembroider.body.joints import BODY_JOINT_NAMES, NUM_BODY_JOINTS
from poseembroider.geometry import (
    axis_angle_to_matrix,
    axis_angle_to_quaternion,
    euler_to_matrix,
    matrix_to_axis_angle,
    matrix_to_euler,
    quaternion_to_axis_angle,
)

__all__ = [
    "JOINT_LIMITS",
    "JointLimit",
    "blend_joint_params",
    "joint_params_to_pose",
    "limit_violation",
    "pose_to_joint_params",
    "within_limits",
]

_X = (1.0, 0.0, 0.0)
_Y = (0.0, 1.0, 0.0)
_Z = (0.0, 0.0, 1.0)
_NEG_X = (-1.0, 0.0, 0.0)
_NEG_Y = (0.0, -1.0, 0.0)
_NEG_Z = (0.0, 0.0, -1.0)


@dataclass(frozen=True)
class JointLimit:
    """Limits of one joint (left side or central), angles in degrees.

    `twist_axis` / `flex_axis`: unit vectors of the rest frame (perpendicular); `side` is about their cross
    product. A twist range of (-180, 180) means unlimited.
    """

    twist_axis: tuple[float, float, float]
    flex_axis: tuple[float, float, float]
    flex: tuple[float, float]
    side: tuple[float, float]
    twist: tuple[float, float]
    euler: bool = False  # True: a joint coordinate system (flex, then side, then twist) instead of swing-twist
    twist_per_flex: tuple[float, float] = (0.0, 0.0)  # the twist bounds move by these many degrees per degree of flex

    def __post_init__(self) -> None:
        for name in ("flex", "side", "twist"):
            lo, hi = getattr(self, name)
            if not lo < 0.0 < hi:
                raise ValueError(f"{name}: expected lo < 0 < hi, got ({lo}, {hi})")

    @property
    def unlimited_twist(self) -> bool:
        return self.twist[0] <= -180.0 and self.twist[1] >= 180.0


def _spine(flex, side, twist) -> JointLimit:
    return JointLimit(_Y, _X, flex, side, twist)


JOINT_LIMITS: dict[str, JointLimit] = {
    # lumbar / thoracic segments: small each (lumbar flexion ~50°, extension ~25°, lateral ~25°, rotation ~10°;
    # thoracic rotation ~35°), three of them in series.
    # CMU spine1: flex -20..36, side -20..11, twist -10..15
    "spine1": _spine(flex=(-35.0, 50.0), side=(-30.0, 30.0), twist=(-25.0, 25.0)),
    # CMU spine2: flex -16..16, side -9..10, twist -13..18
    "spine2": _spine(flex=(-30.0, 40.0), side=(-25.0, 25.0), twist=(-30.0, 30.0)),
    # CMU spine3: flex -23..8, side -13..11, twist -7..7
    "spine3": _spine(flex=(-35.0, 35.0), side=(-25.0, 25.0), twist=(-25.0, 25.0)),
    # cervical spine split between neck and head (flexion ~50°, extension ~60°, lateral ~45°, rotation ~80°)
    # CMU neck: flex -43..-1 (neutral ~-19), side -18..21, twist -46..37
    "neck": _spine(flex=(-75.0, 50.0), side=(-35.0, 35.0), twist=(-70.0, 70.0)),
    # CMU head: flex -8..57 (neutral ~+26), side -30..18, twist -14..14
    "head": _spine(flex=(-45.0, 75.0), side=(-40.0, 40.0), twist=(-50.0, 50.0)),
    # hip: flexion 120-130° (knee bent), extension ~30°, abduction 45° (more in dancers), adduction ~30°,
    # internal / external rotation ~40° / ~50°. In the joint coordinate system (flex, then side about the moved
    # axis, then twist) a flexed and abducted thigh whose shin crosses in front (cross-legged sitting, the
    # "figure four") reads as ~-90° twist, so the external bound opens with flexion: -65° - 0.4 * flex.
    # CMU hips (both, mirrored): flex -24..109, side -50..20, twist -31..54
    "hip": JointLimit(
        _NEG_Y,
        _NEG_X,
        flex=(-40.0, 135.0),
        side=(-85.0, 40.0),
        twist=(-65.0, 65.0),
        euler=True,
        twist_per_flex=(-0.4, 0.0),
    ),
    # knee: flexion 0..~150°, hyperextension <= ~10°, a few degrees of varus/valgus, tibial rotation ~30-40°
    # with the knee bent. CMU knees: flex -10..109, side -1..2, twist -2..0
    "knee": JointLimit(_NEG_Y, _X, flex=(-15.0, 160.0), side=(-12.0, 12.0), twist=(-40.0, 40.0), euler=True),
    # ankle: plantarflexion ~50°, dorsiflexion ~20-30° (+ subtalar motion); CMU neutral is ~-18° flex.
    # CMU ankles (flex, side, twist as a joint coordinate system): flex -81..41, side -35..48, twist -33..35
    "ankle": JointLimit(_Z, _X, flex=(-100.0, 75.0), side=(-55.0, 75.0), twist=(-50.0, 50.0), euler=True),
    # toes: extension ~70°, flexion ~40° (the CMU toe retarget reads up to +70°: the rest toe directions differ).
    # CMU feet: flex -50..70, side -20..23, twist -4..3
    "foot": JointLimit(_Z, _X, flex=(-80.0, 100.0), side=(-45.0, 45.0), twist=(-15.0, 15.0)),
    # clavicle: elevation ~40°, depression ~10°, protraction / retraction ~30°. CMU collars: within 4°
    "collar": JointLimit(_X, _Z, flex=(-15.0, 45.0), side=(-30.0, 30.0), twist=(-20.0, 20.0)),
    # shoulder (glenohumeral + scapula): from the T-pose, the arm reaches overhead (side -90), the side of the
    # body (side +85) and across it, forward and across the chest (flex up to ~140), backward ~60-70°;
    # humeral rotation ~90° each way. CMU shoulders: flex -64..130, side -71..99, twist -123..58
    "shoulder": JointLimit(_X, _NEG_Y, flex=(-95.0, 155.0), side=(-110.0, 120.0), twist=(-145.0, 100.0)),
    # elbow: a hinge about y, flexion 0..~150°, hyperextension <= ~10°; forearm pronation/supination can
    # sit here or at the wrist. CMU elbows: flex -3..135, side and twist within 0.3°
    "elbow": JointLimit(_X, _NEG_Y, flex=(-12.0, 155.0), side=(-12.0, 12.0), twist=(-90.0, 90.0), euler=True),
    # wrist: flexion ~80°, extension ~70°, ulnar ~35°, radial ~20° (the CMU hand is coarse and wider).
    # CMU wrists: flex -79..90, side -54..60, twist -176..175 (unlimited, see the module docstring)
    "wrist": JointLimit(_X, _NEG_Z, flex=(-100.0, 105.0), side=(-75.0, 80.0), twist=(-180.0, 180.0)),
}
"""Limits by joint kind (left side); `limit_for_joint` maps the 21 body joint names onto them."""


def _kind(name: str) -> str:
    for prefix in ("left_", "right_"):
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


def limit_for_joint(name: str) -> JointLimit:
    """The `JointLimit` of a body joint name ('left_knee', 'spine2', ...)."""
    kind = _kind(name)
    if kind not in JOINT_LIMITS:
        raise ValueError(f"joint: no limits for {name!r}; expected one of {BODY_JOINT_NAMES[1:]}")
    return JOINT_LIMITS[kind]


def _tables() -> dict[str, np.ndarray]:
    """Per-joint arrays over the 22 body joints (index 0, the global orientation, is unlimited)."""
    n = NUM_BODY_JOINTS
    a = np.zeros((n, 3))
    u = np.zeros((n, 3))
    lo = np.full((n, 3), -np.inf)
    hi = np.full((n, 3), np.inf)
    slopes = np.zeros((n, 2))
    mirror = np.zeros(n, dtype=bool)
    euler = np.zeros(n, dtype=bool)
    a[0], u[0] = _Y, _X
    for j, name in enumerate(BODY_JOINT_NAMES[1:], start=1):
        lim = limit_for_joint(name)
        a[j], u[j] = lim.twist_axis, lim.flex_axis
        lo[j] = np.radians([lim.flex[0], lim.side[0], lim.twist[0]])
        hi[j] = np.radians([lim.flex[1], lim.side[1], lim.twist[1]])
        if lim.unlimited_twist:
            lo[j, 2], hi[j, 2] = -np.inf, np.inf
        mirror[j] = name.startswith("right_")
        euler[j] = lim.euler
        slopes[j] = lim.twist_per_flex
    v = np.cross(a, u)
    return {"a": a, "u": u, "v": v, "lo": lo, "hi": hi, "mirror": mirror, "euler": euler, "slopes": slopes}


_TABLES = _tables()


def _table(name: str, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(_TABLES[name], dtype=like.dtype, device=like.device)


def _mirror_signs(like: torch.Tensor) -> torch.Tensor:
    """(22, 3) factors turning right-side rotation vectors into their left mirror images (an involution)."""
    signs = torch.ones(NUM_BODY_JOINTS, 3, dtype=like.dtype, device=like.device)
    mirror = torch.as_tensor(_TABLES["mirror"], device=like.device)
    signs[mirror, 1:] = -1.0
    return signs


def _check_poses(poses: torch.Tensor | np.ndarray, name: str = "poses") -> torch.Tensor:
    poses = torch.as_tensor(poses)
    if not poses.is_floating_point():
        poses = poses.float()
    if poses.shape[-2:] != (NUM_BODY_JOINTS, 3):
        raise ValueError(f"{name}: expected (..., 22, 3) axis-angles, got shape {tuple(poses.shape)}")
    return poses


def pose_to_joint_params(poses: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Axis-angle poses (..., 22, 3) -> anatomical parameters (..., 22, 3) = (flex, side, twist) in radians.

    Right-side joints are mirrored first, so their parameters read like the left ones. Joint 0 (the global
    orientation) is decomposed about +y like the spine, for completeness; it has no limits.
    """
    poses = _check_poses(poses)
    aa = poses * _mirror_signs(poses)
    euler = torch.as_tensor(_TABLES["euler"], device=poses.device)
    return torch.where(euler[:, None], _euler_params(aa), _swing_twist_params(aa))


def joint_params_to_pose(params: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Inverse of `pose_to_joint_params`: (..., 22, 3) (flex, side, twist) radians -> axis-angles (..., 22, 3)."""
    params = _check_poses(params, "params")
    euler = torch.as_tensor(_TABLES["euler"], device=params.device)
    aa = torch.where(euler[:, None], _euler_pose(params), _swing_twist_pose(params))
    return aa * _mirror_signs(params)


def _frames(like: torch.Tensor) -> torch.Tensor:
    """(22, 3, 3) joint frames with columns (u, v, a): flex axis, side axis, twist axis (right-handed)."""
    return torch.stack([_table("u", like), _table("v", like), _table("a", like)], dim=-1)


def _euler_params(aa: torch.Tensor) -> torch.Tensor:
    # joint coordinate system (as ISB / Grood-Suntay): R = R_u(flex) R_v(side) R_a(twist), i.e. the intrinsic
    # "XYZ" Euler angles of R expressed in the (u, v, a) frame; singular only at side = ±90°
    frames = _frames(aa)
    local = frames.transpose(-1, -2) @ axis_angle_to_matrix(aa) @ frames
    return matrix_to_euler(local, "XYZ")


def _euler_pose(params: torch.Tensor) -> torch.Tensor:
    frames = _frames(params)
    return matrix_to_axis_angle(frames @ euler_to_matrix(params, "XYZ") @ frames.transpose(-1, -2))


def _swing_twist_params(aa: torch.Tensor) -> torch.Tensor:
    a, u, v = _table("a", aa), _table("u", aa), _table("v", aa)
    q = axis_angle_to_quaternion(aa)
    w, vec = q[..., 0], q[..., 1:]
    along = (vec * a).sum(-1)
    # twist quaternion (cos t/2, sin t/2 a) = normalise(w, (vec . a) a); the swing is q * twist^-1
    twist = 2.0 * torch.atan2(along, w)
    twist = torch.remainder(twist + math.pi, 2.0 * math.pi) - math.pi
    half = 0.5 * twist
    ct, st = torch.cos(half), torch.sin(half)
    inv_vec = -st[..., None] * a
    swing_w = w * ct - (vec * inv_vec).sum(-1)
    swing_vec = w[..., None] * inv_vec + ct[..., None] * vec + torch.linalg.cross(vec, inv_vec, dim=-1)
    swing = quaternion_to_axis_angle(torch.cat([swing_w[..., None], swing_vec], dim=-1))
    return torch.stack([(swing * u).sum(-1), (swing * v).sum(-1), twist], dim=-1)


def _swing_twist_pose(params: torch.Tensor) -> torch.Tensor:
    a, u, v = _table("a", params), _table("u", params), _table("v", params)
    swing = params[..., 0:1] * u + params[..., 1:2] * v
    half_t = 0.5 * params[..., 2]
    q_twist = torch.cat([torch.cos(half_t)[..., None], torch.sin(half_t)[..., None] * a], dim=-1)
    q_swing = axis_angle_to_quaternion(swing)
    return quaternion_to_axis_angle(_quaternion_multiply(q_swing, q_twist))


def _quaternion_multiply(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    pw, pv = p[..., :1], p[..., 1:]
    qw, qv = q[..., :1], q[..., 1:]
    w = pw * qw - (pv * qv).sum(-1, keepdim=True)
    v = pw * qv + qw * pv + torch.linalg.cross(pv, qv, dim=-1)
    return torch.cat([w, v], dim=-1)


def _swing_radius(params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised elliptic radius r (<= 1 inside) and swing angle of (..., 22, 3) params."""
    lo, hi = _table("lo", params), _table("hi", params)
    flex, side = params[..., 0], params[..., 1]
    f_scale = torch.where(flex >= 0, hi[:, 0], -lo[:, 0])
    s_scale = torch.where(side >= 0, hi[:, 1], -lo[:, 1])
    radius = torch.sqrt((flex / f_scale) ** 2 + (side / s_scale) ** 2)
    return radius, torch.sqrt(flex * flex + side * side)


def params_violation(params: torch.Tensor) -> torch.Tensor:
    """(..., 22, 3) params -> (..., 22) violation in radians (0 inside the limits).

    Swing: the angle by which the swing exceeds the boundary of its region along its own direction; twist:
    the distance of the twist angle to its interval. The two are added.
    """
    lo, hi = _table("lo", params), _table("hi", params)
    radius, angle = _swing_radius(params)
    # the boundary along the swing's direction is at angle / radius
    swing_excess = torch.where(radius > 1.0, angle * (1.0 - 1.0 / radius.clamp(min=1e-12)), 0.0)
    twist = params[..., 2]
    slopes = _table("slopes", params)
    twist_lo = lo[:, 2] + slopes[:, 0] * params[..., 0]
    twist_hi = hi[:, 2] + slopes[:, 1] * params[..., 0]
    twist_excess = torch.relu(twist - twist_hi) + torch.relu(twist_lo - twist)
    out = swing_excess + twist_excess
    out[..., 0] = 0.0  # the global orientation is unlimited
    return out


def limit_violation(poses: torch.Tensor | np.ndarray) -> torch.Tensor:
    """(N, 22, 3) axis-angle poses (global orientation + 21 body joints) -> (N, 22) violation in radians.

    0 where a joint is inside its limits; joint 0 (global orientation) is always 0.
    """
    return params_violation(pose_to_joint_params(poses))


def within_limits(poses: torch.Tensor | np.ndarray, tolerance_deg: float = 0.0) -> torch.Tensor:
    """(N, 22, 3) axis-angle poses -> (N,) bool: every body joint inside its anatomical limits.

    `tolerance_deg` forgives violations up to that many degrees (e.g. float round-off of stored poses).
    """
    return (limit_violation(poses) <= math.radians(tolerance_deg) + 1e-6).all(dim=-1)


def blend_joint_params(params_a: torch.Tensor, params_b: torch.Tensor, weight: torch.Tensor | float) -> torch.Tensor:
    """Interpolate (..., 22, 3) joint params: `(1 - w) a + w b` (weight broadcast, e.g. (N, 1, 1)).

    Inside-limit inputs give inside-limit outputs (the limit region is convex). Unlimited twists (wrists)
    follow the shorter way around the circle, so ±175° blends through 180° rather than through 0.
    """
    weight = torch.as_tensor(weight, dtype=params_a.dtype, device=params_a.device)
    delta = params_b - params_a
    unlimited = torch.isinf(_table("hi", params_a)[:, 2])
    wrapped = torch.remainder(delta[..., 2] + math.pi, 2.0 * math.pi) - math.pi
    delta = torch.cat([delta[..., :2], torch.where(unlimited, wrapped, delta[..., 2])[..., None]], dim=-1)
    out = params_a + weight * delta
    twist = torch.where(unlimited, torch.remainder(out[..., 2] + math.pi, 2.0 * math.pi) - math.pi, out[..., 2])
    return torch.cat([out[..., :2], twist[..., None]], dim=-1)
