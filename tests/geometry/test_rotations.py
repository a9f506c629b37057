"""Rotation conversions: round trips, singular points, scipy as an independent reference, errors."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from poseembroider.geometry import (
    axis_angle_to_matrix,
    axis_angle_to_quaternion,
    axis_rotation_matrix,
    compose_axis_angle,
    euler_to_matrix,
    geodesic_distance,
    matrix_to_axis_angle,
    matrix_to_euler,
    matrix_to_quaternion,
    matrix_to_rot6d,
    quaternion_to_axis_angle,
    quaternion_to_matrix,
    random_rotation_matrices,
    rot6d_to_matrix,
)

FAST = settings(max_examples=25, deadline=None)
SEEDS = st.integers(0, 2**31 - 1)
DTYPES = [torch.float32, torch.float64]
TOL = {torch.float32: 1e-5, torch.float64: 1e-10}
CONVENTIONS = ["xyz", "xzy", "yxz", "yzx", "zxy", "zyx", "XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX"]


def rotations(seed: int, n: int = 64, dtype=torch.float64) -> torch.Tensor:
    return random_rotation_matrices(n, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def unit_axes(seed: int, n: int, dtype=torch.float64) -> torch.Tensor:
    v = torch.randn(n, 3, generator=torch.Generator().manual_seed(seed), dtype=dtype)
    return v / v.norm(dim=-1, keepdim=True)


def assert_rotation(r: torch.Tensor, tol: float) -> None:
    eye = torch.eye(3, dtype=r.dtype).expand_as(r)
    torch.testing.assert_close(r.transpose(-1, -2) @ r, eye, atol=tol, rtol=0)
    torch.testing.assert_close(torch.linalg.det(r), torch.ones(r.shape[:-2], dtype=r.dtype), atol=tol, rtol=0)


def wrap(a: torch.Tensor) -> torch.Tensor:
    """Angle differences mapped to (-π, π]."""
    return torch.atan2(torch.sin(a), torch.cos(a))


# --- round trips


@FAST
@given(SEEDS)
def test_axis_angle_matrix_round_trip_generic(seed):
    axes = unit_axes(seed, 64)
    angles = (
        torch.rand(64, 1, generator=torch.Generator().manual_seed(seed + 1), dtype=torch.float64) * math.pi
    )
    aa = axes * angles
    back = matrix_to_axis_angle(axis_angle_to_matrix(aa))
    torch.testing.assert_close(back, aa, atol=1e-10, rtol=0)


@FAST
@given(SEEDS, st.floats(-300, -0.5))
def test_axis_angle_matrix_round_trip_near_zero(seed, log10_angle):
    aa = unit_axes(seed, 8) * 10.0**log10_angle
    r = axis_angle_to_matrix(aa)
    assert_rotation(r, 1e-12)
    back = matrix_to_axis_angle(r)
    # relative precision is kept even for tiny angles
    torch.testing.assert_close(back, aa, atol=0, rtol=1e-9)


@FAST
@given(SEEDS, st.floats(-10, -0.5))
def test_axis_angle_matrix_round_trip_near_pi(seed, log10_delta):
    aa = unit_axes(seed, 8) * (math.pi - 10.0**log10_delta)
    back = matrix_to_axis_angle(axis_angle_to_matrix(aa))
    torch.testing.assert_close(back, aa, atol=1e-6, rtol=0)


@FAST
@given(SEEDS, st.floats(0, 1e-10))
def test_axis_angle_at_pi_same_rotation(seed, delta):
    """At (or within rounding of) π the axis sign is ambiguous: compare rotations, not vectors."""
    aa = unit_axes(seed, 8) * (math.pi - delta)
    r = axis_angle_to_matrix(aa)
    back = matrix_to_axis_angle(r)
    torch.testing.assert_close(axis_angle_to_matrix(back), r, atol=1e-9, rtol=0)
    torch.testing.assert_close(back.norm(dim=-1), aa.norm(dim=-1), atol=1e-9, rtol=0)


@pytest.mark.parametrize("dtype", DTYPES)
@FAST
@given(seed=SEEDS)
def test_matrix_round_trips(dtype, seed):
    r = rotations(seed, dtype=dtype)
    tol = TOL[dtype]
    torch.testing.assert_close(axis_angle_to_matrix(matrix_to_axis_angle(r)), r, atol=10 * tol, rtol=0)
    torch.testing.assert_close(rot6d_to_matrix(matrix_to_rot6d(r)), r, atol=tol, rtol=0)
    torch.testing.assert_close(quaternion_to_matrix(matrix_to_quaternion(r)), r, atol=tol, rtol=0)
    for convention in ("xyz", "ZYX", "yzx"):
        torch.testing.assert_close(
            euler_to_matrix(matrix_to_euler(r, convention), convention), r, atol=tol, rtol=0
        )


@FAST
@given(SEEDS)
def test_quaternion_round_trip_up_to_sign(seed):
    q = torch.randn(64, 4, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    q = q / q.norm(dim=-1, keepdim=True)
    back = matrix_to_quaternion(quaternion_to_matrix(q))
    assert (back[:, 0] >= 0).all()
    sign = torch.sign((back * q).sum(-1, keepdim=True))
    torch.testing.assert_close(back, sign * q, atol=1e-10, rtol=0)
    # via axis-angle as well
    back2 = axis_angle_to_quaternion(quaternion_to_axis_angle(q))
    torch.testing.assert_close(back2, torch.where(q[:, :1] < 0, -q, q), atol=1e-10, rtol=0)


@pytest.mark.parametrize("convention", CONVENTIONS)
@FAST
@given(seed=SEEDS)
def test_euler_round_trip_away_from_gimbal_lock(convention, seed):
    g = torch.Generator().manual_seed(seed)
    angles = (torch.rand(64, 3, generator=g, dtype=torch.float64) * 2 - 1) * math.pi
    angles[:, 1] *= 0.5 * 0.99  # middle angle in (-π/2, π/2), away from the lock
    back = matrix_to_euler(euler_to_matrix(angles, convention), convention)
    torch.testing.assert_close(wrap(back - angles), torch.zeros_like(angles), atol=1e-9, rtol=0)


@pytest.mark.parametrize("convention", CONVENTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_euler_gimbal_lock_no_nan(convention, dtype):
    g = torch.Generator().manual_seed(0)
    angles = (torch.rand(32, 3, generator=g, dtype=dtype) * 2 - 1) * math.pi
    angles[:16, 1] = math.pi / 2
    angles[16:, 1] = -math.pi / 2
    r = euler_to_matrix(angles, convention).requires_grad_(True)
    out = matrix_to_euler(r, convention)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(euler_to_matrix(out, convention), r.detach(), atol=TOL[dtype], rtol=0)
    # the first applied angle (first letter if extrinsic, last letter if intrinsic) is set to 0
    first_applied = out[:, 2] if convention.isupper() else out[:, 0]
    torch.testing.assert_close(first_applied, torch.zeros_like(first_applied))
    out.sum().backward()
    assert torch.isfinite(r.grad).all()


def test_amass_euler_convention_is_rz_ry_rx():
    angles = torch.tensor([0.3, -0.4, 1.1], dtype=torch.float64)
    x, y, z = angles
    expected = axis_rotation_matrix(z, "z") @ axis_rotation_matrix(y, "y") @ axis_rotation_matrix(x, "x")
    torch.testing.assert_close(euler_to_matrix(angles, "xyz"), expected)
    torch.testing.assert_close(euler_to_matrix(angles.flip(-1), "ZYX"), expected)


# --- scipy


@FAST
@given(SEEDS)
def test_axis_angle_matrix_against_scipy(seed):
    r = rotations(seed)
    aa = matrix_to_axis_angle(r)
    np.testing.assert_allclose(aa.numpy(), Rotation.from_matrix(r.numpy()).as_rotvec(), atol=1e-10)
    np.testing.assert_allclose(
        axis_angle_to_matrix(aa).numpy(), Rotation.from_rotvec(aa.numpy()).as_matrix(), atol=1e-12
    )


@FAST
@given(SEEDS)
def test_quaternion_order_against_scipy(seed):
    r = rotations(seed)
    q = matrix_to_quaternion(r).numpy()  # (w, x, y, z)
    ref = Rotation.from_matrix(r.numpy()).as_quat()  # scipy: scalar last (x, y, z, w)
    ref = np.concatenate([ref[:, 3:], ref[:, :3]], axis=1)
    ref *= np.sign(ref[:, :1])
    np.testing.assert_allclose(q, ref, atol=1e-10)
    np.testing.assert_allclose(
        quaternion_to_matrix(torch.from_numpy(ref)).numpy(),
        Rotation.from_matrix(r.numpy()).as_matrix(),
        atol=1e-12,
    )


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_euler_against_scipy(convention):
    r = rotations(123, n=256)
    ours = matrix_to_euler(r, convention)
    np.testing.assert_allclose(ours.numpy(), Rotation.from_matrix(r.numpy()).as_euler(convention), atol=1e-9)
    angles = torch.from_numpy(Rotation.from_matrix(r.numpy()).as_euler(convention))
    np.testing.assert_allclose(
        euler_to_matrix(angles, convention).numpy(),
        Rotation.from_euler(convention, angles.numpy()).as_matrix(),
        atol=1e-12,
    )


@pytest.mark.parametrize("axis", ["x", "y", "z"])
def test_axis_rotation_matrix_against_scipy(axis):
    angles = torch.linspace(-4, 4, 17, dtype=torch.float64)
    np.testing.assert_allclose(
        axis_rotation_matrix(angles, axis).numpy(),
        Rotation.from_euler(axis, angles.numpy()[:, None]).as_matrix(),
        atol=1e-12,
    )


def test_compose_axis_angle_against_scipy():
    r1, r2 = rotations(5, 32), rotations(6, 32)
    a1, a2 = matrix_to_axis_angle(r1), matrix_to_axis_angle(r2)
    ref = (Rotation.from_rotvec(a1.numpy()) * Rotation.from_rotvec(a2.numpy())).as_matrix()
    np.testing.assert_allclose(axis_angle_to_matrix(compose_axis_angle(a1, a2)).numpy(), ref, atol=1e-12)


# --- 6D


def test_rot6d_layout_is_first_two_columns_row_major():
    r = rotations(7, 4)
    x = matrix_to_rot6d(r)
    torch.testing.assert_close(x.reshape(4, 3, 2), r[..., :, :2])
    torch.testing.assert_close(x[:, 0::2], r[..., :, 0])
    torch.testing.assert_close(x[:, 1::2], r[..., :, 1])


@FAST
@given(SEEDS)
def test_rot6d_gram_schmidt_of_arbitrary_input(seed):
    x = torch.randn(64, 6, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    r = rot6d_to_matrix(x)
    assert_rotation(r, 1e-12)
    a1 = x[:, 0::2]
    torch.testing.assert_close(r[..., :, 0], a1 / a1.norm(dim=-1, keepdim=True))
    # the second column stays in the plane of the two input vectors, on the side of a2
    assert ((r[..., :, 1] * x[:, 1::2]).sum(-1) > 0).all()


# --- geodesic


@FAST
@given(SEEDS)
def test_geodesic_distance_properties(seed):
    r1, r2 = rotations(seed), rotations(seed + 1)
    d = geodesic_distance(r1, r2)
    torch.testing.assert_close(
        geodesic_distance(r1, r1), torch.zeros(64, dtype=torch.float64), atol=1e-7, rtol=0
    )
    torch.testing.assert_close(d, geodesic_distance(r2, r1))
    assert (d >= 0).all() and (d <= math.pi).all()
    relative = r1.transpose(-1, -2) @ r2
    torch.testing.assert_close(d, matrix_to_axis_angle(relative).norm(dim=-1), atol=1e-10, rtol=0)
    ref = Rotation.from_matrix(relative.numpy()).magnitude()
    np.testing.assert_allclose(d.numpy(), ref, atol=1e-10)
    # invariance: d(Q R1, Q R2) = d(R1, R2)
    q = rotations(seed + 2)
    torch.testing.assert_close(geodesic_distance(q @ r1, q @ r2), d, atol=1e-10, rtol=0)


@pytest.mark.parametrize("angle", [0.0, 1e-9, 1e-4, 1.0, math.pi - 1e-6, math.pi])
@pytest.mark.parametrize("dtype", DTYPES)
def test_geodesic_distance_accurate_at_extremes(angle, dtype):
    axis = unit_axes(3, 16, dtype)
    r1 = rotations(4, 16, dtype)
    r2 = r1 @ axis_angle_to_matrix(axis * angle)
    d = geodesic_distance(r1, r2)
    tol = 1e-6 if dtype == torch.float32 else 1e-12
    assert (d <= math.pi).all()
    torch.testing.assert_close(d, torch.full_like(d, angle), atol=tol, rtol=0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_geodesic_distance_gradient_finite_at_identical_inputs(dtype):
    r = rotations(9, 8, dtype).requires_grad_(True)
    d = geodesic_distance(r, r.detach().clone())
    d.sum().backward()
    assert torch.isfinite(r.grad).all()


def test_geodesic_distance_broadcasts():
    r1, r2 = rotations(1, 5), rotations(2, 1)
    assert geodesic_distance(r1[None], r2).shape == (1, 5)


# --- gradients


def test_gradcheck_generic_points():
    aa = (unit_axes(11, 4) * 1.3).requires_grad_(True)
    assert torch.autograd.gradcheck(axis_angle_to_matrix, (aa,))
    assert torch.autograd.gradcheck(axis_angle_to_quaternion, (aa,))
    r = rotations(12, 4).requires_grad_(True)
    assert torch.autograd.gradcheck(matrix_to_axis_angle, (r,))
    assert torch.autograd.gradcheck(lambda m: matrix_to_euler(m, "xyz"), (r,))
    x = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(rot6d_to_matrix, (x,))
    r2 = rotations(13, 4)
    assert torch.autograd.gradcheck(lambda m: geodesic_distance(m, r2), (r,))


@pytest.mark.parametrize("dtype", DTYPES)
def test_gradients_finite_at_singular_points(dtype):
    aa = torch.zeros(2, 3, dtype=dtype, requires_grad=True)
    axis_angle_to_matrix(aa).sum().backward()
    assert torch.isfinite(aa.grad).all()
    # dR/dω at 0 is the skew matrix [ω]x, whose entries sum to 0
    torch.testing.assert_close(aa.grad, torch.zeros_like(aa))
    eye = torch.eye(3, dtype=dtype).repeat(2, 1, 1).requires_grad_(True)
    matrix_to_axis_angle(eye).sum().backward()
    assert torch.isfinite(eye.grad).all()
    near_pi = axis_angle_to_matrix(unit_axes(1, 4, dtype) * (math.pi - 1e-3)).requires_grad_(True)
    matrix_to_axis_angle(near_pi).sum().backward()
    assert torch.isfinite(near_pi.grad).all()
    q = torch.tensor([[1.0, 0, 0, 0], [0.0, 1, 0, 0]], dtype=dtype, requires_grad=True)
    quaternion_to_axis_angle(q).sum().backward()
    assert torch.isfinite(q.grad).all()


# --- misc


@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_shapes_and_dtypes(dtype):
    aa = torch.zeros(2, 5, 3, dtype=dtype)
    assert axis_angle_to_matrix(aa).shape == (2, 5, 3, 3)
    assert axis_angle_to_matrix(aa).dtype == dtype
    assert matrix_to_axis_angle(torch.eye(3, dtype=dtype)).shape == (3,)
    assert matrix_to_rot6d(torch.eye(3, dtype=dtype).expand(2, 5, 3, 3)).shape == (2, 5, 6)
    assert quaternion_to_matrix(torch.ones(0, 4, dtype=dtype)).shape == (0, 3, 3)
    assert matrix_to_quaternion(torch.eye(3, dtype=dtype).expand(0, 3, 3)).shape == (0, 4)
    assert matrix_to_euler(torch.eye(3, dtype=dtype).expand(7, 3, 3), "xyz").dtype == dtype


def test_random_rotation_matrices_uniform_and_reproducible():
    r = random_rotation_matrices(20000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert_rotation(r, 1e-12)
    # Haar measure: E[R] = 0 and E[angle] = π/2 + 2/π
    assert r.mean(0).abs().max() < 0.03
    angle = matrix_to_axis_angle(r).norm(dim=-1)
    assert abs(angle.mean().item() - (math.pi / 2 + 2 / math.pi)) < 0.02
    again = random_rotation_matrices(20000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert torch.equal(r, again)
    assert random_rotation_matrices((2, 3)).shape == (2, 3, 3, 3)
    with pytest.raises(ValueError, match="n: "):
        random_rotation_matrices(-1)


@pytest.mark.parametrize(
    ("fn", "name", "bad", "expected"),
    [
        (
            axis_angle_to_matrix,
            "axis_angle",
            torch.zeros(4, 21, 2),
            r"\(\.\.\., 3\) axis-angles, got \(4, 21, 2\)",
        ),
        (axis_angle_to_quaternion, "axis_angle", torch.zeros(4), r"\(\.\.\., 3\)"),
        (matrix_to_axis_angle, "matrix", torch.zeros(4, 3), r"\(\.\.\., 3, 3\).*got \(4, 3\)"),
        (matrix_to_quaternion, "matrix", torch.zeros(2, 3, 4), r"\(\.\.\., 3, 3\)"),
        (matrix_to_rot6d, "matrix", torch.zeros(9), r"\(\.\.\., 3, 3\)"),
        (rot6d_to_matrix, "rot6d", torch.zeros(2, 3, 2), r"\(\.\.\., 6\).*got \(2, 3, 2\)"),
        (quaternion_to_matrix, "quaternion", torch.zeros(3), r"\(\.\.\., 4\)"),
        (quaternion_to_axis_angle, "quaternion", torch.zeros(5, 3), r"\(\.\.\., 4\)"),
        (lambda x: euler_to_matrix(x, "xyz"), "angles", torch.zeros(2), r"\(\.\.\., 3\)"),
        (lambda x: matrix_to_euler(x, "xyz"), "matrix", torch.zeros(3), r"\(\.\.\., 3, 3\)"),
        (lambda x: geodesic_distance(x, torch.eye(3)), "rotation1", torch.zeros(3, 2), r"\(\.\.\., 3, 3\)"),
        (lambda x: geodesic_distance(torch.eye(3), x), "rotation2", torch.zeros(3, 2), r"\(\.\.\., 3, 3\)"),
        (lambda x: compose_axis_angle(x, torch.zeros(3)), "first", torch.zeros(4), r"\(\.\.\., 3\)"),
    ],
)
def test_bad_shapes_raise_value_error_naming_the_argument(fn, name, bad, expected):
    with pytest.raises(ValueError, match=rf"^{name}: expected {expected}"):
        fn(bad)


def test_other_bad_inputs():
    with pytest.raises(ValueError, match="convention"):
        euler_to_matrix(torch.zeros(3), "xyx")
    with pytest.raises(ValueError, match="convention"):
        matrix_to_euler(torch.eye(3), "Xyz")
    with pytest.raises(ValueError, match="axis"):
        axis_rotation_matrix(torch.zeros(2), "w")
    with pytest.raises(TypeError, match="axis_angle"):
        axis_angle_to_matrix(torch.zeros(3, dtype=torch.long))
    with pytest.raises(TypeError, match="axis_angle"):
        axis_angle_to_matrix([0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="rotation1.*rotation2.*broadcast"):
        geodesic_distance(torch.eye(3).expand(4, 3, 3), torch.eye(3).expand(5, 3, 3))
