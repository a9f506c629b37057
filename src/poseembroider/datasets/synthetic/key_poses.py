"""A library of named key poses, built by hand from anatomical joint angles.

Poses are written in the anatomical parameters of `joint_limits` (flex / side / twist per joint, degrees),
with helpers that read like a physiotherapist's notes:

- `bend(joint, flex, side=0, twist=0)`: a joint rotation from its anatomical angles
  (`bend("left_knee", 90)` flexes the left knee by 90°; right joints take the same signs as left ones);
- `aim(joint, direction, twist=0)`: swing a limb's bone onto a direction of its parent's frame (the rest
  frame: +x the body's left, +y up, +z forward; give right limbs right-side directions, e.g.
  `aim("right_shoulder", (-0.2, -1, 0))` lets the right arm hang), then twist it about the bone;
- `orient(...)`: global orientations (lying on the back / front / side, tilted, upside down).

A pose is `make_pose(global_orient, {joint: rotation})` -> (22, 3) float32 axis-angles; every key pose is a
`KeyPose` with a name, a posture ("upright", "lying", "inverted") used to pair poses for blending, and tags
(e.g. "sitting", "kneeling", "lying", "arms_above_head") that the category detectors are checked against.
Every key pose is inside the joint limits (tested) and was checked on a rendered contact sheet
(`render_key_pose_sheet`).

The rest pose is the SMPL-X T-pose (arms horizontal, palms down). Arm twist: with `aim(..., twist=0)` an arm
hanging at the side has its palm towards the thigh and an elbow that bends forward; positive twist is
internal rotation (the forearm of a bent elbow swings towards the belly).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from poseembroider.body.joints import BODY_JOINT_NAMES, NUM_BODY_JOINTS
from poseembroider.datasets.synthetic.joint_limits import joint_params_to_pose, limit_for_joint
from poseembroider.geometry import axis_angle_to_matrix, euler_to_matrix, matrix_to_axis_angle

__all__ = [
    "KEY_POSES",
    "POSTURES",
    "KeyPose",
    "aim",
    "bend",
    "key_pose_array",
    "key_pose_names",
    "make_pose",
    "orient",
    "render_key_pose_sheet",
    "render_pose_sheet",
]

POSTURES = ("upright", "lying", "inverted")
_JOINT = {name: i for i, name in enumerate(BODY_JOINT_NAMES)}


def _joint_index(joint: str) -> int:
    if joint not in _JOINT or joint == "pelvis":
        raise ValueError(f"joint: expected one of {BODY_JOINT_NAMES[1:]}, got {joint!r}")
    return _JOINT[joint]


def bend(joint: str, flex: float = 0.0, side: float = 0.0, twist: float = 0.0) -> np.ndarray:
    """Local rotation (3,) axis-angle of `joint` from its anatomical angles in degrees (see `joint_limits`)."""
    index = _joint_index(joint)
    params = torch.zeros(NUM_BODY_JOINTS, 3, dtype=torch.float64)
    params[index] = torch.tensor([math.radians(flex), math.radians(side), math.radians(twist)])
    return joint_params_to_pose(params)[index].numpy()


def aim(joint: str, direction: Sequence[float], twist: float = 0.0) -> np.ndarray:
    """Local rotation (3,) swinging `joint`'s twist axis (its bone) onto `direction`, then twisting by
    `twist` degrees. `direction` is in the parent's frame (the rest frame when the parents are not rotated),
    on the joint's own side: right limbs point towards -x."""
    index = _joint_index(joint)
    limit = limit_for_joint(joint)
    d = np.asarray(direction, dtype=np.float64)
    if d.shape != (3,) or not np.linalg.norm(d) > 0:
        raise ValueError(f"direction: expected a non-zero 3-vector, got {direction!r}")
    d = d / np.linalg.norm(d)
    if BODY_JOINT_NAMES[index].startswith("right_"):
        d = d * np.array([-1.0, 1.0, 1.0])  # work on the mirrored (left) side
    a, u = np.asarray(limit.twist_axis), np.asarray(limit.flex_axis)
    v = np.cross(a, u)
    axis = np.cross(a, d)
    sin, cos = np.linalg.norm(axis), float(a @ d)
    swing = axis / sin * math.atan2(sin, cos) if sin > 1e-9 else np.zeros(3)
    return bend(joint, math.degrees(swing @ u), math.degrees(swing @ v), twist)


