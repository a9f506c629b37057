"""Rotation representations and the conversions between them, batched over any leading dims `...`.

Conventions used throughout the toolkit:

- **axis-angle** (rotation vector), (..., 3): direction = unit rotation axis, norm = angle in radians
  (right-hand rule). Outputs have angles in [0, π].
- **rotation matrix**, (..., 3, 3): acts on column vectors, `x' = R @ x`; `A @ B` applies B first, then A.
- **6D**, (..., 6): the first two *columns* of the matrix, `R[..., :, :2].reshape(..., 6)`, i.e. interleaved
  row by row as `(R00, R01, R10, R11, R20, R21)`; `x.reshape(..., 3, 2)` gives back the two columns. This is
  the layout of VPoser's `ContinousRotReprDecoder` and of `roma.special_gramschmidt` on (..., 3, 2) inputs,
  which PoseEmbroider's regression heads use.
- **quaternion**, (..., 4): scalar first, `(w, x, y, z)`, unit norm; outputs are canonicalised to `w >= 0`.
- **Euler angles**, (..., 3): see `euler_to_matrix` (scipy's convention strings: lowercase = extrinsic,
  uppercase = intrinsic).

All functions work in float32 and float64, on any device, and are differentiable: singular points (angle 0,
angle π, gimbal lock) are handled by branch selection with "safe" inputs in the unused branch so that neither
the values nor the gradients become NaN.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from poseembroider.geometry._checks import broadcast_batch_shapes, check_float_tensor, check_trailing_shape

__all__ = [
    "axis_angle_to_matrix",
    "axis_angle_to_quaternion",
    "axis_rotation_matrix",
    "compose_axis_angle",
    "euler_to_matrix",
    "geodesic_distance",
    "matrix_to_axis_angle",
    "matrix_to_euler",
    "matrix_to_quaternion",
    "matrix_to_rot6d",
    "quaternion_to_axis_angle",
    "quaternion_to_matrix",
    "random_rotation_matrices",
    "rot6d_to_matrix",
]

_AXES = {"x": 0, "y": 1, "z": 2}


def _small_angle(dtype: torch.dtype) -> float:
    # Below this angle the 2nd-order Taylor expansions are exact to machine precision (error ~ t^4 / 120).
    return torch.finfo(dtype).eps ** 0.25


def _skew(v: torch.Tensor) -> torch.Tensor:
    """Cross-product matrices [v]_x, (..., 3) -> (..., 3, 3)."""
    x, y, z = v.unbind(-1)
    zero = torch.zeros_like(x)
    return torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).reshape(*v.shape[:-1], 3, 3)


def _eye_like(x: torch.Tensor, batch_shape: Sequence[int]) -> torch.Tensor:
    return torch.eye(3, dtype=x.dtype, device=x.device).expand(*batch_shape, 3, 3)


# ----------------------------------------------------------------------------------------------------
# axis-angle <-> matrix / quaternion


def axis_angle_to_matrix(axis_angle: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula: (..., 3) rotation vectors -> (..., 3, 3) rotation matrices.

    `R = I + (sin θ / θ) K + ((1 - cos θ) / θ²) K²` with `K = [ω]×`; the coefficients switch to their Taylor
    expansions near θ = 0 so that values and gradients stay exact there.
    """
    check_trailing_shape(axis_angle, "axis_angle", (3,), "axis-angles")
    theta2 = (axis_angle * axis_angle).sum(-1)
    small = theta2 < _small_angle(axis_angle.dtype) ** 2
    theta = torch.sqrt(torch.where(small, torch.ones_like(theta2), theta2))
    half = theta / 2
    a = torch.where(small, 1 - theta2 / 6, torch.sin(theta) / theta)
    # (1 - cos θ) / θ² written as 2 sin²(θ/2) / θ² to avoid the cancellation in 1 - cos θ.
    b = torch.where(small, 0.5 - theta2 / 24, 0.5 * (torch.sin(half) / half) ** 2)
    k = _skew(axis_angle)
    eye = _eye_like(axis_angle, axis_angle.shape[:-1])
    return eye + a[..., None, None] * k + b[..., None, None] * (k @ k)


