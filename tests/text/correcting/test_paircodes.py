"""Paircodes of hand-built pairs: measures with the right sign and side, categories, super-paircodes,
posture changes, the whole-body rotation band, seeded noise."""

from __future__ import annotations

import math

import pytest
import torch
from instruction_helpers import POSES, make_pose, pair

from poseembroider.geometry import axis_angle_to_matrix, matrix_to_axis_angle
from poseembroider.text.correcting.instructions import paircodes_of_pairs
from poseembroider.text.correcting.paircode_definitions import (
    GET_UP,
    IGNORED,
    PAIR_KINDS,
    PAIRCODE_INDEX,
    PAIRCODES,
    POSTURES,
    ROTATION_CATEGORIES,
    SUPER_PAIRCODE_INDEX,
    SUPER_PAIRCODES,
)
from poseembroider.text.correcting.paircodes import (
    rotation_category,
    rotation_change_from_orientations,
    rotation_changes,
)

POSTURE_COLUMNS = (*POSTURES.values(), *GET_UP)


def category(codes, name: str, i: int = 0) -> str:
    p = PAIRCODE_INDEX[name]
    return PAIR_KINDS[PAIRCODES[p].kind].categories[int(codes.categories[i, p])]


def raw(codes, name: str, i: int = 0) -> float:
    return float(codes.raw[i, PAIRCODE_INDEX[name]])


def test_tables_are_consistent():
    assert len(PAIRCODES) == 49 and len(SUPER_PAIRCODES) == 52
    for kind in PAIR_KINDS.values():
        ignored = kind.ignored_index
        assert all(d is not None for i, d in enumerate(kind.directions) if i != ignored)
        assert len(set(kind.directions[:ignored])) == 1 and len(set(kind.directions[ignored + 1:])) == 1
        assert kind.magnitudes[ignored] == 0 and min(kind.magnitudes[:ignored] + kind.magnitudes[ignored + 1:]) >= 1
    assert ROTATION_CATEGORIES.count(IGNORED) == 1


def test_bending_the_left_knee(skeleton):
    codes = paircodes_of_pairs(*pair("bend_left_knee"), skeleton, noise=False)
    knee = "pair_angle:left_hip/left_knee/left_ankle"
    assert raw(codes, knee) == pytest.approx(90.0, abs=3.0)  # A - B: straight (180) minus right angle (90)
    assert category(codes, knee) == "bent much more"
    assert category(codes, "pair_angle:right_hip/right_knee/right_ankle") == IGNORED
    assert category(codes, "pair_y:left_foot") in ("higher", "slightly higher")  # the shin goes back and up
    assert category(codes, "pair_z:left_foot") in ("more to back", "slightly more to back")
    assert category(codes, "pair_y:right_foot") == IGNORED
    assert int(codes.eligibility[0, PAIRCODE_INDEX[knee]]) == 1


def test_straightening_is_a_super_paircode_that_silences_the_angle(skeleton):
    codes = paircodes_of_pairs(*pair("straighten_left_knee"), skeleton, noise=False)
    knee = "pair_angle:left_hip/left_knee/left_ankle"
    assert category(codes, knee) == "bent much less"
    assert bool(codes.super_active[0, SUPER_PAIRCODE_INDEX["straighten left leg"]])
    assert not bool(codes.super_active[0, SUPER_PAIRCODE_INDEX["straighten right leg"]])
    assert int(codes.eligibility[0, PAIRCODE_INDEX[knee]]) == 0  # said by the super-paircode instead


def test_raising_the_hands_is_higher_on_both_sides(skeleton):
    codes = paircodes_of_pairs(*pair("raise_hands"), skeleton, noise=False)
    for side in ("left", "right"):
        assert raw(codes, f"pair_y:{side}_hand") < -0.4  # A - B: B's hand is much higher
        assert category(codes, f"pair_y:{side}_hand") == "higher"
    codes = paircodes_of_pairs(*pair("raise_left_hand"), skeleton, noise=False)
    assert category(codes, "pair_y:left_hand") == "higher"
    assert category(codes, "pair_y:right_hand") == IGNORED


