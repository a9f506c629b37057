import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from poseembroider.body.joints import JOINT_INDEX
from poseembroider.data import load_cmu_dev_poses
from poseembroider.datasets.synthetic.joint_limits import within_limits
from poseembroider.datasets.synthetic.key_poses import KEY_POSES, aim, bend, make_pose
from poseembroider.datasets.synthetic.metrics import detect_categories
from poseembroider.datasets.synthetic.pose_sampler import ORIENTATION_MODES, PoseSampler, SamplerConfig
from poseembroider.datasets.synthetic.self_penetration import (
    capsule_pairs,
    penetration_depths,
    segment_distances,
    self_penetrating,
)
from poseembroider.datasets.synthetic.skeleton import BodySkeleton


@pytest.fixture(scope="module")
def samples(body_model):
    return PoseSampler(seed=3, body_model=body_model).sample(400)


@pytest.fixture(scope="module")
def skeleton(body_model):
    return BodySkeleton(body_model)


def test_sample_shapes_and_provenance(samples):
    n = 400
    assert samples.poses.shape == (n, 22, 3) and samples.poses.dtype == torch.float32
    assert samples.betas.shape == (n, 10) and samples.betas.abs().max() <= 2.5
    assert samples.joints.shape == (n, 22, 3)
    assert samples.key_a.shape == samples.key_b.shape == samples.blend_weight.shape == (n,)
    assert ((samples.blend_weight >= 0) & (samples.blend_weight <= 1)).all()
    assert samples.key_names == tuple(KEY_POSES)
    assert set(samples.orientation_mode.tolist()) <= set(range(len(ORIENTATION_MODES)))
    assert len(samples.key_a_names) == n and samples.attempts["drawn"] >= n


def test_skeleton_joints_in_batches_equal_one_forward(samples, skeleton):
    poses, betas = samples.poses[:50], samples.betas[:50]
    torch.testing.assert_close(skeleton.joints(poses, betas, batch_size=7), skeleton(poses, betas).joints)
    torch.testing.assert_close(skeleton.joints(poses, batch_size=16), skeleton(poses).joints)


def test_no_sampled_joint_is_outside_its_limits(samples):
    assert within_limits(samples.poses).all()


def test_samples_do_not_penetrate_themselves(samples, skeleton):
    points = skeleton(samples.poses, samples.betas).points
    assert not self_penetrating(points, skeleton).any()
    torch.testing.assert_close(points[:, :22], samples.joints)


def test_sitting_kneeling_lying_and_arms_up_are_present(samples):
    flags = detect_categories(samples.joints)
    for category in ("sitting", "kneeling", "lying", "arms_above_head", "upside_down"):
        assert flags[category].sum() >= 3, category
    # headings are spread over the circle
    assert samples.heading.min() < -2.5 and samples.heading.max() > 2.5


def test_deterministic_for_a_seed_and_different_across_seeds(body_model):
    a = PoseSampler(seed=11, body_model=body_model).sample(64)
    b = PoseSampler(seed=11, body_model=body_model).sample(64)
    c = PoseSampler(seed=12, body_model=body_model).sample(64)
    torch.testing.assert_close(a.poses, b.poses, rtol=0, atol=0)
    torch.testing.assert_close(a.betas, b.betas, rtol=0, atol=0)
    assert (a.poses - c.poses).abs().amax(dim=(1, 2)).min() > 1e-3


def test_consecutive_calls_continue_the_stream(body_model):
    sampler = PoseSampler(seed=5, body_model=body_model)
    first, second = sampler.sample(16), sampler.sample(16)
    assert not torch.equal(first.poses, second.poses)
    assert len(sampler.sample(0)) == 0


def test_rejection_is_counted_and_active(body_model):
    strong = PoseSampler(seed=0, body_model=body_model, config=SamplerConfig(perturbation_scale=2.5)).sample(100)
    assert strong.attempts["rejected_joint_limits"] > 0
    assert (
        strong.attempts["drawn"]
        == 100 + strong.attempts["rejected_joint_limits"] + strong.attempts["rejected_self_penetration"]
    )
    assert within_limits(strong.poses).all()