def axis_angle_to_quaternion(axis_angle: torch.Tensor) -> torch.Tensor:
    """(..., 3) rotation vectors -> (..., 4) unit quaternions (w, x, y, z) with w >= 0 for angles <= π."""
    check_trailing_shape(axis_angle, "axis_angle", (3,), "axis-angles")
    theta2 = (axis_angle * axis_angle).sum(-1, keepdim=True)
    small = theta2 < _small_angle(axis_angle.dtype) ** 2
    theta = torch.sqrt(torch.where(small, torch.ones_like(theta2), theta2))
    w = torch.where(small, 1 - theta2 / 8, torch.cos(theta / 2))
    factor = torch.where(small, 0.5 - theta2 / 48, torch.sin(theta / 2) / theta)
    return torch.cat([w, factor * axis_angle], dim=-1)


def quaternion_to_axis_angle(quaternion: torch.Tensor) -> torch.Tensor:
    """(..., 4) quaternions (w, x, y, z) -> (..., 3) rotation vectors with angle in [0, π].

    The input is normalised first; q and -q give the same output. `θ = 2 atan2(|v|, |w|)` is accurate over the
    whole range, including angles close to π (w ≈ 0) where an arccos-based formula loses precision.
    """
    check_trailing_shape(quaternion, "quaternion", (4,), "quaternions (w, x, y, z)")
    q = F.normalize(quaternion, dim=-1, eps=torch.finfo(quaternion.dtype).tiny)
    q = torch.where(q[..., :1] < 0, -q, q)
    w, v = q[..., :1], q[..., 1:]
    s2 = (v * v).sum(-1, keepdim=True)
    small = s2 < _small_angle(q.dtype) ** 2
    s = torch.sqrt(torch.where(small, torch.ones_like(s2), s2))
    theta = 2 * torch.atan2(s, w)
    # Near θ = 0: θ / |v| = (2 / w) atan(u) / u with u = |v| / w ≈ (2 / w) (1 - u² / 3).
    w_safe = torch.where(small, w, torch.ones_like(w))
    factor = torch.where(small, 2 / w_safe * (1 - s2 / (3 * w_safe * w_safe)), theta / s)
    return factor * v


def quaternion_to_matrix(quaternion: torch.Tensor) -> torch.Tensor:
    """(..., 4) quaternions (w, x, y, z) -> (..., 3, 3) rotation matrices (the input is normalised first)."""
    check_trailing_shape(quaternion, "quaternion", (4,), "quaternions (w, x, y, z)")
    q = F.normalize(quaternion, dim=-1, eps=torch.finfo(quaternion.dtype).tiny)
    w, x, y, z = q.unbind(-1)
    xx, yy, zz = x * x, y * y, z * z
    xy, xz, yz = x * y, x * z, y * z
    wx, wy, wz = w * x, w * y, w * z
    rows = [
        1 - 2 * (yy + zz), 2 * (xy - wz), 2 * (xz + wy),
        2 * (xy + wz), 1 - 2 * (xx + zz), 2 * (yz - wx),
        2 * (xz - wy), 2 * (yz + wx), 1 - 2 * (xx + yy),
    ]  # fmt: skip
    return torch.stack(rows, dim=-1).reshape(*q.shape[:-1], 3, 3)


