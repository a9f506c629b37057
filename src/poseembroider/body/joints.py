"""SMPL-X skeleton: joint names, kinematic tree, the 22-joint body subset and left/right mirroring.

The order is the one of the SMPL-X model file (and of `smplx.joint_names.JOINT_NAMES[:55]`):
pelvis, 21 body joints, jaw, two eyes, then 15 left-hand and 15 right-hand finger joints. Poses in
this toolkit are stored as 52 joints (global orientation, 21 body joints, 30 finger joints: jaw and
eyes dropped, as in the original BEDLAM caches); models use the first 22 (`NUM_BODY_JOINTS`).
"""

from __future__ import annotations

_FINGERS = ("index", "middle", "pinky", "ring", "thumb")

BODY_JOINT_NAMES: tuple[str, ...] = (
    "pelvis",
    "left_hip",
    "right_hip",
    "spine1",
    "left_knee",
    "right_knee",
    "spine2",
    "left_ankle",
    "right_ankle",
    "spine3",
    "left_foot",
    "right_foot",
    "neck",
    "left_collar",
    "right_collar",
    "head",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
)
"""The 22 joints models work with: index 0 is the global orientation (pelvis)."""

FACE_JOINT_NAMES: tuple[str, ...] = ("jaw", "left_eye_smplhf", "right_eye_smplhf")


def _hand_joint_names(side: str) -> tuple[str, ...]:
    return tuple(f"{side}_{finger}{k}" for finger in _FINGERS for k in (1, 2, 3))


LEFT_HAND_JOINT_NAMES = _hand_joint_names("left")
RIGHT_HAND_JOINT_NAMES = _hand_joint_names("right")

JOINT_NAMES: tuple[str, ...] = BODY_JOINT_NAMES + FACE_JOINT_NAMES + LEFT_HAND_JOINT_NAMES + RIGHT_HAND_JOINT_NAMES
"""All 55 SMPL-X skeleton joints in model-file order."""

NUM_JOINTS = len(JOINT_NAMES)  # 55
NUM_BODY_JOINTS = len(BODY_JOINT_NAMES)  # 22
JOINT_INDEX: dict[str, int] = {name: i for i, name in enumerate(JOINT_NAMES)}

_BODY_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19)


def _build_parents() -> tuple[int, ...]:
    parents = list(_BODY_PARENTS)
    parents += [JOINT_INDEX["head"]] * len(FACE_JOINT_NAMES)
    for side, wrist in (("left", "left_wrist"), ("right", "right_wrist")):
        for finger in _FINGERS:
            parents.append(JOINT_INDEX[wrist])
            parents.append(JOINT_INDEX[f"{side}_{finger}1"])
            parents.append(JOINT_INDEX[f"{side}_{finger}2"])
    return tuple(parents)


PARENTS: tuple[int, ...] = _build_parents()
"""Kinematic tree: `PARENTS[j]` is the parent of joint j, -1 for the root (pelvis)."""

POSE_52_JOINT_NAMES: tuple[str, ...] = BODY_JOINT_NAMES + LEFT_HAND_JOINT_NAMES + RIGHT_HAND_JOINT_NAMES
"""Joint order of stored poses (N, 52, 3): the 55 joints without jaw and eyes."""


def children(joint: int) -> tuple[int, ...]:
    """Indices of the joints whose parent is `joint`."""
    return tuple(j for j, p in enumerate(PARENTS) if p == joint)


def mirrored_name(name: str) -> str:
    """The joint on the other side of the body ('left_knee' -> 'right_knee'); central joints map to themselves."""
    for a, b in (("left", "right"), ("right", "left")):
        if name.startswith(a + "_"):
            return b + name[len(a) :]
    return name


def left_right_permutation(names: tuple[str, ...]) -> tuple[int, ...]:
    """Index map `perm` such that `pose[perm]` swaps every left joint with its right counterpart.

    Works for any joint list closed under mirroring (the 22-, 52- or 55-joint lists above).
    """
    index = {n: i for i, n in enumerate(names)}
    try:
        return tuple(index[mirrored_name(n)] for n in names)
    except KeyError as err:
        raise ValueError(f"joint list has no mirror for {err.args[0]!r}") from None


def joint_names_for_count(num_joints: int) -> tuple[str, ...]:
    """The joint list of a pose tensor with `num_joints` joints (22, 52 or 55)."""
    lists = {22: BODY_JOINT_NAMES, 52: POSE_52_JOINT_NAMES, 55: JOINT_NAMES}
    if num_joints not in lists:
        raise ValueError(f"no SMPL-X joint list has {num_joints} joints; expected one of {sorted(lists)}")
    return lists[num_joints]
