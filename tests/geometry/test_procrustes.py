"""Similarity Procrustes: recovers known transforms, never reflects, weights/masks, errors."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from poseembroider.geometry import procrustes_align, random_rotation_matrices

FAST = settings(max_examples=25, deadline=None)
SEEDS = st.integers(0, 2**31 - 1)


def random_similarity(seed: int, batch: int, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    rotation = random_rotation_matrices(batch, generator=g, dtype=dtype)
    scale = torch.rand(batch, generator=g, dtype=dtype) * 1.5 + 0.5
    translation = torch.randn(batch, 3, generator=g, dtype=dtype)
    return scale, rotation, translation


def apply(scale, rotation, translation, points):
    return scale[:, None, None] * points @ rotation.transpose(-1, -2) + translation[:, None, :]


@FAST
@given(SEEDS, st.integers(3, 30))
def test_recovers_known_similarity(seed, num_points):
    g = torch.Generator().manual_seed(seed)
    points = torch.randn(8, num_points, 3, generator=g, dtype=torch.float64)
    scale, rotation, translation = random_similarity(seed + 1, 8)
    target = apply(scale, rotation, translation, points)
    result = procrustes_align(points, target)
    torch.testing.assert_close(result.aligned, target, atol=1e-9, rtol=0)
    torch.testing.assert_close(result.scale, scale, atol=1e-9, rtol=0)
    torch.testing.assert_close(result.rotation, rotation, atol=1e-9, rtol=0)
    torch.testing.assert_close(result.translation, translation, atol=1e-9, rtol=0)


def test_recovers_known_similarity_float32():
    points = torch.randn(16, 22, 3, generator=torch.Generator().manual_seed(0))
    scale, rotation, translation = random_similarity(1, 16, torch.float32)
    target = apply(scale, rotation, translation, points)
    result = procrustes_align(points, target)
    assert result.aligned.dtype == torch.float32
    torch.testing.assert_close(result.aligned, target, atol=1e-5, rtol=0)


@FAST
@given(SEEDS)
def test_never_returns_a_reflection(seed):
    g = torch.Generator().manual_seed(seed)
    points = torch.randn(8, 10, 3, generator=g, dtype=torch.float64)
    mirror = torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    scale, rotation, translation = random_similarity(seed + 1, 8)
    target = apply(scale, rotation, translation, points * mirror)  # an improper transform of the points
    result = procrustes_align(points, target)
    torch.testing.assert_close(torch.linalg.det(result.rotation), torch.ones(8, dtype=torch.float64))
    assert (result.scale > 0).all()
    # the reflection cannot be undone, but the fit is still better than doing nothing sensible
    assert torch.isfinite(result.aligned).all()


@FAST
@given(SEEDS)
def test_least_squares_optimality(seed):
    """Noisy data: perturbing the returned transform never lowers the squared error."""
    g = torch.Generator().manual_seed(seed)
    points = torch.randn(4, 15, 3, generator=g, dtype=torch.float64)
    target = torch.randn(4, 15, 3, generator=g, dtype=torch.float64)
    result = procrustes_align(points, target)
    best = ((result.aligned - target) ** 2).sum((-2, -1))
    for k in range(5):
        d_scale, d_rot, d_t = random_similarity(seed + 10 + k, 4)
        small_rot = torch.linalg.matrix_exp(0.05 * (d_rot - d_rot.transpose(-1, -2)))
        other = apply(
            result.scale * (1 + 0.05 * (d_scale - 1.25)),
            small_rot @ result.rotation,
            result.translation + 0.05 * d_t,
            points,
        )
        assert (((other - target) ** 2).sum((-2, -1)) >= best - 1e-12).all()


def test_weights_mask_out_outliers():
    g = torch.Generator().manual_seed(3)
    points = torch.randn(4, 12, 3, generator=g, dtype=torch.float64)
    scale, rotation, translation = random_similarity(4, 4)
    target = apply(scale, rotation, translation, points)
    target[:, :3] += 10 * torch.randn(4, 3, 3, generator=g, dtype=torch.float64)  # corrupted points
    mask = torch.ones(4, 12, dtype=torch.float64)
    mask[:, :3] = 0
    result = procrustes_align(points, target, weights=mask)
    torch.testing.assert_close(result.rotation, rotation)
    torch.testing.assert_close(result.scale, scale)
    torch.testing.assert_close(result.aligned[:, 3:], target[:, 3:])


def test_uniform_weights_match_unweighted_and_batch_dims():
    points = torch.randn(2, 3, 7, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    target = torch.randn(2, 3, 7, 3, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    plain = procrustes_align(points, target)
    weighted = procrustes_align(points, target, weights=torch.full((2, 3, 7), 2.5, dtype=torch.float64))
    assert plain.aligned.shape == (2, 3, 7, 3) and plain.rotation.shape == (2, 3, 3, 3)
    assert plain.scale.shape == (2, 3) and plain.translation.shape == (2, 3, 3)
    for a, b in zip(plain, weighted, strict=True):
        torch.testing.assert_close(a, b)


def test_degenerate_points_no_nan():
    points = torch.ones(2, 5, 3)
    target = torch.randn(2, 5, 3, generator=torch.Generator().manual_seed(0))
    result = procrustes_align(points, target)
    for t in result:
        assert torch.isfinite(t).all()
    torch.testing.assert_close(result.aligned, target.mean(-2, keepdim=True).expand_as(target))


def test_differentiable():
    points = torch.randn(3, 10, 3, dtype=torch.float64, requires_grad=True)
    target = torch.randn(3, 10, 3, dtype=torch.float64)
    error = (procrustes_align(points, target).aligned - target).norm(dim=-1).mean()
    error.backward()
    assert torch.isfinite(points.grad).all()


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"^points: expected \(\.\.\., 3\) 3D points, got \(2, 5, 2\)"):
        procrustes_align(torch.zeros(2, 5, 2), torch.zeros(2, 5, 3))
    with pytest.raises(ValueError, match=r"^target: expected \(\.\.\., 3\)"):
        procrustes_align(torch.zeros(2, 5, 3), torch.zeros(2, 5))
    with pytest.raises(
        ValueError, match=r"^target: expected the shape of points \(2, 5, 3\), got \(2, 6, 3\)"
    ):
        procrustes_align(torch.zeros(2, 5, 3), torch.zeros(2, 6, 3))
    with pytest.raises(ValueError, match=r"^points: expected \(\.\.\., N, 3\)"):
        procrustes_align(torch.zeros(3), torch.zeros(3))
    with pytest.raises(ValueError, match=r"^weights: expected \(2, 5\)"):
        procrustes_align(torch.zeros(2, 5, 3), torch.zeros(2, 5, 3), weights=torch.ones(2, 4))
    with pytest.raises(ValueError, match="^weights: every point set"):
        procrustes_align(torch.zeros(2, 5, 3), torch.zeros(2, 5, 3), weights=torch.zeros(2, 5))
    with pytest.raises(ValueError, match="^weights: expected finite non-negative"):
        procrustes_align(torch.zeros(2, 5, 3), torch.zeros(2, 5, 3), weights=-torch.ones(2, 5))
