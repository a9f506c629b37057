import math

import torch

from poseembroider.data import load_cmu_dev_poses
from poseembroider.geometry import axis_angle_to_matrix, axis_rotation_matrix, matrix_to_axis_angle
from poseembroider.text.captioning.coordinates import (
    CAPTION_JOINT_INDEX as J,
)
from poseembroider.text.captioning.coordinates import (
    CAPTION_JOINT_NAMES,
    SYNTHETIC_MIDDLE2_OFFSET,
    caption_coordinates,
)


def test_frame_is_body_centric_y_up_left_positive_x(body_model):
    coords = caption_coordinates(torch.zeros(1, 22, 3), body_model)[0]
    assert coords.shape == (len(CAPTION_JOINT_NAMES), 3) == (63, 3)
    assert coords[J["left_hip"], 0] > 0 > coords[J["right_hip"], 0]
    assert coords[J["head"], 1] > coords[J["pelvis"], 1] > coords[J["left_ankle"], 1]
    assert coords[J["left_foot"], 2] > coords[J["left_ankle"], 2]  # toes point where the body faces (+z)


def test_heading_is_removed_but_tilt_kept(body_model):
    poses = torch.as_tensor(load_cmu_dev_poses()[:6])
    turned = poses.clone()
    yaw = axis_rotation_matrix(torch.tensor(1.1), "y")
    turned[:, 0] = matrix_to_axis_angle(yaw @ axis_angle_to_matrix(poses[:, 0]))
    torch.testing.assert_close(
        caption_coordinates(turned, body_model), caption_coordinates(poses, body_model), atol=1e-4, rtol=0
    )
    lying = torch.zeros(1, 22, 3)
    lying[0, 0, 0] = -math.pi / 2  # on the back: head along +z... tilt must survive normalisation
    coords = caption_coordinates(lying, body_model)[0]
    assert abs(coords[J["head"], 1] - coords[J["pelvis"], 1]) < 0.1


def test_finger_less_poses_get_a_middle2_beyond_the_wrist(body_model):
    coords = caption_coordinates(torch.zeros(2, 22, 3), body_model)
    for side, sign in (("left", 1), ("right", -1)):
        offset = coords[:, J[f"{side}_middle2"]] - coords[:, J[f"{side}_wrist"]]
        torch.testing.assert_close(offset.norm(dim=-1), torch.full((2,), SYNTHETIC_MIDDLE2_OFFSET))
        assert (sign * offset[:, 0] > 0.13).all()  # T-pose: along the arm


def test_virtual_joints_are_midpoints(body_model):
    coords = caption_coordinates(torch.as_tensor(load_cmu_dev_poses()[:3]), body_model)
    torch.testing.assert_close(coords[:, J["left_shin"]], (coords[:, J["left_knee"]] + coords[:, J["left_ankle"]]) / 2)
    torch.testing.assert_close(coords[:, J["torso"]], coords[:, [J["pelvis"], J["neck"], J["spine3"]]].mean(dim=1))
