"""Signed-distance primitives and smooth unions: the implicit surface of the procedural body.

The body surface is the zero level set of a field built from a few anatomical primitives (tapered
capsules for limb segments, ellipsoids for muscle masses and the skull, rounded boxes for the palms)
merged with a smooth minimum, so parts blend into each other (shoulders into arms, thighs into
buttocks) instead of intersecting with creases. Values are negative inside, positive outside, and
roughly metric near the surface (exact for capsules, first-order estimates for ellipsoids and
squashed capsules), which is all polygonisation and surface projection need.

Every node knows an axis-aligned bounding box; evaluation skips points farther than `CULL_MARGIN`
from a node's box, where the node cannot change a smooth union whose blend radius is below that
margin. Culled points read `FAR`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FAR = 10.0
"""Field value of points culled by every primitive (far outside the body)."""

CULL_MARGIN = 0.07
"""Bounding-box padding (m); must exceed every smooth-union blend radius in the tree."""


def smooth_min(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Polynomial smooth minimum of two fields (N,): equals min(a, b) where they differ by more than k.

    Inside the blend band the result dips by at most k/4, which fills the crease between two parts
    with a fillet of radius ~k.
    """
    if k <= 0.0:
        return np.minimum(a, b)
    h = np.maximum(k - np.abs(a - b), 0.0) / k
    return np.minimum(a, b) - h * h * k * 0.25


def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


@dataclass(frozen=True)
class RoundCone:
    """Tapered capsule: the union of spheres from centre a (radius ra) to centre b (radius rb).

    `squash_axis`/`squash` make the cross-section elliptic (semi-axis `squash * r` along the axis,
    which must be perpendicular to b - a), e.g. the flat forearm near the wrist or a flat foot.
    """

    a: tuple[float, float, float]
    b: tuple[float, float, float]
    ra: float
    rb: float
    squash_axis: tuple[float, float, float] | None = None
    squash: float = 1.0

    def distance(self, p: np.ndarray) -> np.ndarray:
        """(N,) signed distance of points (N, 3)."""
        a, b = np.asarray(self.a), np.asarray(self.b)
        q = p - a
        scale = 1.0
        if self.squash_axis is not None and self.squash != 1.0:
            s = _unit(self.squash_axis)
            q = q + np.outer(q @ s * (1.0 / self.squash - 1.0), s)
            scale = min(self.squash, 1.0)
        axis = b - a
        length = float(np.linalg.norm(axis))
        e = axis / length
        u = q @ e
        v = np.linalg.norm(q - np.outer(u, e), axis=1)
        # In the (u, v) half-plane the side of the cone is the line tangent to both end circles:
        # normal n = (sin t, cos t) with sin t = (ra - rb) / length; it touches circle a at w = 0 and
        # circle b at w = length * cos t, w being the coordinate along the line.
        sin_t = (self.ra - self.rb) / length
        cos_t = np.sqrt(max(1.0 - sin_t * sin_t, 1e-12))
        w = u * cos_t - v * sin_t
        side = u * sin_t + v * cos_t - self.ra
        cap_a = np.hypot(u, v) - self.ra
        cap_b = np.hypot(u - length, v) - self.rb
        d = np.where(w < 0.0, cap_a, np.where(w > length * cos_t, cap_b, side))
        return d * scale

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        r = max(self.ra, self.rb)
        a, b = np.asarray(self.a), np.asarray(self.b)
        return np.minimum(a, b) - r, np.maximum(a, b) + r


@dataclass(frozen=True)
class Ellipsoid:
    """Ellipsoid with semi-axes `radii` along the rows of `axes` (identity: world-aligned)."""

    center: tuple[float, float, float]
    radii: tuple[float, float, float]
    axes: tuple[tuple[float, float, float], ...] | None = None

    def _rotation(self) -> np.ndarray:
        if self.axes is None:
            return np.eye(3)
        rows = [_unit(r) for r in self.axes]
        return np.stack(rows)

    def distance(self, p: np.ndarray) -> np.ndarray:
        """(N,) first-order distance estimate (rho - 1) / |grad rho| with rho = |q / radii|."""
        q = (p - np.asarray(self.center)) @ self._rotation().T
        r = np.asarray(self.radii)
        k0 = np.linalg.norm(q / r, axis=1)
        k1 = np.linalg.norm(q / (r * r), axis=1)
        return np.where(k1 > 1e-12, k0 * (k0 - 1.0) / np.maximum(k1, 1e-12), -min(self.radii))

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        extent = np.abs(self._rotation().T) @ np.asarray(self.radii)
        c = np.asarray(self.center)
        return c - extent, c + extent


