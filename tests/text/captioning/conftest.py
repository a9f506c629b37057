"""Fixtures of the captioner tests: hand-built poses, a pose sampler, English checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from english_checks import surface_problems

from poseembroider.body.joints import BODY_JOINT_NAMES, JOINT_INDEX
from poseembroider.data import load_cmu_dev_poses
from poseembroider.geometry import matrix_to_axis_angle, random_rotation_matrices

HALF_PI = math.pi / 2


def make_pose(**joints) -> torch.Tensor:
    """(1, 22, 3) pose at rest except the named joints' axis-angles: `make_pose(left_knee=(1.57, 0, 0))`."""
    pose = torch.zeros(1, 22, 3)
    for name, value in joints.items():
        pose[0, JOINT_INDEX[name]] = torch.tensor(value, dtype=torch.float32)
    return pose


# Hand-built poses. Signs were checked by measuring joints (tests/text/captioning/test_caption_statements.py):
# knee flexion is +x (the foot goes behind), hip flexion is -x (the thigh comes forward), raising the left
# arm is +z at the left shoulder (-z on the right), a root rotation of -90 deg about x lays the body on its back,
# +x at the root with -x at both hips bends the upper body forward over vertical legs.
POSES = {
    "rest": make_pose(),
    "left_knee_right_angle": make_pose(left_knee=(HALF_PI, 0, 0)),
    "right_knee_right_angle": make_pose(right_knee=(HALF_PI, 0, 0)),
    "hands_above_head": make_pose(left_shoulder=(0, 0, 1.35), right_shoulder=(0, 0, -1.35)),
    "left_hand_above_head": make_pose(left_shoulder=(0, 0, 1.35), right_shoulder=(0, 0, 1.2)),
    "seated": make_pose(
        left_hip=(-HALF_PI, 0, 0),
        right_hip=(-HALF_PI, 0, 0),
        left_knee=(HALF_PI, 0, 0),
        right_knee=(HALF_PI, 0, 0),
        left_shoulder=(0, 0, -1.2),
        right_shoulder=(0, 0, 1.2),
    ),
    "lying_on_back": make_pose(pelvis=(-HALF_PI, 0, 0), left_shoulder=(0, 0, -1.3), right_shoulder=(0, 0, 1.3)),
    "lying_face_down": make_pose(pelvis=(HALF_PI, 0, 0), left_shoulder=(0, 0, -1.3), right_shoulder=(0, 0, 1.3)),
    "kneeling": make_pose(
        left_knee=(HALF_PI, 0, 0),
        right_knee=(HALF_PI, 0, 0),
        left_ankle=(HALF_PI / 2, 0, 0),
        right_ankle=(HALF_PI / 2, 0, 0),
        left_shoulder=(0, 0, -1.2),
        right_shoulder=(0, 0, 1.2),
    ),
    "bent_forward": make_pose(
        pelvis=(1.3, 0, 0),
        left_hip=(-1.3, 0, 0),
        right_hip=(-1.3, 0, 0),
        left_shoulder=(0, 0, -1.2),
        right_shoulder=(0, 0, 1.2),
    ),
    "head_turned_left": make_pose(neck=(0, 0.5, 0), head=(0, 0.4, 0)),
}

_ARMS_DOWN = {"left_shoulder": (0, 0, -1.2), "right_shoulder": (0, 0, 1.2)}


def _both(joint: str, value: tuple[float, float, float]) -> dict:
    return {f"left_{joint}": value, f"right_{joint}": value}


