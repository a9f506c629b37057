"""Left/right mirroring of poses and points in the SMPL-X frame (+x is the body's left).

Mirroring through the x = 0 plane is `M = diag(-1, 1, 1)`. A joint rotation R becomes `M R M`, which for a
rotation vector ω = (x, y, z) is the rotation vector (x, -y, -z) (a reflection maps an axial vector v to
-M v). Joint rotations also trade places between the left and right sides, so a pose flip is "swap the joints
by the left/right permutation, then negate the y and z components". The permutation comes from the caller
(e.g. `poseembroider.body.joints.left_right_permutation`), which keeps this layer free of skeleton knowledge.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from poseembroider.geometry._checks import check_trailing_shape, format_shape

__all__ = ["flip_left_right", "flip_points_left_right"]


def _check_involution(permutation: Sequence[int] | torch.Tensor, num_joints: int) -> list[int]:
    perm = permutation.tolist() if isinstance(permutation, torch.Tensor) else list(permutation)
    if len(perm) != num_joints:
        raise ValueError(
            f"permutation: expected {num_joints} entries (one per joint of poses), got {len(perm)}"
        )
    if any(isinstance(p, bool) or not isinstance(p, int) for p in perm):
        raise ValueError(f"permutation: expected integers, got {perm!r}")
    if sorted(perm) != list(range(num_joints)):
        raise ValueError(f"permutation: expected a permutation of 0..{num_joints - 1}, got {perm!r}")
    not_involutive = [i for i, p in enumerate(perm) if perm[p] != i]
    if not_involutive:
        raise ValueError(
            "permutation: expected an involution (permutation[permutation[i]] == i), "
            f"fails at {not_involutive}"
        )
    return perm


def flip_left_right(poses: torch.Tensor, permutation: Sequence[int] | torch.Tensor) -> torch.Tensor:
    """Mirror poses left/right: (..., J, 3) axis-angle -> (..., J, 3).

    `out[..., j, :] = (x, -y, -z)` of `poses[..., permutation[j], :]`. `permutation` (J entries) must be an
    involution (swapping left and right twice is the identity), so flipping twice returns the input.
    The global orientation (joint 0, mapped onto itself) is mirrored too.
    """
    check_trailing_shape(poses, "poses", (3,), "axis-angles")
    if poses.ndim < 2:
        raise ValueError(f"poses: expected (..., J, 3) axis-angles, got {format_shape(poses.shape)}")
    perm = _check_involution(permutation, poses.shape[-2])
    index = torch.as_tensor(perm, dtype=torch.long, device=poses.device)
    sign = torch.tensor([1.0, -1.0, -1.0], dtype=poses.dtype, device=poses.device)
    return poses.index_select(-2, index) * sign


def flip_points_left_right(points: torch.Tensor) -> torch.Tensor:
    """Mirror 3D points through the x = 0 plane: (..., N, 3) -> (..., N, 3) with x negated.

    Joint *positions* also need the left/right relabelling (`points[..., permutation, :]`) to describe the
    mirrored body with the same joint order.
    """
    check_trailing_shape(points, "points", (3,), "3D points")
    sign = torch.tensor([-1.0, 1.0, 1.0], dtype=points.dtype, device=points.device)
    return points * sign
