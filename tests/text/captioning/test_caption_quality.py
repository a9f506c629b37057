"""Captions of many sampled and extreme poses: no crash, never empty, deterministic, English."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import english_problems
from poseembroider.text.captioning.captions import CANONICAL, caption_poses, caption_variants
from poseembroider.text.captioning.skeleton import skeleton_model


@pytest.fixture(scope="module")
def skeleton(body_model):
    return skeleton_model(body_model)


def _check_all(captions: list[list[str]]) -> None:
    problems = {}
    for per_pose in captions:
        for text in per_pose:
            for problem in english_problems(text):
                problems.setdefault(problem.split(":")[0], text)
    assert not problems, problems


def _sample_check(poses, skeleton, seed):
    captions = caption_variants(poses, skeleton, seed=seed)
    assert len(captions) == len(poses) and all(len(c) == 3 for c in captions)
    _check_all(captions)
    return captions


def test_sampled_poses_read_as_english(skeleton, poses_sampler):
    poses = poses_sampler(500, seed=0)
    captions = _sample_check(poses, skeleton, seed=0)
    assert captions == caption_variants(poses, skeleton, seed=0)
    words = [len(t.split()) for c in captions for t in c]
    assert min(words) >= 5
    text = " ".join(t for c in captions for t in c)
    assert "L-shape" in text  # capitalising sentences keeps the capital inside them
    _check_all([caption_poses(poses[:200], skeleton, options=CANONICAL)])


@pytest.mark.slow
def test_ten_thousand_sampled_poses(skeleton, poses_sampler):
    poses = poses_sampler(10_000, seed=1)
    captions = _sample_check(poses, skeleton, seed=1)
    assert len({t for c in captions for t in c}) > 0.99 * 3 * len(poses)  # varied texts
    # same poses, same seed: same texts (the draws cover the whole batch, so compare whole batches)
    assert caption_variants(poses[:1000], skeleton, seed=1) == caption_variants(poses[:1000], skeleton, seed=1)


_angle = st.floats(-3.0, 3.0, allow_nan=False, width=32)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    values=st.lists(st.tuples(_angle, _angle, _angle), min_size=22 * 4, max_size=22 * 4),
    scale=st.sampled_from([0.0, 0.5, 1.0, 3.0]),
    seed=st.integers(0, 2**31),
    fingers=st.booleans(),
)
def test_extreme_poses_never_crash(skeleton, values, scale, seed, fingers):
    poses = torch.tensor(values, dtype=torch.float32).reshape(4, 22, 3) * scale
    if fingers:
        poses = torch.cat([poses, poses[:, 1:16].repeat(1, 2, 1)], dim=1)  # (4, 52, 3)
    captions = caption_variants(poses, skeleton, seed=seed)
    _check_all(captions)
    assert captions == caption_variants(poses, skeleton, seed=seed)


def test_degenerate_inputs(skeleton):
    assert caption_poses(torch.zeros(0, 22, 3), skeleton) == []
    assert len(caption_poses(torch.zeros(3, 66), skeleton)) == 3  # flat input
    with pytest.raises(ValueError, match="NaN"):
        caption_poses(torch.full((1, 22, 3), float("nan")), skeleton)
