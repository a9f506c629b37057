"""Global-orientation normalisations: BEDLAM hips-face-front, AMASS zero-z, the y-up <-> z-up frame change."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from poseembroider.geometry import (
    axis_angle_to_matrix,
    axis_rotation_matrix,
    matrix_to_axis_angle,
    matrix_to_euler,
    normalize_global_orient_amass,
    normalize_global_orient_bedlam,
    random_rotation_matrices,
    rotate_global_orient,
    y_up_to_z_up,
    z_up_to_y_up,
)

FAST = settings(max_examples=25, deadline=None)
SEEDS = st.integers(0, 2**31 - 1)
E_X = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
E_Y = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)
E_Z = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)


def general_orients(seed: int, n: int = 64) -> torch.Tensor:
    r = random_rotation_matrices(n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return matrix_to_axis_angle(r)


def upright_orients(seed: int, n: int = 64) -> torch.Tensor:
    """y-up bodies: any heading about y, tilted by at most ~0.4 rad."""
    g = torch.Generator().manual_seed(seed)
    yaw = (torch.rand(n, generator=g, dtype=torch.float64) * 2 - 1) * math.pi
    tilt = (torch.rand(n, 3, generator=g, dtype=torch.float64) * 2 - 1) * 0.4
    r = axis_rotation_matrix(yaw, "y") @ axis_angle_to_matrix(tilt)
    return matrix_to_axis_angle(r)


def assert_about_y(rotation: torch.Tensor) -> None:
    e_y = E_Y.to(rotation.dtype).expand(rotation.shape[:-1])
    torch.testing.assert_close(rotation[..., 1, :], e_y, atol=1e-12, rtol=0)
    torch.testing.assert_close(rotation[..., :, 1], e_y, atol=1e-12, rtol=0)
    torch.testing.assert_close(
        torch.linalg.det(rotation), torch.ones(rotation.shape[:-2], dtype=rotation.dtype)
    )


# --- BEDLAM


@FAST
@given(SEEDS, st.sampled_from(["general", "upright"]))
def test_bedlam_hips_face_front(seed, kind):
    orient = general_orients(seed) if kind == "general" else upright_orients(seed)
    normalized, rotation = normalize_global_orient_bedlam(orient)
    assert_about_y(rotation)
    r_norm = axis_angle_to_matrix(normalized)
    torch.testing.assert_close(r_norm, rotation @ axis_angle_to_matrix(orient), atol=1e-10, rtol=0)
    hip = r_norm @ E_X  # rest hip axis right -> left rotated
    torch.testing.assert_close(hip[:, 2], torch.zeros(64, dtype=torch.float64), atol=1e-10, rtol=0)
    assert (hip[:, 0] > 0).all()


@FAST
@given(SEEDS)
def test_bedlam_idempotent(seed):
    orient = general_orients(seed)
    once, _ = normalize_global_orient_bedlam(orient)
    twice, rotation = normalize_global_orient_bedlam(once)
    torch.testing.assert_close(axis_angle_to_matrix(twice), axis_angle_to_matrix(once), atol=1e-10, rtol=0)
    torch.testing.assert_close(
        rotation, torch.eye(3, dtype=torch.float64).expand(64, 3, 3), atol=1e-10, rtol=0
    )


@FAST
@given(SEEDS)
def test_bedlam_with_hip_vector(seed):
    orient = general_orients(seed)
    hip = torch.randn(64, 3, generator=torch.Generator().manual_seed(seed + 1), dtype=torch.float64)
    normalized, rotation = normalize_global_orient_bedlam(orient, hip_vector=hip)
    assert_about_y(rotation)
    new_hip = (rotation @ hip[..., None])[..., 0]
    torch.testing.assert_close(new_hip[:, 2], torch.zeros(64, dtype=torch.float64), atol=1e-10, rtol=0)
    assert (new_hip[:, 0] > 0).all()
    torch.testing.assert_close(normalized, rotate_global_orient(orient, rotation))


def test_bedlam_heading_only_rotation_becomes_identity():
    yaw = torch.linspace(-3.1, 3.1, 13, dtype=torch.float64)
    orient = matrix_to_axis_angle(axis_rotation_matrix(yaw, "y"))
    normalized, rotation = normalize_global_orient_bedlam(orient)
    torch.testing.assert_close(normalized, torch.zeros_like(normalized), atol=1e-12, rtol=0)
    torch.testing.assert_close(rotation, axis_rotation_matrix(-yaw, "y"), atol=1e-12, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_bedlam_degenerate_vertical_hips(dtype):
    # hips along the vertical: R e_x = e_y (body lying on its side), with some heading
    heading = torch.tensor([0.0, 0.7, -2.0, math.pi], dtype=dtype)
    r = axis_rotation_matrix(heading, "y") @ axis_rotation_matrix(torch.full_like(heading, math.pi / 2), "z")
    orient = matrix_to_axis_angle(r).requires_grad_(True)
    normalized, rotation = normalize_global_orient_bedlam(orient)
    assert torch.isfinite(normalized).all() and torch.isfinite(rotation).all()
    assert_about_y(rotation.double())
    forward = axis_angle_to_matrix(normalized)[..., :, 2]  # fallback: forward axis faces +z
    torch.testing.assert_close(forward, E_Z.to(dtype).expand(4, 3), atol=1e-5, rtol=0)
    normalized.sum().backward()
    assert torch.isfinite(orient.grad).all()
    again, rotation2 = normalize_global_orient_bedlam(normalized.detach())
    torch.testing.assert_close(rotation2, torch.eye(3, dtype=dtype).expand(4, 3, 3), atol=1e-5, rtol=0)


def test_bedlam_degenerate_hip_vector_inputs():
    orient = general_orients(1, 3)
    hips = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.0, -2.0, 0.0]], dtype=torch.float64)
    normalized, rotation = normalize_global_orient_bedlam(orient, hip_vector=hips)
    assert torch.isfinite(normalized).all()
    assert_about_y(rotation)


def test_bedlam_bad_inputs():
    with pytest.raises(ValueError, match=r"^global_orient: expected \(\.\.\., 3\) axis-angles, got \(4, 2\)"):
        normalize_global_orient_bedlam(torch.zeros(4, 2))
    with pytest.raises(ValueError, match="^global_orient: contains NaN"):
        normalize_global_orient_bedlam(torch.tensor([[0.0, float("nan"), 0.0]]))
    with pytest.raises(ValueError, match="^global_orient: contains NaN or infinite"):
        normalize_global_orient_bedlam(torch.tensor([[0.0, float("inf"), 0.0]]))
    with pytest.raises(ValueError, match="^hip_vector: contains NaN"):
        normalize_global_orient_bedlam(torch.zeros(2, 3), hip_vector=torch.full((2, 3), float("nan")))
    with pytest.raises(
        ValueError, match=r"^hip_vector: expected the shape of global_orient \(2, 3\), got \(3, 3\)"
    ):
        normalize_global_orient_bedlam(torch.zeros(2, 3), hip_vector=torch.ones(3, 3))


# --- AMASS


@FAST
@given(SEEDS)
def test_amass_zeroes_z_euler_angle_and_is_idempotent(seed):
    orient = general_orients(seed)
    normalized, rotation = normalize_global_orient_amass(orient)
    r = axis_angle_to_matrix(orient)
    angles = matrix_to_euler(r, "xyz")
    new_angles = matrix_to_euler(axis_angle_to_matrix(normalized), "xyz")
    torch.testing.assert_close(new_angles[:, 2], torch.zeros(64, dtype=torch.float64), atol=1e-10, rtol=0)
    torch.testing.assert_close(new_angles[:, :2], angles[:, :2], atol=1e-10, rtol=0)
    torch.testing.assert_close(rotation, axis_rotation_matrix(-angles[:, 2], "z"))
    torch.testing.assert_close(axis_angle_to_matrix(normalized), rotation @ r, atol=1e-10, rtol=0)
    twice, rotation2 = normalize_global_orient_amass(normalized)
    torch.testing.assert_close(
        axis_angle_to_matrix(twice), axis_angle_to_matrix(normalized), atol=1e-10, rtol=0
    )
    torch.testing.assert_close(
        rotation2, torch.eye(3, dtype=torch.float64).expand(64, 3, 3), atol=1e-10, rtol=0
    )


def test_amass_against_scipy():
    orient = general_orients(7, 128)
    euler = Rotation.from_rotvec(orient.numpy()).as_euler("xyz")  # extrinsic: R = Rz Ry Rx
    euler[:, 2] = 0
    expected = Rotation.from_euler("xyz", euler).as_matrix()
    normalized, _ = normalize_global_orient_amass(orient)
    np.testing.assert_allclose(axis_angle_to_matrix(normalized).numpy(), expected, atol=1e-10)


def test_amass_gimbal_lock_no_nan():
    r = axis_rotation_matrix(torch.tensor([0.4, -1.0], dtype=torch.float64), "z") @ axis_rotation_matrix(
        torch.tensor([math.pi / 2, -math.pi / 2], dtype=torch.float64), "y"
    )
    normalized, rotation = normalize_global_orient_amass(matrix_to_axis_angle(r))
    assert torch.isfinite(normalized).all() and torch.isfinite(rotation).all()
    twice, _ = normalize_global_orient_amass(normalized)
    torch.testing.assert_close(
        axis_angle_to_matrix(twice), axis_angle_to_matrix(normalized), atol=1e-10, rtol=0
    )


def test_amass_bad_inputs():
    with pytest.raises(ValueError, match=r"^global_orient: expected \(\.\.\., 3\)"):
        normalize_global_orient_amass(torch.zeros(4, 3, 2))
    with pytest.raises(ValueError, match="^global_orient: contains NaN"):
        normalize_global_orient_amass(torch.tensor([float("nan"), 0.0, 0.0]))


# --- frames


def test_y_up_to_z_up_maps_y_onto_z():
    identity = torch.zeros(3, dtype=torch.float64)
    torch.testing.assert_close(
        y_up_to_z_up(identity), torch.tensor([math.pi / 2, 0.0, 0.0], dtype=torch.float64)
    )
    fix = axis_angle_to_matrix(y_up_to_z_up(identity))
    torch.testing.assert_close(fix @ E_Y, E_Z, atol=1e-12, rtol=0)
    # a body standing along +y (any heading, y-up frame) stands along +z afterwards
    orient = matrix_to_axis_angle(axis_rotation_matrix(torch.linspace(-3, 3, 7, dtype=torch.float64), "y"))
    up = axis_angle_to_matrix(y_up_to_z_up(orient)) @ E_Y
    torch.testing.assert_close(up, E_Z.expand(7, 3), atol=1e-12, rtol=0)


@FAST
@given(SEEDS)
def test_frame_change_round_trip(seed):
    orient = general_orients(seed)
    r = axis_angle_to_matrix(orient)
    torch.testing.assert_close(
        axis_angle_to_matrix(z_up_to_y_up(y_up_to_z_up(orient))), r, atol=1e-10, rtol=0
    )
    torch.testing.assert_close(
        axis_angle_to_matrix(y_up_to_z_up(z_up_to_y_up(orient))), r, atol=1e-10, rtol=0
    )


def test_normalisations_agree_on_heading_only_rotations():
    """A y-up heading rotation is removed by the BEDLAM normaliser, and after the frame change by AMASS's."""
    yaw = torch.linspace(-3, 3, 9, dtype=torch.float64)
    orient = matrix_to_axis_angle(axis_rotation_matrix(yaw, "y"))
    bedlam, _ = normalize_global_orient_bedlam(orient)
    amass, _ = normalize_global_orient_amass(y_up_to_z_up(orient))
    torch.testing.assert_close(
        axis_angle_to_matrix(y_up_to_z_up(bedlam)), axis_angle_to_matrix(amass), atol=1e-10, rtol=0
    )


def test_frame_and_rotate_bad_inputs():
    with pytest.raises(ValueError, match="^global_orient: contains NaN"):
        y_up_to_z_up(torch.tensor([float("nan"), 0.0, 0.0]))
    with pytest.raises(ValueError, match=r"^global_orient: expected \(\.\.\., 3\)"):
        z_up_to_y_up(torch.zeros(2))
    with pytest.raises(ValueError, match=r"^rotation: expected \(2, 3, 3\)"):
        rotate_global_orient(torch.zeros(2, 3), torch.eye(3))
