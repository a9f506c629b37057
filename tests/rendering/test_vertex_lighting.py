"""Per-vertex lighting drawn unlit reproduces pyrender's lit shader on a dense mesh."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from poseembroider.rendering import Camera, Light, MeshSpec, three_point_lights
from poseembroider.rendering.mesh_spec import vertex_normals
from poseembroider.rendering.vertex_lighting import shade_vertices

SIZE = 96


@pytest.fixture(scope="module")
def dense_sphere() -> trimesh.Trimesh:
    """Icosphere fine enough (10k vertices, like a body) for Gouraud shading to match per-pixel shading."""
    return trimesh.creation.icosphere(subdivisions=5, radius=1.0)


LIGHTINGS = {
    "camera three-point": three_point_lights(),
    "world key and point": (
        Light.directional((0.3, -1.0, -0.5), 3.0, (1.0, 0.9, 0.8), frame="world"),
        Light.point((2.0, 2.0, 4.0), 40.0, (0.8, 0.9, 1.0)),
    ),
}


@pytest.mark.render
@pytest.mark.parametrize("lighting", sorted(LIGHTINGS))
def test_vertex_lit_unlit_render_matches_the_lit_render(mesh_renderer, dense_sphere, lighting):
    lights = LIGHTINGS[lighting]
    camera = Camera.orbit((0, 0, 0), 4.0, width=SIZE, height=SIZE, elevation_deg=20.0, azimuth_deg=30.0)
    vertices, faces = np.asarray(dense_sphere.vertices), np.asarray(dense_sphere.faces)
    rng = np.random.default_rng(0)
    colors = np.clip(0.6 + 0.3 * rng.standard_normal(3) + 0.05 * rng.standard_normal((len(vertices), 3)), 0, 1)
    lit = mesh_renderer.render_layers(MeshSpec(vertices, faces, colors), camera, lights)
    shaded = shade_vertices(vertices, vertex_normals(vertices, faces), colors, camera.pose, lights)
    unlit = mesh_renderer.render_layers(MeshSpec(vertices, faces, shaded), camera, unlit=True)
    inside = (lit.alpha == 1.0) & (unlit.alpha == 1.0)
    difference = np.abs(lit.color - unlit.color)[inside] * 255
    assert inside.sum() > 0.3 * SIZE * SIZE
    assert difference.mean() < 1.5 and np.percentile(difference, 99) < 8
    assert lit.color[inside].std(axis=0).max() * 255 > 10  # the lighting does vary over the sphere


def test_shading_follows_the_light_and_the_colour():
    vertices = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    normals = np.array([[0.0, 1.0, 0.0], [0.0, -1.0, 0.0]])  # facing the light, facing away
    camera_pose = np.eye(4)
    camera_pose[:3, 3] = [0.0, 0.0, 5.0]
    light = (Light.directional((0.0, -1.0, 0.0), 3.0, frame="world"),)
    white = shade_vertices(vertices, normals, np.ones((2, 3)), camera_pose, light)
    assert white[0].min() > 0.9 and np.allclose(white[1], 0.25 ** (1 / 2.2), atol=0.02)  # ambient only
    red = shade_vertices(vertices, normals, np.array([[1.0, 0.0, 0.0]] * 2), camera_pose, light)
    assert red[0, 0] > 0.9 and red[0, 1:].max() == 0.0
