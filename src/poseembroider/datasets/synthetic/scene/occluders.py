"""Occluders: objects standing on the floor between the camera and the person, and where they go.

BEDLAM people are often partly hidden by furniture and scenery; the original keeps only people whose
bbox an occluder's bbox overlaps by less than 30 %. An `Occluder` is a named object made of
`Primitive`s (a crate, a table with four legs, a low wall, a pillar, a barrel, a chair, a panel, a bush);
`sample_occluders` draws 0-3 of them, places each on the floor between the camera and the body, clear
of the body and of each other, and moves it sideways until it hides at most a given share of the
person's image bbox, so that most samples still pass the overlap criterion.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from poseembroider.datasets.synthetic.crops import bbox_overlap
from poseembroider.datasets.synthetic.scene.camera import projected_box
from poseembroider.datasets.synthetic.scene.primitives import Primitive, rotation_y
from poseembroider.datasets.synthetic.textures import Texture2D, sample_palette, sample_texture
from poseembroider.rendering.camera import Camera
from poseembroider.rendering.mesh_spec import MeshSpec

__all__ = ["OCCLUDER_KINDS", "Occluder", "sample_occluders"]

PartSpec = tuple[str, tuple[float, float, float], tuple[float, float, float], Texture2D]
"""(primitive kind, offset of its centre from the object's floor point, size, texture), in the object's frame."""

OCCLUDER_KINDS = ("crate", "table", "low_wall", "pillar", "barrel", "chair", "panel", "bush")
"""The objects `sample_occluders` draws from, with the probabilities `_OCCLUDER_PROBS`."""
_OCCLUDER_PROBS = (0.2, 0.12, 0.16, 0.1, 0.12, 0.1, 0.12, 0.08)


@dataclass(frozen=True, eq=False)
class Occluder:
    """A named object made of primitives (crate, table, pillar, ...), standing between camera and body."""

    name: str
    parts: tuple[Primitive, ...]

    def meshes(self) -> list[MeshSpec]:
        """One mesh per part (`render_scene` merges all parts into one mesh instead)."""
        return [part.mesh() for part in self.parts]

    def corners(self) -> np.ndarray:
        """(8 * parts, 3) world corners of the parts' bounding boxes."""
        return np.concatenate([part.corners() for part in self.parts])

    def intersect(self, origin: np.ndarray, directions: np.ndarray) -> np.ndarray:
        """(N,) first hit over all parts (see `Primitive.intersect`)."""
        return np.min(np.stack([part.intersect(origin, directions) for part in self.parts]), axis=0)

    @property
    def center(self) -> np.ndarray:
        """(3,) mean of the parts' centres (nearer or farther than the body: `camera.depth(center)`)."""
        return np.mean([part.center for part in self.parts], axis=0)


def sample_occluders(
    rng: np.random.Generator,
    vertices: np.ndarray,
    camera: Camera,
    floor_y: float,
    count_probs: Sequence[float],
    max_overlap: float,
) -> tuple[Occluder, ...]:
    """0-3 objects standing on the floor between the camera and the body, not touching the body
    nor each other, each hiding at most `max_overlap` of the person's image bbox.

    Args:
        rng: the scene's generator (the draws follow the camera, light and environment draws).
        vertices: (V, 3) world vertices of the body (SMPL-X frame, y up).
        camera: the frame camera: objects go on the floor between it and the body.
        floor_y: height of the floor the objects stand on.
        count_probs: P(0 objects), P(1), ... (`SceneConfig.occluder_count_probs`, normalised here).
        max_overlap: largest share of the person's projected bbox one object's projected bbox may
            cover; an object is moved sideways (4 tries) until it hides no more, else dropped.
    """
    probs = np.asarray(count_probs, np.float64)
    count = int(rng.choice(len(probs), p=probs / probs.sum()))
    if count == 0:
        return ()
    body_xz = (vertices[:, [0, 2]].min(axis=0) + vertices[:, [0, 2]].max(axis=0)) / 2.0
    body_r = float(np.linalg.norm(vertices[:, [0, 2]] - body_xz, axis=1).max())
    body_box = projected_box(camera, vertices[:: max(1, len(vertices) // 1500)])
    to_eye = camera.position[[0, 2]] - body_xz
    span = float(np.linalg.norm(to_eye))
    if span < 1e-6:
        return ()
    toward = to_eye / span
    across = np.array([-toward[1], toward[0]])
    placed: list[tuple[np.ndarray, float]] = []
    occluders = []
    palette = sample_palette(rng, 5)
    for _ in range(count):
        kind = str(rng.choice(OCCLUDER_KINDS, p=np.asarray(_OCCLUDER_PROBS) / sum(_OCCLUDER_PROBS)))
        parts_local, radius = _occluder_parts(rng, kind, palette)
        near = body_r + radius + 0.15
        far = span - radius - 0.7
        if far <= near:
            continue
        for attempt in range(4):  # move sideways until it hides little enough of the person
            fraction = rng.uniform(0.55, 0.9) if kind == "panel" else rng.uniform(0.05, 0.65)
            along = near + fraction * (far - near)
            lateral = float(np.clip(rng.normal(0.0, 0.45 + 0.3 * attempt), -2.0, 2.0))
            spot = body_xz + toward * along + across * lateral
            clear = np.linalg.norm(spot - body_xz) >= near and all(
                np.linalg.norm(spot - other) >= radius + other_r + 0.05 for other, other_r in placed
            )
            if not clear:
                continue
            yaw = math.atan2(toward[0], toward[1]) + rng.normal(0.0, 0.35)
            rotation = rotation_y(yaw)
            parts = tuple(
                Primitive(
                    prim_kind,
                    np.array([spot[0], floor_y, spot[1]]) + rotation @ np.asarray(offset),
                    size,
                    yaw,
                    texture,
                )
                for prim_kind, offset, size, texture in parts_local
            )
            occluder = Occluder(kind, parts)
            corners = occluder.corners()
            corners = corners[camera.depth(corners) > camera.znear]
            if len(corners) == 0:
                continue
            if bbox_overlap(body_box, projected_box(camera, corners)) <= max_overlap:
                placed.append((spot, radius))
                occluders.append(occluder)
                break
    return tuple(occluders)


def _occluder_parts(rng: np.random.Generator, kind: str, palette: np.ndarray) -> tuple[list[PartSpec], float]:
    """Local parts [(primitive kind, offset from the floor point, size, texture)] and footprint radius."""
    wood = np.array([[0.55, 0.38, 0.22], [0.42, 0.28, 0.16], [0.65, 0.48, 0.3]]) * rng.uniform(0.7, 1.2)
    wood = np.clip(wood, 0, 1)

    def tex(kinds, colors=None, scale=(0.1, 0.6)):
        return sample_texture(rng, kinds, palette if colors is None else colors, scale)

    parts = []
    if kind == "crate":
        w, h, d = rng.uniform(0.4, 0.9), rng.uniform(0.35, 1.0), rng.uniform(0.4, 0.9)
        parts.append(
            ("box", (0, h / 2, 0), (w, h, d), tex(("planks", "plain", "stripes"), wood if rng.random() < 0.6 else None))
        )
        if rng.random() < 0.4:  # a second crate on top
            h2 = rng.uniform(0.3, 0.6)
            parts.append(
                ("box", (rng.uniform(-0.1, 0.1), h + h2 / 2, 0), (w * 0.8, h2, d * 0.8), tex(("planks", "plain"), wood))
            )
        radius = 0.5 * math.hypot(w, d)
    elif kind == "table":
        w, d, h = rng.uniform(0.8, 1.6), rng.uniform(0.6, 0.9), rng.uniform(0.7, 0.78)
        texture = tex(("planks", "plain"), wood if rng.random() < 0.7 else None)
        parts.append(("box", (0, h - 0.02, 0), (w, 0.04, d), texture))
        for sx in (-1, 1):
            for sz in (-1, 1):
                parts.append(
                    ("box", (sx * (w / 2 - 0.05), (h - 0.04) / 2, sz * (d / 2 - 0.05)), (0.05, h - 0.04, 0.05), texture)
                )
        radius = 0.5 * math.hypot(w, d)
    elif kind == "low_wall":
        w, h, d = rng.uniform(0.8, 2.2), rng.uniform(0.6, 1.3), rng.uniform(0.15, 0.5)
        parts.append(("box", (0, h / 2, 0), (w, h, d), tex(("tiles", "plain", "clouds", "stripes"))))
        radius = 0.5 * math.hypot(w, d)
    elif kind == "pillar":
        r, h = rng.uniform(0.1, 0.3), rng.uniform(2.4, 3.5)
        shape = "cylinder" if rng.random() < 0.6 else "box"
        parts.append((shape, (0, h / 2, 0), (2 * r, h, 2 * r), tex(("plain", "clouds", "tiles"))))
        radius = r * 1.42
    elif kind == "barrel":
        r, h = rng.uniform(0.2, 0.35), rng.uniform(0.6, 1.0)
        parts.append(("cylinder", (0, h / 2, 0), (2 * r, h, 2 * r), tex(("plain", "stripes", "clouds"))))
        radius = r
    elif kind == "chair":
        s, h = rng.uniform(0.4, 0.5), rng.uniform(0.42, 0.48)
        texture = tex(("plain", "planks"), wood if rng.random() < 0.5 else None)
        parts.append(("box", (0, h - 0.025, 0), (s, 0.05, s), texture))
        parts.append(("box", (0, h + 0.22, -s / 2 + 0.025), (s, 0.45, 0.05), texture))
        for sx in (-1, 1):
            for sz in (-1, 1):
                parts.append(
                    ("box", (sx * (s / 2 - 0.03), (h - 0.05) / 2, sz * (s / 2 - 0.03)), (0.04, h - 0.05, 0.04), texture)
                )
        radius = 0.75 * s
    elif kind == "panel":
        w, h, d = rng.uniform(0.4, 1.2), rng.uniform(1.4, 2.2), rng.uniform(0.03, 0.1)
        parts.append(("box", (0, h / 2, 0), (w, h, d), tex(("plain", "stripes", "checker", "gradient", "blobs"))))
        radius = 0.5 * math.hypot(w, d)
    else:  # bush / planter
        r, h = rng.uniform(0.25, 0.5), rng.uniform(0.4, 0.9)
        green = np.clip(
            np.array([[0.2, 0.38, 0.15], [0.12, 0.26, 0.1], [0.3, 0.45, 0.2]]) * rng.uniform(0.7, 1.3), 0, 1
        )
        parts.append(
            (
                "cylinder",
                (0, h / 2, 0),
                (2 * r, h, 2 * r),
                Texture2D("clouds", green, scale=0.15, seed=int(rng.integers(2**31 - 1))),
            )
        )
        radius = r
    return parts, radius
