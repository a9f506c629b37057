"""Instructions of many sampled and extreme pairs: no crash, never empty, deterministic, English
(imperative sentences or facts about the target, capitalised, no doubled words, no unfilled slots)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from instruction_helpers import english_problems, sample_pairs

from poseembroider.text.correcting import instruction_templates as T
from poseembroider.text.correcting.instructions import (
    _FUSIONS,
    CANONICAL,
    instruct_pairs,
    instruction_variants,
)
from poseembroider.text.correcting.paircode_definitions import (
    GET_UP,
    IGNORED,
    PAIR_KINDS,
    PAIRCODES,
    POSTURES,
    ROTATION_CATEGORIES,
    SUPER_PAIRCODES,
)
from poseembroider.text.text_flip import flip_text


def _check_all(texts: list[list[str]]) -> None:
    problems = {}
    for per_pair in texts:
        for text in per_pair:
            for problem in english_problems(text):
                problems.setdefault(problem.split(":")[0], text)
    assert not problems, problems


def test_sampled_pairs_read_as_english(skeleton):
    a, b = sample_pairs(500, seed=0)
    yaw = torch.where(torch.arange(500) % 2 == 0, torch.linspace(-180, 180, 500), torch.tensor(float("nan")))
    texts = instruction_variants(a, b, skeleton, seed=0, rotation_change_deg=yaw)
    assert len(texts) == 500 and all(len(t) == 3 for t in texts)
    _check_all(texts)
    assert texts == instruction_variants(a, b, skeleton, seed=0, rotation_change_deg=yaw)
    words = [len(t.split()) for per_pair in texts for t in per_pair]
    assert min(words) >= 2
    assert len({t for per_pair in texts for t in per_pair}) > 0.95 * 3 * 500  # varied texts
    joined = " ".join(t for per_pair in texts for t in per_pair)
    for wording in ("while ", ", then ", " it ", "should", "Turn a quarter", "both"):
        assert wording in joined, wording  # every kind of clause shows up
    _check_all([instruct_pairs(a[:200], b[:200], skeleton, options=CANONICAL)])


def test_canonical_texts_can_be_flipped(skeleton):
    a, b = sample_pairs(100, seed=4)
    for text in instruct_pairs(a, b, skeleton, options=CANONICAL, rotation_change_deg=75.0):
        assert flip_text(text) is not None and "clock" not in text


@pytest.mark.slow
def test_ten_thousand_sampled_pairs(skeleton):
    a, b = sample_pairs(10_000, seed=1)
    texts = instruction_variants(a, b, skeleton, seed=1)
    _check_all(texts)
    assert instruction_variants(a[:1000], b[:1000], skeleton, seed=1) == instruction_variants(
        a[:1000], b[:1000], skeleton, seed=1)


_angle = st.floats(-3.0, 3.0, allow_nan=False, width=32)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    values=st.lists(st.tuples(_angle, _angle, _angle), min_size=22 * 6, max_size=22 * 6),
    scale=st.sampled_from([0.0, 0.3, 1.0, 3.0]),
    seed=st.integers(0, 2**31),
    fingers=st.booleans(),
    yaw=st.one_of(st.none(), st.floats(-720, 720, allow_nan=False)),
)
def test_extreme_pairs_never_crash(skeleton, values, scale, seed, fingers, yaw):
    poses = torch.tensor(values, dtype=torch.float32).reshape(6, 22, 3) * scale
    if fingers:
        poses = torch.cat([poses, poses[:, 1:16].repeat(1, 2, 1)], dim=1)  # (6, 52, 3)
    a, b = poses[:3], torch.cat([poses[3:5], poses[:1]])  # the last pair: a pose and itself
    texts = instruction_variants(a, b, skeleton, seed=seed, rotation_change_deg=yaw)
    _check_all(texts)
    assert texts == instruction_variants(a, b, skeleton, seed=seed, rotation_change_deg=yaw)


def test_templates_cover_every_interpretation_and_conjugate():
    said = {c for code in PAIRCODES for c in code.acceptable}  # distances: only through super-paircodes
    said |= {s.interpretation for s in SUPER_PAIRCODES} | set(POSTURES.values()) | set(GET_UP)
    said |= {fused for *_, fused in _FUSIONS}
    assert said <= set(T.CHANGES), said - set(T.CHANGES)
    assert {c for c in ROTATION_CATEGORIES if c != IGNORED} <= set(T.ROTATIONS)
    whole_body = {c for k in ("pair_forward_incline", "pair_side_lean") for c in PAIR_KINDS[k].categories}
    whole_body |= set(POSTURES.values()) | set(GET_UP)
    for interp, templates in {**T.CHANGES, **T.ROTATIONS}.items():
        for template in templates:
            assert template.split()[0] in T.GERUNDS, template  # the verb comes first
            assert ("{subj}" in template) == (interp in T.CHANGES and interp not in whole_body), template
            assert not re.search(r"[{}]", template.replace("{subj}", "")), template
    assert T.gerund("lie down on your back") == "lying down on your back"
    # canonical (first) wordings of left and right are mirror images
    for table in (T.CHANGES, T.ROTATIONS):
        for key, templates in table.items():
            if "left" in key:
                assert flip_text(templates[0]) == table[key.replace("left", "right")][0]


def test_short_variant_is_short(skeleton):
    a, b = sample_pairs(300, seed=9)
    texts = instruction_variants(a, b, skeleton, seed=3)
    lengths = np.array([[len(t.split()) for t in per_pair] for per_pair in texts])
    assert lengths[:, 2].mean() < 0.6 * lengths[:, 0].mean()
    assert lengths[:, 2].max() <= 60
