"""A cheap, batched test for *gross* self-penetration: core capsules along the bones.

The body is approximated by 16 capsules (segments with a radius) between skeleton points of `BodySkeleton`:
the pelvis (hip to hip), the lower and upper torso (pelvis -> spine2 -> neck), the head (head joint -> head
centre), and for each side the upper arm, forearm, hand (wrist -> middle fingertip), thigh, shin and foot
(ankle -> big toe). The radii are **core** radii, about 45-70% of the procedural body's flesh radius at that
level (torso half-depth ~10 cm -> 7 cm, thigh ~7.5 cm -> 4.5 cm, shin ~5 cm -> 2.2 cm). A pose is flagged when
two non-adjacent capsules overlap, i.e. when the distance between their segments is below the sum of their
core radii (plus `margin`): the flesh of the two parts then interpenetrates by several centimetres. Touching
poses (hands on hips, arms crossed, hands on the thighs, cross-legged sitting, knees against the chest) stay
clear; a hand deep inside the torso, a forearm through the head, or legs passing through each other are
caught. The radii were tuned so that every key pose and every real CMU pose passes with the mean shape (with
random shapes about 1 in 100 CMU poses overlaps by a few millimetres at the shins); the lower legs are the
thinnest because mocap retargeted to another skeleton brings the feet close together.

Pairs that touch by construction are not tested: capsules sharing a joint, the pelvis / lower torso / thighs
around the hips, the upper torso with the head and the upper arms (the shoulders sit in the torso flesh), and
the two hands (clasped hands are common, and a hand through the other is not separable at this level of
detail). That leaves 102 pairs; the test is one segment-segment distance per pair, (N, 102), a few
microseconds per pose.
"""

from __future__ import annotations

from itertools import combinations

import torch

from poseembroider.datasets.synthetic.skeleton import BodySkeleton

__all__ = ["CAPSULES", "capsule_pairs", "penetration_depths", "segment_distances", "self_penetrating"]

CAPSULES: tuple[tuple[str, str, str, float], ...] = (
    # name, start point, end point, core radius (m)
    ("pelvis", "left_hip", "right_hip", 0.06),
    ("lower_torso", "pelvis", "spine2", 0.07),
    ("upper_torso", "spine2", "neck", 0.075),
    ("head", "head", "head_end", 0.07),
    ("left_upper_arm", "left_shoulder", "left_elbow", 0.035),
    ("right_upper_arm", "right_shoulder", "right_elbow", 0.035),
    ("left_forearm", "left_elbow", "left_wrist", 0.025),
    ("right_forearm", "right_elbow", "right_wrist", 0.025),
    ("left_hand", "left_wrist", "left_hand_end", 0.02),
    ("right_hand", "right_wrist", "right_hand_end", 0.02),
    ("left_thigh", "left_hip", "left_knee", 0.045),
    ("right_thigh", "right_hip", "right_knee", 0.045),
    ("left_shin", "left_knee", "left_ankle", 0.022),
    ("right_shin", "right_knee", "right_ankle", 0.022),
    ("left_foot", "left_ankle", "left_toe_end", 0.018),
    ("right_foot", "right_ankle", "right_toe_end", 0.018),
)
"""Core capsules: (name, start point, end point, radius in metres); points are `BodySkeleton.point_names`."""

_UNTESTED = {
    frozenset(p)
    for p in (
        ("pelvis", "lower_torso"),
        ("lower_torso", "left_thigh"),
        ("lower_torso", "right_thigh"),
        ("upper_torso", "head"),
        ("upper_torso", "left_upper_arm"),
        ("upper_torso", "right_upper_arm"),
        ("left_hand", "right_hand"),
    )
}


