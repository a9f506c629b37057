"""One mesh to render: checked vertices, faces and colours, and the normals renderers shade with.

Checking happens here, once, for every backend: a wrong shape or an out-of-range face index fails
with a ValueError naming the argument and the shape received, instead of an OpenGL error or a
silently garbled image.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from poseembroider.rendering.colors import DEFAULT_MESH_COLOR, as_rgba, as_vertex_colors


def as_numpy(value: object) -> np.ndarray:
    """numpy arrays, torch tensors (any device, with or without grad) and nested sequences -> ndarray."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def check_vertices(vertices: object, name: str = "vertices") -> np.ndarray:
    """(V, 3) finite float vertices -> float32 array."""
    arr = as_numpy(vertices)
    if arr.ndim != 2 or arr.shape[1] != 3 or arr.shape[0] == 0:
        raise ValueError(f"{name}: expected shape (V, 3) with V > 0, got shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"{name}: expected numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float32)
    if not np.isfinite(arr).all():
        bad = np.flatnonzero(~np.isfinite(arr).all(axis=1))
        raise ValueError(
            f"{name}: {bad.size} vertices of {arr.shape} are NaN or inf (first: {bad[:5].tolist()})"
        )
    return arr


def check_faces(faces: object, num_vertices: int, name: str = "faces") -> np.ndarray:
    """(F, 3) integer faces indexing [0, num_vertices) -> int64 array."""
    arr = as_numpy(faces)
    if arr.ndim != 2 or arr.shape[1] != 3 or arr.shape[0] == 0:
        raise ValueError(f"{name}: expected shape (F, 3) with F > 0, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(
            f"{name}: expected integer vertex indices, got dtype {arr.dtype} (shape {arr.shape})"
        )
    low, high = int(arr.min()), int(arr.max())
    if low < 0 or high >= num_vertices:
        raise ValueError(
            f"{name}: indices must lie in [0, {num_vertices}) for {num_vertices} vertices, "
            f"got range [{low}, {high}] (shape {arr.shape})"
        )
    return arr.astype(np.int64)


def face_normals(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit normals (F, 3) (counter-clockwise faces point outward) and areas (F,)."""
    tri = vertices[faces].astype(np.float64)
    cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    norm = np.linalg.norm(cross, axis=1)
    return cross / np.maximum(norm, 1e-20)[:, None], norm / 2.0


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(V, 3) unit normals: area-weighted mean of the adjacent face normals (bincount, no Python loop).

    Runs once per render of a ~10k-vertex body, hence the (3, N) layout: gathers, edges, cross product
    and norms are contiguous rows of N (with (N, 3) arrays numpy loops over rows of 3 and `np.cross`,
    `np.linalg.norm` cost several times the arithmetic).
    """
    points = np.ascontiguousarray(np.asarray(vertices, np.float32).T)  # (3, V)
    corners = np.ascontiguousarray(faces.T)  # (3, F)
    p0, p1, p2 = (points.take(corner, axis=1) for corner in corners)
    a, b = p1 - p0, p2 - p0
    weighted = (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])  # 2 * area
    count = len(vertices)
    x, y, z = (sum(np.bincount(corner, w, count) for corner in corners) for w in weighted)
    norm = np.sqrt(x * x + y * y + z * z)
    isolated = norm < 1e-20  # no face: any unit vector
    scale = 1.0 / np.where(isolated, 1.0, norm)
    return np.stack([x * scale, y * scale, np.where(isolated, 1.0, z * scale)], axis=1).astype(np.float32)


@dataclass(frozen=True, eq=False)
class MeshSpec:
    """A triangle mesh with its appearance.

    Attributes:
        vertices: (V, 3) world coordinates (numpy or torch), finite.
        faces: (F, 3) integer indices into `vertices`, counter-clockwise seen from outside.
        color: one RGB(A) colour (floats in [0, 1]) or per-vertex colours (V, 3|4) (floats in
            [0, 1] or uint8).
        smooth: smooth (per-vertex normals) or flat (per-face normals) shading.
        double_sided: also draw faces seen from behind (open surfaces such as planes); closed
            meshes are faster and cleaner with back-face culling.
    """

    vertices: np.ndarray
    faces: np.ndarray
    color: Sequence[float] | np.ndarray = DEFAULT_MESH_COLOR
    smooth: bool = True
    double_sided: bool = False

    def __post_init__(self) -> None:
        vertices = check_vertices(self.vertices)
        object.__setattr__(self, "vertices", vertices)
        object.__setattr__(self, "faces", check_faces(self.faces, len(vertices)))
        color = as_numpy(self.color)
        if color.ndim == 2:
            object.__setattr__(self, "color", as_vertex_colors(color, len(vertices)))
        else:
            object.__setattr__(self, "color", np.asarray(as_rgba(color), np.float32))

    @property
    def per_vertex_colors(self) -> bool:
        return self.color.ndim == 2

    def vertex_rgba(self) -> np.ndarray:
        """(V, 4) float32 colours, whether given per vertex or uniform."""
        if self.per_vertex_colors:
            return self.color
        return np.broadcast_to(self.color, (len(self.vertices), 4))


def as_mesh_specs(meshes: MeshSpec | Sequence[MeshSpec]) -> list[MeshSpec]:
    """A MeshSpec or a non-empty sequence of them -> list; anything else is a TypeError."""
    items = [meshes] if isinstance(meshes, MeshSpec) else list(meshes)
    if not items:
        raise ValueError("meshes: expected at least one MeshSpec, got an empty sequence")
    for i, item in enumerate(items):
        if not isinstance(item, MeshSpec):
            raise TypeError(f"meshes[{i}]: expected a MeshSpec, got {type(item).__name__}")
    return items
