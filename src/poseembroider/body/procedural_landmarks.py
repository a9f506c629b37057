"""Anatomical vertices and face landmarks of the procedural body.

`smplx` reads 21 fixed vertex indices as extra keypoints (nose, eyes, ears, toes, heels, fingertips;
`RESERVED_VERTEX_IDS`, the table `smplx.vertex_ids.vertex_ids['smplx']`) and 51 + 79 x 17 face
landmarks given as (triangle, barycentric) pairs. Here each reserved keypoint is the vertex nearest
to its anatomical spot, moved to its reserved index by a vertex permutation; the landmarks are where
rays towards the face hit the skin: 51 iBUG-68 inner points (brows, nose, eyes, lips; subject's
right = -x first) and, per head yaw, the 17 jaw-contour points seen at that yaw.
"""

from __future__ import annotations

import numpy as np

from poseembroider.body.joints import JOINT_INDEX
from poseembroider.body.procedural_skeleton import FLOOR_Y, finger_chain

RESERVED_VERTEX_IDS: dict[str, int] = {
    "nose": 9120,
    "reye": 9929,
    "leye": 9448,
    "rear": 616,
    "lear": 6,
    "rthumb": 8079,
    "rindex": 7669,
    "rmiddle": 7794,
    "rring": 7905,
    "rpinky": 8022,
    "lthumb": 5361,
    "lindex": 4933,
    "lmiddle": 5058,
    "lring": 5169,
    "lpinky": 5286,
    "LBigToe": 5770,
    "LSmallToe": 5780,
    "LHeel": 8846,
    "RBigToe": 8463,
    "RSmallToe": 8474,
    "RHeel": 8635,
}
"""The 21 vertex indices smplx 0.1.28 always reads (its `vertex_ids['smplx']`)."""

_MIRROR = np.array([-1.0, 1.0, 1.0])


def _front_most(vertices: np.ndarray, centre_xy: tuple[float, float], radius: float) -> int:
    """Vertex with the largest z among those within `radius` of (x, y) in the frontal plane."""
    near = np.linalg.norm(vertices[:, :2] - np.asarray(centre_xy), axis=1) < radius
    candidates = np.flatnonzero(near)
    return int(candidates[np.argmax(vertices[candidates, 2])])


def _nearest(vertices: np.ndarray, point: np.ndarray) -> int:
    return int(np.argmin(np.linalg.norm(vertices - point, axis=1)))


def reserved_vertex_choice(vertices: np.ndarray, joints: np.ndarray) -> dict[str, int]:
    """Current index of the vertex that should carry each reserved keypoint (name -> index)."""
    choice: dict[str, int] = {}
    eye = joints[JOINT_INDEX["left_eye_smplhf"]]
    choice["nose"] = _front_most(vertices, (0.0, 0.27), 0.004)
    for prefix, sign in (("l", 1.0), ("r", -1.0)):
        choice[f"{prefix}eye"] = _front_most(vertices, (sign * eye[0], eye[1]), 0.008)
        side = np.flatnonzero(
            (sign * vertices[:, 0] > 0) & (np.linalg.norm(vertices[:, 1:] - [0.298, -0.012], axis=1) < 0.012)
        )
        choice[f"{prefix}ear"] = int(side[np.argmax(sign * vertices[side, 0])])
        flip = np.array([sign, 1.0, 1.0])
        for finger in ("thumb", "index", "middle", "ring", "pinky"):
            choice[f"{prefix}{finger}"] = _nearest(vertices, finger_chain(finger)[3] * flip)
    for prefix, side in (("L", "left"), ("R", "right")):
        ball, ankle = joints[JOINT_INDEX[f"{side}_foot"]], joints[JOINT_INDEX[f"{side}_ankle"]]
        sign = 1.0 if side == "left" else -1.0
        medial, lateral = ball[0] - sign * 0.022, ball[0] + sign * 0.036
        choice[f"{prefix}BigToe"] = _nearest(vertices, np.array([medial, FLOOR_Y + 0.006, ball[2] + 0.066]))
        choice[f"{prefix}SmallToe"] = _nearest(
            vertices, np.array([lateral, FLOOR_Y + 0.006, ball[2] + 0.040])
        )
        choice[f"{prefix}Heel"] = _nearest(vertices, np.array([ankle[0], FLOOR_Y + 0.008, ankle[2] - 0.072]))
    if len(set(choice.values())) != len(choice):
        raise RuntimeError("two reserved keypoints landed on the same vertex")
    return choice


def reserved_permutation(num_vertices: int, choice: dict[str, int]) -> np.ndarray:
    """(V,) new -> old vertex order that puts each chosen vertex at its reserved index.

    All other vertices keep their relative order in the free slots.
    """
    order = -np.ones(num_vertices, dtype=np.int64)
    for name, old in choice.items():
        order[RESERVED_VERTEX_IDS[name]] = old
    free_slots = np.flatnonzero(order < 0)
    order[free_slots] = np.setdiff1d(np.arange(num_vertices), list(choice.values()))
    return order


