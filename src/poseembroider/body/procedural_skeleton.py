"""Rest skeleton of the procedural SMPL-X-format body: 55 T-pose joints designed from adult anatomy.

Axes as in SMPL-X: y up, the body faces +z, +x is the body's LEFT; metres. The floor (soles) is at
`FLOOR_Y` and the pelvis joint at (0, -0.35, 0.01), as in the real template. Standing height is
`STATURE` (1.72 m): hip joints at half the height, knees at 0.27 H, shoulders at 0.81 H.

Bone *directions* are not free: the CMU poses shipped with the package
(`data/cmu_mocap/README.md`, "Conversion" step 2) were retargeted onto a rest skeleton whose bones
point along the directions in `CMU_REST_DIRECTIONS`, so the same axis-angles only reproduce the
recorded limb directions on a body whose rest bones point the same way. Each joint below is placed
as `parent + length * direction`; only the lengths are ours. Right-side joints are exact mirrors
(x -> -x) of the left ones.
"""

from __future__ import annotations

import numpy as np

from poseembroider.body.joints import JOINT_INDEX, JOINT_NAMES, NUM_JOINTS, PARENTS, mirrored_name

FLOOR_Y = -1.30
"""Height of the soles in the rest pose (m)."""

STATURE = 1.72
"""Designed standing height, floor to the top of the head (m)."""

HEAD_TOP_Y = FLOOR_Y + STATURE

CMU_REST_DIRECTIONS: dict[str, tuple[float, float, float]] = {
    "thigh": (0.026, -0.999, 0.026),
    "shin": (0.0, -0.997, -0.071),
    "foot": (0.070, -0.418, 0.906),
    "spine": (0.0, 1.0, 0.0),
    "spine3_neck": (0.0, 0.999, -0.048),
    "neck_head": (0.0, 0.976, 0.217),
    "collar": (0.980, 0.178, -0.089),
    "upper_arm": (0.999, 0.0, -0.037),
    "forearm": (0.999, 0.0, 0.040),
    "hand": (0.996, 0.0, 0.089),
}
"""Left-side rest bone directions of the CMU retarget (x is negated on the right side)."""

# Finger layout of the flat left hand in the hand frame (along the hand, towards the thumb, dorsal):
# metacarpophalangeal (or thumb carpometacarpal) joint offset from the wrist, per-phalanx lengths
# (joint1->joint2, joint2->joint3, joint3->tip) and per-phalanx directions (slight fan, thumb
# pointing forward-out and a little palmar, as a relaxed flat hand).
FINGER_LAYOUT: dict[str, dict[str, tuple]] = {
    "index": {
        "base": (0.091, 0.023, 0.002),
        "lengths": (0.040, 0.024, 0.022),
        "dirs": ((1.0, 0.07, 0.0), (1.0, 0.06, 0.0), (1.0, 0.05, 0.0)),
    },
    "middle": {
        "base": (0.095, 0.0, 0.0),
        "lengths": (0.045, 0.028, 0.024),
        "dirs": ((1.0, 0.0, 0.0), (1.0, 0.0, 0.0), (1.0, 0.0, 0.0)),
    },
    "ring": {
        "base": (0.090, -0.020, -0.001),
        "lengths": (0.042, 0.027, 0.023),
        "dirs": ((1.0, -0.07, 0.0), (1.0, -0.08, 0.0), (1.0, -0.09, 0.0)),
    },
    "pinky": {
        "base": (0.081, -0.039, -0.004),
        "lengths": (0.033, 0.021, 0.020),
        "dirs": ((1.0, -0.16, 0.0), (1.0, -0.17, 0.0), (1.0, -0.18, 0.0)),
    },
    "thumb": {
        "base": (0.024, 0.021, -0.013),
        "lengths": (0.044, 0.032, 0.026),
        "dirs": ((0.62, 0.70, -0.33), (0.76, 0.60, -0.22), (0.86, 0.48, -0.16)),
    },
}

FINGERS: tuple[str, ...] = ("index", "middle", "pinky", "ring", "thumb")
"""SMPL-X finger order of the hand joints (each finger has joints 1, 2, 3)."""


def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


def _mirror_x(p: np.ndarray) -> np.ndarray:
    return p * np.array([-1.0, 1.0, 1.0])


def left_hand_frame() -> np.ndarray:
    """(3, 3) rows = unit axes of the left hand: along the fingers, towards the thumb, dorsal (up).

    The hand lies flat, palm down, as in the SMPL-X T-pose; the thumb side is +z (the body's front).
    """
    along = _unit(CMU_REST_DIRECTIONS["hand"])
    thumb_side = _unit(np.cross(along, [0.0, 1.0, 0.0]))
    dorsal = np.cross(thumb_side, along)
    return np.stack([along, thumb_side, dorsal])


