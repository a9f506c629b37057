import math

import pytest
import torch

from poseembroider.datasets.synthetic.joint_limits import within_limits
from poseembroider.datasets.synthetic.sequences import sample_sequences
from poseembroider.datasets.synthetic.skeleton import BodySkeleton

S, T, FPS = 12, 24, 30.0


@pytest.fixture(scope="module")
def batch(body_model):
    return sample_sequences(S, T, FPS, seed=7, body_model=body_model)


def test_layout(batch):
    assert batch.poses.shape == (S, T, 22, 3) and batch.poses.dtype == torch.float32
    assert batch.joints.shape == (S, T, 22, 3)
    assert batch.betas.shape == (S, 10)
    assert torch.equal(batch.frame_index, torch.arange(T)[None].expand(S, T))
    assert torch.equal(batch.sequence_id, torch.arange(S))
    assert batch.fps == FPS and batch.num_sequences == S and batch.num_frames == T
    assert batch.time[0, -1].item() == pytest.approx((T - 1) / FPS)
    assert len(batch.key_names) == S
    counts = (batch.keyframe_frames >= 0).sum(dim=1)
    assert ((counts >= 2) & (counts <= 4)).all()
    assert (batch.keyframe_frames[:, 0] == 0).all()


def test_every_frame_is_within_the_limits(batch):
    assert within_limits(batch.poses.reshape(-1, 22, 3)).all()


def test_sequences_are_smooth(batch):
    step = (batch.joints[:, 1:] - batch.joints[:, :-1]).norm(dim=-1)
    # joints move at most 2 m/s relative to the pelvis, plus the heading turn (<= 30°/s at <= 1.1 m radius)
    bound = (2.0 + math.radians(30.0) * 1.1) / FPS
    assert step.max() <= bound * 1.05
    # and they do move: sequences are not frozen
    assert step.sum(dim=(1, 2)).min() > 0
    # no jumps: the largest step is not much larger than its neighbours (eased motion)
    per_frame = step.amax(dim=-1)
    assert (per_frame[:, 1:] - per_frame[:, :-1]).abs().max() < bound


def test_body_shape_is_constant_per_subject(batch, body_model):
    for subject in batch.subject_id.unique():
        rows = batch.betas[batch.subject_id == subject]
        assert torch.equal(rows, rows[:1].expand_as(rows))
    skeleton = BodySkeleton(body_model)
    flat = skeleton(batch.poses[0], batch.betas[:1].expand(T, -1)).joints
    torch.testing.assert_close(flat, batch.joints[0], atol=1e-5, rtol=0)


def test_pairs_half_a_second_apart_exist_and_differ(batch):
    gap = int(0.4 * FPS)
    diff = (batch.joints[:, gap:] - batch.joints[:, :-gap]).norm(dim=-1).mean(dim=-1)
    assert (diff > 0).all()


def test_deterministic(body_model):
    a = sample_sequences(3, 10, 20.0, seed=1, body_model=body_model)
    b = sample_sequences(3, 10, 20.0, seed=1, body_model=body_model)
    c = sample_sequences(3, 10, 20.0, seed=2, body_model=body_model)
    assert torch.equal(a.poses, b.poses) and torch.equal(a.subject_id, b.subject_id)
    assert not torch.equal(a.poses, c.poses)


def test_bad_arguments(body_model):
    with pytest.raises(ValueError, match="frames_per_sequence"):
        sample_sequences(2, 1, body_model=body_model)
    with pytest.raises(ValueError, match="keyframes"):
        sample_sequences(2, 10, keyframes=(1, 5), body_model=body_model)
