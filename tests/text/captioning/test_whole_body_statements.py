"""What a person says first about a whole body (kneeling, sitting, lying, squatting, upside down, a torso
bent far forward, leaning back or bent sideways) is always in the caption, first, for every seed and
variant, and never together with a contradicting posture; standing gets none."""

from __future__ import annotations

import re

import pytest
import torch

from conftest import WHOLE_BODY_POSES, english_problems
from poseembroider.body.joints import BODY_JOINT_NAMES, left_right_permutation
from poseembroider.geometry import flip_left_right
from poseembroider.text.captioning import templates as T
from poseembroider.text.captioning.captions import (
    CANONICAL,
    VARIANTS,
    CaptionOptions,
    caption_poses,
    caption_variants,
    posecodes_of_poses,
)
from poseembroider.text.captioning.posecode_definitions import SUPER_POSECODE_INDEX, SUPER_POSECODES

SEEDS = range(8)
NAMES = list(WHOLE_BODY_POSES)


def statement(*interpretations: str) -> str:
    """Regex of any wording of the given interpretations (`templates.SINGLE`), not followed by "a bit" /
    "a little" (the slight elementary leans share some words)."""
    phrases = sorted({p for i in interpretations for p in T.SINGLE[i]}, key=len, reverse=True)
    body = "|".join(re.escape(p).replace(re.escape("{poss}"), "(?:their|his|her)") for p in phrases)
    return rf"\b(?:{body})(?! a bit| a little)\b"


KNEELING = statement("kneeling")
KNEELING_ON = {side: statement(f"kneeling on {side} knee") for side in ("left", "right")}
SITTING = statement("sitting")
SQUATTING = statement("squatting")
LYING = {k: statement(f"lying {k}") for k in ("on back", "face down", "on left side", "on right side")}
ANY_LYING = statement(*(f"lying {k}" for k in LYING))
FORWARD = statement("bent far forward", "bent forward")
BACK = statement("leaning back", "bent backward")
SIDEWAYS = {side: statement(f"bent sideways {side}", f"leaning {side}") for side in ("left", "right")}
UPSIDE_DOWN = statement("handstand", "upside down")
POSTURES = [KNEELING, *KNEELING_ON.values(), SITTING, SQUATTING, ANY_LYING, UPSIDE_DOWN]
LEANS = [FORWARD, BACK, *SIDEWAYS.values()]

EXPECTED: dict[str, tuple[str, list[str]]] = {
    # pose: (the statement said first, statements never said with it)
    "kneeling_upright": (KNEELING, [SITTING, SQUATTING, ANY_LYING, *KNEELING_ON.values()]),
    "kneeling_upright_toes_tucked": (KNEELING, [SITTING, SQUATTING, ANY_LYING, *KNEELING_ON.values()]),
    "kneeling_upright_shins_sloping": (KNEELING, [SITTING, SQUATTING, ANY_LYING, *KNEELING_ON.values()]),
    "kneeling_on_right_knee": (KNEELING_ON["right"], [KNEELING_ON["left"], SITTING, SQUATTING, ANY_LYING]),
    "sitting_on_chair": (SITTING, [KNEELING, SQUATTING, ANY_LYING]),
    "sitting_on_ground_legs_forward": (SITTING, [KNEELING, SQUATTING, ANY_LYING]),
    "sitting_on_ground_knees_up": (SITTING, [KNEELING, SQUATTING, ANY_LYING]),
    "sitting_cross_legged": (SITTING, [KNEELING, SQUATTING, ANY_LYING]),
    "lying_on_back": (LYING["on back"], [LYING["face down"], LYING["on left side"], LYING["on right side"], SITTING]),
    "lying_face_down": (LYING["face down"], [LYING["on back"], LYING["on left side"], LYING["on right side"], FORWARD]),
    "lying_on_left_side": (LYING["on left side"], [LYING["on right side"], LYING["on back"], *SIDEWAYS.values()]),
    "lying_on_right_side": (LYING["on right side"], [LYING["on left side"], LYING["face down"], *SIDEWAYS.values()]),
    "squatting": (SQUATTING, [SITTING, KNEELING, ANY_LYING]),
    "bent_forward_at_waist": (FORWARD, [BACK, ANY_LYING, SITTING, SQUATTING]),
    "bent_forward_spine_rolled": (FORWARD, [BACK, ANY_LYING, SITTING, SQUATTING]),
    "leaning_back": (BACK, [FORWARD, ANY_LYING, SITTING]),
    "bent_sideways_left": (SIDEWAYS["left"], [SIDEWAYS["right"], ANY_LYING]),
    "bent_sideways_right": (SIDEWAYS["right"], [SIDEWAYS["left"], ANY_LYING]),
    "handstand": (UPSIDE_DOWN, [ANY_LYING, SITTING, r"\bupright\b"]),
}

_SUBJECTS = sorted({s for table in (T.BODY_SUBJECTS_START,) for words in table.values() for s in words}, key=len)
_OPENING = rf"^(?:{'|'.join(map(re.escape, _SUBJECTS))}) (?:is|are) "


