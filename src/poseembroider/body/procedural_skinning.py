"""Skinning weights and joint regressor of the procedural body, from the rest skeleton's geometry.

Weights are a "stick-breaking" distribution down the kinematic tree: every vertex starts with mass
1 at the pelvis, and at each joint a smooth ramp across a plane through the joint (normal along the
bone, or the bisector of the two bones meeting there) decides how much of the mass passes on to
the child joint. Across a knee, for example, the mass moves from `left_hip` (the thigh bone's
joint) to `left_knee` (the shin's) over +-5 cm around the knee, so a bent knee bends the skin
smoothly. Because LBS moves a vertex with the joint whose bone it lies on, the ramp is centred on the
joint: half the skin at the joint plane follows the child bone.

Branches are chosen by continuous factors, never by hard labels, so the weights are continuous:
the side (left/right) of a leg is taken from sign(x) but the leg's share fades to zero at the
midline (the crotch stays with the pelvis); the neck and the collars branch off spine3 in
separate zones; a finger takes its share only where its (mesh-diffused) membership clearly wins,
so the webs between fingers stay with the wrist. Result: (V, 55) non-negative weights, rows summing
to 1, at most 4 joints per vertex, all on one chain of the tree.

The joint regressor writes each rest joint as a convex combination of nearby skin vertices
(non-negative least squares), so joints follow the surface when the shape changes.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import nnls

from poseembroider.body.joints import JOINT_INDEX, JOINT_NAMES, NUM_JOINTS, PARENTS
from poseembroider.body.procedural_isosurface import adjacency
from poseembroider.body.procedural_skeleton import FINGERS, bone_end_points

MAX_INFLUENCES = 4

CROTCH_Y = -0.53
"""Height (m) of the crotch of the procedural body, where the inner thighs meet."""


def smooth_ramp(s: np.ndarray, width: float) -> np.ndarray:
    """C1 ramp from 0 (s <= -width) to 1 (s >= width), 0.5 at s = 0 (smoothstep)."""
    t = np.clip(0.5 + s / (2.0 * width), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _j(name: str) -> int:
    return JOINT_INDEX[name]


class _Planes:
    """Blend planes of the rest skeleton: ramp value of every vertex across joint j's plane."""

    def __init__(self, vertices: np.ndarray, joints: np.ndarray):
        self.v = vertices
        self.joints = joints
        self.ends = bone_end_points(joints)

    def bone(self, j: int) -> np.ndarray:
        """Unit direction of the bone driven by joint j (towards its main child or its end point).

        The main child of a wrist is the middle finger, of spine3 the neck, of the pelvis spine1.
        """
        kids = [c for c, p in enumerate(PARENTS) if p == j]
        main = [c for c in kids if "middle" in JOINT_NAMES[c] or JOINT_NAMES[c] in ("neck", "spine1")]
        target = self.joints[(main or kids)[0]] if kids else self.ends[j]
        return _unit(target - self.joints[j])

    def ramp(self, j: int, width: float, normal: np.ndarray | None = None) -> np.ndarray:
        """(V,) 0 before joint j, 1 past it (+-width), across a plane through the joint.

        The default plane normal is the bisector of the parent's and j's bones.
        """
        if normal is None:
            normal = _unit(self.bone(PARENTS[j]) + self.bone(j))
        return smooth_ramp((self.v - self.joints[j]) @ _unit(normal), width)


def _chain(weights: np.ndarray, mass: np.ndarray, chain: list[tuple[int, np.ndarray | None]]) -> np.ndarray:
    """Distribute `mass` (V,) down a chain [(joint, ramp past that joint), ...] into `weights`.

    The first joint already holds the mass (its ramp is unused); each later joint takes the share
    its ramp lets through, the rest stays with the previous joint. Returns the (V,) mass that
    reached the last joint (already added to it), for branches that continue from there.
    """
    for (joint, _), (_, ramp_next) in zip(chain[:-1], chain[1:], strict=True):
        weights[:, joint] += mass * (1.0 - ramp_next)
        mass = mass * ramp_next
    weights[:, chain[-1][0]] += mass
    return mass


def _finger_membership(
    vertices: np.ndarray, faces: np.ndarray, chains: dict[str, np.ndarray], side: float, iterations: int = 16
) -> dict[str, np.ndarray]:
    """(V,) factor per finger: 1 on that finger, fading to 0 on the webs to the neighbouring fingers.

    Each vertex is first labelled with its nearest finger axis; the labels are then diffused over
    the mesh (a few Laplacian averaging steps) into soft memberships mu that sum to 1. A finger's
    factor ramps from 0 at mu = 0.5 (the web, where two fingers meet) to 1 at mu = 1, so at most one
    finger claims a vertex and the factor is continuous across the webs.
    """
    names = list(chains)
    distance = np.stack([_segment_distance(vertices, chains[n] * [side, 1, 1]) for n in names], axis=1)
    mu = np.eye(len(names))[np.argmin(distance, axis=1)]
    adj = adjacency(len(vertices), faces)
    degree = np.asarray(adj.sum(axis=1)).ravel()[:, None]
    for _ in range(iterations):
        mu = 0.5 * mu + 0.5 * (adj @ mu) / degree
    factor = smooth_ramp(mu - 0.7, 0.2)
    return {n: factor[:, k] for k, n in enumerate(names)}