def _left_body_joints() -> dict[str, np.ndarray]:
    d = {k: _unit(v) for k, v in CMU_REST_DIRECTIONS.items()}
    j: dict[str, np.ndarray] = {"pelvis": np.array([0.0, -0.35, 0.01])}
    j["left_hip"] = np.array([0.085, -0.44, 0.005])
    j["left_knee"] = j["left_hip"] + d["thigh"] * (0.39 / -d["thigh"][1])  # knee 0.47 m above floor
    j["left_ankle"] = j["left_knee"] + d["shin"] * ((j["left_knee"][1] - (FLOOR_Y + 0.085)) / -d["shin"][1])
    j["left_foot"] = j["left_ankle"] + d["foot"] * (0.055 / -d["foot"][1])  # ball of foot, 3 cm up
    j["spine1"] = j["pelvis"] + d["spine"] * 0.12
    j["spine2"] = j["spine1"] + d["spine"] * 0.12
    j["spine3"] = j["spine2"] + d["spine"] * 0.09
    j["neck"] = j["spine3"] + d["spine3_neck"] * ((0.16 - j["spine3"][1]) / d["spine3_neck"][1])
    j["head"] = j["neck"] + d["neck_head"] * (0.085 / d["neck_head"][1])
    j["left_shoulder"] = np.array([0.18, 0.09, -0.015])
    j["left_collar"] = j["left_shoulder"] - d["collar"] * 0.11
    j["left_elbow"] = j["left_shoulder"] + d["upper_arm"] * 0.265
    j["left_wrist"] = j["left_elbow"] + d["forearm"] * 0.245
    j["jaw"] = j["head"] + np.array([0.0, -0.012, 0.032])
    j["left_eye_smplhf"] = np.array([0.031, 0.305, 0.072])
    return j


def finger_chain(finger: str) -> np.ndarray:
    """(4, 3) left-hand points of one finger: joints 1, 2, 3 and the fingertip end (m)."""
    frame = left_hand_frame()
    wrist = _left_body_joints()["left_wrist"]
    layout = FINGER_LAYOUT[finger]
    points = [wrist + np.asarray(layout["base"]) @ frame]
    for length, direction in zip(layout["lengths"], layout["dirs"], strict=True):
        points.append(points[-1] + length * (_unit(direction) @ frame))
    return np.stack(points)


def rest_joints() -> np.ndarray:
    """(55, 3) float64 rest joint positions in SMPL-X joint order (T-pose, metres)."""
    left = _left_body_joints()
    for finger in FINGERS:
        for k, point in enumerate(finger_chain(finger)[:3], start=1):
            left[f"left_{finger}{k}"] = point
    joints = np.zeros((NUM_JOINTS, 3))
    for name, index in JOINT_INDEX.items():
        mirror = mirrored_name(name)
        if name in left:
            joints[index] = left[name]
        elif mirror in left:
            joints[index] = _mirror_x(left[mirror])
        elif name == "right_eye_smplhf":
            joints[index] = _mirror_x(left["left_eye_smplhf"])
        else:
            raise KeyError(f"no rest position designed for joint {name!r}")
    return joints


def bone_end_points(joints: np.ndarray) -> dict[int, np.ndarray]:
    """End point of every leaf joint's bone (the joints without children): (3,) per joint index.

    Leaf bones still need a direction for skinning and landmarks: the head bone ends at the top of
    the skull, the toe bone at the toe tip, the finger bones at the fingertips.
    """
    ends: dict[int, np.ndarray] = {}
    has_child = {p for p in PARENTS if p >= 0}
    for j, name in enumerate(JOINT_NAMES):
        if j in has_child:
            continue
        if name == "head":
            ends[j] = np.array([0.0, HEAD_TOP_Y, joints[j][2] - 0.02])
        elif name.endswith("_foot"):
            ends[j] = joints[j] + np.array([0.0, -0.012, 0.062])
        elif name == "jaw":
            ends[j] = joints[j] + np.array([0.0, -0.05, 0.06])
        elif name.endswith("_eye_smplhf"):
            ends[j] = joints[j] + np.array([0.0, 0.0, 0.012])
        else:  # distal finger joint: the fingertip
            side, finger = name.split("_")[0], name.split("_")[1][:-1]
            tip = finger_chain(finger)[3]
            ends[j] = tip if side == "left" else _mirror_x(tip)
    return ends
