"""Helpers of the instruction writer's tests: hand-built poses and pairs, a pair sampler, English checks.

(A plain module rather than `conftest.py` contents, so that `from instruction_helpers import ...` can
never pick up another folder's conftest.)
"""

from __future__ import annotations

import math
import re

import numpy as np
import torch
from english_checks import surface_problems

from poseembroider.body.joints import BODY_JOINT_NAMES, JOINT_INDEX, left_right_permutation
from poseembroider.data import load_cmu_dev_poses
from poseembroider.geometry import flip_left_right
from poseembroider.text.correcting.instruction_templates import GERUNDS

HALF_PI = math.pi / 2
FLIP = left_right_permutation(BODY_JOINT_NAMES)


def make_pose(**joints) -> torch.Tensor:
    """(1, 22, 3) pose at rest except the named joints' axis-angles: `make_pose(left_knee=(1.57, 0, 0))`."""
    pose = torch.zeros(1, 22, 3)
    for name, value in joints.items():
        pose[0, JOINT_INDEX[name]] = torch.tensor(value, dtype=torch.float32)
    return pose


def flip(poses: torch.Tensor) -> torch.Tensor:
    return flip_left_right(poses, FLIP)


# Signs (checked by the captioner's tests): knee flexion is +x, hip flexion -x, raising the left arm +z at
# the left shoulder (-z on the right), +x at the root with -x at both hips bends the upper body forward.
ARMS_DOWN = {"left_shoulder": (0, 0, -1.2), "right_shoulder": (0, 0, 1.2)}
POSES = {
    "standing": make_pose(**ARMS_DOWN),
    "left_knee_bent": make_pose(left_knee=(HALF_PI, 0, 0), **ARMS_DOWN),
    "right_knee_bent": make_pose(right_knee=(HALF_PI, 0, 0), **ARMS_DOWN),
    "hands_above_head": make_pose(left_shoulder=(0, 0, 1.35), right_shoulder=(0, 0, -1.35)),
    "left_hand_above_head": make_pose(left_shoulder=(0, 0, 1.35), right_shoulder=(0, 0, 1.2)),
    "seated": make_pose(
        left_hip=(-HALF_PI, 0, 0),
        right_hip=(-HALF_PI, 0, 0),
        left_knee=(HALF_PI, 0, 0),
        right_knee=(HALF_PI, 0, 0),
        **ARMS_DOWN,
    ),
    "bent_forward": make_pose(pelvis=(1.3, 0, 0), left_hip=(-1.3, 0, 0), right_hip=(-1.3, 0, 0), **ARMS_DOWN),
    "lying_on_back": make_pose(pelvis=(-HALF_PI, 0, 0), **ARMS_DOWN),
    "head_turned_left": make_pose(neck=(0, 0.5, 0), head=(0, 0.4, 0), **ARMS_DOWN),
    "left_elbow_bent": make_pose(left_elbow=(0, -1.9, 0), **ARMS_DOWN),
}

PAIRS = {
    "bend_left_knee": ("standing", "left_knee_bent"),
    "bend_right_knee": ("standing", "right_knee_bent"),
    "straighten_left_knee": ("left_knee_bent", "standing"),
    "raise_hands": ("standing", "hands_above_head"),
    "raise_left_hand": ("standing", "left_hand_above_head"),
    "sit_down": ("standing", "seated"),
    "stand_up": ("seated", "standing"),
    "lean_forward": ("standing", "bent_forward"),
    "lie_down": ("standing", "lying_on_back"),
    "turn_head_left": ("standing", "head_turned_left"),
    "bend_left_elbow": ("standing", "left_elbow_bent"),
}


def pair(name: str) -> tuple[torch.Tensor, torch.Tensor]:
    a, b = PAIRS[name]
    return POSES[a], POSES[b]


def all_pairs() -> tuple[torch.Tensor, torch.Tensor]:
    a, b = zip(*(pair(name) for name in PAIRS), strict=True)
    return torch.cat(a), torch.cat(b)


def sample_pairs(n: int, seed: int, spread: float = 0.15) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, 22, 3) x 2: perturbed real CMU poses; half the pairs are two perturbations of one pose (similar
    poses, like mined pairs), half two different poses."""
    rng = np.random.default_rng(seed)
    cmu = load_cmu_dev_poses()
    first = rng.integers(0, len(cmu), n)
    second = np.where(rng.random(n) < 0.5, first, rng.integers(0, len(cmu), n))
    a = cmu[first] + rng.normal(0, spread, (n, 22, 3)).astype(np.float32)
    b = cmu[second] + rng.normal(0, spread, (n, 22, 3)).astype(np.float32)
    return torch.from_numpy(a), torch.from_numpy(b)


def sentences(text: str) -> list[str]:
    return sorted(text.rstrip(".").split(". "))


_FACT = re.compile(r"^(Your|The|Both) [^.]* (should|must|needs? to|ha(s|ve) to) ")
IMPERATIVE_STARTS = frozenset(GERUNDS) | {"stay", "change", "leave"}


def english_problems(text: str) -> list[str]:
    """What makes `text` not read as our instructions should: the surface problems of
    `english_checks.surface_problems`, and a sentence neither imperative nor a fact about the target
    ("Your left knee should be ...")."""
    problems = surface_problems(text)
    if problems == ["empty"]:
        return problems
    for sentence in text.rstrip(".").split(". "):
        words = sentence.split()
        if words and sentence[:1].isupper() and words[0].lower() not in IMPERATIVE_STARTS and not _FACT.match(sentence):
            problems.append(f"not imperative: {sentence[:40]!r}")
    return problems
