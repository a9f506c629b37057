import pytest
import torch

from poseembroider.body.skeleton import Skeleton
from poseembroider.data import load_cmu_dev_poses
from poseembroider.geometry import axis_angle_to_matrix


def test_joints_equal_the_full_body_model(body_model):
    poses = torch.as_tensor(load_cmu_dev_poses()[:16])
    betas = torch.randn(16, 10, generator=torch.Generator().manual_seed(0))
    skeleton = Skeleton(body_model)
    reference = body_model(poses, betas=betas).skeleton_joints
    torch.testing.assert_close(skeleton(poses, betas).joints, reference, atol=1e-5, rtol=0)
    torch.testing.assert_close(skeleton(poses).joints, body_model(poses).skeleton_joints, atol=1e-5, rtol=0)


def test_finger_joints_of_52_joint_poses(body_model):
    poses = torch.zeros(3, 52, 3)
    poses[:, 22:, 2] = torch.linspace(0.1, 0.9, 30)
    torch.testing.assert_close(Skeleton(body_model)(poses).joints, body_model(poses).skeleton_joints, atol=1e-5, rtol=0)


def test_global_rotations_compose_along_the_chain(body_model):
    poses = torch.as_tensor(load_cmu_dev_poses()[:4])
    out = Skeleton(body_model)(poses)
    local = axis_angle_to_matrix(poses)
    knee = 4  # left_knee: pelvis (0) -> left_hip (1) -> left_knee (4)
    expected = local[:, 0] @ local[:, 1] @ local[:, knee]
    torch.testing.assert_close(out.rotations[:, knee], expected, atol=1e-5, rtol=0)


def test_pose_rotations_match_forward_and_carry_gradients(body_model):
    skeleton = Skeleton(body_model)
    poses = 0.4 * torch.randn(5, 22, 3, generator=torch.Generator().manual_seed(3))
    rotations = axis_angle_to_matrix(poses).requires_grad_(True)
    joints = skeleton.pose_rotations(rotations)
    assert joints.shape == (5, 22, 3)
    assert torch.allclose(joints, skeleton(poses).body_joints, atol=1e-5)
    joints.square().sum().backward()
    assert rotations.grad is not None and rotations.grad.abs().sum() > 0
    with pytest.raises(ValueError, match=r"\(N, J <= 55, 3, 3\)"):
        skeleton.pose_rotations(torch.eye(3).expand(2, 22, 3, 3)[..., :2])


def test_pose_rotations_by_levels_equal_the_chain_of_rigid_transforms(body_model):
    """The level-by-level kinematics gives smplx's joint-by-joint chain: same joints, same gradients, any shape."""
    from smplx.lbs import batch_rigid_transform

    skeleton = Skeleton(body_model)
    generator = torch.Generator().manual_seed(5)
    poses = 0.5 * torch.randn(6, 22, 3, generator=generator)
    betas = torch.randn(6, skeleton.num_betas, generator=generator)
    weights = torch.randn(6, 22, 3, generator=generator)
    grads, outputs = [], []
    for by_levels in (True, False):
        rotations = axis_angle_to_matrix(poses).requires_grad_(True)
        if by_levels:
            joints = skeleton.pose_rotations(rotations, betas)
        else:
            rest = skeleton.rest(betas, 6)[:, :22]
            joints, _ = batch_rigid_transform(rotations, rest, skeleton.parents[:22], dtype=rotations.dtype)
        (joints * weights).sum().backward()
        outputs.append(joints.detach())
        grads.append(rotations.grad)
    torch.testing.assert_close(outputs[0], outputs[1], atol=1e-6, rtol=0)
    torch.testing.assert_close(grads[0], grads[1], atol=1e-5, rtol=1e-5)
