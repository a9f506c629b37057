"""Polygonising the implicit body: three grids zipped together, relaxed onto the surface.

A single grid cannot serve the whole body within the SMPL-X vertex budget (~10.5k vertices):
fingers need ~6 mm cells, the face ~1 cm, the torso and limbs are fine with 1.8 cm. So the body
is meshed (surface nets, `procedural_isosurface`) on a coarse grid symmetric about x = 0 up to a
cut plane across each forearm and one across the neck; the head on a finer symmetric grid; the left
hand on a fine anisotropic grid, the right hand being its mirror image. Each cut is closed by a
strip of triangles ("zipper") between the two boundary loops. Tangential Laplacian relaxation then
evens out the vertices, Newton steps project them back onto the zero level set, and a few edge flips
unfold the triangles that still face the wrong way. The mesh is closed, consistently oriented
(normals point out) and exactly left/right symmetric (with a known mirror map).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from poseembroider.body.joints import JOINT_INDEX
from poseembroider.body.procedural_anatomy import body_field_tree
from poseembroider.body.procedural_isosurface import (
    adjacency,
    boundary_loops,
    make_manifold,
    surface_nets,
    triangulate_quads,
    vertex_normals,
)
from poseembroider.body.procedural_sdf import Node, evaluate, symmetric_field
from poseembroider.body.procedural_skeleton import rest_joints

BODY_CELL = 0.0180
"""Cell size (m) of the grid for everything but the hands."""

HAND_CELLS = (0.0095, 0.0062, 0.0062)
"""Cell sizes (m) of the hand grid along x (the fingers), y (palm thickness) and z (hand width)."""

HEAD_CELL = 0.0100
"""Cell size (m) of the head grid (the face needs finer detail than the body)."""

FOREARM_CUT = 0.62
"""Where the hand mesh meets the body mesh, as a fraction of the elbow -> wrist segment."""

NECK_CUT_Y = 0.175
"""Height (m) of the horizontal plane where the head mesh meets the body mesh."""

_MIRROR = np.array([-1.0, 1.0, 1.0])


@dataclass(frozen=True)
class _Region:
    """One polygonised region: vertices (M, 3), faces (F, 3), mirror map (M,) or None."""

    vertices: np.ndarray
    faces: np.ndarray
    mirror: np.ndarray | None


@dataclass(frozen=True)
class Mesh:
    """Triangle mesh: vertices (V, 3) float64, faces (F, 3) int64 (counter-clockwise seen from outside)."""

    vertices: np.ndarray
    faces: np.ndarray


def _loop_angles(points: np.ndarray, centre: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """(n,) angle of each point around `axis` through `centre` (reference direction arbitrary)."""
    helper = np.array([0.0, 1.0, 0.0]) if abs(axis[1]) < 0.9 else np.array([1.0, 0.0, 0.0])
    e1 = np.cross(axis, helper)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(axis, e1)
    q = points - centre
    return np.arctan2(q @ e2, q @ e1)


def _wrap(angle: np.ndarray) -> np.ndarray:
    return np.mod(angle + np.pi, 2 * np.pi) - np.pi


def _sweep(angles: np.ndarray) -> tuple[float, np.ndarray, int]:
    """Sense (+1/-1) of a closed loop's turn, and its angles made increasing from the smallest one.

    Returns the sense, the (n + 1,) cumulative angles starting at the loop's smallest angle in
    [0, 2 pi) and closing one full turn later, and the index of that starting vertex.
    """
    sense = float(np.sign(_wrap(np.diff(np.append(angles, angles[0]))).sum()))
    angles = sense * angles
    start = int(np.argmin(np.mod(angles, 2 * np.pi)))
    rolled = np.roll(angles, -start)
    steps = _wrap(np.diff(np.append(rolled, rolled[0])))
    return sense, np.mod(rolled[0], 2 * np.pi) + np.concatenate([[0.0], np.cumsum(steps)]), start


def zip_loops(
    vertices: np.ndarray, outer: np.ndarray, inner: np.ndarray, centre: np.ndarray, axis: np.ndarray
) -> np.ndarray:
    """Triangle strip (n + m, 3) closing the gap between two boundary loops around one tube.

    `outer` is the loop of the part on the -axis side, `inner` the one on the +axis side, both in
    their faces' half-edge order (they run in opposite senses around the axis). Vertices are merged
    by angle around the axis, which works because a forearm cross-section is star-shaped around it.
    The strip's triangles use each boundary edge in the reverse direction of its face, so the
    result is consistently oriented.
    """
    a, b = outer[::-1], inner
    sense_a, ta, start_a = _sweep(_loop_angles(vertices[a], centre, axis))
    sense_b, tb, start_b = _sweep(_loop_angles(vertices[b], centre, axis))
    if sense_a != sense_b:
        raise ValueError("the two loops do not run in the same sense around the tube")
    a, b = np.roll(a, -start_a), np.roll(b, -start_b)
    n, m = len(a), len(b)
    i = j = 0
    triangles = []
    while i < n or j < m:
        if j == m or (i < n and ta[i + 1] <= tb[j + 1]):
            triangles.append((a[i % n], a[(i + 1) % n], b[j % m]))
            i += 1
        else:
            triangles.append((a[i % n], b[(j + 1) % m], b[j % m]))
            j += 1
    return np.array(triangles, dtype=np.int64)


def _grid(
    lo: np.ndarray, hi: np.ndarray, spacing: np.ndarray, symmetric_x: bool
) -> tuple[np.ndarray, tuple[int, ...]]:
    """Grid origin and shape covering [lo, hi]; with `symmetric_x` the x samples mirror about x = 0."""
    if symmetric_x:
        half = np.ceil(max(abs(lo[0]), abs(hi[0])) / spacing[0]) + 0.5
        lo = lo.copy()
        lo[0] = -half * spacing[0]
        hi = hi.copy()
        hi[0] = half * spacing[0]
    shape = tuple(int(n) for n in np.round((hi - lo) / spacing).astype(int) + 1)
    return lo, shape


def _sample(tree: Node, origin: np.ndarray, shape: tuple[int, ...], spacing: np.ndarray) -> np.ndarray:
    axes = [origin[d] + spacing[d] * np.arange(shape[d]) for d in range(3)]
    points = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    return symmetric_field(tree, points).reshape(shape)


def _forearm_cut() -> tuple[np.ndarray, np.ndarray]:
    """Point (3,) and unit normal (3,) of the left forearm cut plane (normal towards the hand)."""
    joints = rest_joints()
    elbow, wrist = joints[JOINT_INDEX["left_elbow"]], joints[JOINT_INDEX["left_wrist"]]
    axis = (wrist - elbow) / np.linalg.norm(wrist - elbow)
    return elbow + FOREARM_CUT * (wrist - elbow), axis


def _neck_cut() -> tuple[np.ndarray, np.ndarray]:
    """Point (3,) and unit normal (3,) of the neck cut plane (normal towards the head)."""
    return np.array([0.0, NECK_CUT_Y, -0.004]), np.array([0.0, 1.0, 0.0])


def _compact(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Drop unreferenced vertices; returns vertices, re-indexed faces and the kept old indices."""
    used = np.unique(faces)
    remap = -np.ones(len(vertices), dtype=np.int64)
    remap[used] = np.arange(len(used))
    return vertices[used], remap[faces], used


