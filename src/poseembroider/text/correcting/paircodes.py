"""Paircodes: batched comparison of pose pairs (A -> B), binned into "how B differs from A".

Pipeline (all batched over N pairs; no loop over pairs):

1. `measure_paircodes(coords_a, coords_b, poses_a, poses_b)` -> raw values (N, P), one column per
   elementary paircode of `PAIRCODES`: a posecode measure of A minus the same measure of B (knee /
   elbow angles, distances, body inclination, head rotation), or a joint's coordinate in A minus in B.
   Both poses are in the captioning frame with their own heading removed and the pelvis at the same
   place, so "higher" means higher with respect to the body's root, "to the left" the body's left.
2. Noise (uniform in [-max_noise, +max_noise], seeded explicit generator) and binning with the same
   `bin_values` as the posecodes.
3. `compute_paircodes(...)` adds eligibility, the super-paircodes (recipes over paircodes and over the
   posecodes of A and B), their support-II silencing, the posture changes (sit down, stand up, ...)
   and the whole-body rotation band of in-sequence pairs (`rotation_category`).

The posecodes of A and B (`Posecodes`, noise included) come along: the recipes read them and the
instruction writer states facts about B from them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from poseembroider.geometry import normalize_global_orient_bedlam
from poseembroider.text.captioning.coordinates import CAPTION_JOINT_INDEX
from poseembroider.text.captioning.posecode_definitions import KINDS, POSECODE_INDEX, POSECODES, SUPER_POSECODE_INDEX
from poseembroider.text.captioning.posecodes import Posecodes, bin_values, compute_posecodes, measure
from poseembroider.text.correcting.paircode_definitions import (
    IGNORED,
    PAIR_KINDS,
    PAIRCODE_INDEX,
    PAIRCODES,
    POSTURES,
    ROTATION_MAX_NOISE,
    ROTATION_THRESHOLDS,
    SUPER_PAIRCODES,
)

__all__ = [
    "Paircodes",
    "compute_paircodes",
    "draw_pair_noise",
    "measure_paircodes",
    "pair_thresholds_table",
    "rotation_category",
    "rotation_change_from_orientations",
    "rotation_changes",
]

_DEG = 180.0 / math.pi
INCLINE_MIN_DROP = 0.2
"""Metres an ankle must be below the shoulders for the forward incline to count (as the posecode);
the forward-incline paircode is 0 when either pose fails it (lying, upside down)."""

# ------------------------------------------------------------------------------------------ measures


@lru_cache(maxsize=1)
def _kind_blocks() -> tuple[tuple[str, slice, list[tuple[str, ...]]], ...]:
    blocks, start = [], 0
    while start < len(PAIRCODES):
        kind = PAIRCODES[start].kind
        stop = start
        while stop < len(PAIRCODES) and PAIRCODES[stop].kind == kind:
            stop += 1
        blocks.append((kind, slice(start, stop), [c.joints for c in PAIRCODES[start:stop]]))
        start = stop
    return tuple(blocks)


def _standing(coords: torch.Tensor) -> torch.Tensor:
    """(N,) bool: some ankle is at least `INCLINE_MIN_DROP` below the middle of the shoulders."""
    j = CAPTION_JOINT_INDEX
    mid = (coords[:, j["left_shoulder"], 1] + coords[:, j["right_shoulder"], 1]) / 2
    drop = torch.maximum(mid - coords[:, j["left_ankle"], 1], mid - coords[:, j["right_ankle"], 1])
    return drop >= INCLINE_MIN_DROP


def measure_paircodes(
    coords_a: torch.Tensor,
    coords_b: torch.Tensor,
    poses_a: torch.Tensor | None = None,
    poses_b: torch.Tensor | None = None,
) -> torch.Tensor:
    """Raw values of every elementary paircode: (N, 63, 3) x 2 -> (N, len(PAIRCODES)) float32.

    Head codes need the axis-angle poses (N, J, 3) of A and B; without them they are NaN (never said).
    """
    if coords_a.shape != coords_b.shape:
        raise ValueError(f"coords_a {tuple(coords_a.shape)} and coords_b {tuple(coords_b.shape)} differ: "
                         "one B per A")
    coords_a, coords_b = coords_a.float(), coords_b.float()
    out = coords_a.new_empty(coords_a.shape[0], len(PAIRCODES))
    for kind_name, columns, joint_sets in _kind_blocks():
        kind = PAIR_KINDS[kind_name]
        if kind.measure == "position":
            idx = torch.tensor([CAPTION_JOINT_INDEX[js[0]] for js in joint_sets])
            out[:, columns] = coords_a[:, idx, kind.axis] - coords_b[:, idx, kind.axis]
        else:
            value = (measure(kind.base_kind, coords_a, joint_sets, poses_a)
                     - measure(kind.base_kind, coords_b, joint_sets, poses_b))
            if kind.base_kind == "body_forward_incline":
                both = (_standing(coords_a) & _standing(coords_b))[:, None]
                value = torch.where(both, value, torch.zeros_like(value))
            out[:, columns] = value
    return out


@lru_cache(maxsize=1)
def pair_thresholds_table() -> torch.Tensor:
    """(P, T) thresholds of the paircodes, padded with +inf."""
    width = max(len(PAIR_KINDS[c.kind].thresholds) for c in PAIRCODES)
    rows = [list(PAIR_KINDS[c.kind].thresholds) + [math.inf] * (width - len(PAIR_KINDS[c.kind].thresholds))
            for c in PAIRCODES]
    return torch.tensor(rows, dtype=torch.float32)


@lru_cache(maxsize=1)
def _pair_max_noise() -> torch.Tensor:
    return torch.tensor([PAIR_KINDS[c.kind].max_noise for c in PAIRCODES], dtype=torch.float32)


def draw_pair_noise(num_pairs: int, generator: torch.Generator | None) -> torch.Tensor:
    """(N, P) uniform offsets in [-m, +m], m the max noise of each paircode's kind."""
    m = _pair_max_noise()
    return (2.0 * torch.rand((num_pairs, m.shape[0]), generator=generator) - 1.0) * m


