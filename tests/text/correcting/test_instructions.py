"""Instructions of hand-built pairs say the right change on the right side; the left/right flip of a
pair flips its instruction; the whole-body turn is said only when given; never empty; seeded."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from instruction_helpers import POSES, all_pairs, flip, make_pose, pair, sample_pairs, sentences

from poseembroider.text.correcting.instruction_templates import ALMOST_SAME, ROTATIONS, SAME, SAME_AFTER_TURN
from poseembroider.text.correcting.instructions import (
    CANONICAL,
    VARIANTS,
    instruct_pairs,
    instruction_variants,
)
from poseembroider.text.text_flip import flip_text

SEEDS = range(10)


def canonical(name: str, skeleton) -> str:
    return instruct_pairs(*pair(name), skeleton, options=CANONICAL)[0]


def variants(name: str, skeleton, seeds=SEEDS) -> list[str]:
    """Every variant of the pair for several seeds (3 x len(seeds) texts)."""
    return [t for seed in seeds for t in instruction_variants(*pair(name), skeleton, seed=seed)[0]]


def share(texts: list[str], pattern: str) -> float:
    return sum(bool(re.search(pattern, t, re.IGNORECASE)) for t in texts) / len(texts)


BEND = r"(bend|fold|flex)(ing)? (your|the) {side} knee"


def test_bending_the_left_knee(skeleton):
    text = canonical("bend_left_knee", skeleton)
    assert text.startswith("Bend your left knee to a right angle.")
    assert "right knee" not in text and "right foot" not in text
    texts = variants("bend_left_knee", skeleton)
    assert share(texts, BEND.format(side="left")) >= 0.6  # the angle change is skipped at random in a few
    assert share(texts, r"\bleft (knee|foot|leg|shin)\b") == 1.0
    assert share(texts, BEND.format(side="right")) == 0.0
    # the mirrored pair: the right knee, never the left one
    assert canonical("bend_right_knee", skeleton).startswith("Bend your right knee to a right angle.")
    assert share(variants("bend_right_knee", skeleton), BEND.format(side="left")) == 0.0


def test_straightening_the_leg(skeleton):
    assert canonical("straighten_left_knee", skeleton).startswith("Straighten your left leg completely.")
    texts = variants("straighten_left_knee", skeleton)
    assert share(texts, r"(straighten|extend|stretch)(ing)? (your|the) left leg") == 1.0  # super-paircode: rare


def test_raising_both_hands_above_the_head(skeleton):
    assert canonical("raise_hands", skeleton).startswith("Raise both arms above your head.")
    texts = variants("raise_hands", skeleton)
    raising = r"(raise|lift|reach|move|bring)(ing)? (both|your|the) (left |right )?(arms?|hands?|elbows?)"
    assert share(texts, raising) == 1.0
    default = [instruction_variants(*pair("raise_hands"), skeleton, seed=s)[0][0] for s in SEEDS]
    assert share(default, r"(above|over) (your|the) head") >= 0.6


def test_one_raised_arm_is_on_the_body_centric_side(skeleton):
    assert canonical("raise_left_hand", skeleton).startswith("Raise your left arm above your head.")
    texts = variants("raise_left_hand", skeleton)
    assert share(texts, r"\bleft (arm|hand|elbow)") == 1.0
    assert share(texts, r"right (arm|hand|elbow)") == 0.0
    flipped = instruct_pairs(*map(flip, pair("raise_left_hand")), skeleton, options=CANONICAL)[0]
    assert flipped.startswith("Raise your right arm above your head.")


def test_sitting_down_and_standing_up(skeleton):
    assert canonical("sit_down", skeleton).startswith("Sit down.")
    assert re.search(r"Bend both knees to a right angle", canonical("sit_down", skeleton))
    assert share(variants("sit_down", skeleton), r"\b(sit|seat|sitting)\b") == 1.0  # posture change: rare
    assert canonical("stand_up", skeleton).startswith("Stand up.")
    assert share(variants("stand_up", skeleton), r"stand|on your feet") == 1.0


def test_leaning_forward_and_turning_the_head(skeleton):
    assert canonical("lean_forward", skeleton).startswith("Lean forward.")
    assert share(variants("lean_forward", skeleton), r"lean(ing)? forward|bend(ing)? forward|upper body forward") >= 0.8
    assert canonical("turn_head_left", skeleton) == "Turn your head to the left."
    texts = variants("turn_head_left", skeleton)
    assert share(texts, r"head (to|toward) the left") == 1.0 and share(texts, r"right") == 0.0
    assert canonical("lie_down", skeleton).startswith("Lie down on your back.")


def test_instruction_of_the_flipped_pair_is_the_flipped_instruction(skeleton):
    a, b = sample_pairs(200, seed=5)
    hand_a, hand_b = all_pairs()
    a, b = torch.cat([a, hand_a]), torch.cat([b, hand_b])
    texts = instruct_pairs(a, b, skeleton, options=CANONICAL)
    texts_flipped = instruct_pairs(flip(a), flip(b), skeleton, options=CANONICAL)
    for text, text_flipped in zip(texts, texts_flipped, strict=True):
        assert flip_text(text) is not None
        # one clause per sentence; the walk along the body visits the left limbs first, so the sentences
        # of the flipped instruction come in another order
        assert sentences(flip_text(text)) == sentences(text_flipped), (text, text_flipped)


def test_rotation_sentence_only_when_a_turn_is_given(skeleton):
    a, b = pair("raise_hands")
    plain = instruct_pairs(a, b, skeleton, options=CANONICAL)[0]
    assert not plain.startswith("Turn") and not plain.startswith("Rotate")
    left = instruct_pairs(a, b, skeleton, rotation_change_deg=90.0, options=CANONICAL)[0]
    assert left == "Turn a quarter to your left. " + plain  # nothing else changes
    right = instruct_pairs(a, b, skeleton, rotation_change_deg=-90.0, options=CANONICAL)[0]
    assert right == "Turn a quarter to your right. " + plain
    assert instruct_pairs(a, b, skeleton, rotation_change_deg=5.0, options=CANONICAL)[0] == plain
    assert instruct_pairs(a, b, skeleton, rotation_change_deg=180.0, options=CANONICAL)[0].startswith("Turn around.")
    # one value per pair, NaN for pairs that are not in sequence (as the dataset generator passes them)
    both = instruct_pairs(torch.cat([a, a]), torch.cat([b, b]), skeleton, options=CANONICAL,
                          rotation_change_deg=torch.tensor([float("nan"), -90.0]))
    assert both == [plain, right]
    # random variants: the turn sentence comes first, with the right side
    turn_words = {t for key, ts in ROTATIONS.items() if key.endswith("quarter left") for t in ts}
    for seed in SEEDS:
        texts = instruction_variants(a, b, skeleton, seed=seed, rotation_change_deg=90.0)[0]
        assert all(any(t.startswith(w[0].upper() + w[1:] + ".") for w in turn_words) for t in texts), texts
        assert all(not re.search(r"\bturn\w*\b[^.]*\bright\b", t.split(". ")[0]) for t in texts)
        no_turn = instruction_variants(a, b, skeleton, seed=seed)[0]
        assert all(not any(t.startswith(w[0].upper() + w[1:]) for w in turn_words) for t in no_turn)


def test_rotation_from_global_orientations(skeleton):
    a = POSES["standing"].clone()
    b = POSES["standing"].clone()
    b[0, 0] = torch.tensor([0.0, np.pi / 2, 0.0])  # B turned 90 degrees to the body's left
    assert instruct_pairs(a, b, skeleton, options=CANONICAL, in_sequence=True)[0] \
        == "Turn a quarter to your left. Keep the rest of the pose as it is."
    assert instruct_pairs(a, b, skeleton, options=CANONICAL)[0] == "Keep the same pose."  # heading removed


def test_nearly_identical_poses_get_a_short_instruction(skeleton):
    pose = POSES["standing"]
    assert instruct_pairs(pose, pose, skeleton, options=CANONICAL) == ["Keep the same pose."]
    texts = [t for s in SEEDS for t in instruction_variants(pose, pose, skeleton, seed=s)[0]]
    assert set(texts) <= {s[0].upper() + s[1:] + "." for s in SAME}
    nudged = pose + make_pose(left_shoulder=(0, 0, 0.1))  # the left hand moves a few centimetres
    text = instruct_pairs(pose, nudged, skeleton, options=CANONICAL)[0]
    assert text.startswith("Stay almost as you are, only ") and "left" in text, text
    leads = tuple(s.split("{")[0][:12].capitalize() for s in ALMOST_SAME)
    for seed in SEEDS:
        for t in instruction_variants(pose, nudged, skeleton, seed=seed)[0]:
            assert t.startswith(leads) and "left" in t and "right" not in t, t
    turned = instruct_pairs(pose, pose, skeleton, rotation_change_deg=-100.0, seed=1)[0]
    assert turned.startswith("T") or turned.startswith("R") or turned.startswith("M")
    assert turned.split(". ")[1].rstrip(".") in {s[0].upper() + s[1:] for s in SAME_AFTER_TURN}


def test_variants_and_determinism(skeleton):
    a, b = sample_pairs(40, seed=2)
    per_pair = instruction_variants(a, b, skeleton, seed=7)
    assert len(per_pair) == 40 and all(len(v) == 3 for v in per_pair)
    for j, variant in enumerate(VARIANTS):
        assert instruct_pairs(a, b, skeleton, seed=7, variant=variant) == [v[j] for v in per_pair]
    assert instruction_variants(a, b, skeleton, seed=7) == per_pair
    other = instruction_variants(a, b, skeleton, seed=8)
    assert sum(x != y for u, v in zip(per_pair, other, strict=True) for x, y in zip(u, v, strict=True)) > 60
    short = [v[2] for v in per_pair]
    assert np.mean([len(t.split()) for t in short]) < np.mean([len(v[0].split()) for v in per_pair])


def test_bad_inputs_fail_early(skeleton):
    a, b = sample_pairs(3, seed=0)
    with pytest.raises(ValueError, match=r"poses_a has 3 poses \(shape \(3, 22, 3\)\) but poses_b has 2"):
        instruct_pairs(a, b[:2], skeleton)
    with pytest.raises(ValueError, match="variant"):
        instruct_pairs(a, b, skeleton, variant="ripple")
    with pytest.raises(ValueError, match="rotation_change_deg"):
        instruct_pairs(a, b, skeleton, rotation_change_deg=[1.0, 2.0])
    with pytest.raises(ValueError, match="NaN"):
        instruct_pairs(a, torch.full_like(b, float("nan")), skeleton)
    assert instruct_pairs(a[:0], b[:0], skeleton) == []
    assert instruction_variants(a[:0], b[:0], skeleton) == []
    # mixed joint counts and flat inputs are accepted
    hands = torch.cat([b, b[:, 1:16].repeat(1, 2, 1)], dim=1)  # (3, 52, 3)
    assert len(instruct_pairs(a.reshape(3, 66), hands, skeleton)) == 3
