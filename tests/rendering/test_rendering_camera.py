"""Camera geometry: constructors, orbit conventions, projection and framing (no OpenGL needed)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from poseembroider.rendering import Camera, frame_points


def test_from_fov_focal_and_centred_principal_point():
    camera = Camera.from_fov(160, 120, yfov_deg=60.0)
    assert camera.fy == pytest.approx(60.0 / math.tan(math.radians(30.0)))
    assert camera.fx == camera.fy
    assert (camera.cx, camera.cy) == (79.5, 59.5)
    # a point on the top edge of the field of view projects to the top border of the image
    top = camera.project([0.0, math.tan(math.radians(30.0)), -1.0])
    assert top == pytest.approx([79.5, -0.5])


@pytest.mark.parametrize(
    ("azimuth", "elevation", "eye_direction"),
    [
        (0, 0, (0, 0, 1)),
        (90, 0, (1, 0, 0)),
        (180, 0, (0, 0, -1)),
        (-90, 0, (-1, 0, 0)),
        (0, 90, (0, 1, 0)),
        (0, -90, (0, -1, 0)),
        (0, 30, (0, 0.5, math.sqrt(3) / 2)),
    ],
)
def test_orbit_places_the_camera_and_looks_at_the_target(azimuth, elevation, eye_direction):
    target = np.array([0.3, 1.0, -0.2])
    camera = Camera.orbit(target, 2.5, elevation, azimuth, width=64, height=48)
    np.testing.assert_allclose(camera.position, target + 2.5 * np.array(eye_direction), atol=1e-9)
    np.testing.assert_allclose(camera.project(target), [camera.cx, camera.cy], atol=1e-9)
    assert camera.depth(target) == pytest.approx(2.5)
    rotation = camera.pose[:3, :3]
    np.testing.assert_allclose(rotation.T @ rotation, np.eye(3), atol=1e-12)
    assert np.linalg.det(rotation) == pytest.approx(1.0)


def test_orbit_image_axes_follow_the_body_frame():
    """Front view: world +x (the body's left) on the image right, +y up; positive elevation looks down."""
    camera = Camera.orbit((0, 0, 0), 3.0, width=64, height=64)
    right, up = camera.project([[0.1, 0, 0], [0, 0.1, 0]])
    assert right[0] > camera.cx and right[1] == pytest.approx(camera.cy)
    assert up[1] < camera.cy and up[0] == pytest.approx(camera.cx)
    above = Camera.orbit((0, 0, 0), 3.0, elevation_deg=40, width=64, height=64)
    assert above.position[1] > 0
    # seen from above, a point in front of the target (+z) lands below the image centre
    assert above.project([0, 0, 0.5])[1] > above.cy


def test_look_at_matches_orbit_and_rejects_degenerate_up():
    orbit = Camera.orbit((0, 1, 0), 2.0, elevation_deg=20, azimuth_deg=35, width=32, height=32)
    look = Camera.look_at(orbit.position, (0, 1, 0), width=32, height=32)
    np.testing.assert_allclose(look.pose, orbit.pose, atol=1e-9)
    with pytest.raises(ValueError, match="parallel"):
        Camera.look_at((0, 3, 0), (0, 0, 0), up=(0, 1, 0), width=32, height=32)


def test_project_batches_and_marks_points_behind_the_camera():
    camera = Camera.orbit((0, 0, 0), 3.0, width=40, height=30)
    points = np.random.default_rng(0).normal(size=(2, 5, 3)) * 0.3
    uv = camera.project(points)
    assert uv.shape == (2, 5, 2)
    np.testing.assert_allclose(uv.reshape(-1, 2), camera.project(points.reshape(-1, 3)))
    behind = camera.project([0, 0, 4.0])
    assert np.isnan(behind).all()
    assert not camera.in_image([[0, 0, 4.0]])[0] and camera.in_image([[0, 0, 0]])[0]


def test_project_uses_the_intrinsics():
    camera = Camera(width=100, height=80, fx=90.0, fy=120.0, cx=30.25, cy=50.75)  # looks down -z
    np.testing.assert_allclose(camera.project([0.2, -0.1, -2.0]), [30.25 + 9.0, 50.75 + 6.0])
    np.testing.assert_allclose(camera.intrinsics_matrix @ [0.2, 0.1, 2.0] / 2.0, [39.25, 56.75, 1.0])


@pytest.mark.parametrize(
    ("azimuth", "elevation", "size"), [(0, 0, (96, 64)), (120, 25, (64, 96)), (0, 90, (50, 50))]
)
def test_frame_points_fits_tightly_inside_the_margin(azimuth, elevation, size):
    width, height = size
    points = np.random.default_rng(1).uniform(-1, 1, size=(200, 3)) * [0.3, 0.9, 0.2] + [1.0, 0.5, -2.0]
    margin = 0.1
    camera = frame_points(points, width, height, margin, azimuth_deg=azimuth, elevation_deg=elevation)
    uv = camera.project(points)
    low = np.array([margin * width - 0.5, margin * height - 0.5])
    high = np.array([width - 0.5 - margin * width, height - 0.5 - margin * height])
    assert (uv >= low - 1e-6).all() and (uv <= high + 1e-6).all()
    # tight: some point touches the margin on at least one side
    slack = np.minimum(uv - low, high - uv).min()
    assert slack == pytest.approx(0.0, abs=1e-6)
    assert (camera.depth(points) > camera.znear).all()


def test_camera_validates_its_fields():
    with pytest.raises(ValueError, match="pose"):
        Camera(width=10, height=10, fx=1, fy=1, cx=5, cy=5, pose=np.eye(3))
    with pytest.raises(ValueError, match="width"):
        Camera(width=0, height=10, fx=1, fy=1, cx=5, cy=5)
    with pytest.raises(ValueError, match="margin"):
        frame_points(np.zeros((3, 3)), 10, 10, margin=0.6)
