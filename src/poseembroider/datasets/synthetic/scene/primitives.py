"""`Primitive`: a textured box or upright cylinder, the building block of the occluders.

What a primitive has to answer for a scene: its triangle mesh with per-vertex colours (for the render),
its 8 bbox corners (for projected bboxes before rendering) and the exact first hit of rays (for the
`unoccluded` joint test: analytic, so it needs no render and never misses a thin object). The meshes are
made from two unit templates built once at import, scaled, yawed and moved per primitive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from poseembroider.datasets.synthetic.textures import Texture2D
from poseembroider.rendering.mesh_spec import MeshSpec

__all__ = ["Primitive", "rotation_y"]


def rotation_y(angle: float) -> np.ndarray:
    """(3, 3) rotation by `angle` radians about +y (the world's up axis): the yaw of a primitive."""
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _box_faces(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit box [-1, 1]^3 as 6 separate n x n vertex grids: (positions, faces outward CCW, face uv)."""
    lin = np.linspace(-1.0, 1.0, n)
    g1, g2 = np.meshgrid(lin, lin, indexing="ij")
    quads = []
    for i in range(n - 1):
        for j in range(n - 1):
            a, b, c, d = i * n + j, (i + 1) * n + j, (i + 1) * n + j + 1, i * n + j + 1
            quads.append((a, b, c, a, c, d))
    tri = np.asarray(quads, np.int64).reshape(-1, 3)
    positions, faces, uvs = [], [], []
    for axis in range(3):
        others = [k for k in range(3) if k != axis]
        for sign in (-1.0, 1.0):
            p = np.zeros((n * n, 3))
            p[:, axis] = sign
            p[:, others[0]] = g1.ravel()
            p[:, others[1]] = g2.ravel()
            t = tri.copy()
            normal = np.cross(p[t[0, 1]] - p[t[0, 0]], p[t[0, 2]] - p[t[0, 0]])
            if normal[axis] * sign < 0:
                t = t[:, ::-1]
            faces.append(t + len(positions) * n * n)
            positions.append(p)
            uvs.append(np.stack([g1.ravel(), g2.ravel()], axis=1))
    return np.concatenate(positions), np.concatenate(faces), np.concatenate(uvs)


def _cylinder_mesh(segments: int, rings: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit cylinder (radius 1, y in [-1, 1]) with caps: (positions, faces outward CCW, uv (arc, y))."""
    angles = np.linspace(0.0, 2 * math.pi, segments + 1)
    ys = np.linspace(-1.0, 1.0, rings)
    a, y = np.meshgrid(angles, ys, indexing="ij")
    side = np.stack([np.sin(a).ravel(), y.ravel(), np.cos(a).ravel()], axis=1)
    side_uv = np.stack([a.ravel(), y.ravel()], axis=1)
    faces = []
    for i in range(segments):
        for j in range(rings - 1):
            p, q = i * rings + j, (i + 1) * rings + j
            faces += [(p, q, q + 1), (p, q + 1, p + 1)]
    faces = np.asarray(faces, np.int64)
    p0 = side[faces[0, 0]]
    n0 = np.cross(side[faces[0, 1]] - p0, side[faces[0, 2]] - p0)
    if n0 @ np.array([p0[0], 0.0, p0[2]]) < 0:  # side faces must point away from the axis
        faces = faces[:, ::-1]
    positions, uvs, all_faces = [side], [side_uv], [faces]
    offset = len(side)
    for y_cap in (-1.0, 1.0):
        ring = np.stack([np.sin(angles[:-1]), np.full(segments, y_cap), np.cos(angles[:-1])], axis=1)
        cap = np.vstack([[0.0, y_cap, 0.0], ring])
        tris = np.asarray([(0, 1 + k, 1 + (k + 1) % segments) for k in range(segments)], np.int64)
        normal = np.cross(cap[tris[0, 1]] - cap[tris[0, 0]], cap[tris[0, 2]] - cap[tris[0, 0]])
        if normal[1] * y_cap < 0:
            tris = tris[:, ::-1]
        all_faces.append(tris + offset)
        positions.append(cap)
        uvs.append(cap[:, [0, 2]])
        offset += len(cap)
    return np.concatenate(positions), np.concatenate(all_faces), np.concatenate(uvs)


_BOX_TEMPLATE = _box_faces(5)
_CYLINDER_TEMPLATE = _cylinder_mesh(20, 4)


@dataclass(frozen=True, eq=False)
class Primitive:
    """A box or an upright cylinder in the world, with a colour texture.

    Attributes:
        kind: 'box' or 'cylinder' (vertical axis).
        center: (3,) centre in world coordinates.
        size: (3,) box: full extents along its local x, y, z; cylinder: (diameter, height, diameter).
        yaw: rotation about +y (radians).
        texture: pattern painted on the faces (evaluated in metres on each face).
    """

    kind: str
    center: np.ndarray
    size: np.ndarray
    yaw: float
    texture: Texture2D

    def __post_init__(self) -> None:
        if self.kind not in ("box", "cylinder"):
            raise ValueError(f"kind: expected 'box' or 'cylinder', got {self.kind!r}")
        object.__setattr__(self, "center", np.asarray(self.center, np.float64).reshape(3))
        size = np.asarray(self.size, np.float64).reshape(3)
        if (size <= 0).any():
            raise ValueError(f"size: expected positive extents, got {size}")
        object.__setattr__(self, "size", size)

    @property
    def rotation(self) -> np.ndarray:
        """(3, 3) local-to-world rotation (the yaw about +y)."""
        return rotation_y(self.yaw)

    def mesh_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(vertices (V, 3) world, faces (F, 3), per-vertex colours (V, 3))."""
        half = self.size / 2.0
        if self.kind == "box":
            unit, faces, uv = _BOX_TEMPLATE
            local = unit * half
            coords = uv * np.array([half.max(), half.max()])
        else:
            unit, faces, uv = _CYLINDER_TEMPLATE
            local = unit * half
            coords = uv * np.array([half[0], half[1]])
        vertices = local @ self.rotation.T + self.center
        colors = self.texture.evaluate(coords[:, 0] + 0.31 * self.center[0], coords[:, 1] + 0.17 * self.center[2])
        return vertices.astype(np.float32), faces, colors

    def mesh(self) -> MeshSpec:
        """The textured mesh to render (smooth normals for a cylinder, flat for a box)."""
        vertices, faces, colors = self.mesh_arrays()
        return MeshSpec(vertices, faces, colors, smooth=self.kind == "cylinder")

    def corners(self) -> np.ndarray:
        """(8, 3) world corners of the bounding box (for projected bboxes)."""
        signs = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], np.float64)
        return (signs * self.size / 2.0) @ self.rotation.T + self.center

    def intersect(self, origin: np.ndarray, directions: np.ndarray) -> np.ndarray:
        """(N,) ray parameter t of the first hit of rays origin + t * directions (t >= 0), inf if missed.

        t is in units of each direction's length (a segment to a point P with direction P - origin is
        blocked when t < 1).
        """
        rot = self.rotation
        o = (np.asarray(origin, np.float64) - self.center) @ rot  # local = R^T (p - c)
        d = np.asarray(directions, np.float64).reshape(-1, 3) @ rot
        half = self.size / 2.0
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.kind == "box":
                t1 = (-half - o) / d
                t2 = (half - o) / d
                near = np.nanmax(np.minimum(t1, t2), axis=1)
                far = np.nanmin(np.maximum(t1, t2), axis=1)
            else:
                a = d[:, 0] ** 2 + d[:, 2] ** 2
                b = 2.0 * (o[0] * d[:, 0] + o[2] * d[:, 2])
                c = o[0] ** 2 + o[2] ** 2 - half[0] ** 2
                disc = b * b - 4.0 * a * c
                root = np.sqrt(np.maximum(disc, 0.0))
                parallel = a < 1e-12
                side_near = np.where(parallel, np.where(c <= 0, -np.inf, np.inf), (-b - root) / (2 * a))
                side_far = np.where(parallel, np.where(c <= 0, np.inf, -np.inf), (-b + root) / (2 * a))
                side_near = np.where(~parallel & (disc < 0), np.inf, side_near)
                side_far = np.where(~parallel & (disc < 0), -np.inf, side_far)
                ty1 = (-half[1] - o[1]) / d[:, 1]
                ty2 = (half[1] - o[1]) / d[:, 1]
                flat = np.abs(d[:, 1]) < 1e-12
                inside_y = abs(o[1]) <= half[1]
                cap_near = np.where(flat, -np.inf if inside_y else np.inf, np.minimum(ty1, ty2))
                cap_far = np.where(flat, np.inf if inside_y else -np.inf, np.maximum(ty1, ty2))
                near = np.maximum(side_near, cap_near)
                far = np.minimum(side_far, cap_far)
        hit = (far >= np.maximum(near, 0.0)) & np.isfinite(far)
        return np.where(hit, np.maximum(near, 0.0), np.inf)
