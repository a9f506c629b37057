"""Fallback backend without OpenGL: same surface, same camera model as the pyrender backend."""

from __future__ import annotations

import numpy as np
import pytest

from poseembroider.rendering import Camera, MatplotlibRenderer, MeshSpec


@pytest.fixture(scope="module")
def renderer() -> MatplotlibRenderer:
    return MatplotlibRenderer(80, 60)


def test_renders_a_non_empty_image_of_the_camera_size(renderer, sphere, blob_centroid):
    camera = Camera.orbit((0, 0, 0), 6.0, width=80, height=60)
    centre = np.array([0.5, -0.3, 0.2])
    image = renderer.render(sphere.vertices * 0.5 + centre, sphere.faces, camera, color=(0.9, 0.1, 0.1))
    assert image.shape == (60, 80, 3) and image.dtype == np.uint8
    assert (image[0, 0] == 255).all()  # white background by default
    covered = (image != 255).any(axis=-1)
    assert 0.05 < covered.mean() < 0.6
    red, green, blue = image[covered].astype(int).mean(axis=0)
    assert red > 2 * green and red > 2 * blue
    # the blob sits where the shared camera model projects the sphere centre
    np.testing.assert_allclose(blob_centroid(covered.astype(float)), camera.project(centre), atol=1.0)


def test_orbit_sees_the_same_box_face_as_opengl(renderer, face_colored_box):
    box = face_colored_box
    camera = Camera.orbit((0, 0, 0), 5.0, azimuth_deg=90, width=80, height=60)
    image = renderer.render(box.vertices, box.faces, camera, color=box.colors, unlit=True)
    np.testing.assert_array_equal(image[30, 40], [255, 0, 0])  # the +x face


def test_rgba_background_and_face_subsampling(sphere):
    camera = Camera.orbit((0, 0, 0), 6.0, width=64, height=64)
    few = MatplotlibRenderer(64, 64, max_faces=100)
    rgba = few.render_rgba(sphere.vertices, sphere.faces, camera)
    assert rgba.shape == (64, 64, 4) and rgba[0, 0, 3] == 0 and rgba[32, 32, 3] == 255
    on_blue = few.render(sphere.vertices, sphere.faces, camera, background=(0.0, 0.0, 1.0))
    np.testing.assert_array_equal(on_blue[0, 0], [0, 0, 255])


def test_has_no_depth_and_validates_inputs(renderer, sphere):
    camera = Camera.orbit((0, 0, 0), 6.0, width=80, height=60)
    with pytest.raises(NotImplementedError, match="depth"):
        renderer.render_depth(sphere.vertices, sphere.faces, camera)
    with pytest.raises(ValueError, match=r"faces.*\[0, 642\)"):
        renderer.render(sphere.vertices, sphere.faces + 1, camera)


def test_several_meshes_painted_far_to_near(renderer, sphere):
    camera = Camera.orbit((0, 0, 0), 8.0, width=80, height=60)
    near = MeshSpec(sphere.vertices * 0.5 + [0, 0, 1.0], sphere.faces, (1.0, 0.0, 0.0))
    far = MeshSpec(sphere.vertices * 1.5 + [0, 0, -2.0], sphere.faces, (0.0, 0.0, 1.0))
    for order in ([near, far], [far, near]):
        image = renderer.render_meshes(order, camera, unlit=True)
        np.testing.assert_array_equal(image[30, 40], [255, 0, 0])
