"""Named views of bodies in the SMPL-X frame (y up, facing +z, +x = the body's left), auto-framed."""

from __future__ import annotations

import numpy as np
import pytest

from poseembroider.rendering import MatplotlibRenderer, body_camera, render_body, view_angles

# a body-sized box (0.5 wide, 1.7 tall, 0.3 deep) standing off the origin
BODY_SCALE = np.array([0.5, 1.7, 0.3])
BODY_OFFSET = np.array([0.2, 0.9, -0.1])


def _body(box):
    return box.vertices * BODY_SCALE + BODY_OFFSET


@pytest.mark.parametrize("view", ["front", "side", "back", "top", (30.0, 15.0)])
def test_body_camera_frames_the_whole_body(face_colored_box, view):
    vertices = _body(face_colored_box)
    camera = body_camera(vertices, view, image_size=(120, 90), margin=0.05)
    assert (camera.width, camera.height) == (90, 120)
    uv = camera.project(vertices)
    assert (uv[:, 0] >= 0.05 * 90 - 0.5 - 1e-4).all() and (uv[:, 0] <= 90 - 0.5 - 0.05 * 90 + 1e-4).all()
    assert (uv[:, 1] >= 0.05 * 120 - 0.5 - 1e-4).all() and (uv[:, 1] <= 120 - 0.5 - 0.05 * 120 + 1e-4).all()
    centre = (vertices.min(axis=0) + vertices.max(axis=0)) / 2
    np.testing.assert_allclose(camera.project(centre), [camera.cx, camera.cy], atol=1e-4)


def test_front_view_fills_the_height_and_top_view_looks_down(face_colored_box):
    vertices = _body(face_colored_box)
    front = body_camera(vertices, "front", image_size=100, margin=0.1)
    uv = front.project(vertices)
    assert uv[:, 1].max() - uv[:, 1].min() > 0.75 * 100  # the 1.7 m tall body spans the height
    top = body_camera(vertices, "top", image_size=100)
    assert top.position[1] > vertices[:, 1].max()
    assert view_angles("side") == (90.0, 0.0)
    with pytest.raises(ValueError, match="view"):
        view_angles("diagonal")


def test_render_body_with_the_fallback_backend(face_colored_box):
    box = face_colored_box
    image = render_body(
        MatplotlibRenderer(64, 64), _body(box), box.faces, "side", image_size=(80, 60), color=box.colors
    )
    assert image.shape == (80, 60, 3)
    r, g, b = image[40, 30].astype(int)
    assert r > 2 * max(g, b)  # the +x (left-side) face is red


@pytest.mark.render
@pytest.mark.parametrize(("view", "channel"), [("front", 2), ("side", 0), ("back", None)])
def test_render_body_shows_the_expected_side(mesh_renderer, face_colored_box, view, channel):
    box = face_colored_box
    background = (0.2, 0.2, 0.2)
    image = render_body(mesh_renderer, _body(box), box.faces, view, color=box.colors, background=background)
    assert image.shape == (96, 96, 3)
    np.testing.assert_array_equal(image[0, 0], [51, 51, 51])
    pixel = image[48, 48].astype(int)
    if channel is None:  # back face: yellow
        assert min(pixel[0], pixel[1]) > 2 * pixel[2]
    else:
        assert pixel[channel] > 2 * np.delete(pixel, channel).max()
