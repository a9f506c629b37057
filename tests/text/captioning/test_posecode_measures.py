"""Posecodes: tables, batched measures, binning, noise, eligibility, super-posecodes, mirroring."""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch

from conftest import HALF_PI, POSES, make_pose
from poseembroider.body.joints import BODY_JOINT_NAMES, left_right_permutation
from poseembroider.data import load_cmu_dev_poses
from poseembroider.geometry import flip_left_right
from poseembroider.text.captioning.coordinates import CAPTION_JOINT_INDEX as J
from poseembroider.text.captioning.coordinates import caption_coordinates
from poseembroider.text.captioning.posecode_definitions import (
    KINDS,
    NUM_ORIGINAL_POSECODES,
    POSECODE_INDEX,
    POSECODES,
    SUPER_POSECODE_INDEX,
    SUPER_POSECODES,
    code_name,
)
from poseembroider.text.captioning.posecodes import (
    bin_values,
    categorize,
    compute_posecodes,
    draw_noise,
    measure,
    measure_posecodes,
    mirror_posecodes,
    mirror_super_posecodes,
    thresholds_table,
)
from poseembroider.text.captioning.skeleton import SkeletonModel, skeleton_model


@pytest.fixture(scope="module")
def skeleton(body_model):
    return skeleton_model(body_model)


def _codes(pose, skeleton, noise=False):
    coords = caption_coordinates(pose, skeleton)
    return compute_posecodes(coords, pose, noise=noise)


def _category(codes, name, i=0):
    k = POSECODE_INDEX[name]
    return KINDS[POSECODES[k].kind].categories[int(codes.categories[i, k])]


def test_tables_follow_the_reference_structure():
    kinds = Counter(c.kind for c in POSECODES)
    # PoseScript main: angle 4, distance 70, x 54, y 61 (+2 of ours: hand vs head), z 57, segments 13, ground 6
    assert (kinds["angle"], kinds["distance"], kinds["relative_x"], kinds["relative_y"], kinds["relative_z"]) == (
        4, 70, 54, 63, 57)
    assert (kinds["segment_orientation"], kinds["on_ground"]) == (13, 6)
    assert sum(1 for s in SUPER_POSECODES if s.interpretation.endswith("-aligned")) == 144
    assert len(POSECODE_INDEX) == len(POSECODES) and len(SUPER_POSECODE_INDEX) == len(SUPER_POSECODES)
    assert KINDS["angle"].thresholds == (45.0, 75.0, 105.0, 135.0, 160.0)
    assert KINDS["distance"].thresholds == (0.20, 0.40, 0.80)
    for kind in KINDS.values():
        assert len(kind.categories) == len(kind.thresholds) + 1


def test_eligibility_flags():
    knee = POSECODES[POSECODE_INDEX[code_name("angle", "left_hip", "left_knee", "left_ankle")]]
    assert knee.eligibility("completely bent") == 2 and knee.eligibility("right angle") == 1
    hands = POSECODES[POSECODE_INDEX[code_name("distance", "left_hand", "right_hand")]]
    assert hands.eligibility("shoulder width") == 0  # support I: only feeds "hands shoulder width"
    assert hands.eligibility("close") == 1
    hip_knee = POSECODES[POSECODE_INDEX[code_name("relative_y", "left_hip", "left_knee")]]
    assert hip_knee.eligibility("above") == 0
    y = POSECODES[POSECODE_INDEX[code_name("relative_y", "left_hand", "right_hand")]]
    assert y.eligibility("ignored_low") == 0 and y.eligibility("y-aligned") == 0


def test_skeleton_forward_matches_the_body_model(body_model):
    poses = torch.as_tensor(load_cmu_dev_poses()[:16])
    poses52 = torch.cat([poses, 0.3 * torch.randn(16, 30, 3, generator=torch.Generator().manual_seed(0))], dim=1)
    for p in (poses, poses52):
        expected = body_model(p).joints[:, :55]
        got = SkeletonModel(body_model)(p).joints
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    assert skeleton_model(body_model) is skeleton_model(body_model)