@dataclass(frozen=True)
class RoundedBox:
    """Box with half-sizes `half` along the rows of `axes`, edges rounded with radius `rounding`."""

    center: tuple[float, float, float]
    half: tuple[float, float, float]
    axes: tuple[tuple[float, float, float], ...]
    rounding: float

    def distance(self, p: np.ndarray) -> np.ndarray:
        """(N,) signed distance of points (N, 3)."""
        rot = np.stack([_unit(r) for r in self.axes])
        q = np.abs((p - np.asarray(self.center)) @ rot.T) - (np.asarray(self.half) - self.rounding)
        outside = np.linalg.norm(np.maximum(q, 0.0), axis=1)
        inside = np.minimum(q.max(axis=1), 0.0)
        return outside + inside - self.rounding

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        rot = np.stack([_unit(r) for r in self.axes])
        extent = np.abs(rot.T) @ np.asarray(self.half)
        c = np.asarray(self.center)
        return c - extent, c + extent


Primitive = RoundCone | Ellipsoid | RoundedBox


@dataclass(frozen=True)
class Carve:
    """`base` with `tool` smoothly cut away (blend radius k): eye sockets, the mouth line."""

    base: object
    tool: object
    k: float

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return self.base.bounds()


@dataclass(frozen=True)
class Blend:
    """Smooth union of child nodes with blend radius k (children folded left to right)."""

    children: tuple
    k: float

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        boxes = [child.bounds() for child in self.children]
        return np.min([b[0] for b in boxes], axis=0), np.max([b[1] for b in boxes], axis=0)


Node = Primitive | Blend | Carve


def evaluate(node: Node, points: np.ndarray) -> np.ndarray:
    """(N,) field value of a node tree at points (N, 3); `FAR` where the node is culled."""
    out = np.full(len(points), FAR)
    lo, hi = node.bounds()
    inside = np.all((points >= lo - CULL_MARGIN) & (points <= hi + CULL_MARGIN), axis=1)
    if not inside.any():
        return out
    sub = points[inside]
    if isinstance(node, Blend):
        value = evaluate(node.children[0], sub)
        for child in node.children[1:]:
            value = smooth_min(value, evaluate(child, sub), node.k)
    elif isinstance(node, Carve):
        value = -smooth_min(-evaluate(node.base, sub), evaluate(node.tool, sub), node.k)
    else:
        value = np.minimum(node.distance(sub), FAR)
    out[inside] = value
    return out


def mirror_node(node: Node) -> Node:
    """The same node reflected through the plane x = 0 (left body part -> right body part)."""
    flip = np.array([-1.0, 1.0, 1.0])

    def m(v):
        return None if v is None else tuple(np.asarray(v, dtype=np.float64) * flip)

    if isinstance(node, Blend):
        return Blend(tuple(mirror_node(c) for c in node.children), node.k)
    if isinstance(node, Carve):
        return Carve(mirror_node(node.base), mirror_node(node.tool), node.k)
    if isinstance(node, RoundCone):
        return RoundCone(m(node.a), m(node.b), node.ra, node.rb, m(node.squash_axis), node.squash)
    if isinstance(node, Ellipsoid):
        axes = None if node.axes is None else tuple(m(r) for r in node.axes)
        return Ellipsoid(m(node.center), node.radii, axes)
    return RoundedBox(m(node.center), node.half, tuple(m(r) for r in node.axes), node.rounding)


def symmetric_field(node: Node, points: np.ndarray) -> np.ndarray:
    """(N,) field averaged with its mirror image, so the surface is exactly left/right symmetric.

    Smooth unions are not associative, so a tree built from mirrored parts is symmetric only up to
    the fold order; averaging f(p) and f(mirror p) removes that last asymmetry.
    """
    mirrored = points * np.array([-1.0, 1.0, 1.0])
    return 0.5 * (evaluate(node, points) + evaluate(node, mirrored))