def ray_hits(
    vertices: np.ndarray, faces: np.ndarray, origins: np.ndarray, directions: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Farthest intersection of each ray (R,) with the mesh: face index (R,) and barycentrics (R, 3).

    Rays start inside the head and point outwards, so the farthest hit is the outer skin.
    Moller-Trumbore test, vectorised over triangles.
    """
    tri = vertices[faces]
    e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    face_index = np.empty(len(origins), dtype=np.int64)
    bary = np.empty((len(origins), 3))
    for r, (o, d) in enumerate(zip(origins, directions, strict=True)):
        p = np.cross(d, e2)
        det = (e1 * p).sum(axis=1)
        ok = np.abs(det) > 1e-12
        inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
        s = o - tri[:, 0]
        u = (s * p).sum(axis=1) * inv
        q = np.cross(s, e1)
        v = (q @ d) * inv
        t = (q * e2).sum(axis=1) * inv
        hit = ok & (u >= 0) & (v >= 0) & (u + v <= 1) & (t > 0)
        if not hit.any():
            raise RuntimeError(f"landmark ray {r} misses the head")
        k = np.flatnonzero(hit)[np.argmax(t[hit])]
        face_index[r] = k
        bary[r] = (1.0 - u[k] - v[k], u[k], v[k])
    return face_index, np.clip(bary, 0.0, 1.0) / np.clip(bary, 0.0, 1.0).sum(axis=1, keepdims=True)


def _static_landmark_points() -> np.ndarray:
    """(51, 2) frontal (x, y) positions of iBUG landmarks 17-67 on this face (m)."""
    brow = [(-0.052, 0.322), (-0.044, 0.329), (-0.034, 0.332), (-0.024, 0.331), (-0.014, 0.327)]
    brows = brow + [(-x, y) for x, y in reversed(brow)]
    nose = [(0.0, 0.305), (0.0, 0.293), (0.0, 0.281), (0.0, 0.270)]
    nostrils = [(-0.014, 0.258), (-0.007, 0.255), (0.0, 0.254), (0.007, 0.255), (0.014, 0.258)]
    right_eye = [
        (-0.045, 0.305),
        (-0.036, 0.310),
        (-0.026, 0.310),
        (-0.018, 0.304),
        (-0.026, 0.300),
        (-0.036, 0.300),
    ]
    left_eye = [
        (0.018, 0.304),
        (0.026, 0.310),
        (0.036, 0.310),
        (0.045, 0.305),
        (0.036, 0.300),
        (0.026, 0.300),
    ]
    outer_lip = [
        (-0.024, 0.229),
        (-0.016, 0.236),
        (-0.006, 0.239),
        (0.0, 0.238),
        (0.006, 0.239),
        (0.016, 0.236),
        (0.024, 0.229),
        (0.016, 0.221),
        (0.006, 0.217),
        (0.0, 0.216),
        (-0.006, 0.217),
        (-0.016, 0.221),
    ]
    inner_lip = [
        (-0.020, 0.229),
        (-0.007, 0.231),
        (0.0, 0.231),
        (0.007, 0.231),
        (0.020, 0.229),
        (0.007, 0.227),
        (0.0, 0.227),
        (-0.007, 0.227),
    ]
    return np.array(brows + nose + nostrils + right_eye + left_eye + outer_lip + inner_lip)


def static_landmarks(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """lmk_faces_idx (51,) int64 and lmk_bary_coords (51, 3): rays along +z through the face points."""
    xy = _static_landmark_points()
    origins = np.column_stack([xy, np.zeros(len(xy))])
    directions = np.tile([0.0, 0.0, 1.0], (len(xy), 1))
    return ray_hits(vertices, faces, origins, directions)


def dynamic_landmarks(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """dynamic_lmk_faces_idx (79, 17) and dynamic_lmk_bary_coords (79, 17, 3): jaw contour per yaw.

    smplx picks row r for a head yaw of -r degrees (r <= 39) or r - 39 degrees (r >= 40); at yaw psi
    the camera sees the head from azimuth -psi, so the 17 contour points (subject's right ear, down
    the jaw, chin, up to the left ear) are spread around that azimuth. Heights follow the jaw line:
    chin bottom in the middle, ear level at the sides.
    """
    rows = np.arange(79)
    view_azimuth = np.where(rows <= 39, rows, -(rows - 39)).astype(np.float64)
    spread = np.linspace(-80.0, 80.0, 17)
    azimuth = np.clip(view_azimuth[:, None] + spread[None], -75.0, 75.0)
    height = 0.188 + 0.100 * (np.abs(azimuth) / 90.0) ** 1.5
    radians = np.deg2rad(azimuth).ravel()
    origins = np.column_stack([np.zeros_like(radians), height.ravel(), np.full_like(radians, 0.0)])
    directions = np.column_stack([np.sin(radians), np.zeros_like(radians), np.cos(radians)])
    head = np.flatnonzero(vertices[faces].mean(axis=1)[:, 1] > 0.15)
    face_index, bary = ray_hits(vertices, faces[head], origins, directions)
    return head[face_index].reshape(79, 17), bary.reshape(79, 17, 3)