def capsule_pairs() -> list[tuple[int, int]]:
    """Indices (into `CAPSULES`) of the capsule pairs that are tested."""
    pairs = []
    for i, j in combinations(range(len(CAPSULES)), 2):
        a, b = CAPSULES[i], CAPSULES[j]
        if {a[1], a[2]} & {b[1], b[2]}:
            continue  # adjacent along the chain
        if frozenset((a[0], b[0])) in _UNTESTED:
            continue
        pairs.append((i, j))
    return pairs


def segment_distances(p1: torch.Tensor, q1: torch.Tensor, p2: torch.Tensor, q2: torch.Tensor) -> torch.Tensor:
    """Distances between segments [p1, q1] and [p2, q2], (..., 3) each -> (...).

    Closest points of two segments (clamped parameters, as in Ericson, Real-Time Collision Detection §5.1.9),
    with the degenerate (zero-length, parallel) cases handled by `torch.where` branches.
    """
    d1, d2, r = q1 - p1, q2 - p2, p1 - p2
    a = (d1 * d1).sum(-1)
    e = (d2 * d2).sum(-1)
    f = (d2 * r).sum(-1)
    c = (d1 * r).sum(-1)
    b = (d1 * d2).sum(-1)
    eps = 1e-12
    point1, point2 = a <= eps, e <= eps
    a_safe, e_safe = a.clamp(min=eps), e.clamp(min=eps)
    denom = a * e - b * b
    # general case: closest point of the infinite lines, s clamped; parallel lines: s = 0
    s = torch.where(denom > eps * a_safe * e_safe, ((b * f - c * e) / denom.clamp(min=eps)).clamp(0, 1), 0.0)
    t = (b * s + f) / e_safe
    # t outside [0, 1]: clamp it and recompute s for the clamped t
    s = torch.where(t < 0, (-c / a_safe).clamp(0, 1), s)
    s = torch.where(t > 1, ((b - c) / a_safe).clamp(0, 1), s)
    t = t.clamp(0, 1)
    # degenerate segments (points)
    s = torch.where(point2, (-c / a_safe).clamp(0, 1), s)
    t = torch.where(point2, 0.0, t)
    s = torch.where(point1, 0.0, s)
    t = torch.where(point1, (f / e_safe).clamp(0, 1), t)
    t = torch.where(point1 & point2, 0.0, t)
    closest1 = p1 + s[..., None] * d1
    closest2 = p2 + t[..., None] * d2
    return (closest1 - closest2).norm(dim=-1)


def _capsule_tables(skeleton: BodySkeleton) -> tuple[torch.Tensor, ...]:
    index = {n: i for i, n in enumerate(skeleton.point_names)}
    starts = torch.tensor([index[c[1]] for c in CAPSULES])
    ends = torch.tensor([index[c[2]] for c in CAPSULES])
    radii = torch.tensor([c[3] for c in CAPSULES])
    pairs = torch.tensor(capsule_pairs())
    return starts, ends, radii, pairs


def penetration_depths(points: torch.Tensor, skeleton: BodySkeleton) -> torch.Tensor:
    """(N, 27, 3) skeleton points (`BodySkeleton(...).points`) -> (N, P) overlap of each tested capsule
    pair in metres (sum of core radii minus segment distance; > 0 means penetration)."""
    starts, ends, radii, pairs = _capsule_tables(skeleton)
    a_start, a_end = points[:, starts[pairs[:, 0]]], points[:, ends[pairs[:, 0]]]
    b_start, b_end = points[:, starts[pairs[:, 1]]], points[:, ends[pairs[:, 1]]]
    dist = segment_distances(a_start, a_end, b_start, b_end)
    return (radii[pairs[:, 0]] + radii[pairs[:, 1]]).to(dist) - dist


def self_penetrating(points: torch.Tensor, skeleton: BodySkeleton, margin: float = 0.0) -> torch.Tensor:
    """(N, 27, 3) skeleton points -> (N,) bool: some non-adjacent core capsules overlap by more than
    `margin` metres."""
    return (penetration_depths(points, skeleton) > margin).any(dim=-1)