_HINGE_CHILD = {"hip": "knee", "shoulder": "elbow"}


def aim_limb(joint: str, upper_direction: Sequence[float], lower_direction: Sequence[float]) -> dict[str, np.ndarray]:
    """Rotations of a hip + knee or shoulder + elbow putting the upper bone along `upper_direction` and the
    lower bone along `lower_direction` (parent frame, the joint's own side as in `aim`).

    The hinge (knee about +x, elbow about ∓y in the rest pose) has one degree of freedom, so the twist of the
    upper joint is what turns the hinge's plane onto the plane of the two directions; the hinge flexion is
    the angle between them. A straight limb keeps twist 0.
    """
    index = _joint_index(joint)
    side, kind = BODY_JOINT_NAMES[index].split("_", 1) if "_" in BODY_JOINT_NAMES[index] else ("", "")
    if kind not in _HINGE_CHILD:
        raise ValueError(f"joint: expected a hip or a shoulder, got {joint!r}")
    child = f"{side}_{_HINGE_CHILD[kind]}"
    mirror = np.array([-1.0, 1.0, 1.0]) if side == "right" else np.ones(3)
    t = np.asarray(upper_direction, dtype=np.float64) * mirror
    s = np.asarray(lower_direction, dtype=np.float64) * mirror
    t, s = t / np.linalg.norm(t), s / np.linalg.norm(s)
    hinge = np.cross(t, s)
    if np.linalg.norm(hinge) < 1e-6:
        return {joint: aim(joint, upper_direction), child: bend(child, 0.0)}
    hinge /= np.linalg.norm(hinge)
    flexion = math.degrees(math.atan2(np.linalg.norm(np.cross(t, s)), float(t @ s)))
    a = np.asarray(limit_for_joint(joint).twist_axis)
    u = np.asarray(limit_for_joint(child).flex_axis)
    target = np.stack([t, hinge, np.cross(t, hinge)], axis=1)
    rest = np.stack([a, u, np.cross(a, u)], axis=1)
    rotation = matrix_to_axis_angle(torch.as_tensor(target @ rest.T)).numpy()
    if side == "right":
        rotation = rotation * np.array([1.0, -1.0, -1.0])  # back from the mirrored (left) side
    return {joint: rotation, child: bend(child, flexion)}


def orient(*rotations: tuple[str, float]) -> np.ndarray:
    """Global orientation (3,) from rotations about the world axes applied in order, degrees:
    `orient(("x", -90))` lies on the back, `orient(("x", 90))` on the front, `orient(("z", -90))` on the
    left side, `orient(("x", 180))` is upside down, `orient(("x", 30))` leans forward by 30°."""
    matrix = torch.eye(3, dtype=torch.float64)
    for axis, degrees in rotations:
        angles = torch.zeros(3, dtype=torch.float64)
        angles["xyz".index(axis)] = math.radians(degrees)
        matrix = euler_to_matrix(angles, "xyz") @ matrix
    return matrix_to_axis_angle(matrix).numpy()