# ---------------------------------------------------------------------------------- global rotation


def rotation_change_from_orientations(orient_a: torch.Tensor, orient_b: torch.Tensor) -> torch.Tensor:
    """Heading change (degrees) of the body from A to B, positive when B has turned to the body's left.

    Args:
        orient_a, orient_b: (N, 3) global orientations (axis-angles, y-up SMPL-X world frame shared by
            A and B, e.g. two frames of one sequence).

    Returns:
        (N,) degrees in (-180, 180]: the rotation about the vertical between the two headings (the hip
        line's horizontal direction, as `normalize_global_orient_bedlam` defines the heading).
    """
    orient_a, orient_b = torch.as_tensor(orient_a).float(), torch.as_tensor(orient_b).float()
    if orient_a.shape != orient_b.shape or orient_a.dim() != 2 or orient_a.shape[1] != 3:
        raise ValueError(f"orientations: expected two (N, 3) axis-angles, got {tuple(orient_a.shape)} "
                         f"and {tuple(orient_b.shape)}")
    _, norm_a = normalize_global_orient_bedlam(orient_a)
    _, norm_b = normalize_global_orient_bedlam(orient_b)
    relative = norm_a @ norm_b.transpose(-1, -2)  # Ry(heading_b - heading_a)
    return torch.atan2(relative[:, 0, 2], relative[:, 2, 2]) * _DEG