def test_body_and_head(skeleton):
    codes = paircodes_of_pairs(*pair("lean_forward"), skeleton, noise=False)
    assert category(codes, "pair_forward_incline:left_shoulder/right_shoulder/pelvis/left_ankle/right_ankle") \
        == "more forward"
    codes = paircodes_of_pairs(*pair("turn_head_left"), skeleton, noise=False)
    assert category(codes, "pair_head_yaw:pelvis/head") == "head more left"
    # lying down: the forward inclination is not compared (0) when a pose is not upright
    codes = paircodes_of_pairs(*pair("lie_down"), skeleton, noise=False)
    assert raw(codes, "pair_forward_incline:left_shoulder/right_shoulder/pelvis/left_ankle/right_ankle") == 0.0


def test_body_centric_left_right(skeleton):
    """Moving the left hand toward the body's left is "more to left" whatever the heading."""
    a = make_pose(left_shoulder=(0, 0, -1.2), right_shoulder=(0, 0, 1.2))
    b = make_pose(left_shoulder=(0, 0, -0.3), right_shoulder=(0, 0, 1.2))  # left arm lifted sideways
    for heading in (0.0, 2.0, -2.5):
        turned_a, turned_b = a.clone(), b.clone()
        turned_a[0, 0] = turned_b[0, 0] = torch.tensor([0.0, heading, 0.0])
        codes = paircodes_of_pairs(turned_a, turned_b, skeleton, noise=False)
        assert category(codes, "pair_x:left_hand") in ("more to left", "slightly more to left")
        assert category(codes, "pair_x:right_hand") == IGNORED


def test_posture_changes(skeleton):
    def said(name):
        codes = paircodes_of_pairs(*pair(name), skeleton, noise=False)
        return {POSTURE_COLUMNS[i] for i in codes.postures[0].nonzero().flatten().tolist()}

    assert said("sit_down") == {"sit down"}
    assert said("stand_up") == {"stand up"}
    assert said("lie_down") == {"lie on back"}
    assert said("bend_left_knee") == set()


def test_rotation_bands():
    degrees = torch.tensor([0.0, 10.0, 40.0, 90.0, -90.0, 135.0, 179.0, -179.0, 270.0, float("nan")])
    names = [None if c < 0 else ROTATION_CATEGORIES[c] for c in rotation_category(degrees).tolist()]
    assert names == [IGNORED, IGNORED, "turn slightly left", "turn a quarter left", "turn a quarter right",
                     "turn most of the way left", "turn around", "turn around", "turn a quarter right", None]
    assert rotation_changes(None, 3).isnan().all()
    assert rotation_changes(45.0, 3).tolist() == [45.0] * 3
    with pytest.raises(ValueError, match="one value or 3"):
        rotation_changes([1.0, 2.0], 3)


def test_rotation_change_from_orientations():
    """Positive = the body turned to its own left (counterclockwise seen from above); tilt ignored."""
    yaw = torch.tensor([0.5, -1.2, 3.0])
    tilt = axis_angle_to_matrix(torch.tensor([[0.3, 0.0, 0.1]] * 3))
    start = axis_angle_to_matrix(torch.tensor([[0.0, 0.7, 0.0]] * 3))
    turn = axis_angle_to_matrix(torch.stack([torch.zeros(3), yaw, torch.zeros(3)], dim=1))
    orient_a = matrix_to_axis_angle(start @ tilt)
    orient_b = matrix_to_axis_angle(turn @ start @ tilt)
    change = rotation_change_from_orientations(orient_a, orient_b)
    assert change.tolist() == pytest.approx([math.degrees(v) for v in yaw.tolist()], abs=0.05)


def test_noise_is_seeded_and_bounded(skeleton):
    a, b = pair("bend_left_knee")
    first = paircodes_of_pairs(a, b, skeleton, seed=3)
    again = paircodes_of_pairs(a, b, skeleton, seed=3)
    other = paircodes_of_pairs(a, b, skeleton, seed=4)
    assert torch.equal(first.values, again.values) and not torch.equal(first.values, other.values)
    bound = torch.tensor([PAIR_KINDS[c.kind].max_noise for c in PAIRCODES])
    offsets = (first.values - first.raw)[0]
    finite = ~offsets.isnan()
    assert (offsets[finite].abs() <= bound[finite] + 1e-5).all()


def test_describe_lists_every_paircode(skeleton):
    codes = paircodes_of_pairs(POSES["standing"], POSES["seated"], skeleton, noise=False)
    rows = codes.describe(0)
    assert len(rows) == len(PAIRCODES) + len(SUPER_PAIRCODES)
    assert rows[0]["kind"] == "pair_angle" and rows[0]["category"] == "bent much more"
