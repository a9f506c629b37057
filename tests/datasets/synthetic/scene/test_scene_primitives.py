"""`Primitive`: exact ray intersections and outward-facing meshes."""

from __future__ import annotations

import numpy as np
import pytest

from poseembroider.datasets.synthetic.scene import Primitive
from poseembroider.datasets.synthetic.textures import Texture2D


def test_primitive_ray_intersections_and_outward_faces():
    texture = Texture2D("plain", np.array([[0.5, 0.5, 0.5], [0.4, 0.4, 0.4]]))
    box = Primitive("box", (0.0, 1.0, 0.0), (2.0, 2.0, 1.0), 0.3, texture)
    cylinder = Primitive("cylinder", (3.0, 1.0, 0.0), (1.0, 2.0, 1.0), 0.0, texture)
    origin = np.array([0.0, 1.0, 5.0])
    # toward the box centre: enters its +z face (yawed 0.3 rad) before the centre (t = 1)
    t = box.intersect(origin, np.array([[0.0, 0.0, -5.0]]))[0]
    assert 0.85 < t < 0.95
    assert np.isinf(box.intersect(origin, np.array([[0.0, 5.0, 0.0]]))[0])
    t = cylinder.intersect(np.array([3.0, 1.0, 5.0]), np.array([[0.0, 0.0, -1.0]]))[0]
    assert t == pytest.approx(4.5)
    t = cylinder.intersect(np.array([3.0, 5.0, 0.0]), np.array([[0.0, -1.0, 0.0]]))[0]
    assert t == pytest.approx(3.0)  # through the top cap at y = 2
    assert np.isinf(cylinder.intersect(np.array([3.0, 1.0, 5.0]), np.array([[1.0, 0.0, 0.0]]))[0])
    for primitive in (box, cylinder):
        vertices, faces, colors = primitive.mesh_arrays()
        tri = vertices[faces].astype(np.float64)
        normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        outward = tri.mean(axis=1) - primitive.center
        assert ((normals * outward).sum(axis=1) > 0).mean() > 0.99
        assert colors.shape == vertices.shape
