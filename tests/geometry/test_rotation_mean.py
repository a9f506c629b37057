"""Chordal L2 mean of rotations and projection onto SO(3)."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from poseembroider.geometry import (
    axis_angle_to_matrix,
    axis_rotation_matrix,
    chordal_mean,
    chordal_mean_axis_angle,
    matrix_to_axis_angle,
    project_to_rotation_matrix,
    random_rotation_matrices,
)

FAST = settings(max_examples=25, deadline=None)
SEEDS = st.integers(0, 2**31 - 1)


def rotations(seed: int, shape) -> torch.Tensor:
    return random_rotation_matrices(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def assert_proper_rotation(r: torch.Tensor) -> None:
    eye = torch.eye(3, dtype=r.dtype).expand_as(r)
    torch.testing.assert_close(r.transpose(-1, -2) @ r, eye, atol=1e-10, rtol=0)
    torch.testing.assert_close(
        torch.linalg.det(r), torch.ones(r.shape[:-2], dtype=r.dtype), atol=1e-10, rtol=0
    )


@FAST
@given(SEEDS, st.integers(1, 20))
def test_mean_of_identical_rotations(seed, n):
    r = rotations(seed, (22,))
    torch.testing.assert_close(chordal_mean(r.expand(n, 22, 3, 3)), r, atol=1e-10, rtol=0)


@FAST
@given(SEEDS)
def test_left_and_right_invariance(seed):
    q = rotations(seed, (10, 5))
    a, b = rotations(seed + 1, (5,)), rotations(seed + 2, (5,))
    mean = chordal_mean(q)
    assert_proper_rotation(mean)
    torch.testing.assert_close(chordal_mean(a @ q), a @ mean, atol=1e-10, rtol=0)
    torch.testing.assert_close(chordal_mean(q @ b), mean @ b, atol=1e-10, rtol=0)


@FAST
@given(st.floats(-1.5, 1.5), st.floats(-1.5, 1.5))
def test_mean_of_two_rotations_about_one_axis_is_the_midpoint(a, b):
    r = axis_rotation_matrix(torch.tensor([a, b], dtype=torch.float64), "z")
    expected = axis_rotation_matrix(torch.tensor((a + b) / 2, dtype=torch.float64), "z")
    torch.testing.assert_close(chordal_mean(r), expected, atol=1e-10, rtol=0)


def test_weights():
    r = rotations(0, (6, 4))
    one_hot = torch.tensor([0, 0, 1.0, 0, 0, 0], dtype=torch.float64)
    torch.testing.assert_close(chordal_mean(r, weights=one_hot), r[2], atol=1e-10, rtol=0)
    per_joint = torch.zeros(6, 4, dtype=torch.float64)
    per_joint[torch.tensor([0, 1, 2, 3]), torch.arange(4)] = 1.0
    expected = torch.stack([r[j, j] for j in range(4)])
    torch.testing.assert_close(chordal_mean(r, weights=per_joint), expected, atol=1e-10, rtol=0)
    uniform = torch.full((6,), 0.3, dtype=torch.float64)
    torch.testing.assert_close(chordal_mean(r, weights=uniform), chordal_mean(r), atol=1e-12, rtol=0)


def test_axis_angle_wrapper_matches():
    r = rotations(3, (50, 22))
    aa = matrix_to_axis_angle(r)
    mean_aa = chordal_mean_axis_angle(aa)
    assert mean_aa.shape == (22, 3)
    torch.testing.assert_close(axis_angle_to_matrix(mean_aa), chordal_mean(r), atol=1e-10, rtol=0)


@FAST
@given(SEEDS)
def test_projection_gives_proper_rotations(seed):
    m = torch.randn(32, 3, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    p = project_to_rotation_matrix(m)
    assert_proper_rotation(p)
    # a rotation is its own projection; a reflection is not returned as is
    r = rotations(seed, (8,))
    torch.testing.assert_close(project_to_rotation_matrix(r), r, atol=1e-10, rtol=0)
    reflected = -r
    assert_proper_rotation(project_to_rotation_matrix(reflected))


def test_float32():
    r = random_rotation_matrices((100, 3), generator=torch.Generator().manual_seed(0))
    mean = chordal_mean(r)
    assert mean.dtype == torch.float32
    torch.testing.assert_close(torch.linalg.det(mean), torch.ones(3), atol=1e-5, rtol=0)


def test_bad_inputs():
    with pytest.raises(
        ValueError, match=r"^rotations: expected \(\.\.\., 3, 3\) rotation matrices, got \(4, 3\)"
    ):
        chordal_mean(torch.zeros(4, 3))
    with pytest.raises(ValueError, match=r"^rotations: expected \(N, \.\.\., 3, 3\)"):
        chordal_mean(torch.eye(3))
    with pytest.raises(ValueError, match=r"^rotations: expected \(N, \.\.\., 3, 3\)"):
        chordal_mean(torch.zeros(0, 3, 3))
    with pytest.raises(ValueError, match=r"^axis_angles: expected \(\.\.\., 3\) axis-angles, got \(5, 4\)"):
        chordal_mean_axis_angle(torch.zeros(5, 4))
    with pytest.raises(ValueError, match=r"^weights: expected \(5,\) or \(5, 2\)"):
        chordal_mean(torch.eye(3).expand(5, 2, 3, 3), weights=torch.ones(4))
    with pytest.raises(ValueError, match="^weights: expected finite non-negative"):
        chordal_mean(torch.eye(3).expand(5, 3, 3), weights=-torch.ones(5))
    with pytest.raises(ValueError, match=r"^matrix: expected \(\.\.\., 3, 3\) matrices"):
        project_to_rotation_matrix(torch.zeros(2, 2))
