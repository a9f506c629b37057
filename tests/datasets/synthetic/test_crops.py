"""Crop rules of the original pipeline (bbox, sf 1.1, 4:3 padding), crop-window cameras, criteria, cam_rot."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from poseembroider.datasets.synthetic.crops import (
    CROP_HW,
    OPENGL_TO_OPENCV,
    CropWindow,
    SelectionCriteria,
    apply_camera_rotation,
    bbox_overlap,
    camera_rotation,
    crop_and_resize,
    crop_window,
    joints_in_frame,
    padding_to_aspect,
    scale_bbox,
    tight_bbox,
)
from poseembroider.geometry.rotations import axis_angle_to_matrix
from poseembroider.rendering.camera import Camera, look_at_pose


def test_tight_bbox_keeps_only_in_frame_points():
    points = np.array([[10.0, 20.0], [50.0, 80.0], [2000.0, 30.0], [-40.0, -5.0], [np.nan, np.nan]])
    np.testing.assert_allclose(tight_bbox(points, (720, 1280)), [10.0, 20.0, 50.0, 80.0])
    assert tight_bbox(np.array([[-5.0, 3.0]]), (720, 1280)) is None


def test_scale_bbox_is_the_original_get_scaled_bbox():
    # offset = 0.1 * hypot(200, 400) / 2 = 22.36: each side moves out, int() truncates
    np.testing.assert_array_equal(scale_bbox([100, 200, 300, 600], 1.1, (720, 1280)), [77, 177, 322, 622])
    # clipped to [0, W] x [0, H]
    np.testing.assert_array_equal(scale_bbox([5, 10, 1275, 715], 1.1, (720, 1280)), [0, 0, 1280, 720])
    np.testing.assert_array_equal(scale_bbox([100, 200, 300, 600], 1.0, (720, 1280)), [100, 200, 300, 600])


@pytest.mark.parametrize("size", [(100, 300), (300, 100), (192, 256), (193, 256), (1280, 720), (31, 17), (250, 251)])
def test_padding_makes_the_crop_4_by_3(size):
    width, height = size
    left, top, right, bottom = padding_to_aspect(width, height)
    assert left == right and top == bottom  # symmetric
    assert (left == 0) or (top == 0)
    padded_w, padded_h = width + left + right, height + top + bottom
    # 4:3 (H:W) up to the pixel the original's int() drops on each side
    assert abs(padded_h * 3 - padded_w * 4) <= 4 * 2 + 3 * 2
    if width / height > 0.75:
        assert top > 0 or abs(width * 4 - height * 3) < 8
    else:
        assert left > 0 or abs(width * 4 - height * 3) < 8


def test_crop_and_resize_pads_with_zeros_and_resizes_to_256x192():
    frame = np.full((720, 1280, 3), 200, np.uint8)
    crop = crop_and_resize(frame, [100, 100, 200, 500])  # 100 x 400: taller than 3:4, pad left/right
    assert crop.shape == (*CROP_HW, 3) and crop.dtype == np.uint8
    assert crop[:, :40].max() == 0 and crop[:, -40:].max() == 0  # zero padding on the sides
    assert (crop[:, 80:112] == 200).all()
    wide = crop_and_resize(frame, [0, 0, 400, 100])
    assert wide[:60].max() == 0 and wide[-60:].max() == 0 and (wide[120:136] == 200).all()
    with pytest.raises(ValueError, match="selects no pixel"):
        crop_and_resize(frame, [1300, 0, 1400, 10])


def _frame_camera(width=1280, height=720) -> Camera:
    return Camera(
        width=width,
        height=height,
        fx=1100.0,
        fy=1100.0,
        cx=(width - 1) / 2,
        cy=(height - 1) / 2,
        pose=look_at_pose((1.0, 1.2, 4.0), (0.2, 0.9, 0.0)),
    )


@pytest.mark.parametrize(
    "tight", [[500.0, 100.0, 700.0, 650.0], [100.0, 300.0, 900.0, 500.0], [-50.0, 10.0, 80.0, 700.0]]
)
def test_window_camera_projects_like_the_crop_of_the_frame(tight):
    frame_camera = _frame_camera()
    window = crop_window(tight, (720, 1280), 1.1)
    points = np.random.default_rng(0).uniform([-1, 0, -1], [1, 2, 1], (200, 3))
    expected = window.frame_to_crop(frame_camera.project(points))
    for supersample in (1, 2, 3):
        camera = window.camera(frame_camera, supersample)
        assert (camera.height, camera.width) == (CROP_HW[0] * supersample, CROP_HW[1] * supersample)
        got = (camera.project(points) + 0.5) / supersample - 0.5  # back to output pixels
        np.testing.assert_allclose(got, expected, atol=1e-6)
    np.testing.assert_allclose(window.crop_to_frame(expected), frame_camera.project(points), atol=1e-6)
    # the crop box's corners land on the content edges of the output
    x1, y1, x2, y2 = window.bbox
    left, top, right, bottom = window.padding
    corners = window.frame_to_crop(np.array([[x1 - 0.5, y1 - 0.5], [x2 - 0.5, y2 - 0.5]])) + 0.5
    sx, sy = window.scale
    np.testing.assert_allclose(corners[0], [left * sx, top * sy], atol=1e-9)
    np.testing.assert_allclose(corners[1], [CROP_HW[1] - right * sx, CROP_HW[0] - bottom * sy], atol=1e-9)


def test_content_weights_cover_the_crop_box_only():
    window = CropWindow(bbox=(100, 100, 200, 500), padding=(100, 0, 100, 0), frame_hw=(720, 1280))
    weights = window.content_weights()
    assert weights.shape == CROP_HW
    sx, sy = window.scale
    assert weights.sum() == pytest.approx(100 * sx * 400 * sy, rel=1e-6)
    assert weights[:, 0].max() == 0 and weights[:, 96].min() == 1


def test_window_camera_needs_the_matching_frame():
    window = crop_window([10, 10, 100, 200], (720, 1280))
    with pytest.raises(ValueError, match="frame camera"):
        window.camera(_frame_camera(640, 360))


def test_joint_visibility_rule_and_overlap():
    joints = np.array([[0.0, 5.0], [-0.6, 5.0], [1279.0, 719.0], [1279.6, 10.0], [np.nan, 0.0]])
    np.testing.assert_array_equal(joints_in_frame(joints, (720, 1280)), [True, False, True, False, False])
    assert bbox_overlap([0, 0, 10, 10], [5, 0, 20, 10]) == pytest.approx(0.5)
    assert bbox_overlap([0, 0, 10, 10], [20, 20, 30, 30]) == 0.0
    assert bbox_overlap([0, 0, 10, 10], [-5, -5, 50, 50]) == pytest.approx(1.0)


def test_selection_criteria_name_and_verdicts():
    criteria = SelectionCriteria()
    assert criteria.name == "overlap30_res224_j16_sf11"
    assert criteria.as_dict() == {
        "overlap_threshold": 0.3,
        "min_number_of_visible_joints": 16,
        "resolution_threshold": 224,
        "scale_factor": 1.1,
    }
    assert criteria.evaluate(0.1, 300, 22)["selected"]
    values = criteria.evaluate(0.31, 224, 15)
    assert not (values["passes_overlap"] or values["passes_resolution"] or values["passes_visible_joints"])
    assert SelectionCriteria(scale_factor=1.25).name.endswith("sf125")


def test_cam_rot_turns_the_normalised_orientation_into_the_camera_view():
    rng = np.random.default_rng(3)
    for _ in range(20):
        orient = rng.normal(0, 1.5, 3)
        pose = look_at_pose(rng.uniform(-5, 5, 3) + np.array([0, 1, 0]), rng.uniform(-1, 1, 3))
        cam_rot, normalized = camera_rotation(orient, pose)
        r_world = axis_angle_to_matrix(torch.as_tensor(orient)).numpy()
        r_cam = OPENGL_TO_OPENCV @ pose[:3, :3].T @ r_world  # root orientation in the OpenCV camera frame
        applied = axis_angle_to_matrix(torch.as_tensor(apply_camera_rotation(cam_rot, normalized))).numpy()
        np.testing.assert_allclose(applied, r_cam, atol=1e-9)
        # the normalised orientation only lost its heading: same "up" component
        r_norm = axis_angle_to_matrix(torch.as_tensor(normalized)).numpy()
        np.testing.assert_allclose(r_norm[1], r_world[1], atol=1e-9)
        hip = r_norm[:, 0]
        assert abs(hip[2]) < 1e-9 and hip[0] > 0  # hips face front: the hip line along +x
    assert math.isfinite(float(np.linalg.norm(cam_rot)))
