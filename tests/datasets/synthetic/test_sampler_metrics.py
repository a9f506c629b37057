import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from poseembroider.data import load_cmu_dev_poses
from poseembroider.datasets.synthetic.metrics import (
    farthest_point_sampling,
    mean_pairwise_mpjpe,
    mpjpe_matrix,
    nearest_neighbour_mpjpe,
    normalize_joints,
)
from poseembroider.datasets.synthetic.report import sampler_report
from poseembroider.datasets.synthetic.skeleton import BodySkeleton
from poseembroider.geometry import axis_rotation_matrix


@pytest.fixture(scope="module")
def cmu_joints(body_model):
    return BodySkeleton(body_model)(torch.as_tensor(load_cmu_dev_poses())).joints


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 9), st.integers(1, 13), st.integers(1, 5), st.integers(0, 2**31 - 1))
def test_chunked_nearest_neighbour_equals_brute_force(q, r, chunk, seed):
    g = torch.Generator().manual_seed(seed)
    query, reference = torch.randn(q, 22, 3, generator=g), torch.randn(r, 22, 3, generator=g)
    dist, index = nearest_neighbour_mpjpe(query, reference, normalize=False, chunk_size=chunk)
    full = mpjpe_matrix(query, reference) * 1000.0
    torch.testing.assert_close(dist, full.min(dim=1).values)
    torch.testing.assert_close(full[torch.arange(q), index], full.min(dim=1).values)


@settings(max_examples=20, deadline=None)
@given(st.integers(2, 12), st.integers(1, 5), st.integers(0, 2**31 - 1))
def test_chunked_mean_pairwise_equals_brute_force(n, chunk, seed):
    joints = torch.randn(n, 22, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    full = mpjpe_matrix(joints, joints)
    expected = full[torch.triu_indices(n, n, 1).unbind()].mean().item() * 1000.0
    assert mean_pairwise_mpjpe(joints, normalize=False, chunk_size=chunk) == pytest.approx(expected, rel=1e-9)


def test_normalisation_removes_heading_and_position(cmu_joints):
    turned = cmu_joints @ axis_rotation_matrix(torch.tensor(1.1), "y").T + torch.tensor([0.3, 1.0, -2.0])
    torch.testing.assert_close(normalize_joints(turned), normalize_joints(cmu_joints), atol=1e-5, rtol=0)
    dist, index = nearest_neighbour_mpjpe(turned[:10], cmu_joints)
    assert torch.equal(index, torch.arange(10)) and dist.max() < 1e-2


def test_farthest_point_sampling_spreads_the_subset(cmu_joints):
    features = normalize_joints(cmu_joints).reshape(108, -1)
    k = 20
    chosen = farthest_point_sampling(features, k, seed_index=5)
    assert chosen.shape == (k,) and chosen[0] == 5 and len(set(chosen.tolist())) == k

    def min_pairwise(idx):
        d = mpjpe_matrix(features[idx].reshape(k, -1, 3), features[idx].reshape(k, -1, 3))
        return d[torch.triu_indices(k, k, 1).unbind()].min()

    g = torch.Generator().manual_seed(0)
    random_mins = torch.stack([min_pairwise(torch.randperm(108, generator=g)[:k]) for _ in range(20)])
    assert min_pairwise(chosen) > random_mins.max()
    assert mean_pairwise_mpjpe(features[chosen].reshape(k, -1, 3), normalize=False) > mean_pairwise_mpjpe(
        cmu_joints, normalize=True
    )


@settings(max_examples=20, deadline=None)
@given(st.integers(2, 30), st.sampled_from(["mpjpe", "euclidean"]), st.integers(0, 2**31 - 1))
def test_farthest_point_sampling_equals_the_greedy_definition(n, distance, seed):
    points = torch.randn(n, 4, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    full = mpjpe_matrix(points, points) if distance == "mpjpe" else torch.cdist(points.flatten(1), points.flatten(1))
    chosen = [n // 2]
    while len(chosen) < n:  # the definition: the row farthest from its nearest chosen row
        chosen.append(int(full[chosen].min(dim=0).values.argmax()))
    assert farthest_point_sampling(points.flatten(1), n, seed_index=n // 2, distance=distance).tolist() == chosen


def test_farthest_point_sampling_takes_all_points_and_checks_arguments():
    x = torch.randn(7, 6, generator=torch.Generator().manual_seed(1))
    assert sorted(farthest_point_sampling(x, 7).tolist()) == list(range(7))
    assert sorted(farthest_point_sampling(x, 7, distance="euclidean").tolist()) == list(range(7))
    with pytest.raises(ValueError, match="k"):
        farthest_point_sampling(x, 8)
    with pytest.raises(ValueError, match="divisible by 3"):
        farthest_point_sampling(torch.randn(4, 5), 2)


def test_sampler_report_numbers(body_model):
    report = sampler_report(n=300, seed=0, fps_size=60, body_model=body_model)
    assert report["diversity_fps_mpjpe_mm"] > report["diversity_random_subset_mpjpe_mm"] > 100
    assert 0 < report["realism_median_nn_mpjpe_mm"] < 300
    assert 0 <= report["rejected_joint_limits"] < 0.5 and 0 <= report["rejected_self_penetration"] < 0.5
    assert set(report["category_shares"]) >= {"sitting", "kneeling", "lying", "arms_above_head"}
    assert report["samples_per_second"] > 0 and math.isfinite(report["seconds_total"])