def rotation_changes(
    rotation_change_deg: float | Sequence[float] | np.ndarray | torch.Tensor | None, num_pairs: int
) -> torch.Tensor:
    """(N,) float heading changes from the user's argument: None (no pair is in sequence) -> NaN; a
    number -> the same change for every pair; N values (NaN: that pair is not in sequence)."""
    if rotation_change_deg is None:
        return torch.full((num_pairs,), float("nan"))
    value = torch.as_tensor(np.asarray(rotation_change_deg, dtype=np.float32)).float().reshape(-1)
    if value.numel() == 1:
        return value.expand(num_pairs).clone()
    if value.numel() != num_pairs:
        raise ValueError(f"rotation_change_deg: expected one value or {num_pairs} (one per pair), "
                         f"got {value.numel()}")
    if torch.isinf(value).any():
        raise ValueError("rotation_change_deg: infinite values (use NaN for pairs without a rotation)")
    return value


def rotation_category(degrees: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
    """(N,) heading changes (+ noise) -> (N,) index into `ROTATION_CATEGORIES`; -1 for NaN."""
    value = degrees if noise is None else degrees + noise
    value = torch.remainder(value + 180.0, 360.0) - 180.0  # wrap into [-180, 180)
    categories = (value.unsqueeze(-1) > torch.tensor(ROTATION_THRESHOLDS)).sum(-1)
    return torch.where(torch.isnan(value), torch.full_like(categories, -1), categories)


# -------------------------------------------------------------------------------------------- tables


@dataclass(frozen=True)
class _Tables:
    thresholds: torch.Tensor  # (P, T)
    eligibility: torch.Tensor  # (P, C + 1) int8; column C: not measurable
    num_categories: int
    cond_col: torch.Tensor  # (Q,) column of the combined [pair | A | B] categories
    cond_mask: torch.Tensor  # (Q, C + 1)
    cond_recipe: torch.Tensor  # (Q,)
    recipe_super: torch.Tensor  # (R,)
    silence_super: torch.Tensor  # (E,)
    silence_code: torch.Tensor  # (E,)
    silence_mask: torch.Tensor  # (E, C + 1)
    posture_index: torch.Tensor  # (T,) super-posecode index of each posture
    knee_angle_columns: torch.Tensor  # (2,) posecode columns of the knee angles


@lru_cache(maxsize=1)
def _tables() -> _Tables:
    width = max(len(k.categories) for k in PAIR_KINDS.values())
    width = max(width, max(len(k.categories) for k in KINDS.values()))
    elig = torch.zeros(len(PAIRCODES), width + 1, dtype=torch.int8)
    for p, code in enumerate(PAIRCODES):
        for i, category in enumerate(PAIR_KINDS[code.kind].categories):
            elig[p, i] = code.eligibility(category)
    num_pair, num_pose = len(PAIRCODES), len(POSECODES)
    offsets = {"pair": 0, "A": num_pair, "B": num_pair + num_pose}
    cond_col, cond_mask, cond_recipe, recipe_super = [], [], [], []
    silence_super, silence_code, silence_mask = [], [], []
    for s, sup in enumerate(SUPER_PAIRCODES):
        for recipe in sup.recipes:
            r = len(recipe_super)
            recipe_super.append(s)
            for source, name, categories in recipe:
                if source == "pair":
                    column, names = PAIRCODE_INDEX[name], PAIR_KINDS[PAIRCODES[PAIRCODE_INDEX[name]].kind].categories
                else:
                    k = POSECODE_INDEX[name]
                    column, names = k, KINDS[POSECODES[k].kind].categories
                mask = torch.zeros(width + 1, dtype=torch.bool)
                for category in categories:
                    mask[names.index(category)] = True
                cond_col.append(offsets[source] + column)
                cond_mask.append(mask)
                cond_recipe.append(r)
        for name, categories in sup.silences:
            p = PAIRCODE_INDEX[name]
            mask = torch.zeros(width + 1, dtype=torch.bool)
            for category in categories:
                mask[PAIR_KINDS[PAIRCODES[p].kind].categories.index(category)] = True
            silence_super.append(s)
            silence_code.append(p)
            silence_mask.append(mask)
    knees = [POSECODE_INDEX[f"angle:{s}_hip/{s}_knee/{s}_ankle"] for s in ("left", "right")]
    return _Tables(
        thresholds=pair_thresholds_table(),
        eligibility=elig,
        num_categories=width,
        cond_col=torch.tensor(cond_col),
        cond_mask=torch.stack(cond_mask),
        cond_recipe=torch.tensor(cond_recipe),
        recipe_super=torch.tensor(recipe_super),
        silence_super=torch.tensor(silence_super, dtype=torch.long),
        silence_code=torch.tensor(silence_code, dtype=torch.long),
        silence_mask=torch.stack(silence_mask),
        posture_index=torch.tensor([SUPER_POSECODE_INDEX[p] for p in POSTURES]),
        knee_angle_columns=torch.tensor(knees),
    )


# ------------------------------------------------------------------------------------------- results


@dataclass
class Paircodes:
    """Paircodes of N pairs. Columns follow `PAIRCODES` (P) and `SUPER_PAIRCODES` (S).

    raw: (N, P) measured differences A - B (NaN: not measurable).
    values: (N, P) raw + noise (what was binned).
    categories: (N, P) long, index into `PAIR_KINDS[kind].categories`; -1 when not measurable.
    eligibility: (N, P) int8: 0 not said, 1 may be said (skippable), after support-II silencing.
    super_active: (N, S) bool: the super-paircode is produced (always said: rare).
    postures: (N, len(POSTURES) + 2) bool: B takes a posture A was not in (`POSTURES` order), then
        "stand up" and "get up" (A was in one of those postures, B in none).
    rotation: (N,) long index into `ROTATION_CATEGORIES` (-1: no rotation given for that pair).
    rotation_raw: (N,) heading changes in degrees (NaN: none given).
    posecodes_a, posecodes_b: the posecodes of A and B the recipes read (noise included).
    """

    raw: torch.Tensor
    values: torch.Tensor
    categories: torch.Tensor
    eligibility: torch.Tensor
    super_active: torch.Tensor
    postures: torch.Tensor
    rotation: torch.Tensor
    rotation_raw: torch.Tensor
    posecodes_a: Posecodes
    posecodes_b: Posecodes

    def __len__(self) -> int:
        return self.raw.shape[0]

    def describe(self, i: int) -> list[dict]:
        """Every paircode of pair i: kind, joints, raw value, category, eligibility."""
        out = []
        for p, code in enumerate(PAIRCODES):
            raw = float(self.raw[i, p])
            c = int(self.categories[i, p])
            out.append({
                "name": code.name, "kind": code.kind, "joints": list(code.joints),
                "raw": None if math.isnan(raw) else round(raw, 4),
                "category": None if c < 0 else PAIR_KINDS[code.kind].categories[c],
                "eligibility": int(self.eligibility[i, p]),
            })
        for s, sup in enumerate(SUPER_PAIRCODES):
            out.append({"name": sup.name, "kind": "super", "joints": [], "raw": None,
                        "category": sup.interpretation if bool(self.super_active[i, s]) else None,
                        "eligibility": 2 * int(self.super_active[i, s])})
        return out


def evaluate_super_paircodes(
    pair_categories: torch.Tensor, categories_a: torch.Tensor, categories_b: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Recipes -> (super_active (N, S) bool, silenced (N, P) bool paircodes)."""
    t = _tables()
    n = pair_categories.shape[0]
    combined = torch.cat([pair_categories, categories_a, categories_b], dim=1)
    combined = torch.where(combined < 0, torch.full_like(combined, t.num_categories), combined)
    c = combined[:, t.cond_col]  # (N, Q)
    q = torch.arange(t.cond_col.shape[0]).expand(n, -1)
    satisfied = t.cond_mask[q, c]
    failed = torch.zeros(n, t.recipe_super.shape[0]).index_add_(1, t.cond_recipe, (~satisfied).float())
    active = torch.zeros(n, len(SUPER_PAIRCODES)).index_add_(1, t.recipe_super, (failed == 0).float()) > 0
    pc = torch.where(pair_categories < 0, torch.full_like(pair_categories, t.num_categories), pair_categories)
    e = torch.arange(t.silence_code.shape[0]).expand(n, -1)
    hit = active[:, t.silence_super] & t.silence_mask[e, pc[:, t.silence_code]]
    silenced = torch.zeros(n, len(PAIRCODES)).index_add_(1, t.silence_code, hit.float()) > 0
    return active, silenced


def _posture_changes(codes_a: Posecodes, codes_b: Posecodes) -> torch.Tensor:
    t = _tables()
    in_a = codes_a.super_active[:, t.posture_index]
    in_b = codes_b.super_eligibility[:, t.posture_index] > 0  # after suppression: the posture B is said to take
    any_b = codes_b.super_active[:, t.posture_index].any(1)
    take = in_b & ~in_a
    leave = in_a.any(1) & ~any_b
    straight_from = KINDS["angle"].categories.index("slightly bent")
    knees = codes_b.categories[:, t.knee_angle_columns]
    straight = ((knees >= straight_from) | (knees < 0)).all(1)
    return torch.cat([take, (leave & straight)[:, None], (leave & ~straight)[:, None]], dim=1)


def compute_paircodes(
    coords_a: torch.Tensor,
    coords_b: torch.Tensor,
    poses_a: torch.Tensor | None = None,
    poses_b: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    *,
    noise: bool = True,
    rotation_change_deg: float | Sequence[float] | torch.Tensor | None = None,
    raw: torch.Tensor | None = None,
    raw_a: torch.Tensor | None = None,
    raw_b: torch.Tensor | None = None,
) -> Paircodes:
    """Every paircode of N pairs: posecodes of A and B, differences, noise, binning, super-paircodes,
    eligibility, posture changes and the whole-body rotation band.

    Args:
        coords_a, coords_b: (N, 63, 3) caption coordinates of A and B.
        poses_a, poses_b: (N, J, 3) axis-angles of A and B (for the head codes).
        generator: seeded generator; draws, in this order: A's posecode noise, B's, the paircode
            noise, the rotation noise (always drawn, so giving a rotation changes nothing else).
        noise: False for deterministic binning (no draw at all).
        rotation_change_deg: heading change from A to B, degrees, positive = to the body's left (see
            `rotation_changes`); None when no pair is in sequence.
        raw, raw_a, raw_b: precomputed `measure_paircodes` and `measure_posecodes` of A and B.
    """
    t = _tables()
    n = coords_a.shape[0]
    codes_a = compute_posecodes(coords_a, poses_a, generator, noise=noise, raw=raw_a)
    codes_b = compute_posecodes(coords_b, poses_b, generator, noise=noise, raw=raw_b)
    raw = measure_paircodes(coords_a, coords_b, poses_a, poses_b) if raw is None else raw
    if noise:
        values = raw + draw_pair_noise(n, generator)
        rotation_noise = (2.0 * torch.rand(n, generator=generator) - 1.0) * ROTATION_MAX_NOISE
    else:
        values, rotation_noise = raw, None
    categories = bin_values(values, t.thresholds)
    cats = torch.where(categories < 0, torch.full_like(categories, t.num_categories), categories)
    eligibility = t.eligibility.gather(1, cats.T).T.contiguous() if n else torch.zeros_like(cats, dtype=torch.int8)
    active, silenced = evaluate_super_paircodes(categories, codes_a.categories, codes_b.categories)
    eligibility = torch.where(silenced, torch.zeros_like(eligibility), eligibility)
    rotation_raw = rotation_changes(rotation_change_deg, n)
    return Paircodes(
        raw=raw, values=values, categories=categories, eligibility=eligibility, super_active=active,
        postures=_posture_changes(codes_a, codes_b), rotation=rotation_category(rotation_raw, rotation_noise),
        rotation_raw=rotation_raw, posecodes_a=codes_a, posecodes_b=codes_b,
    )


def ignored_index(kind: str) -> int:
    return PAIR_KINDS[kind].categories.index(IGNORED)