def test_knee_angle_is_measured_on_the_bent_knee_only(skeleton):
    pose = POSES["left_knee_right_angle"]
    coords = caption_coordinates(pose, skeleton)
    # the sign check: +x at the knee sends the foot behind
    assert coords[0, J["left_ankle"], 2] < coords[0, J["left_knee"], 2] - 0.3
    knees = [("left_hip", "left_knee", "left_ankle"), ("right_hip", "right_knee", "right_ankle")]
    angles = measure("angle", coords, knees)
    assert angles[0, 0].item() == pytest.approx(90.0, abs=10.0)  # the joint axes are not exactly on the bones
    assert angles[0, 1].item() > 165.0
    codes = _codes(pose, skeleton)
    assert _category(codes, code_name("angle", "left_hip", "left_knee", "left_ankle")) == "right angle"
    assert _category(codes, code_name("angle", "right_hip", "right_knee", "right_ankle")) == "straight"


def test_relative_positions_are_body_centric(skeleton):
    pose = POSES["left_hand_above_head"]
    coords = caption_coordinates(pose, skeleton)
    assert coords[0, J["left_wrist"], 1] > coords[0, J["head"], 1]  # +z at the left shoulder raises the arm
    codes = _codes(pose, skeleton)
    assert _category(codes, code_name("relative_y", "left_hand", "head")) == "above"
    assert _category(codes, code_name("relative_y", "right_hand", "head")) != "above"
    # +x is the body's left: the left hand is on the left of the right hand
    x = measure("relative_x", coords, [("left_hand", "right_hand")])
    assert x.item() > 0.15


def test_whole_body_and_head_measures(skeleton):
    lying = _codes(POSES["lying_on_back"], skeleton)
    assert bool(lying.super_active[0, SUPER_POSECODE_INDEX["lying on back"]])
    assert not bool(lying.super_active[0, SUPER_POSECODE_INDEX["lying face down"]])
    down = _codes(POSES["lying_face_down"], skeleton)
    assert bool(down.super_active[0, SUPER_POSECODE_INDEX["lying face down"]])
    forward = _codes(POSES["bent_forward"], skeleton)
    assert _category(forward, code_name("body_forward_incline", "left_shoulder", "right_shoulder", "pelvis",
                                        "left_ankle", "right_ankle")) == "bent forward"
    head = _codes(POSES["head_turned_left"], skeleton)
    assert _category(head, code_name("head_yaw", "pelvis", "head")) == "head turned left"
    bowed = _codes(make_pose(neck=(0.7, 0, 0)), skeleton)
    assert _category(bowed, code_name("head_pitch", "neck", "head")) == "head bowed"
    tilted = _codes(make_pose(neck=(0, 0, 0.4), head=(0, 0, 0.3)), skeleton)
    assert _category(tilted, code_name("head_roll", "neck", "head")) == "head tilted right"


def test_head_codes_need_the_rotations(skeleton):
    coords = caption_coordinates(POSES["head_turned_left"], skeleton)
    codes = compute_posecodes(coords, None, noise=False)
    k = POSECODE_INDEX[code_name("head_yaw", "pelvis", "head")]
    assert math.isnan(codes.raw[0, k].item()) and codes.categories[0, k] == -1 and codes.eligibility[0, k] == 0


def test_super_posecodes_and_support(skeleton):
    seated = _codes(POSES["seated"], skeleton)
    assert bool(seated.super_active[0, SUPER_POSECODE_INDEX["sitting"]])
    assert seated.super_eligibility[0, SUPER_POSECODE_INDEX["sitting"]] == 2
    kneel = _codes(POSES["kneeling"], skeleton)
    assert bool(kneel.super_active[0, SUPER_POSECODE_INDEX["kneeling"]])
    # support I codes are never describable, whatever their category
    for k, code in enumerate(POSECODES):
        for pc in (seated, kneel):
            category = KINDS[code.kind].categories[int(pc.categories[0, k])]
            if category in code.support_1:
                assert pc.eligibility[0, k] == 0, code.name
    # lying silences the inclines
    lying = _codes(POSES["lying_on_back"], skeleton)
    k = POSECODE_INDEX[code_name("segment_orientation", "pelvis", "neck")]
    assert lying.eligibility[0, k] == 0
    assert lying.super_eligibility[0, SUPER_POSECODE_INDEX["torso horizontal"]] == 0