@pytest.fixture(scope="module")
def captions(body_model) -> dict[str, list[str]]:
    """Every pose's captions: 3 variants x 8 seeds (the poses captioned together, as in a dataset)."""
    poses = torch.cat([WHOLE_BODY_POSES[n] for n in NAMES])
    out: dict[str, list[str]] = {n: [] for n in NAMES}
    for seed in SEEDS:
        for name, texts in zip(NAMES, caption_variants(poses, body_model, seed=seed), strict=True):
            out[name] += texts
    return out


def test_every_pose_has_a_statement():
    assert set(EXPECTED) | {"standing"} == set(WHOLE_BODY_POSES)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_whole_body_statement_is_always_said_first(name, captions):
    expected, contradictions = EXPECTED[name]
    texts = captions[name]
    assert len(texts) == 3 * len(SEEDS)
    for text in texts:
        # the first thing said is about the whole body, and it is the expected statement
        assert re.match(_OPENING + expected, text), (name, text)
        for other in contradictions:
            assert not re.search(other, text), (name, other, text)
        assert not english_problems(text), (name, text, english_problems(text))


def test_standing_gets_no_whole_body_statement(captions):
    for text in captions["standing"]:
        for pattern in POSTURES + LEANS:
            assert not re.search(pattern, text), text


def test_canonical_captions_open_with_the_posture(body_model):
    poses = torch.cat([WHOLE_BODY_POSES[n] for n in EXPECTED])
    for name, text in zip(EXPECTED, caption_poses(poses, body_model, options=CANONICAL), strict=True):
        assert re.match(r"The person is " + EXPECTED[name][0], text), (name, text)


def test_postures_are_never_skipped(body_model):
    """Even with every skippable statement skipped, the posture stays (postures are rare codes)."""
    skip_all = CaptionOptions(skip_probability=1.0)
    poses = torch.cat([WHOLE_BODY_POSES[n] for n in EXPECTED])
    for seed in range(3):
        for name, text in zip(EXPECTED, caption_poses(poses, body_model, seed=seed, options=skip_all), strict=True):
            assert re.search(EXPECTED[name][0], text), (name, text)
    postures = [s for s in SUPER_POSECODES if s.posture]
    assert {s.name for s in postures} >= {
        "kneeling",
        "sitting",
        "squatting",
        "lying on back",
        "bent far forward",
        "leaning back",
        "bent sideways left",
        "upside down",
    }
    assert all(s.rare and s.subject == (None, "body") for s in postures)


def test_mirrored_poses_get_the_other_side(body_model):
    flip = left_right_permutation(BODY_JOINT_NAMES)
    sided = {
        "kneeling_on_right_knee": (KNEELING_ON["right"], KNEELING_ON["left"]),
        "lying_on_left_side": (LYING["on left side"], LYING["on right side"]),
        "bent_sideways_left": (SIDEWAYS["left"], SIDEWAYS["right"]),
    }
    poses = flip_left_right(torch.cat([WHOLE_BODY_POSES[n] for n in sided]), flip)
    for seed in range(4):
        for (name, (own, mirrored)), texts in zip(
            sided.items(), caption_variants(poses, body_model, seed=seed), strict=True
        ):
            for text in texts:
                assert re.match(_OPENING + mirrored, text) and not re.search(own, text), (name, text)


def test_posture_wording_is_varied_and_reads_right():
    """Several wordings per posture (the text models see them all); each names the posture."""
    keywords = {
        "kneeling": "kneel|knees",
        "sitting": "sit|seated",
        "squatting": "squat|crouch",
        "lying on back": "back|face up|supine",
        "lying face down": "face down|stomach|prone|front",
        "upside down": "upside|inverted|head down",
        "handstand": "handstand|hands",
        "bent far forward": "forward|over",
        "leaning back": "back",
        "bent sideways left": "left",
        "kneeling on left knee": "left knee",
        "lying on left side": "left side",
    }
    for interp, keyword in keywords.items():
        phrases = T.SINGLE[interp]
        assert len(phrases) >= 4, interp
        for phrase in phrases:
            assert re.search(keyword, phrase), (interp, phrase)


def test_lying_with_a_limb_below_the_body_is_still_lying(body_model):
    """Lying is read from the trunk, not from the lowest joint: an arm hanging below a body lying on its back
    (an arm pointing into the floor in the synthetic world) does not hide it."""
    pose = WHOLE_BODY_POSES["lying_on_back"].clone()
    pose[0, 16] = torch.tensor([0.0, -1.2, 0.0])  # left shoulder: the arm points down, below the back
    codes = posecodes_of_poses(pose, body_model, noise=False)
    assert codes.super_active[0, SUPER_POSECODE_INDEX["lying on back"]]
    for variant in VARIANTS:
        text = caption_poses(pose, body_model, seed=1, variant=variant)[0]
        assert re.match(_OPENING + LYING["on back"], text), text