def matrix_to_quaternion(matrix: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) rotation matrices -> (..., 4) unit quaternions (w, x, y, z) with w >= 0.

    Shepperd's method: of the four algebraically equivalent formulas, each row uses the one whose divisor
    (2|w|, 2|x|, 2|y| or 2|z|, the largest of which is >= 1) is largest, so the result is accurate for every
    angle, including angles at and near π where the trace-based formula divides by ~0.
    """
    check_trailing_shape(matrix, "matrix", (3, 3), "rotation matrices")
    m = matrix
    r00, r01, r02 = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    r10, r11, r12 = m[..., 1, 0], m[..., 1, 1], m[..., 1, 2]
    r20, r21, r22 = m[..., 2, 0], m[..., 2, 1], m[..., 2, 2]
    # 4w², 4x², 4y², 4z²
    d = torch.stack(
        [1 + r00 + r11 + r22, 1 + r00 - r11 - r22, 1 - r00 + r11 - r22, 1 - r00 - r11 + r22], dim=-1
    )
    a21, a02, a10 = r21 - r12, r02 - r20, r10 - r01  # 4w·(x, y, z)
    s01, s02, s12 = r01 + r10, r02 + r20, r12 + r21  # 4xy, 4xz, 4yz
    # Row i holds 4 q_i (w, x, y, z); dividing it by 2 sqrt(d_i) = 4 |q_i| gives ±q.
    numerators = torch.stack(
        [
            torch.stack([d[..., 0], a21, a02, a10], dim=-1),
            torch.stack([a21, d[..., 1], s01, s02], dim=-1),
            torch.stack([a02, s01, d[..., 2], s12], dim=-1),
            torch.stack([a10, s02, s12, d[..., 3]], dim=-1),
        ],
        dim=-2,
    )
    # The chosen row has d >= 1; clamping the others keeps their (discarded) values and gradients finite.
    candidates = numerators / (2 * torch.sqrt(d.clamp(min=0.1)))[..., None]
    best = d.argmax(dim=-1)
    q = torch.gather(candidates, -2, best[..., None, None].expand(*best.shape, 1, 4)).squeeze(-2)
    q = F.normalize(q, dim=-1, eps=torch.finfo(q.dtype).tiny)
    return torch.where(q[..., :1] < 0, -q, q)


def matrix_to_axis_angle(matrix: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) rotation matrices -> (..., 3) rotation vectors, angle in [0, π].

    Goes through `matrix_to_quaternion`, so it is accurate near 0 and near π. At exactly π the axis sign is
    arbitrary (both rotation vectors describe the same rotation).
    """
    check_trailing_shape(matrix, "matrix", (3, 3), "rotation matrices")
    return quaternion_to_axis_angle(matrix_to_quaternion(matrix))


def compose_axis_angle(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """Rotation vector of `R(first) @ R(second)` (apply `second`, then `first`); batch dims broadcast."""
    check_trailing_shape(first, "first", (3,), "axis-angles")
    check_trailing_shape(second, "second", (3,), "axis-angles")
    broadcast_batch_shapes(first, "first", second, "second", 1)
    return matrix_to_axis_angle(axis_angle_to_matrix(first) @ axis_angle_to_matrix(second))


# ----------------------------------------------------------------------------------------------------
# 6D


def rot6d_to_matrix(rot6d: torch.Tensor) -> torch.Tensor:
    """(..., 6) 6D vectors -> (..., 3, 3) rotation matrices by Gram-Schmidt.

    The 6 numbers are read as two 3-vectors a1 = `rot6d[..., 0::2]`, a2 = `rot6d[..., 1::2]` (the layout of
    `matrix_to_rot6d`); the result's columns are b1 = a1 / |a1|, b2 = normalised (a2 - <b1, a2> b1) and
    b3 = b1 × b2.
    Degenerate inputs (a1 = 0 or a2 ∥ a1) give finite output but not a rotation.
    """
    check_trailing_shape(rot6d, "rot6d", (6,), "6D rotations (first two matrix columns)")
    eps = torch.finfo(rot6d.dtype).tiny
    m = rot6d.reshape(*rot6d.shape[:-1], 3, 2)
    a1, a2 = m[..., 0], m[..., 1]
    b1 = F.normalize(a1, dim=-1, eps=eps)
    b2 = F.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1, eps=eps)
    b3 = torch.linalg.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-1)