def _segment_distance(points: np.ndarray, polyline: np.ndarray) -> np.ndarray:
    """(N,) distance from points (N, 3) to a polyline (K, 3)."""
    best = np.full(len(points), np.inf)
    for a, b in zip(polyline[:-1], polyline[1:], strict=True):
        ab = b - a
        t = np.clip((points - a) @ ab / (ab @ ab), 0.0, 1.0)
        best = np.minimum(best, np.linalg.norm(points - (a + t[:, None] * ab), axis=1))
    return best


def _arm_and_hand(
    weights: np.ndarray, mass: np.ndarray, planes: _Planes, side: str, finger_chains, faces: np.ndarray
) -> None:
    """Spread the mass of one collar over collar, shoulder, elbow, wrist and the five fingers."""
    sign = 1.0 if side == "left" else -1.0
    collar, shoulder, elbow, wrist = (_j(f"{side}_{n}") for n in ("collar", "shoulder", "elbow", "wrist"))
    # The shoulder plane leans outwards at the bottom: the deltoid follows the arm, the armpit and
    # the side of the chest stay with the torso.
    arm = [
        (collar, None),
        (shoulder, planes.ramp(shoulder, 0.055, normal=np.array([sign, 0.4, 0.0]))),
        (elbow, planes.ramp(elbow, 0.045)),
        (wrist, planes.ramp(wrist, 0.028)),
    ]
    hand_mass = _chain(weights, mass, arm)
    membership = _finger_membership(planes.v, faces, finger_chains, sign)
    for finger in FINGERS:
        j1, j2, j3 = (_j(f"{side}_{finger}{k}") for k in (1, 2, 3))
        width = 0.016 if finger == "thumb" else 0.010
        finger_mass = hand_mass * planes.ramp(j1, width, normal=planes.bone(j1)) * membership[finger]
        weights[:, wrist] -= finger_mass
        _chain(weights, finger_mass, [(j1, None), (j2, planes.ramp(j2, 0.010)), (j3, planes.ramp(j3, 0.009))])


def skinning_weights(
    vertices: np.ndarray, faces: np.ndarray, joints: np.ndarray, finger_chains: dict[str, np.ndarray]
) -> np.ndarray:
    """(V, 55) LBS weights of the rest-pose mesh (vertices (V, 3), faces (F, 3)) for joints (55, 3).

    `finger_chains` holds, per finger, the (4, 3) left-hand polyline joint1 -> joint2 -> joint3 ->
    tip (the right hand is its mirror image).
    """
    planes = _Planes(vertices, joints)
    v, x = vertices, vertices[:, 0]
    w = np.zeros((len(v), NUM_JOINTS))
    # Legs branch off the root below the hip joints; their share fades towards the crotch, where
    # the two thighs meet (midline, at and just below crotch height).
    midline = smooth_ramp(np.abs(x) - 0.03 + 0.7 * (CROTCH_Y - v[:, 1]), 0.04)
    torso = np.ones(len(v))
    for side, sign in (("left", 1.0), ("right", -1.0)):
        hip, knee, ankle, foot = (_j(f"{side}_{n}") for n in ("hip", "knee", "ankle", "foot"))
        leg = planes.ramp(hip, 0.075, normal=planes.bone(hip)) * midline * (sign * x > 0)
        torso -= leg
        legs = [(hip, None), (knee, planes.ramp(knee, 0.05)), (ankle, planes.ramp(ankle, 0.035))]
        _chain(w, leg, legs + [(foot, planes.ramp(foot, 0.02))])
    # Spine: pelvis -> spine1 -> spine2 -> spine3, ramps across horizontal planes.
    up = np.array([0.0, 1.0, 0.0])
    spine = [(_j("pelvis"), None)] + [
        (_j(name), planes.ramp(_j(name), width, normal=up))
        for name, width in (("spine1", 0.06), ("spine2", 0.045), ("spine3", 0.045))
    ]
    chest = _chain(w, torso, spine)
    # At spine3 the mass branches into the neck/head (|x| < 8 cm at the base of the neck, all of
    # the head) and the two collars (|x| > 8 cm, above the armpits); the branches never overlap, so
    # no vertex mixes a collar with the neck.
    near_axis = 1.0 - smooth_ramp(np.abs(x) - 0.062, 0.018) * (1.0 - smooth_ramp(v[:, 1] - 0.21, 0.02))
    neck_mass = chest * planes.ramp(_j("neck"), 0.04) * near_axis
    w[:, _j("spine3")] -= neck_mass
    _neck_and_head(w, neck_mass, planes)
    for side, sign in (("left", 1.0), ("right", -1.0)):
        collar_mass = (
            (chest - neck_mass) * smooth_ramp(sign * x - 0.10, 0.02) * smooth_ramp(v[:, 1] + 0.01, 0.05)
        )
        w[:, _j("spine3")] -= collar_mass
        _arm_and_hand(w, collar_mass, planes, side, finger_chains, faces)
    return prune_weights(np.maximum(w, 0.0))


