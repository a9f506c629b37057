"""Mesh inputs: checked once for every backend, with errors naming the argument and the shape."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from poseembroider.rendering import MeshSpec
from poseembroider.rendering.mesh_spec import vertex_normals

TRIANGLE = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


@pytest.mark.parametrize(
    ("vertices", "faces", "match"),
    [
        (np.zeros((4, 2)), [[0, 1, 2]], r"vertices: expected shape \(V, 3\).*\(4, 2\)"),
        (np.zeros((0, 3)), [[0, 1, 2]], r"vertices.*\(0, 3\)"),
        (np.full((3, 3), np.inf), [[0, 1, 2]], r"vertices.*\(3, 3\).*NaN or inf"),
        (TRIANGLE, [[0, 1, 2, 0]], r"faces: expected shape \(F, 3\).*\(1, 4\)"),
        (TRIANGLE, [[0, 1, -1]], r"faces: indices must lie in \[0, 3\).*\[-1, 1\]"),
        (TRIANGLE, [[0.0, 1.0, 2.0]], r"faces: expected integer.*float64"),
    ],
)
def test_invalid_vertices_and_faces(vertices, faces, match):
    with pytest.raises(ValueError, match=match):
        MeshSpec(np.asarray(vertices), np.asarray(faces))


@pytest.mark.parametrize(
    ("color", "match"),
    [
        ((255, 0, 0), r"floats in \[0, 1\]"),
        ((0.5, 0.5), "3 or 4 values"),
        (np.ones((2, 3)), r"per-vertex colours of shape \(3, 3\|4\).*\(2, 3\)"),
    ],
)
def test_invalid_colours(color, match):
    with pytest.raises(ValueError, match=match):
        MeshSpec(TRIANGLE, [[0, 1, 2]], color)


def test_accepts_torch_and_uint8_colours():
    spec = MeshSpec(
        torch.tensor(TRIANGLE, requires_grad=True), torch.tensor([[0, 1, 2]]), np.full((3, 3), 255, np.uint8)
    )
    assert spec.vertices.dtype == np.float32 and spec.faces.dtype == np.int64
    np.testing.assert_array_equal(spec.color, np.ones((3, 4)))
    assert MeshSpec(TRIANGLE, [[0, 1, 2]], (1, 0, 0)).color.tolist() == [1.0, 0.0, 0.0, 1.0]


def test_vertex_normals_point_outward(sphere):
    normals = vertex_normals(np.asarray(sphere.vertices, np.float32), np.asarray(sphere.faces))
    np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-5)
    assert ((normals * sphere.vertices).sum(axis=1) > 0.99).all()
