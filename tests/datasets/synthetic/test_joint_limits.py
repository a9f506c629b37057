import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from poseembroider.body.joints import BODY_JOINT_NAMES, JOINT_INDEX, left_right_permutation
from poseembroider.data import load_cmu_dev_poses
from poseembroider.datasets.synthetic.joint_limits import (
    JOINT_LIMITS,
    blend_joint_params,
    joint_params_to_pose,
    limit_violation,
    pose_to_joint_params,
    within_limits,
)
from poseembroider.geometry import (
    axis_angle_to_matrix,
    flip_left_right,
    geodesic_distance,
    matrix_to_axis_angle,
    random_rotation_matrices,
)

CMU = torch.as_tensor(load_cmu_dev_poses())


def _pose_with(**joints: tuple[float, float, float]) -> torch.Tensor:
    """A rest pose with the given joints set to raw axis-angles (degrees along each axis)."""
    pose = torch.zeros(1, 22, 3)
    for name, rotvec in joints.items():
        pose[0, JOINT_INDEX[name]] = torch.deg2rad(torch.tensor(rotvec))
    return pose


def test_every_real_cmu_pose_is_within_the_limits():
    assert within_limits(CMU).all()
    assert (limit_violation(CMU) == 0).all()


def test_limits_are_not_tight_on_real_poses_mirrored():
    # the left/right mirror image of a real pose is a real-looking pose too
    assert within_limits(flip_left_right(CMU, left_right_permutation(BODY_JOINT_NAMES))).all()


def test_violation_shape_and_global_orientation_unlimited():
    poses = torch.zeros(50, 22, 3)
    poses[:, 0] = matrix_to_axis_angle(random_rotation_matrices(50, generator=torch.Generator().manual_seed(0)))
    violation = limit_violation(poses)
    assert violation.shape == (50, 22)
    assert (violation == 0).all() and within_limits(poses).all()


@pytest.mark.parametrize(
    "joints",
    [
        {"left_knee": (-90, 0, 0)},  # knee bent forward
        {"right_knee": (-90, 0, 0)},
        {"left_knee": (0, 0, 90)},  # knee bent sideways
        {"right_knee": (0, 0, -90)},
        {"left_knee": (0, 90, 0)},  # shin twisted by 90°
        {"left_elbow": (0, 90, 0)},  # left elbow bent backwards (its flexion is -y)
        {"right_elbow": (0, -90, 0)},  # right elbow bent backwards (its flexion is +y)
        {"left_elbow": (0, 0, 90)},  # elbow bent sideways
        {"spine2": (90, 0, 0)},  # one spine segment folded by 90°
        {"spine1": (0, 0, 80)},
        {"head": (0, 150, 0)},  # head turned by 150°
        {"left_hip": (0, 0, -150)},  # thigh swung up and out past the shoulder line
        {"left_hip": (0, 130, 0)},  # thigh twisted by 130°
        {"left_hip": (60, 0, 0)},  # thigh 60° behind the body (hip flexion is -x)
        {"left_ankle": (0, 0, 120)},
        {"left_shoulder": (0, 0, -170)},  # arm pushed down through the body
        {"left_collar": (0, 0, 90)},
    ],
)
def test_hand_built_impossible_poses_fail(joints):
    pose = _pose_with(**joints)
    assert not within_limits(pose).item()
    violation = limit_violation(pose)[0]
    bad = {JOINT_INDEX[name] for name in joints}
    assert all(violation[j] > 0 for j in bad)
    assert all(violation[j] == 0 for j in range(22) if j not in bad)


@pytest.mark.parametrize(
    "joints",
    [
        {"left_knee": (120, 0, 0), "right_knee": (120, 0, 0)},  # knees flex with +x on both sides
        {"left_elbow": (0, -120, 0), "right_elbow": (0, 120, 0)},  # elbows flex with -y (left), +y (right)
        {"left_hip": (-100, 0, 0), "right_hip": (-100, 0, 0)},  # hips flexed forward (sitting)
        {"left_shoulder": (0, 0, -80), "right_shoulder": (0, 0, 80)},  # arms down
        {"left_shoulder": (0, 0, 80), "right_shoulder": (0, 0, -80)},  # arms up
        {"spine1": (30, 0, 0), "spine2": (20, 0, 0), "spine3": (20, 0, 0)},  # bending forward
    ],
)
def test_ordinary_movements_pass(joints):
    assert within_limits(_pose_with(**joints)).item()


def test_violation_grows_with_the_excess():
    angles = [-20, -40, -60, -90]
    poses = torch.cat([_pose_with(left_knee=(a, 0, 0)) for a in angles])
    v = limit_violation(poses)[:, JOINT_INDEX["left_knee"]]
    assert (v > 0).all() and (v.diff() > 0).all()
    # the knee's hyperextension limit is 15°: 20° exceeds it by ~5°
    assert v[0].item() == pytest.approx(math.radians(5.0), abs=1e-3)


def test_tolerance_forgives_small_violations():
    pose = _pose_with(left_knee=(-17, 0, 0))
    assert not within_limits(pose).item()
    assert within_limits(pose, tolerance_deg=3.0).item()


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_params_round_trip_for_any_rotation(seed):
    g = torch.Generator().manual_seed(seed)
    poses = matrix_to_axis_angle(random_rotation_matrices((16, 22), generator=g, dtype=torch.float64))
    back = joint_params_to_pose(pose_to_joint_params(poses))
    err = geodesic_distance(axis_angle_to_matrix(poses), axis_angle_to_matrix(back))
    assert err.max() < 1e-6


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 107), st.integers(0, 107), st.floats(0.0, 1.0))
def test_blending_legal_poses_stays_legal(i, j, w):
    params = pose_to_joint_params(CMU[[i, j]].double())
    blended = blend_joint_params(params[:1], params[1:], w)
    assert within_limits(joint_params_to_pose(blended)).item()


def test_right_joints_read_like_left_ones():
    left = _pose_with(left_knee=(70, 0, 0), left_elbow=(0, -70, 0), left_shoulder=(0, 0, -60))
    right = flip_left_right(left, left_right_permutation(BODY_JOINT_NAMES))
    pl, pr = pose_to_joint_params(left)[0], pose_to_joint_params(right)[0]
    for name in ("knee", "elbow", "shoulder"):
        torch.testing.assert_close(pl[JOINT_INDEX[f"left_{name}"]], pr[JOINT_INDEX[f"right_{name}"]])


def test_limit_table_is_anatomical():
    knee, elbow = JOINT_LIMITS["knee"], JOINT_LIMITS["elbow"]
    assert 140 <= knee.flex[1] <= 165 and knee.flex[0] >= -20 and knee.side[1] <= 15
    assert 140 <= elbow.flex[1] <= 160 and elbow.flex[0] >= -15
    assert all(JOINT_LIMITS[k].flex[1] <= 55 for k in ("spine1", "spine2", "spine3"))
    assert np.isclose(np.linalg.norm(JOINT_LIMITS["hip"].twist_axis), 1.0)