def _neck_and_head(weights: np.ndarray, mass: np.ndarray, planes: _Planes) -> None:
    """Neck -> head -> jaw: the head plane slopes from under the chin up to the occiput."""
    v = planes.v
    head = _j("head")
    g_head = smooth_ramp((v - [0.0, 0.215, -0.01]) @ _unit(np.array([0.0, 0.894, 0.447])), 0.025)
    weights[:, _j("neck")] += mass * (1.0 - g_head)
    mass = mass * g_head
    jaw_joint = planes.joints[_j("jaw")]
    below_mouth = smooth_ramp(0.226 - v[:, 1], 0.010)
    in_front = smooth_ramp(v[:, 2] - jaw_joint[2] + 0.01, 0.025)
    g_jaw = below_mouth * in_front
    weights[:, head] += mass * (1.0 - g_jaw)
    weights[:, _j("jaw")] += mass * g_jaw


def _chain_neighbours() -> list[set[int]]:
    """Per joint: itself, parent, grandparent, children and grandchildren (one chain of the tree)."""
    kids = [[c for c, p in enumerate(PARENTS) if p == j] for j in range(NUM_JOINTS)]
    out = []
    for j in range(NUM_JOINTS):
        near = {j}
        p = PARENTS[j]
        if p >= 0:
            near.add(p)
            if PARENTS[p] >= 0:
                near.add(PARENTS[p])
        for c in kids[j]:
            near.add(c)
            near.update(kids[c])
        out.append(near)
    return out


def prune_weights(weights: np.ndarray, max_influences: int = MAX_INFLUENCES) -> np.ndarray:
    """Keep the strongest joints on the dominant joint's chain (at most `max_influences`), renormalise.

    Guards the LBS invariants: no vertex is influenced by two unrelated bones (the other leg, the
    torso on a finger). The design above rarely needs it; tiny weights below 1e-4 are dropped too.
    """
    w = np.where(weights < 1e-4, 0.0, weights)
    allowed = np.zeros((NUM_JOINTS, NUM_JOINTS), dtype=bool)
    for j, near in enumerate(_chain_neighbours()):
        allowed[j, list(near)] = True
    w = w * allowed[np.argmax(w, axis=1)]
    if max_influences < NUM_JOINTS:
        cutoff = -np.sort(-w, axis=1)[:, max_influences - 1 : max_influences]
        w = np.where(w >= cutoff, w, 0.0)
    return w / w.sum(axis=1, keepdims=True)


def joint_regressor(vertices: np.ndarray, joints: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(55, V) non-negative rows summing to 1 with `J_regressor @ vertices == joints` (to ~1e-6 m).

    Each joint is written as a convex combination of skin vertices around it that are skinned to
    the joint or its tree neighbours (never a neighbouring finger or the other leg): the nearest 32,
    or more until the joint lies in their convex hull. Among exact solutions, NNLS with a small pull
    towards uniform weights spreads the row over that ring of vertices.
    """
    regressor = np.zeros((NUM_JOINTS, len(vertices)))
    kids = [[c for c, p in enumerate(PARENTS) if p == j] for j in range(NUM_JOINTS)]
    for j in range(NUM_JOINTS):
        family = [j] + kids[j] + ([PARENTS[j]] if PARENTS[j] >= 0 else [])
        candidates = np.flatnonzero(weights[:, family].sum(axis=1) > 0.2)
        candidates = candidates[np.argsort(np.linalg.norm(vertices[candidates] - joints[j], axis=1))]
        count = 32
        while True:
            near = candidates[:count]
            row, error = _convex_weights(vertices[near], joints[j])
            if error < 1e-5:
                break
            if count >= len(candidates):
                raise RuntimeError(f"joint {j} is not inside the skin around it")
            count = int(count * 1.5)
        regressor[j, near] = row
    return regressor


def _convex_weights(points: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, float]:
    """Non-negative weights (N,) summing to 1 reproducing target from points (N, 3); and the error (m)."""
    n = len(points)
    exact = 1e3
    a = np.vstack([exact * points.T, exact * np.ones((1, n)), 0.05 * np.eye(n)])
    b = np.concatenate([exact * target, [exact], 0.05 * np.full(n, 1.0 / n)])
    w, _ = nnls(a, b, maxiter=50 * n)
    w = w / w.sum()
    return w, float(np.linalg.norm(w @ points - target))