# Whole-body postures, as a person would name them first. Same conventions as above; spine flexion is +x,
# bending the spine to the body's left is -z, a root rotation about z of -90 deg lays the body on its left
# side, of 180 deg about x turns it upside down. Each was checked on its joint heights and segment angles
# (e.g. an upright kneel has both knees ~4 cm above the lowest joint and vertical thighs; the lower arm of
# a body lying on its side points forward, not into the floor).
WHOLE_BODY_POSES = {
    "kneeling_upright": make_pose(**_both("knee", (HALF_PI, 0, 0)), **_both("ankle", (0.6, 0, 0)), **_ARMS_DOWN),
    "kneeling_upright_toes_tucked": make_pose(
        **_both("knee", (1.75, 0, 0)), **_both("ankle", (-0.3, 0, 0)), **_ARMS_DOWN
    ),
    # shins sloping down behind the knees: the toes, not the knees, are the lowest joints
    "kneeling_upright_shins_sloping": make_pose(
        **_both("knee", (1.3, 0, 0)), **_both("ankle", (0.9, 0, 0)), **_ARMS_DOWN
    ),
    "kneeling_on_right_knee": make_pose(
        left_hip=(-HALF_PI, 0, 0),
        left_knee=(HALF_PI, 0, 0),
        right_knee=(HALF_PI, 0, 0),
        right_ankle=(0.5, 0, 0),
        **_ARMS_DOWN,
    ),
    "sitting_on_chair": POSES["seated"],
    "sitting_on_ground_legs_forward": make_pose(
        pelvis=(-0.2, 0, 0),
        **_both("hip", (-1.35, 0, 0)),
        **_both("knee", (0.1, 0, 0)),
        left_shoulder=(-0.5, 0, -1.2),
        right_shoulder=(-0.5, 0, 1.2),
    ),
    "sitting_on_ground_knees_up": make_pose(
        pelvis=(-0.15, 0, 0), **_both("hip", (-2.1, 0, 0)), **_both("knee", (1.75, 0, 0)), **_ARMS_DOWN
    ),
    "sitting_cross_legged": make_pose(
        left_hip=(-1.65, 1.81, -0.47),
        right_hip=(-1.6, -1.8, 0.35),
        left_knee=(1.87, 0, 0),
        right_knee=(1.93, 0, 0),
        left_ankle=(0, -0.26, 0),
        right_ankle=(0, 0.26, 0),
        spine1=(0.07, 0, 0),
        spine2=(0.05, 0, 0),
        spine3=(0.05, 0, 0),
        left_shoulder=(0.23, -0.66, -1.02),
        right_shoulder=(0.23, 0.66, 1.02),
        left_elbow=(0, -0.7, 0),
        right_elbow=(0, 0.7, 0),
    ),
    "lying_on_back": POSES["lying_on_back"],
    "lying_face_down": POSES["lying_face_down"],
    "lying_on_left_side": make_pose(
        pelvis=(0, 0, -HALF_PI),
        left_shoulder=(0, -HALF_PI, 0),
        right_shoulder=(0, 0, 1.2),
        **_both("hip", (-0.4, 0, 0)),
        **_both("knee", (0.6, 0, 0)),
    ),
    "lying_on_right_side": make_pose(
        pelvis=(0, 0, HALF_PI),
        right_shoulder=(0, HALF_PI, 0),
        left_shoulder=(0, 0, -1.2),
        **_both("hip", (-0.4, 0, 0)),
        **_both("knee", (0.6, 0, 0)),
    ),
    "squatting": make_pose(
        pelvis=(0.35, 0, 0),
        **_both("hip", (-2.0, 0, 0)),
        **_both("knee", (2.3, 0, 0)),
        **_both("ankle", (-0.4, 0, 0)),
        left_shoulder=(0, -0.9, -0.3),
        right_shoulder=(0, 0.9, 0.3),
    ),
    # standing, the torso bent ~85 deg forward at the hips (legs vertical)
    "bent_forward_at_waist": make_pose(pelvis=(1.45, 0, 0), **_both("hip", (-1.45, 0, 0)), **_ARMS_DOWN),
    # standing, the spine rolled ~85 deg forward (the pelvis upright)
    "bent_forward_spine_rolled": make_pose(spine1=(0.6, 0, 0), spine2=(0.45, 0, 0), spine3=(0.45, 0, 0), **_ARMS_DOWN),
    # standing, the torso ~40 deg back from vertical (hips and lower spine extended)
    "leaning_back": make_pose(
        pelvis=(-0.45, 0, 0), **_both("hip", (0.45, 0, 0)), spine1=(-0.15, 0, 0), spine2=(-0.1, 0, 0), **_ARMS_DOWN
    ),
    # standing, the spine bent ~75 deg to the body's left / right
    "bent_sideways_left": make_pose(spine1=(0, 0, -0.5), spine2=(0, 0, -0.42), spine3=(0, 0, -0.42), **_ARMS_DOWN),
    "bent_sideways_right": make_pose(spine1=(0, 0, 0.5), spine2=(0, 0, 0.42), spine3=(0, 0, 0.42), **_ARMS_DOWN),
    "handstand": make_pose(pelvis=(math.pi, 0, 0), left_shoulder=(0, 0, 1.35), right_shoulder=(0, 0, -1.35)),
    "standing": make_pose(**_ARMS_DOWN),
}


def sample_poses(n: int, seed: int) -> torch.Tensor:
    """(n, 22, 3) poses: CMU poses perturbed, random anatomical-ish poses, and a share of arbitrary
    global orientations (lying, upside down, tilted)."""
    rng = np.random.default_rng(seed)
    cmu = load_cmu_dev_poses()
    poses = cmu[rng.integers(0, len(cmu), n)] + rng.normal(0, 0.15, (n, 22, 3)).astype(np.float32)
    limits = {name: 0.5 for name in BODY_JOINT_NAMES}
    limits.update(
        {
            "left_hip": 1.2,
            "right_hip": 1.2,
            "left_shoulder": 1.3,
            "right_shoulder": 1.3,
            "spine1": 0.4,
            "spine2": 0.3,
            "spine3": 0.3,
            "left_collar": 0.3,
            "right_collar": 0.3,
        }
    )
    random_share = rng.random(n) < 0.35
    for j, name in enumerate(BODY_JOINT_NAMES[1:], start=1):
        value = rng.uniform(-1, 1, (n, 3)) * limits[name]
        if name.endswith("knee"):
            value = np.stack([rng.uniform(0, 2.4, n), rng.normal(0, 0.05, n), rng.normal(0, 0.05, n)], 1)
        if name.endswith("elbow"):
            sign = -1 if name.startswith("left") else 1
            value = np.stack([rng.normal(0, 0.1, n), sign * rng.uniform(0, 2.4, n), rng.normal(0, 0.1, n)], 1)
        poses[random_share, j] = value[random_share]
    tilted = rng.random(n) < 0.2
    if tilted.any():
        generator = torch.Generator().manual_seed(seed)
        rotations = random_rotation_matrices(int(tilted.sum()), generator=generator)
        poses[tilted, 0] = matrix_to_axis_angle(rotations).numpy()
    return torch.from_numpy(poses.astype(np.float32))


@pytest.fixture(scope="session")
def poses_sampler():
    return sample_poses


@pytest.fixture(scope="session")
def hand_poses():
    return POSES


def english_problems(text: str) -> list[str]:
    """What makes `text` not read as our captions should (see `english_checks.surface_problems`)."""
    return surface_problems(text)


@pytest.fixture(scope="session")
def check_english():
    return english_problems