def matrix_to_rot6d(matrix: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) rotation matrices -> (..., 6): `matrix[..., :, :2]` flattened row by row.

    Layout: `(R00, R01, R10, R11, R20, R21)`; `rot6d_to_matrix` inverts it exactly for rotation matrices.
    """
    check_trailing_shape(matrix, "matrix", (3, 3), "rotation matrices")
    return matrix[..., :, :2].reshape(*matrix.shape[:-2], 6)


# ----------------------------------------------------------------------------------------------------
# Euler angles


def axis_rotation_matrix(angle: torch.Tensor, axis: str) -> torch.Tensor:
    """Rotation by `angle` (radians, shape (...)) about the coordinate axis "x", "y" or "z" -> (..., 3, 3).

    E.g. `axis_rotation_matrix(t, "x") = [[1, 0, 0], [0, cos t, -sin t], [0, sin t, cos t]]`.
    """
    check_float_tensor(angle, "angle")
    if axis not in _AXES:
        raise ValueError(f"axis: expected one of 'x', 'y', 'z', got {axis!r}")
    i = _AXES[axis]
    j, k = (i + 1) % 3, (i + 2) % 3
    c, s = torch.cos(angle), torch.sin(angle)
    one, zero = torch.ones_like(angle), torch.zeros_like(angle)
    entries = [[zero] * 3 for _ in range(3)]
    entries[i][i] = one
    entries[j][j], entries[j][k] = c, -s
    entries[k][j], entries[k][k] = s, c
    return torch.stack([e for row in entries for e in row], dim=-1).reshape(*angle.shape, 3, 3)


def _parse_convention(convention: str) -> tuple[tuple[int, int, int], bool]:
    """Return (axes in the order they are applied, intrinsic flag) for a Tait-Bryan convention string."""
    valid = (
        isinstance(convention, str)
        and len(convention) == 3
        and (convention.islower() or convention.isupper())
        and sorted(convention.lower()) == ["x", "y", "z"]
    )
    if not valid:
        raise ValueError(
            "convention: expected a Tait-Bryan sequence of the three distinct axes, all lowercase "
            f"(extrinsic, e.g. 'xyz') or all uppercase (intrinsic, e.g. 'ZYX'), got {convention!r}"
        )
    intrinsic = convention.isupper()
    # an intrinsic sequence "ABC" applies its rotations like the extrinsic sequence "cba"
    i, j, k = (_AXES[c] for c in (convention.lower()[::-1] if intrinsic else convention))
    return (i, j, k), intrinsic


def euler_to_matrix(angles: torch.Tensor, convention: str) -> torch.Tensor:
    """(..., 3) Euler angles (radians) -> (..., 3, 3) rotation matrices.

    `convention` follows scipy.spatial.transform.Rotation: three distinct axis letters, angles given in the
    order of the letters.

    - lowercase = **extrinsic** (rotations about the fixed world axes, applied left to right):
      "xyz" with angles (a, b, c) gives `R = Rz(c) @ Ry(b) @ Rx(a)`.
    - uppercase = **intrinsic** (rotations about the moving body axes, applied left to right):
      "ZYX" with angles (a, b, c) gives `R = Rz(a) @ Ry(b) @ Rx(c)`.

    The AMASS/PoseFix normalisation of the original uses `R = Rz(z) @ Ry(y) @ Rx(x)` with angles (x, y, z):
    that is "xyz" (extrinsic), equivalently "ZYX" (intrinsic) with the angles reversed.
    """
    check_trailing_shape(angles, "angles", (3,), "Euler angles")
    axes, intrinsic = _parse_convention(convention)
    ordered = angles.flip(-1) if intrinsic else angles  # now ordered as the applied rotations
    names = "xyz"
    r = [axis_rotation_matrix(ordered[..., n], names[a]) for n, a in enumerate(axes)]
    return r[2] @ r[1] @ r[0]


def matrix_to_euler(matrix: torch.Tensor, convention: str) -> torch.Tensor:
    """(..., 3, 3) rotation matrices -> (..., 3) Euler angles, inverse of `euler_to_matrix`.

    For the extrinsic sequence "ijk", `R = R_k(γ) @ R_j(β) @ R_i(α)` is decomposed with α, γ in (-π, π] and
    the middle angle β in [-π/2, π/2]; the angles are returned in the order of the convention letters. γ is
    computed after removing α so that recomposition reproduces R to machine precision even near gimbal lock.
    At gimbal lock (|β| = π/2, only α ± γ is defined) the first applied angle α is set to 0 (for an intrinsic
    convention that is the *last* letter's angle), without NaN in values or gradients.
    """
    check_trailing_shape(matrix, "matrix", (3, 3), "rotation matrices")
    axes, intrinsic = _parse_convention(convention)
    i, j, k = axes
    # Relabel the axes by the proper rotation Q: e_i -> e_x, e_j -> e_y, e_k -> parity * e_z. Then
    # R' = Q R Qᵀ = Rz(parity γ) Ry(β) Rx(α), with R'[a, b] = q_a q_b R[p_a, p_b],
    # p = (i, j, k) and q = (1, 1, parity).
    parity = 1.0 if (i, j, k) in ((0, 1, 2), (1, 2, 0), (2, 0, 1)) else -1.0
    p, q = (i, j, k), (1.0, 1.0, parity)

    def e(a: int, b: int) -> torch.Tensor:
        return (q[a] * q[b]) * matrix[..., p[a], p[b]]

    r21, r22, r20 = e(2, 1), e(2, 2), e(2, 0)
    cb2 = r21 * r21 + r22 * r22  # cos²β
    lock = cb2 < (10 * torch.finfo(matrix.dtype).eps) ** 2
    one, zero = torch.ones_like(cb2), torch.zeros_like(cb2)
    cos_beta = torch.where(lock, zero, torch.sqrt(torch.where(lock, one, cb2)))
    alpha = torch.where(lock, zero, torch.atan2(torch.where(lock, zero, r21), torch.where(lock, one, r22)))
    beta = torch.atan2(-r20, cos_beta)
    ca, sa = torch.cos(alpha), torch.sin(alpha)
    # R' Rx(-α) = Rz(γ) Ry(β), whose second column is (-sin γ, cos γ, 0).
    gamma = parity * torch.atan2(-(e(0, 1) * ca - e(0, 2) * sa), e(1, 1) * ca - e(1, 2) * sa)
    out = torch.stack([alpha, beta, gamma], dim=-1)
    return out.flip(-1) if intrinsic else out


# ----------------------------------------------------------------------------------------------------
# distances and sampling


def geodesic_distance(rotation1: torch.Tensor, rotation2: torch.Tensor) -> torch.Tensor:
    """Angle of `rotation1ᵀ @ rotation2` in radians, in [0, π]; (..., 3, 3) x (..., 3, 3) -> (...).

    Computed as `atan2(sin θ, cos θ)` from the antisymmetric part (|·| = 2 sin θ) and the trace (1 + 2 cos θ)
    of the relative rotation. Unlike `acos((tr - 1) / 2)`, this is accurate near 0 and π and needs no clamping
    of the cosine; the gradient is finite everywhere, and 0 for identical inputs (where the distance has a
    cone-shaped minimum). Batch dims broadcast.
    """
    check_trailing_shape(rotation1, "rotation1", (3, 3), "rotation matrices")
    check_trailing_shape(rotation2, "rotation2", (3, 3), "rotation matrices")
    broadcast_batch_shapes(rotation1, "rotation1", rotation2, "rotation2", 2)
    m = rotation1.transpose(-1, -2) @ rotation2
    cos = (m[..., 0, 0] + m[..., 1, 1] + m[..., 2, 2] - 1) / 2
    v = torch.stack(
        [m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]], -1
    )
    eps = torch.finfo(m.dtype).eps
    sin = torch.sqrt((v * v).sum(-1).clamp(min=eps * eps)) / 2
    return torch.atan2(sin, cos)


def random_rotation_matrices(
    n: int | Sequence[int],
    *,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """`n` rotation matrices drawn uniformly (Haar measure) on SO(3): shape (n, 3, 3), or (*n, 3, 3).

    Normalised 4D Gaussian vectors are uniform unit quaternions, hence uniform rotations.
    """
    shape = (n,) if isinstance(n, int) else tuple(n)
    if any((not isinstance(d, int)) or d < 0 for d in shape):
        raise ValueError(f"n: expected a non-negative int or a shape of them, got {n!r}")
    q = torch.randn(*shape, 4, generator=generator, dtype=dtype, device=device)
    return quaternion_to_matrix(q)