def test_orientation_modes_are_applied(body_model):
    config = SamplerConfig(mode_probs=(0.0, 0.0, 0.0, 1.0), key_poses=("standing", "walking_left_step", "a_pose"))
    out = PoseSampler(seed=0, body_model=body_model, config=config).sample(50)
    assert (out.orientation_mode == ORIENTATION_MODES.index("upside_down")).all()
    assert detect_categories(out.joints)["upside_down"].float().mean() > 0.9
    config = SamplerConfig(mode_probs=(0.0, 0.0, 1.0, 0.0), key_poses=("standing", "a_pose"))
    out = PoseSampler(seed=0, body_model=body_model, config=config).sample(50)
    assert detect_categories(out.joints)["lying"].float().mean() > 0.9


def test_cmu_poses_can_join_the_library(body_model):
    sampler = PoseSampler(seed=0, body_model=body_model, config=SamplerConfig(use_cmu_key_poses=True))
    assert len(sampler.key_names) == len(KEY_POSES) + 108
    assert within_limits(sampler.sample(32).poses).all()


def test_bad_configuration_is_refused(body_model):
    with pytest.raises(ValueError, match="unknown names"):
        PoseSampler(seed=0, body_model=body_model, config=SamplerConfig(key_poses=("moonwalk",)))
    with pytest.raises(ValueError, match="mode_probs"):
        PoseSampler(seed=0, body_model=body_model, config=SamplerConfig(mode_probs=(1.0, 0.0)))


# ----------------------------------------------------------------------------------------------------
# self-penetration test


def test_penetration_flags_a_hand_pushed_inside_the_torso(skeleton):
    standing = make_pose(
        None,
        {"left_shoulder": aim("left_shoulder", (0.15, -1, 0)), "right_shoulder": aim("right_shoulder", (-0.15, -1, 0))},
    )
    # left forearm swung across the belly with the hand deep inside it
    inside = make_pose(
        None,
        {
            "left_shoulder": aim("left_shoulder", (0.25, -0.9, 0.1), twist=90.0),
            "left_elbow": bend("left_elbow", 110.0),
            "right_shoulder": aim("right_shoulder", (-0.15, -1, 0)),
        },
    )
    poses = torch.as_tensor(np.stack([standing, inside]))
    points = skeleton(poses).points
    wrist = points[1, skeleton.point_names.index("left_wrist")]
    assert abs(wrist[0]) < 0.08 and abs(wrist[2]) < 0.08  # the wrist is at the spine: deep inside the belly
    assert self_penetrating(points, skeleton).tolist() == [False, True]


def test_penetration_flags_legs_through_each_other(skeleton):
    # left thigh swung across the right one at the same height
    crossed = make_pose(None, {"left_hip": bend("left_hip", 0.0, 40.0), "right_hip": bend("right_hip", 0.0, 40.0)})
    assert self_penetrating(skeleton(torch.as_tensor(crossed)[None]).points, skeleton).item()


def test_real_cmu_poses_do_not_penetrate(skeleton):
    poses = torch.as_tensor(load_cmu_dev_poses())
    assert not self_penetrating(skeleton(poses).points, skeleton).any()
    assert penetration_depths(skeleton(poses).points, skeleton).shape == (108, len(capsule_pairs()))


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_segment_distance_matches_dense_sampling(seed):
    g = torch.Generator().manual_seed(seed)
    p1, q1, p2, q2 = (torch.randn(8, 3, generator=g, dtype=torch.float64) for _ in range(4))
    q2[0] = p2[0]  # a degenerate (point) segment
    q1[1] = p1[1] + 2 * (q2[1] - p2[1])  # parallel segments
    exact = segment_distances(p1, q1, p2, q2)
    t = torch.linspace(0, 1, 401, dtype=torch.float64)
    a = p1[:, None] + t[None, :, None] * (q1 - p1)[:, None]
    b = p2[:, None] + t[None, :, None] * (q2 - p2)[:, None]
    dense = (a[:, :, None] - b[:, None]).norm(dim=-1).flatten(1).min(dim=1).values
    assert (exact <= dense + 1e-9).all()
    assert (dense - exact).max() < 0.02


def test_skeleton_matches_the_body_model(body_model, skeleton):
    poses = torch.as_tensor(load_cmu_dev_poses()[:16])
    betas = torch.randn(16, 10, generator=torch.Generator().manual_seed(0))
    expected = body_model(poses, betas=betas).body_joints
    torch.testing.assert_close(skeleton(poses, betas).joints, expected, atol=1e-5, rtol=0)
    assert JOINT_INDEX["right_wrist"] == 21
