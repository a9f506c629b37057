import numpy as np
import pytest
import torch

from poseembroider.body.body_model import BodyModel, as_joint_poses
from poseembroider.body.joints import BODY_JOINT_NAMES, JOINT_NAMES, left_right_permutation
from poseembroider.data import load_cmu_dev_poses
from poseembroider.geometry import flip_left_right, flip_points_left_right


def test_procedural_model_is_said_to_be_in_use(body_model):
    assert body_model.kind == "procedural"
    assert "procedural" in body_model.model_file.description


@pytest.mark.parametrize("batch", [1, 7, 64])
def test_forward_any_batch_size(body_model, batch):
    poses = torch.as_tensor(np.resize(load_cmu_dev_poses(), (batch, 22, 3)))
    out = body_model(poses)
    assert out.vertices.shape == (batch, body_model.num_vertices, 3)
    assert out.joints.shape == (batch, 127, 3)
    assert out.body_joints.shape == (batch, 22, 3)
    assert torch.isfinite(out.vertices).all()


def test_same_instance_serves_changing_batch_sizes(body_model):
    poses = torch.as_tensor(load_cmu_dev_poses()[:9])
    full = body_model(poses).vertices
    parts = torch.cat([body_model(poses[:2]).vertices, body_model(poses[2:]).vertices])
    torch.testing.assert_close(full, parts, atol=1e-5, rtol=0)


def test_flat_and_52_55_joint_layouts_agree(body_model):
    poses = torch.as_tensor(load_cmu_dev_poses()[:3])
    ref = body_model(poses).vertices
    flat = body_model(poses.reshape(3, 66)).vertices
    with_hands = body_model(torch.cat([poses, torch.zeros(3, 30, 3)], dim=1)).vertices
    full = torch.zeros(3, 55, 3)
    full[:, :22] = poses
    torch.testing.assert_close(flat, ref)
    torch.testing.assert_close(with_hands, ref)
    torch.testing.assert_close(body_model(full).vertices, ref)


def test_hand_joints_of_the_52_layout_move_the_fingers(body_model):
    poses = torch.zeros(1, 52, 3)
    rest = body_model(poses).joints[0]
    poses[0, 22:37, 2] = 0.8  # curl every left finger joint
    curled = body_model(poses).joints[0]
    moved = (curled - rest).norm(dim=-1)
    left_fingers = [i for i, n in enumerate(JOINT_NAMES) if n.startswith("left_") and n[-1] in "23"]
    right_fingers = [i for i, n in enumerate(JOINT_NAMES) if n.startswith("right_") and n[-1] in "123"]
    assert moved[left_fingers].min() > 1e-3
    assert moved[right_fingers].max() < 1e-6


def test_betas_change_the_body_and_are_zero_padded(body_model):
    poses = torch.zeros(2, 22, 3)
    base = body_model(poses).vertices
    betas = torch.tensor([[2.0], [0.0]])
    shaped = body_model(poses, betas=betas).vertices
    assert (shaped[0] - base[0]).abs().max() > 1e-3
    torch.testing.assert_close(shaped[1], base[1])


def test_transl_moves_everything(body_model):
    poses = torch.zeros(1, 22, 3)
    out = body_model(poses, transl=torch.tensor([[1.0, 2.0, 3.0]]))
    torch.testing.assert_close(
        out.vertices - body_model(poses).vertices, torch.tensor([1.0, 2.0, 3.0]).expand(1, body_model.num_vertices, 3)
    )


def test_flipped_pose_gives_the_mirrored_body(body_model):
    """Flipping a pose (swap sides, negate y/z of axis-angles) mirrors the posed skeleton through x=0."""
    poses = torch.as_tensor(load_cmu_dev_poses()[:8], dtype=torch.float32)
    perm = left_right_permutation(BODY_JOINT_NAMES)
    flipped_joints = body_model(flip_left_right(poses, perm)).body_joints
    mirrored = flip_points_left_right(body_model(poses).body_joints)[:, list(perm)]
    # the pelvis of the rest skeleton sits at x = 0 so mirroring needs no re-centring
    torch.testing.assert_close(flipped_joints, mirrored, atol=2e-3, rtol=0)


def test_gradients_flow_to_poses(body_model):
    poses = torch.as_tensor(load_cmu_dev_poses()[:2]).requires_grad_(True)
    body_model(poses).vertices.square().sum().backward()
    assert poses.grad is not None and poses.grad.abs().sum() > 0


@pytest.mark.parametrize("shape", [(4, 21, 3), (4, 22, 2), (4, 65), (22, 3)])
def test_wrong_pose_shape_is_named(body_model, shape):
    with pytest.raises(
        ValueError, match=r"poses: expected .*got shape " + str(tuple(shape)).replace("(", r"\(").replace(")", r"\)")
    ):
        body_model(torch.zeros(shape))


def test_nan_pose_is_refused_with_its_location():
    poses = torch.zeros(3, 22, 3)
    poses[1, 5, 0] = float("nan")
    with pytest.raises(ValueError, match=r"NaN.*\[\[1, 5\]\]"):
        as_joint_poses(poses)


def test_bad_betas_shape_is_named(body_model):
    with pytest.raises(ValueError, match=r"betas: expected \(2, <= 10\)"):
        body_model(torch.zeros(2, 22, 3), betas=torch.zeros(3, 10))


def test_from_directory_accepts_the_file_or_its_folder(procedural_model_file):
    a = BodyModel.from_directory(procedural_model_file)
    b = BodyModel.from_directory(procedural_model_file.parent.parent)
    assert a.num_vertices == b.num_vertices