def make_pose(global_orient: np.ndarray | None = None, joints: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
    """(22, 3) float32 axis-angle pose: global orientation + the given local joint rotations (others 0)."""
    pose = np.zeros((NUM_BODY_JOINTS, 3), dtype=np.float64)
    if global_orient is not None:
        pose[0] = global_orient
    for joint, rotation in (joints or {}).items():
        pose[_joint_index(joint)] = rotation
    return pose.astype(np.float32)


def compose(first: np.ndarray, then: np.ndarray) -> np.ndarray:
    """Axis-angle of applying `first`, then `then` (about the same, fixed frame)."""
    m = axis_angle_to_matrix(torch.as_tensor(then, dtype=torch.float64)) @ axis_angle_to_matrix(
        torch.as_tensor(first, dtype=torch.float64)
    )
    return matrix_to_axis_angle(m).numpy()


@dataclass(frozen=True)
class KeyPose:
    """A named pose: `pose` (22, 3) float32 axis-angles; `posture` in `POSTURES`; `tags` its categories."""

    name: str
    pose: np.ndarray
    posture: str = "upright"
    tags: frozenset[str] = field(default_factory=frozenset)


# ----------------------------------------------------------------------------------------------------
# building blocks: both sides at once


def _both(joint: str, **angles: float) -> dict[str, np.ndarray]:
    return {f"left_{joint}": bend(f"left_{joint}", **angles), f"right_{joint}": bend(f"right_{joint}", **angles)}


def _arms(
    left: Sequence[float],
    right: Sequence[float] | None = None,
    *,
    twist: float = 0.0,
    right_twist: float | None = None,
    elbows: float = 10.0,
    right_elbow: float | None = None,
) -> dict[str, np.ndarray]:
    """Both arms: upper-arm directions (right one mirrored from the left one when not given), elbows."""
    if right is None:
        right = (-left[0], left[1], left[2])
    return {
        "left_shoulder": aim("left_shoulder", left, twist),
        "right_shoulder": aim("right_shoulder", right, twist if right_twist is None else right_twist),
        "left_elbow": bend("left_elbow", elbows),
        "right_elbow": bend("right_elbow", elbows if right_elbow is None else right_elbow),
    }


_ARMS_DOWN = (0.15, -1.0, 0.0)


def _relaxed_arms(elbows: float = 10.0) -> dict[str, np.ndarray]:
    return _arms(_ARMS_DOWN, elbows=elbows)


def _spine(flex: float = 0.0, side: float = 0.0, twist: float = 0.0) -> dict[str, np.ndarray]:
    """Spread a trunk movement over the three spine joints (40 / 30 / 30 %)."""
    out = {}
    for joint, share in (("spine1", 0.4), ("spine2", 0.3), ("spine3", 0.3)):
        out[joint] = bend(joint, flex * share, side * share, twist * share)
    return out


def _leg(
    side: str,
    hip_flex: float = 0.0,
    hip_side: float = 0.0,
    hip_twist: float = 0.0,
    knee: float = 0.0,
    ankle: float = 0.0,
    toes: float = 0.0,
) -> dict[str, np.ndarray]:
    return {
        f"{side}_hip": bend(f"{side}_hip", hip_flex, hip_side, hip_twist),
        f"{side}_knee": bend(f"{side}_knee", knee),
        f"{side}_ankle": bend(f"{side}_ankle", ankle),
        f"{side}_foot": bend(f"{side}_foot", toes),
    }


def _legs(**angles: float) -> dict[str, np.ndarray]:
    return {**_leg("left", **angles), **_leg("right", **angles)}


def _pose(
    name: str,
    joints: Mapping[str, np.ndarray],
    global_orient: np.ndarray | None = None,
    posture: str = "upright",
    tags: Sequence[str] = (),
) -> KeyPose:
    return KeyPose(name, make_pose(global_orient, joints), posture, frozenset(tags))


# ----------------------------------------------------------------------------------------------------
# the library


def _standing_poses() -> list[KeyPose]:
    standing_legs = {**_legs(knee=3.0)}
    return [
        _pose("standing", {**standing_legs, **_relaxed_arms()}, tags=["standing"]),
        _pose("a_pose", {**standing_legs, **_arms((1.0, -1.0, 0.0), elbows=5.0)}, tags=["standing"]),
        _pose("t_pose", {}, tags=["standing"]),
        _pose(
            "arms_raised_above_head",
            {**standing_legs, **_arms((0.25, 1.0, 0.0), twist=-90.0, elbows=10.0), "head": bend("head", -10.0)},
            tags=["standing", "arms_above_head"],
        ),
        _pose(
            "reaching_forward",
            {
                **_leg("left", hip_flex=-5, knee=5),
                **_leg("right", hip_flex=10, knee=5),
                **_spine(flex=15),
                **_arms((0.1, 0.05, 1.0), elbows=5.0),
            },
            tags=["standing"],
        ),
        _pose(
            "reaching_up",
            {
                **standing_legs,
                **_spine(side=-8),
                **_arms(
                    (0.15, 1.0, 0.1), (-0.35, -1.0, 0.0), twist=-90.0, right_twist=0.0, elbows=5.0, right_elbow=10.0
                ),
                "left_ankle": bend("left_ankle", 30),
                "right_ankle": bend("right_ankle", 30),
                "head": bend("head", -25.0),
            },
            tags=["standing"],
        ),
        _pose(
            "reaching_to_the_side",
            {
                **_leg("left", hip_side=-15, knee=15),
                **_leg("right", hip_side=-5),
                **_spine(side=20),
                **_arms((1.0, 0.25, 0.1), _ARMS_DOWN, elbows=5.0, right_elbow=15.0),
            },
            tags=["standing"],
        ),
        _pose(
            "arms_crossed",
            {
                **standing_legs,
                **_arms((0.1, -0.7, 0.6), (-0.1, -0.5, 0.2), twist=45.0, elbows=100.0, right_elbow=90.0),
                "right_wrist": bend("right_wrist", 30.0),
            },
            tags=["standing"],
        ),
        _pose(
            "hands_on_hips",
            {
                **standing_legs,
                **_arms((0.6, -0.8, -0.4), twist=70.0, elbows=85.0),
                "left_wrist": bend("left_wrist", -20),
                "right_wrist": bend("right_wrist", -20),
            },
            tags=["standing"],
        ),
        _pose(
            "waving",
            {
                **standing_legs,
                **_arms(_ARMS_DOWN, (-1.0, 0.15, 0.2), twist=0.0, right_twist=-80.0, elbows=10.0, right_elbow=100.0),
                "right_wrist": bend("right_wrist", 0, 25),
                "head": bend("head", 0, 0, -10),
            },
            tags=["standing"],
        ),
        _pose(
            "pointing",
            {
                **standing_legs,
                **_arms(_ARMS_DOWN, (-0.35, 0.15, 1.0), right_twist=0.0, elbows=10.0, right_elbow=0.0),
                "head": bend("head", 0, 0, -20),
                "neck": bend("neck", 0, 0, -10),
            },
            tags=["standing"],
        ),
        _pose(
            "bending_forward",
            {
                **_legs(hip_flex=70.0, knee=5.0, ankle=-5.0),
                **_spine(flex=30.0),
                **_arms((0.15, 0.1, 1.0), elbows=5.0),
                "neck": bend("neck", -15.0),
            },
            global_orient=orient(("x", 70.0)),
            tags=["standing", "bending"],
        ),
        _pose(
            "hands_on_knees_bent_over",
            {
                **_legs(hip_flex=95.0, knee=55.0, ankle=-18.0),
                **_spine(flex=20.0),
                **_arms((0.1, -0.7, 0.6), elbows=30.0),
                **_both("wrist", flex=-30.0),
                "neck": bend("neck", -30.0),
            },
            global_orient=orient(("x", 60.0)),
            tags=["bending"],
        ),
    ]


def _locomotion_poses() -> list[KeyPose]:
    return [
        _pose(
            "walking_left_step",
            {
                **_leg("left", hip_flex=25, knee=5, ankle=-10),
                **_leg("right", hip_flex=-15, knee=15, ankle=10),
                **_arms((0.15, -1.0, -0.35), (-0.15, -1.0, 0.35), elbows=15.0, right_elbow=30.0),
                **_spine(twist=-6),
            },
            tags=["standing", "walking"],
        ),
        _pose(
            "walking_right_step",
            {
                **_leg("right", hip_flex=25, knee=5, ankle=-10),
                **_leg("left", hip_flex=-15, knee=15, ankle=10),
                **_arms((0.15, -1.0, 0.35), (-0.15, -1.0, -0.35), elbows=30.0, right_elbow=15.0),
                **_spine(twist=6),
            },
            tags=["standing", "walking"],
        ),
        _pose(
            "running_left_stride",
            {
                **_leg("left", hip_flex=55, knee=80, ankle=-5),
                **_leg("right", hip_flex=-20, knee=40, ankle=25),
                **_arms((0.15, -1.0, -0.6), (-0.15, -0.7, 0.7), elbows=90.0),
                **_spine(flex=10, twist=-10),
            },
            global_orient=orient(("x", 8.0)),
            tags=["running"],
        ),
        _pose(
            "running_right_stride",
            {
                **_leg("right", hip_flex=55, knee=80, ankle=-5),
                **_leg("left", hip_flex=-20, knee=40, ankle=25),
                **_arms((0.15, -0.7, 0.7), (-0.15, -1.0, -0.6), elbows=90.0),
                **_spine(flex=10, twist=10),
            },
            global_orient=orient(("x", 8.0)),
            tags=["running"],
        ),
        _pose(
            "star_jump",
            {**_legs(hip_side=-30.0, knee=5.0, ankle=30.0), **_arms((1.0, 1.0, 0.0), twist=-90.0, elbows=5.0)},
            tags=["jumping", "arms_above_head"],
        ),
        _pose(
            "tuck_jump",
            {
                **_legs(hip_flex=105.0, hip_side=-10.0, knee=120.0, ankle=25.0),
                **_spine(flex=20.0),
                **_arms((0.25, -0.9, 0.8), elbows=5.0, twist=60.0),
            },
            global_orient=orient(("x", -20.0)),
            tags=["jumping"],
        ),
        _pose(
            "dance_arms_up_kick",
            {
                **_leg("left", hip_flex=60, hip_side=-20, knee=10, ankle=30),
                **_leg("right", knee=5),
                **_spine(side=-12, twist=10),
                **_arms((0.6, 1.0, 0.2), (-1.0, 0.3, 0.2), twist=-60.0, elbows=15.0),
                "head": bend("head", 0, 10, 10),
            },
            tags=["dancing"],
        ),
        _pose(
            "dance_disco_point",
            {
                **_leg("left", hip_side=-15, hip_twist=-20, knee=25),
                **_leg("right", hip_side=-5, knee=5),
                **_spine(side=15, twist=-10),
                **_arms(
                    (0.6, -0.8, -0.4), (-0.6, 1.0, 0.1), twist=70.0, right_twist=-80.0, elbows=85.0, right_elbow=5.0
                ),
                "left_wrist": bend("left_wrist", -20),
                "head": bend("head", -10, -10, -15),
            },
            tags=["dancing"],
        ),
        _pose(
            "dance_arabesque",
            {
                **_leg("left", hip_flex=-35, hip_side=-10, hip_twist=-30, knee=5, ankle=40),
                **_leg("right", knee=5, ankle=10),
                **_spine(flex=-20),
                **_arms((0.3, 0.2, 1.0), (-1.0, 0.1, -0.3), elbows=10.0),
            },
            global_orient=orient(("x", 25.0)),
            tags=["dancing", "balance"],
        ),
        _pose(
            "side_kick",
            {
                **_leg("left", hip_flex=20, hip_side=-65, hip_twist=-10, knee=10, ankle=20),
                **_leg("right", knee=5),
                **_spine(side=-25),
                **_arms((1.0, 0.3, 0.1), (-1.0, 0.0, 0.2), elbows=15.0),
            },
            global_orient=orient(("z", 15.0)),
            tags=["dancing", "balance"],
        ),
        _pose(
            "split_leap",
            {
                **_leg("left", hip_flex=85, hip_side=-5, knee=10, ankle=30),
                **_leg("right", hip_flex=-35, knee=60, ankle=30),
                **_spine(flex=-10, twist=10),
                **_arms((1.0, 0.3, -0.2), (-0.3, 0.3, 1.0), elbows=10.0),
            },
            global_orient=orient(("x", 10.0)),
            tags=["jumping", "dancing"],
        ),
        _pose(
            "throwing",
            {
                **_leg("left", hip_flex=30, hip_side=-10, knee=15, ankle=-5),
                **_leg("right", hip_flex=-15, hip_twist=-20, knee=20, ankle=15),
                **_spine(side=-10, twist=-25),
                **_arms(
                    (0.6, -0.2, 1.0), (-1.0, 0.2, -0.3), twist=0.0, right_twist=-90.0, elbows=25.0, right_elbow=90.0
                ),
            },
            tags=["standing"],
        ),
        _pose(
            "boxing_guard",
            {
                **_leg("left", hip_flex=15, knee=20, ankle=-10),
                **_leg("right", hip_flex=-10, hip_twist=-15, knee=25, ankle=10),
                **_spine(flex=10, twist=-15),
                **_arms((0.35, -0.7, 0.7), twist=-30.0, elbows=125.0),
                "head": bend("head", 10.0),
            },
            tags=["standing"],
        ),
        _pose(
            "hands_on_head",
            {**_legs(knee=3.0), **_arms((0.7, 0.5, -0.2), twist=-100.0, elbows=115.0), "head": bend("head", 5.0)},
            tags=["standing"],
        ),
    ]


def _seated_poses() -> list[KeyPose]:
    return [
        _pose(
            "sitting_on_chair",
            {**_legs(hip_flex=90.0, hip_side=-5.0, knee=90.0), **_arms((0.15, -0.9, 0.45), elbows=55.0, twist=10.0)},
            tags=["sitting"],
        ),
        _pose(
            "sitting_hands_on_knees",
            {
                **_legs(hip_flex=85.0, hip_side=-8.0, knee=85.0, ankle=-5.0),
                **_spine(flex=10.0),
                **_arms((0.1, -0.7, 0.8), elbows=15.0, twist=20.0),
            },
            tags=["sitting"],
        ),
        _pose(
            "sitting_on_ground_legs_forward",
            {
                **_legs(hip_flex=85.0, knee=5.0, ankle=20.0),
                **_spine(flex=10.0),
                **_arms((0.25, -0.85, -0.45), elbows=5.0, twist=-10.0),
            },
            global_orient=orient(("x", -10.0)),
            tags=["sitting", "sitting_on_ground"],
        ),
        _pose(
            "sitting_cross_legged",
            {
                **aim_limb("left_hip", (0.75, -0.15, 0.65), (-0.85, -0.1, 0.5)),
                **aim_limb("right_hip", (-0.75, -0.2, 0.6), (0.85, -0.15, 0.45)),
                **_both("ankle", side=-15.0),
                **_spine(flex=10.0),
                **_arms((0.35, -0.85, 0.4), elbows=40.0, twist=15.0),
            },
            tags=["sitting", "sitting_on_ground"],
        ),
        _pose(
            "squatting",
            {
                **_legs(hip_flex=120.0, hip_side=-20.0, hip_twist=-10.0, knee=140.0, ankle=-45.0),
                **_spine(flex=15.0),
                **_arms((0.15, -0.3, 1.0), elbows=25.0),
            },
            global_orient=orient(("x", 25.0)),
            tags=["squatting"],
        ),
        _pose(
            "crouching",
            {
                **_legs(hip_flex=125.0, hip_side=-12.0, knee=135.0, ankle=-20.0, toes=-40.0),
                **_spine(flex=25.0),
                **_arms((0.2, -0.4, 1.0), elbows=5.0),
                "neck": bend("neck", -25.0),
            },
            global_orient=orient(("x", 45.0)),
            tags=["squatting"],
        ),
        _pose(
            "kneeling_on_one_knee",
            {
                **_leg("left", hip_flex=90, knee=90, ankle=-5),
                **_leg("right", hip_flex=-5, knee=95, ankle=40, toes=-45),
                **_arms((0.2, -0.6, 0.8), (-0.15, -1.0, 0.05), elbows=20.0, twist=10.0),
            },
            tags=["kneeling"],
        ),
        _pose(
            "kneeling_on_both_knees",
            {**_legs(hip_flex=-5.0, hip_side=-3.0, knee=95.0, ankle=50.0), **_relaxed_arms(elbows=15.0)},
            tags=["kneeling"],
        ),
        _pose(
            "kneeling_sitting_on_heels",
            {
                **_legs(hip_flex=60.0, hip_side=-5.0, knee=150.0, ankle=55.0),
                **_spine(flex=5.0),
                **_arms((0.15, -0.75, 0.6), elbows=45.0, twist=15.0),
            },
            tags=["kneeling"],
        ),
        _pose(
            "lunging",
            {
                **_leg("left", hip_flex=85, knee=95, ankle=-10),
                **_leg("right", hip_flex=-30, knee=10, ankle=15, toes=-40),
                **_arms((0.15, -1.0, 0.1), elbows=15.0),
            },
            tags=["lunging"],
        ),
    ]


def _lying_poses() -> list[KeyPose]:
    return [
        _pose("lying_on_back", {**_legs(knee=5.0), **_relaxed_arms()}, orient(("x", -90.0)), "lying", ["lying"]),
        _pose(
            "lying_on_back_knees_up",
            {**_legs(hip_flex=60.0, knee=110.0, ankle=-20.0), **_arms((0.5, -1.0, 0.0), elbows=10.0)},
            orient(("x", -90.0)),
            "lying",
            ["lying"],
        ),
        _pose(
            "lying_on_side",
            {
                **_leg("left", hip_flex=35, knee=60),
                **_leg("right", hip_flex=20, knee=30),
                **_arms((0.15, -0.3, 1.0), (-0.3, -0.8, 0.4), elbows=40.0),
                "neck": bend("neck", 0, 15),
            },
            orient(("z", -90.0)),
            "lying",
            ["lying"],
        ),
        _pose(
            "lying_on_front",
            {
                **_legs(knee=10.0, ankle=40.0),
                **_arms((0.6, 0.6, 0.0), twist=-80.0, elbows=60.0),
                "neck": bend("neck", 0, 0, 50),
                "head": bend("head", -10),
            },
            orient(("x", 90.0)),
            "lying",
            ["lying"],
        ),
        _pose(
            "push_up",
            {
                **_legs(hip_flex=-5.0, ankle=45.0, toes=-50.0),
                **_arms((0.3, -0.2, 1.0), elbows=5.0, twist=-20.0),
                "head": bend("head", -15.0),
            },
            orient(("x", 75.0)),
            "lying",
            ["lying", "push_up"],
        ),
    ]


def _balance_poses() -> list[KeyPose]:
    return [
        _pose(
            "yoga_tree",
            {
                **_leg("left", hip_flex=40, hip_side=-60, hip_twist=-45, knee=140, ankle=30),
                **_leg("right", knee=2),
                **_arms((0.15, 1.0, 0.15), twist=-90.0, elbows=25.0),
            },
            tags=["balance", "arms_above_head"],
        ),
        _pose(
            "yoga_warrior",
            {
                **_leg("left", hip_flex=80, hip_side=-10, knee=85),
                **_leg("right", hip_flex=-35, hip_twist=-20, knee=5, ankle=-15),
                **_spine(flex=-10),
                **_arms((0.15, 1.0, 0.1), twist=-90.0, elbows=5.0),
            },
            tags=["lunging", "arms_above_head"],
        ),
        _pose(
            "one_leg_balance",
            {
                **_leg("left", hip_flex=80, knee=3, ankle=-5),
                **_leg("right", hip_flex=-5, knee=5, ankle=30),
                **_arms((1.0, 0.0, 0.3), elbows=5.0),
                "neck": bend("neck", -25.0),
            },
            global_orient=orient(("x", 80.0)),
            tags=["balance"],
        ),
        _pose(
            "standing_on_one_leg_knee_up",
            {
                **_leg("left", hip_flex=95, knee=100, ankle=20),
                **_leg("right", knee=3),
                **_arms((1.0, -0.3, 0.0), elbows=10.0),
            },
            tags=["balance"],
        ),
        _pose(
            "handstand",
            {
                **_legs(hip_side=-3.0, ankle=40.0),
                **_arms((0.3, 1.0, 0.1), twist=-90.0, elbows=0.0),
                "neck": bend("neck", -20.0),
            },
            orient(("x", 180.0)),
            "inverted",
            ["upside_down"],
        ),
    ]


def _build_key_poses() -> dict[str, KeyPose]:
    poses = _standing_poses() + _locomotion_poses() + _seated_poses() + _lying_poses() + _balance_poses()
    return {p.name: p for p in poses}


KEY_POSES: dict[str, KeyPose] = _build_key_poses()
"""Named key poses, in library order."""


def key_pose_names() -> tuple[str, ...]:
    return tuple(KEY_POSES)


def key_pose_array(names: Sequence[str] | None = None) -> np.ndarray:
    """(K, 22, 3) float32 poses of the named key poses (all of them by default, in library order)."""
    names = key_pose_names() if names is None else names
    unknown = [n for n in names if n not in KEY_POSES]
    if unknown:
        raise ValueError(f"names: unknown key poses {unknown}; known: {list(KEY_POSES)}")
    return np.stack([KEY_POSES[n].pose for n in names])


def render_pose_sheet(
    path: str | Path,
    poses: np.ndarray | torch.Tensor,
    labels: Sequence[str] | None = None,
    betas: np.ndarray | torch.Tensor | None = None,
    body_model=None,
    views: Sequence[str | tuple[float, float]] = ("front", (60.0, 15.0)),
    image_size: int = 192,
    ncols: int | None = None,
) -> Path:
    """Render poses (N, 22, 3) (with optional betas (N, <=10)) from each of `views` into one contact sheet,
    `labels` under the first view of each pose. Returns the written path."""
    from poseembroider.body.body_model import BodyModel
    from poseembroider.rendering import create_renderer, make_contact_sheet, render_body, save_image

    body_model = BodyModel() if body_model is None else body_model
    with torch.no_grad():
        vertices = body_model(torch.as_tensor(poses), betas=None if betas is None else torch.as_tensor(betas)).vertices
    images, captions = [], []
    with create_renderer(image_size, image_size) as renderer:
        for k, verts in enumerate(vertices.numpy()):
            for view in views:
                images.append(render_body(renderer, verts, body_model.faces, view))
                captions.append(labels[k] if labels is not None and view == views[0] else "")
    sheet = make_contact_sheet(images, ncols=ncols or 6 * len(views) // max(1, len(views) // 2), labels=captions)
    path = Path(path)
    save_image(sheet, path)
    return path


def render_key_pose_sheet(path: str | Path, body_model=None, image_size: int = 192) -> Path:
    """Contact sheet of the whole key-pose library, two views each (front and front-left from above)."""
    return render_pose_sheet(
        path, key_pose_array(), list(KEY_POSES), body_model=body_model, image_size=image_size, ncols=12
    )
