"""Shared meshes and one OpenGL renderer for the rendering tests (skipped where no context exists)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest
import trimesh

# face normal -> unlit colour of that face of `face_colored_box`
FACE_COLORS: dict[tuple[int, int, int], tuple[float, float, float]] = {
    (1, 0, 0): (1.0, 0.0, 0.0),
    (-1, 0, 0): (0.0, 1.0, 0.0),
    (0, 1, 0): (1.0, 1.0, 1.0),
    (0, -1, 0): (1.0, 0.0, 1.0),
    (0, 0, 1): (0.0, 0.0, 1.0),
    (0, 0, -1): (1.0, 1.0, 0.0),
}


@pytest.fixture(scope="session")
def mesh_renderer():
    """One persistent pyrender renderer for every test that needs OpenGL."""
    from poseembroider.rendering import MeshRenderer

    try:
        renderer = MeshRenderer(96, 96)
    except Exception as error:  # noqa: BLE001 - no offscreen context on this machine
        pytest.skip(f"no offscreen OpenGL context: {type(error).__name__}: {error}")
    yield renderer
    renderer.close()


@pytest.fixture(scope="session")
def sphere() -> trimesh.Trimesh:
    """Unit-radius icosphere (642 vertices) centred at the origin."""
    return trimesh.creation.icosphere(subdivisions=3, radius=1.0)


@dataclass(frozen=True)
class ColoredBox:
    """Unit cube with unshared vertices so that each face has its own per-vertex colour."""

    vertices: np.ndarray  # (36, 3)
    faces: np.ndarray  # (12, 3)
    colors: np.ndarray  # (36, 3), FACE_COLORS by outward normal
    face_colors: dict = field(default_factory=lambda: dict(FACE_COLORS))


@pytest.fixture(scope="session")
def face_colored_box() -> ColoredBox:
    box = trimesh.creation.box(extents=(1.0, 1.0, 1.0))
    vertices = box.vertices[box.faces].reshape(-1, 3)
    faces = np.arange(len(vertices)).reshape(-1, 3)
    colors = np.array([FACE_COLORS[tuple(np.rint(n).astype(int).tolist())] for n in box.face_normals])
    return ColoredBox(vertices, faces, np.repeat(colors, 3, axis=0))


def _blob_centroid(weights: np.ndarray) -> np.ndarray:
    """(H, W) coverage -> (u, v) weighted centroid in pixel coordinates (pixel centres at integers)."""
    rows, cols = np.nonzero(weights > 0)
    w = weights[rows, cols].astype(np.float64)
    return np.array([(cols * w).sum() / w.sum(), (rows * w).sum() / w.sum()])


@pytest.fixture(scope="session")
def blob_centroid():
    """The centroid function, as a fixture (test modules here are not importable packages)."""
    return _blob_centroid