def test_binning_and_noise():
    thresholds = thresholds_table(["distance", "angle"])
    values = torch.tensor([[0.20, 45.0], [0.2001, 45.01], [5.0, 170.0], [float("nan"), 0.0]])
    assert bin_values(values, thresholds).tolist() == [[0, 0], [1, 1], [3, 5], [-1, 0]]
    assert categorize("relative_y", torch.tensor([[-0.2, 0.0, 0.2]])).tolist() == [[0, 2, 4]]
    a = draw_noise(64, torch.Generator().manual_seed(3))
    b = draw_noise(64, torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b)
    bound = torch.tensor([KINDS[c.kind].max_noise for c in POSECODES])
    assert (a.abs() <= bound).all() and (a.abs().amax(0) >= 0.5 * bound).all()
    # the added (noise-free) codes draw nothing: the original codes get the noise they got before the
    # additions, and later draws from the generator are the same
    g = torch.Generator().manual_seed(3)
    before = (2.0 * torch.rand((64, NUM_ORIGINAL_POSECODES), generator=g) - 1.0) * bound[:NUM_ORIGINAL_POSECODES]
    torch.testing.assert_close(a[:, :NUM_ORIGINAL_POSECODES], before)
    assert (a[:, NUM_ORIGINAL_POSECODES:] == 0).all()


def test_batched_equals_one_by_one(skeleton):
    poses = torch.as_tensor(load_cmu_dev_poses()[:12])
    coords = caption_coordinates(poses, skeleton)
    batch = compute_posecodes(coords, poses, noise=False)
    for i in (0, 5, 11):
        single = compute_posecodes(coords[i : i + 1], poses[i : i + 1], noise=False)
        torch.testing.assert_close(single.raw, batch.raw[i : i + 1], equal_nan=True)
        assert torch.equal(single.eligibility, batch.eligibility[i : i + 1])
        assert torch.equal(single.super_active, batch.super_active[i : i + 1])


def test_mirror_maps_every_code(skeleton, poses_sampler):
    poses = poses_sampler(64, seed=5)
    flipped = flip_left_right(poses, left_right_permutation(BODY_JOINT_NAMES))
    raw = measure_posecodes(caption_coordinates(poses, skeleton), poses)
    raw_f = measure_posecodes(caption_coordinates(flipped, skeleton), flipped)
    index, scale, offset = mirror_posecodes()
    torch.testing.assert_close(raw_f[:, index], scale * raw + offset, atol=0.05, rtol=1e-3)
    codes = compute_posecodes(caption_coordinates(poses, skeleton), poses, noise=False)
    codes_f = compute_posecodes(caption_coordinates(flipped, skeleton), flipped, noise=False)
    assert (codes_f.super_active[:, mirror_super_posecodes()] == codes.super_active).float().mean() > 0.999


def test_measure_rejects_bad_input(skeleton):
    coords = caption_coordinates(make_pose(), skeleton)
    with pytest.raises(ValueError, match="unknown posecode kind"):
        measure("elbow_size", coords, [("left_elbow",)])
    with pytest.raises(ValueError, match="unknown caption joint"):
        measure("distance", coords, [("left_elbow", "third_hand")])
    with pytest.raises(ValueError, match=r"\(N, 63, 3\)"):
        measure_posecodes(coords[:, :52])
    assert measure("distance", coords, torch.tensor([[J["left_hand"], J["right_hand"]]])).shape == (1, 1)


def test_describe_lists_every_code(skeleton):
    codes = _codes(POSES["seated"], skeleton, noise=False)
    rows = codes.describe(0)
    assert len(rows) == len(POSECODES) + len(SUPER_POSECODES)
    sitting = next(r for r in rows if r["name"] == "sitting")
    assert sitting["category"] == "sitting" and sitting["eligibility"] == 2
    knee = rows[POSECODE_INDEX[code_name("angle", "left_hip", "left_knee", "left_ankle")]]
    assert knee["category"] == "right angle" and knee["unit"] == "deg" and abs(knee["raw"] - 90) < 10
    assert HALF_PI > 1.5
