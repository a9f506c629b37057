"""Left/right flip of axis-angle poses and of points."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from poseembroider.geometry import (
    axis_angle_to_matrix,
    flip_left_right,
    flip_points_left_right,
    matrix_to_axis_angle,
    random_rotation_matrices,
)

FAST = settings(max_examples=25, deadline=None)
MIRROR = torch.diag(torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64))


@st.composite
def involutions(draw, max_joints: int = 30):
    """A random involutive permutation: some disjoint pairs swapped, the rest fixed."""
    n = draw(st.integers(1, max_joints))
    order = draw(st.permutations(range(n)))
    num_pairs = draw(st.integers(0, n // 2))
    perm = list(range(n))
    for k in range(num_pairs):
        a, b = order[2 * k], order[2 * k + 1]
        perm[a], perm[b] = b, a
    return perm


def random_poses(seed: int, shape: tuple[int, ...]) -> torch.Tensor:
    r = random_rotation_matrices(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return matrix_to_axis_angle(r)


@FAST
@given(involutions(), st.integers(0, 2**31 - 1))
def test_flip_twice_is_identity(perm, seed):
    poses = random_poses(seed, (4, len(perm)))
    torch.testing.assert_close(flip_left_right(flip_left_right(poses, perm), perm), poses, atol=0, rtol=0)


@FAST
@given(involutions(), st.integers(0, 2**31 - 1))
def test_flip_permutes_and_mirrors(perm, seed):
    poses = random_poses(seed, (2, 3, len(perm)))
    flipped = flip_left_right(poses, perm)
    for j, p in enumerate(perm):
        torch.testing.assert_close(flipped[..., j, 0], poses[..., p, 0])
        torch.testing.assert_close(flipped[..., j, 1:], -poses[..., p, 1:])
    # each flipped rotation is the mirror-conjugated rotation M R M
    expected = MIRROR @ axis_angle_to_matrix(poses[..., perm, :]) @ MIRROR
    torch.testing.assert_close(axis_angle_to_matrix(flipped), expected, atol=1e-12, rtol=0)


def _forward_kinematics(poses, parents, offsets):
    """Tiny FK: global joint positions of a chain with rest `offsets` from each parent."""
    rotations = axis_angle_to_matrix(poses)
    global_rot, positions = [], []
    for j, parent in enumerate(parents):
        if parent < 0:
            global_rot.append(rotations[..., j, :, :])
            positions.append(offsets[j].expand(poses.shape[:-2] + (3,)))
        else:
            global_rot.append(global_rot[parent] @ rotations[..., j, :, :])
            positions.append(positions[parent] + (global_rot[parent] @ offsets[j][:, None])[..., 0])
    return torch.stack(positions, dim=-2)


def test_flip_mirrors_the_posed_skeleton():
    """FK(flip(pose)) == mirrored and relabelled FK(pose) for a left/right symmetric skeleton."""
    parents = [-1, 0, 0, 1, 2, 0]
    perm = [0, 2, 1, 4, 3, 5]
    offsets = torch.tensor(
        [[0, 0, 0], [1, -0.2, 0], [-1, -0.2, 0], [0.3, -1, 0.2], [-0.3, -1, 0.2], [0, 1, 0.1]],
        dtype=torch.float64,
    )
    poses = random_poses(0, (16, 6))
    joints = _forward_kinematics(poses, parents, offsets)
    joints_of_flipped = _forward_kinematics(flip_left_right(poses, perm), parents, offsets)
    torch.testing.assert_close(
        joints_of_flipped, flip_points_left_right(joints)[..., perm, :], atol=1e-12, rtol=0
    )


def test_flip_with_smplx_permutation():
    joints = pytest.importorskip("poseembroider.body.joints")
    perm = joints.left_right_permutation(joints.BODY_JOINT_NAMES)
    poses = random_poses(1, (3, len(perm)))
    flipped = flip_left_right(poses, perm)
    left_knee, right_knee = joints.JOINT_INDEX["left_knee"], joints.JOINT_INDEX["right_knee"]
    torch.testing.assert_close(
        flipped[:, left_knee], poses[:, right_knee] * torch.tensor([1.0, -1.0, -1.0]).double()
    )
    torch.testing.assert_close(flip_left_right(flipped, perm), poses)


def test_flip_points_twice_is_identity_and_negates_x():
    points = torch.randn(2, 7, 3)
    flipped = flip_points_left_right(points)
    torch.testing.assert_close(flipped[..., 0], -points[..., 0])
    torch.testing.assert_close(flipped[..., 1:], points[..., 1:])
    torch.testing.assert_close(flip_points_left_right(flipped), points)


def test_flip_accepts_tensor_permutation_and_keeps_dtype():
    poses = torch.randn(5, 4, 3, dtype=torch.float32)
    out = flip_left_right(poses, torch.tensor([1, 0, 2, 3]))
    assert out.dtype == torch.float32 and out.shape == poses.shape


@pytest.mark.parametrize(
    ("perm", "message"),
    [
        ([0, 1, 2], "expected 4 entries"),
        ([0, 1, 1, 3], "expected a permutation of 0..3"),
        ([1, 2, 0, 3], "expected an involution"),
        ([0, 1, 2, 4], "expected a permutation"),
        ([0.0, 1, 2, 3], "expected integers"),
    ],
)
def test_bad_permutations(perm, message):
    with pytest.raises(ValueError, match=f"^permutation: {message}"):
        flip_left_right(torch.zeros(2, 4, 3), perm)


def test_bad_shapes():
    with pytest.raises(ValueError, match=r"^poses: expected \(\.\.\., 3\) axis-angles, got \(4, 21, 2\)"):
        flip_left_right(torch.zeros(4, 21, 2), list(range(21)))
    with pytest.raises(ValueError, match=r"^poses: expected \(\.\.\., J, 3\)"):
        flip_left_right(torch.zeros(3), [0])
    with pytest.raises(ValueError, match=r"^points: expected \(\.\.\., 3\) 3D points, got \(5, 2\)"):
        flip_points_left_right(torch.zeros(5, 2))
