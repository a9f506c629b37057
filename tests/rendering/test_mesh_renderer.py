"""pyrender backend: placement, colours, backgrounds, occlusion, projection, persistence."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from poseembroider.rendering import Camera, MeshRenderer, MeshSpec

pytestmark = pytest.mark.render

SIZE = 96
RED = (0.9, 0.15, 0.1)


def _front_camera(distance: float = 6.0, size: int = SIZE) -> Camera:
    return Camera.orbit((0, 0, 0), distance, width=size, height=size)


def test_sphere_at_the_target_renders_in_the_centre(mesh_renderer, sphere, blob_centroid):
    camera = _front_camera()
    layers = mesh_renderer.render_layers(MeshSpec(sphere.vertices, sphere.faces, RED), camera)
    np.testing.assert_allclose(blob_centroid(layers.alpha), [camera.cx, camera.cy], atol=0.25)
    # apparent radius of a sphere: f * r / sqrt(d^2 - r^2)
    radius_px = camera.fy / np.sqrt(6.0**2 - 1.0)
    assert layers.alpha.sum() == pytest.approx(np.pi * radius_px**2, rel=0.05)
    image = layers.composite((0.0, 0.5, 1.0))
    corners = image[[0, 0, -1, -1], [0, -1, 0, -1]]
    assert (corners == [0, 128, 255]).all()


def test_requested_mesh_and_background_colours_appear(mesh_renderer, sphere):
    camera = _front_camera()
    lit = mesh_renderer.render(sphere.vertices, sphere.faces, camera, color=RED, background=(0.0, 0.0, 0.0))
    centre = lit[SIZE // 2, SIZE // 2].astype(int)
    assert abs(centre - np.array(RED) * 255).max() < 40  # lit front face close to the requested colour
    assert (lit[0, 0] == 0).all()
    unlit = mesh_renderer.render(
        sphere.vertices, sphere.faces, camera, color=RED, background=(1, 1, 1), unlit=True
    )
    np.testing.assert_allclose(unlit[SIZE // 2, SIZE // 2], np.array(RED) * 255, atol=1)
    assert (unlit[0, 0] == 255).all()
    # shading varies over the lit sphere, not over the unlit one
    spec = MeshSpec(sphere.vertices, sphere.faces, RED)
    covered = mesh_renderer.render_layers(spec, camera, unlit=True).alpha == 1.0  # no anti-aliased edges
    assert lit[covered].std(axis=0).max() > 5 and unlit[covered].std(axis=0).max() < 1


def test_background_image_shows_where_no_mesh_is(mesh_renderer, sphere):
    camera = _front_camera()
    background = np.random.default_rng(0).integers(0, 256, size=(SIZE, SIZE, 3), dtype=np.uint8)
    image = mesh_renderer.render(sphere.vertices, sphere.faces, camera, color=RED, background=background)
    empty = mesh_renderer.render_rgba(sphere.vertices, sphere.faces, camera)[..., 3] == 0
    assert 0.5 < empty.mean() < 0.95
    np.testing.assert_array_equal(image[empty], background[empty])
    assert np.abs(image[~empty].astype(int) - background[~empty]).mean() > 30
    # an image of another size is resized to the render
    small = mesh_renderer.render(sphere.vertices, sphere.faces, camera, background=background[::2, ::2])
    assert small.shape == (SIZE, SIZE, 3)


def test_nearer_mesh_occludes_the_farther_one(mesh_renderer, sphere, face_colored_box):
    camera = _front_camera(distance=8.0)
    near = MeshSpec(sphere.vertices * 0.5 + [0, 0, 1.0], sphere.faces, (1.0, 0.0, 0.0))
    far = MeshSpec(face_colored_box.vertices * 3.0 + [0, 0, -2.0], face_colored_box.faces, (0.0, 0.0, 1.0))
    centre = SIZE // 2
    for order in ([near, far], [far, near]):  # the depth test decides, not the drawing order
        image = mesh_renderer.render_meshes(order, camera, unlit=True)
        np.testing.assert_array_equal(image[centre, centre], [255, 0, 0])
        assert (image[centre, centre - 24] == [0, 0, 255]).all()  # the box around the sphere
    depth = mesh_renderer.render_meshes_depth([near, far], camera)
    box_depth = mesh_renderer.render_meshes_depth([far], camera)
    assert depth[centre, centre] == pytest.approx(8.0 - 1.5, abs=0.02)  # sphere front at z = 1.5
    assert box_depth[centre, centre] == pytest.approx(8.0 - (-2.0 + 1.5), abs=0.02)  # box front at z = -0.5
    assert depth[0, 0] == 0.0


def test_project_lands_on_the_rendered_blob(mesh_renderer, sphere, blob_centroid):
    """Off-centre principal point, unequal focal lengths, non-square image, off-axis sphere."""
    pose = Camera.orbit((0, 0, 0), 5.0, elevation_deg=20, azimuth_deg=-30, width=1, height=1).pose
    camera = Camera(width=120, height=80, fx=150.0, fy=170.0, cx=51.3, cy=33.8, pose=pose)
    for centre in ([0.0, 0.0, 0.0], [0.6, -0.4, 0.3], [-0.9, 0.3, -0.5]):
        spec = MeshSpec(sphere.vertices * 0.15 + centre, sphere.faces)
        alpha = mesh_renderer.render_layers(spec, camera, unlit=True).alpha
        assert alpha.shape == (80, 120)
        # a half-pixel convention slip would be 0.5 px off
        np.testing.assert_allclose(blob_centroid(alpha), camera.project(centre), atol=0.25)


@pytest.mark.parametrize(
    ("azimuth", "elevation", "normal"),
    [
        (0, 0, (0, 0, 1)),
        (90, 0, (1, 0, 0)),
        (180, 0, (0, 0, -1)),
        (-90, 0, (-1, 0, 0)),
        (0, 90, (0, 1, 0)),
        (0, -90, (0, -1, 0)),
    ],
)
def test_orbit_sees_the_expected_box_face(mesh_renderer, face_colored_box, azimuth, elevation, normal):
    camera = Camera.orbit((0, 0, 0), 5.0, elevation, azimuth, width=SIZE, height=SIZE)
    box = face_colored_box
    image = mesh_renderer.render(box.vertices, box.faces, camera, color=box.colors, unlit=True)
    expected = np.array(box.face_colors[normal]) * 255
    np.testing.assert_array_equal(image[SIZE // 2, SIZE // 2], expected)


def test_persistent_renderer_renders_different_images_in_a_row(mesh_renderer, sphere, blob_centroid):
    cases = [
        ((1.0, 0.0, 0.0), [0.8, 0.0, 0.0], 96),
        ((0.0, 1.0, 0.0), [-0.8, 0.5, 0.0], 64),  # another image size: the framebuffer follows
        ((0.0, 0.0, 1.0), [0.0, -0.7, 0.0], 96),
    ]
    images = []
    for color, centre, size in cases:
        camera = _front_camera(size=size)
        spec = MeshSpec(sphere.vertices * 0.3 + centre, sphere.faces, color)
        layers = mesh_renderer.render_layers(spec, camera, unlit=True)
        image = layers.composite((1, 1, 1))
        assert image.shape == (size, size, 3)
        np.testing.assert_allclose(blob_centroid(layers.alpha), camera.project(centre), atol=0.5)
        u, v = np.rint(camera.project(centre)).astype(int)
        np.testing.assert_array_equal(image[v, u], np.array(color) * 255)
        images.append(image)
    assert not np.array_equal(images[0], images[2])


def test_render_rgba_and_depth(mesh_renderer, sphere):
    camera = _front_camera()
    rgba = mesh_renderer.render_rgba(sphere.vertices, sphere.faces, camera, color=RED, unlit=True)
    assert rgba.shape == (SIZE, SIZE, 4) and rgba.dtype == np.uint8
    assert rgba[0, 0, 3] == 0 and rgba[SIZE // 2, SIZE // 2, 3] == 255
    np.testing.assert_allclose(rgba[SIZE // 2, SIZE // 2, :3], np.array(RED) * 255, atol=1)
    depth = mesh_renderer.render_depth(sphere.vertices, sphere.faces, camera)
    assert depth.shape == (SIZE, SIZE) and depth.dtype == np.float32
    assert depth[0, 0] == 0.0
    assert depth[SIZE // 2, SIZE // 2] == pytest.approx(5.0, abs=0.02)
    # depth is one sample per pixel: set wherever coverage is full, never where nothing is drawn
    assert (depth[rgba[..., 3] == 255] > 0).all() and (depth[rgba[..., 3] == 0] == 0).all()


def test_torch_inputs_and_flat_shading(mesh_renderer, sphere):
    camera = _front_camera()
    from_numpy = mesh_renderer.render(sphere.vertices, sphere.faces, camera)
    from_torch = mesh_renderer.render(
        torch.tensor(sphere.vertices, requires_grad=True), torch.tensor(sphere.faces), camera
    )
    np.testing.assert_array_equal(from_numpy, from_torch)
    flat = mesh_renderer.render(sphere.vertices, sphere.faces, camera, smooth=False)
    assert not np.array_equal(flat, from_numpy)


@pytest.mark.parametrize(
    ("vertices", "faces", "match"),
    [
        (np.zeros((4, 2)), np.array([[0, 1, 2]]), r"vertices.*\(4, 2\)"),
        (np.array([[0, 0, 0], [1, 0, 0], [0, np.nan, 0]]), np.array([[0, 1, 2]]), "vertices.*NaN"),
        (np.eye(3), np.array([[0, 1, 3]]), r"faces.*\[0, 3\).*\(1, 3\)"),
        (np.eye(3), np.array([[0.0, 1.0, 2.0]]), r"faces.*float64.*\(1, 3\)"),
        (np.eye(3), np.array([0, 1, 2]), r"faces.*\(3,\)"),
    ],
)
def test_invalid_meshes_raise_value_errors(mesh_renderer, vertices, faces, match):
    with pytest.raises(ValueError, match=match):
        mesh_renderer.render(vertices, faces, _front_camera())


def test_close_and_context_manager(mesh_renderer, sphere):  # fixture: skip without OpenGL
    with MeshRenderer(32, 32) as renderer:
        image = renderer.render(sphere.vertices, sphere.faces, _front_camera(size=32))
        assert image.shape == (32, 32, 3)
    assert renderer.closed
    with pytest.raises(RuntimeError, match="closed"):
        renderer.render(sphere.vertices, sphere.faces, _front_camera(size=32))


def test_closing_one_renderer_leaves_the_others_working(mesh_renderer, sphere):
    """pyrender's EGL teardown terminates the display shared by all contexts; ours must not."""
    camera = _front_camera()
    before = mesh_renderer.render(sphere.vertices, sphere.faces, camera)
    other = MeshRenderer(SIZE, SIZE)
    np.testing.assert_array_equal(other.render(sphere.vertices, sphere.faces, camera), before)
    other.close()
    np.testing.assert_array_equal(mesh_renderer.render(sphere.vertices, sphere.faces, camera), before)


def test_shader_programs_are_compiled_once(mesh_renderer, sphere):
    """pyrender's program cache misses on every frame under OSMesa (a new context pointer object per
    call), recompiling and leaking a shader program per image; the renderer's own cache must not."""
    camera = _front_camera()
    with MeshRenderer(SIZE, SIZE) as renderer:
        for _ in range(4):
            renderer.render(sphere.vertices, sphere.faces, camera)
            renderer.render(sphere.vertices, sphere.faces, camera, unlit=True)
        programs = renderer._offscreen._renderer._program_cache._program_cache
        assert len(programs) == 2  # one lit and one unlit program, not one per image