def _side(points: np.ndarray, cut: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """(N,) True for points on the normal side of a cut plane."""
    return (points - cut[0]) @ cut[1] >= 0.0


def _mesh_region(
    tree: Node, lo: np.ndarray, hi: np.ndarray, spacing: np.ndarray, symmetric_x: bool, keep
) -> _Region:
    """Surface nets of the field inside a box, keeping the quads whose four vertices pass `keep`.

    Selecting whole quads by their vertices keeps every boundary vertex on its own side of a cut
    plane, so the two loops zipped across the plane never interleave.

    On grids symmetric about x = 0 the region also gets its mirror map (cell (i, j, k) reflects to
    cell (nx - 2 - i, j, k)).
    """
    origin, shape = _grid(lo, hi, spacing, symmetric_x)
    values = make_manifold(_sample(tree, origin, shape, spacing), symmetric_x)
    vertices, quads, cells = surface_nets(values, origin, spacing)
    inside_cut = keep(vertices).astype(np.int64)
    faces = triangulate_quads(vertices, quads[inside_cut[quads].sum(axis=1) == 4])
    vertices_kept, faces, kept = _compact(vertices, faces)
    if not symmetric_x:
        return _Region(vertices_kept, faces, None)
    lookup = -np.ones(tuple(np.array(shape) - 1), dtype=np.int64)
    lookup[tuple(cells.T)] = np.arange(len(cells))
    mirrored_cells = cells.copy()
    mirrored_cells[:, 0] = shape[0] - 2 - cells[:, 0]
    mirror = lookup[tuple(mirrored_cells.T)]
    remap = -np.ones(len(cells), dtype=np.int64)
    remap[kept] = np.arange(len(kept))
    return _Region(vertices_kept, faces, remap[mirror[kept]])


def _assemble(tree: Node) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Body + head + both hands + zippers: vertices (V, 3), faces (F, 3), mirror map (V,)."""
    left_cut = _forearm_cut()
    right_cut = (left_cut[0] * _MIRROR, left_cut[1] * _MIRROR)
    neck_cut = _neck_cut()
    lo, hi = tree.bounds()
    body_spacing = np.full(3, BODY_CELL)
    body = _mesh_region(
        tree,
        lo - 2 * BODY_CELL,
        hi + 2 * BODY_CELL,
        body_spacing,
        True,
        lambda c: ~_side(c, left_cut) & ~_side(c, right_cut) & ~_side(c, neck_cut),
    )
    head_spacing = np.full(3, HEAD_CELL)
    head = _mesh_region(
        tree,
        np.array([-0.11, NECK_CUT_Y - 0.03, -0.13]),
        hi + 2 * HEAD_CELL,
        head_spacing,
        True,
        lambda c: _side(c, neck_cut),
    )
    hand_spacing = np.asarray(HAND_CELLS)
    hand_lo = left_cut[0] + np.array([-0.03, -0.08, -0.09])
    hand_hi = np.array([hi[0] + 2 * hand_spacing[0], left_cut[0][1] + 0.07, left_cut[0][2] + 0.13])
    hand = _mesh_region(tree, hand_lo, hand_hi, hand_spacing, False, lambda c: _side(c, left_cut))
    hand_v, hand_f = hand.vertices, hand.faces
    parts_v = [body.vertices, head.vertices, hand_v, hand_v * _MIRROR]
    offsets = np.cumsum([0] + [len(v) for v in parts_v])
    nh = len(hand_v)
    vertices = np.concatenate(parts_v)
    mirror = np.concatenate(
        [body.mirror, head.mirror + offsets[1], np.arange(nh) + offsets[3], np.arange(nh) + offsets[2]]
    )
    body_loops = boundary_loops(body.faces)
    if len(body_loops) != 3:
        raise RuntimeError(f"expected 3 body boundary loops (forearms, neck), got {len(body_loops)}")
    body_loops.sort(key=lambda loop: body.vertices[loop, 0].mean())
    right_loop, neck_loop, left_loop = body_loops
    (hand_loop,), (head_loop,) = boundary_loops(hand_f), boundary_loops(head.faces)
    left_zip = zip_loops(vertices, left_loop, hand_loop + offsets[2], *left_cut)
    neck_zip = zip_loops(vertices, neck_loop, head_loop + offsets[1], *neck_cut)
    faces = np.concatenate(
        [
            body.faces,
            head.faces + offsets[1],
            hand_f + offsets[2],
            hand_f[:, ::-1] + offsets[3],
            left_zip,
            mirror[left_zip][:, ::-1],
            neck_zip,
        ]
    )
    return vertices, faces, mirror


def project_to_surface(tree: Node, points: np.ndarray, steps: int = 2) -> np.ndarray:
    """Newton steps p <- p - f(p) grad f / |grad f|^2 onto the zero level set, points (N, 3).

    Uses the plain (not mirror-averaged) field with forward differences for speed: the result is
    symmetrised afterwards anyway.
    """
    p = points.copy()
    eps = 1e-5
    for _ in range(steps):
        f = evaluate(tree, p)
        g = np.stack([(evaluate(tree, p + eps * np.eye(3)[d]) - f) / eps for d in range(3)], axis=1)
        p -= (f / np.maximum((g * g).sum(axis=1), 1e-12))[:, None] * g
    return p


def relax(
    tree: Node, vertices: np.ndarray, faces: np.ndarray, iterations: int = 5, rate: float = 0.5
) -> np.ndarray:
    """Tangential uniform-Laplacian smoothing, each step followed by projection onto the surface.

    Evens out vertex spacing (surface-nets vertices cluster, the zipper strips are thin) without
    shrinking the body: moves along the surface only, then snaps back onto the implicit surface.
    """
    adj = adjacency(len(vertices), faces)
    degree = np.asarray(adj.sum(axis=1)).ravel()
    v = vertices.copy()
    for _ in range(iterations):
        normals = vertex_normals(v, faces)
        delta = adj @ v / degree[:, None] - v
        delta -= (delta * normals).sum(axis=1, keepdims=True) * normals
        v = project_to_surface(tree, v + rate * delta, steps=1)
    return project_to_surface(tree, v, steps=2)


def _surface_normals(tree: Node, points: np.ndarray) -> np.ndarray:
    """(N, 3) unit field gradients: the true outward normals of the implicit surface."""
    eps = 1e-5
    f0 = evaluate(tree, points)
    grad = np.stack([(evaluate(tree, points + eps * np.eye(3)[d]) - f0) / eps for d in range(3)], axis=1)
    return grad / np.maximum(np.linalg.norm(grad, axis=1, keepdims=True), 1e-15)


def _face_alignment(vertices: np.ndarray, faces: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(F,) cosine between each face normal and the mean reference normal of its vertices."""
    tri = vertices[faces]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    ref = reference[faces].sum(axis=1)
    norms = np.linalg.norm(normal, axis=1) * np.linalg.norm(ref, axis=1)
    return (normal * ref).sum(axis=1) / np.maximum(norms, 1e-15)


def flip_folded_edges(
    tree: Node, vertices: np.ndarray, faces: np.ndarray, threshold: float = 0.3, rounds: int = 4
) -> np.ndarray:
    """Edge flips that unfold triangles facing away from the surface normal (zipper seams, webs).

    For a badly aligned face, each of its edges is tried: the two faces (a, b, c) and (b, a, d)
    become (a, d, c) and (d, b, c), kept if the worse of the two alignments improves. Orientation
    stays consistent and the vertex set is unchanged.
    """
    faces = faces.copy()
    reference = _surface_normals(tree, vertices)
    for _ in range(rounds):
        bad = np.flatnonzero(_face_alignment(vertices, faces, reference) < threshold)
        if len(bad) == 0:
            break
        half = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
        owner = dict(zip(map(tuple, half.tolist()), np.tile(np.arange(len(faces)), 3).tolist(), strict=True))
        for k in bad:
            a, b, c = faces[k]
            for u, w, opposite in ((a, b, c), (b, c, a), (c, a, b)):
                other = owner.get((w, u))
                if other is None:
                    continue
                d = [x for x in faces[other] if x not in (u, w)][0]
                if (opposite, d) in owner or (d, opposite) in owner:
                    continue
                trial = np.array([[u, d, opposite], [d, w, opposite]])
                before = _face_alignment(vertices, faces[[k, other]], reference).min()
                if _face_alignment(vertices, trial, reference).min() > before:
                    faces[k], faces[other] = trial
                    break
    return faces


def symmetrize(vertices: np.ndarray, mirror: np.ndarray) -> np.ndarray:
    """Average each vertex with its mirror partner's reflection: exact left/right symmetry."""
    return 0.5 * (vertices + vertices[mirror] * _MIRROR)


def build_body_mesh() -> tuple[Mesh, np.ndarray]:
    """The procedural body surface in the rest pose and its mirror map (V,) (left <-> right vertex).

    Returns a closed, consistently outward-oriented triangle mesh of ~10.5k vertices.
    """
    tree = body_field_tree()
    vertices, faces, mirror = _assemble(tree)
    vertices = relax(tree, vertices, faces)
    faces = flip_folded_edges(tree, vertices, faces)
    vertices = symmetrize(vertices, mirror)
    return Mesh(vertices, faces), mirror
