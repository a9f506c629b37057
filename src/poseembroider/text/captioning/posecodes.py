"""Posecodes: batched measures of pose properties, binned into categories, with eligibility.

Pipeline (all batched over N poses; no loop over poses):

1. `measure_posecodes(coords, poses)` -> raw values (N, K), one column per elementary posecode of
   `POSECODES` (K = 286: the original's 277, then 9 noise-free recipe-only codes of ours for the
   whole-body postures). Every kind has its own batched measure (`measure(kind, coords, joint_sets)`),
   which the instruction writer reuses on its own joint sets.
2. `draw_noise(N, generator)` -> uniform offsets in [-max_noise, +max_noise] per code (seeded,
   explicit `torch.Generator`); `bin_values(values, thresholds)` -> category indices.
3. `compute_posecodes(...)` ties it together and adds eligibility (0 never said / 1 may be said /
   2 rare), the super-posecodes (recipes over categories) and the support / suppression semantics.

Public API for other modules (the paircode writer imports these):

- `KINDS`, `POSECODES`, `SUPER_POSECODES` (tables, from `posecode_definitions`)
- `measure(kind, coords, joint_sets, poses=None) -> (N, K)` raw measure of one kind
- `measure_posecodes(coords, poses=None) -> (N, 286)` all elementary codes
- `thresholds_table(kinds) -> (K, T)`, `bin_values(values, thresholds) -> (N, K)` long
- `categorize(kind, values, noise=None) -> (N, K)` long (one kind)
- `draw_noise(num_poses, generator, max_noise=None) -> (N, K)`
- `category_name(kind, index)`, `KINDS[kind].categories` (interpretation names per category)
- `compute_posecodes(coords, poses=None, generator=None) -> Posecodes`
- `mirror_posecodes()` / `mirror_super_posecodes()`: how codes map under a left/right flip.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache

import torch

from poseembroider.body.body_model import as_joint_poses
from poseembroider.body.joints import JOINT_INDEX, PARENTS, mirrored_name
from poseembroider.geometry import axis_angle_to_matrix, matrix_to_euler
from poseembroider.text.captioning.coordinates import CAPTION_JOINT_INDEX, CAPTION_JOINT_NAMES
from poseembroider.text.captioning.posecode_definitions import (
    KINDS,
    POSECODE_INDEX,
    POSECODES,
    ROTATION_KINDS,
    SUPER_POSECODE_INDEX,
    SUPER_POSECODES,
)

__all__ = [
    "KINDS",
    "POSECODES",
    "ROTATION_KINDS",
    "SUPER_POSECODES",
    "Posecodes",
    "bin_values",
    "categorize",
    "category_name",
    "compute_posecodes",
    "draw_noise",
    "evaluate_super_posecodes",
    "measure",
    "measure_posecodes",
    "mirror_posecodes",
    "mirror_super_posecodes",
    "thresholds_table",
]

_DEG = 180.0 / math.pi
_NUM_SKELETON = 52  # the ground is the lowest of the 52 skeleton joints
_INCLINE_MIN_DROP = 0.2  # metres an ankle must be below the shoulders for the forward incline to count

# ------------------------------------------------------------------------------------------ measures


def _joint_index(joint_sets: Sequence[Sequence[str]] | torch.Tensor, num_joints: int) -> torch.Tensor:
    if isinstance(joint_sets, torch.Tensor):
        index = joint_sets.long()
    else:
        try:
            index = torch.tensor([[CAPTION_JOINT_INDEX[j] for j in js] for js in joint_sets], dtype=torch.long)
        except KeyError as err:
            raise ValueError(f"unknown caption joint {err.args[0]!r}; see CAPTION_JOINT_NAMES") from None
    if index.dim() != 2 or index.shape[1] != num_joints:
        raise ValueError(f"joint_sets: expected (K, {num_joints}) joints per set, got {tuple(index.shape)}")
    return index.reshape(-1, num_joints)


def _angle(coords, idx, poses):
    a, b, c = coords[:, idx[:, 0]], coords[:, idx[:, 1]], coords[:, idx[:, 2]]
    v1, v2 = a - b, c - b
    cos = (v1 * v2).sum(-1) / (v1.norm(dim=-1) * v2.norm(dim=-1)).clamp_min(1e-8)
    return torch.acos(cos.clamp(-1.0, 1.0)) * _DEG


def _distance(coords, idx, poses):
    return (coords[:, idx[:, 0]] - coords[:, idx[:, 1]]).norm(dim=-1)


def _relative(axis: int):
    def fn(coords, idx, poses):
        return coords[:, idx[:, 0], axis] - coords[:, idx[:, 1], axis]

    return fn


def _segment_orientation(coords, idx, poses):
    v = coords[:, idx[:, 1]] - coords[:, idx[:, 0]]
    cos = v[..., 1].abs() / v.norm(dim=-1).clamp_min(1e-8)
    return torch.acos(cos.clamp(0.0, 1.0)) * _DEG


def _elevation(coords, idx, poses):
    v = coords[:, idx[:, 1]] - coords[:, idx[:, 0]]
    sin = v[..., 1] / v.norm(dim=-1).clamp_min(1e-8)
    return torch.asin(sin.clamp(-1.0, 1.0)) * _DEG


def _height(coords, idx, poses):
    ground = coords[:, :_NUM_SKELETON, 1].min(dim=1).values
    return coords[:, idx[:, 0], 1] - ground[:, None]


def _incline_vectors(coords, idx):
    ls, rs, pelvis = coords[:, idx[:, 0]], coords[:, idx[:, 1]], coords[:, idx[:, 2]]
    la, ra = coords[:, idx[:, 3]], coords[:, idx[:, 4]]
    mid = (ls + rs) / 2
    return mid - pelvis, ls - rs, mid, la, ra


def _forward_incline(coords, idx, poses):
    spine, _, mid, la, ra = _incline_vectors(coords, idx)
    angle = torch.atan2(spine[..., 2], spine[..., 1]) * _DEG
    standing = ((mid[..., 1] - la[..., 1]) >= _INCLINE_MIN_DROP) | ((mid[..., 1] - ra[..., 1]) >= _INCLINE_MIN_DROP)
    return torch.where(standing, angle, torch.zeros_like(angle))


def _twist(coords, idx, poses):
    _, shoulders, _, _, _ = _incline_vectors(coords, idx)
    return torch.atan2(shoulders[..., 2], shoulders[..., 0]) * _DEG


def _side_lean(coords, idx, poses):
    spine, _, _, _, _ = _incline_vectors(coords, idx)
    sin = spine[..., 0] / spine.norm(dim=-1).clamp_min(1e-8)
    return torch.asin(sin.clamp(-1.0, 1.0)) * _DEG


def _body_axes(coords, idx):
    lh, rh, ls, rs, pelvis, neck = (coords[:, idx[:, i]] for i in range(6))
    left = (ls - rs) + (lh - rh)
    up = neck - pelvis
    forward = torch.nn.functional.normalize(torch.cross(left, up, dim=-1), dim=-1)
    return torch.nn.functional.normalize(left, dim=-1), forward


def _front_direction(coords, idx, poses):
    _, forward = _body_axes(coords, idx)
    return torch.acos(forward[..., 1].clamp(-1.0, 1.0)) * _DEG


def _left_direction(coords, idx, poses):
    left, _ = _body_axes(coords, idx)
    return torch.acos(left[..., 1].clamp(-1.0, 1.0)) * _DEG


def _chain(from_joint: str, to_joint: str) -> tuple[int, ...]:
    """SMPL-X joints whose local rotations carry the frame of `from_joint` into the one of `to_joint`:
    the path from `from_joint` (inclusive, unless it is the root: the global orientation is not part
    of the body's own posture) down to `to_joint` (inclusive)."""
    start, joint = JOINT_INDEX[from_joint], JOINT_INDEX[to_joint]
    path = [joint]
    while joint != start:
        joint = PARENTS[joint]
        if joint < 0:
            raise ValueError(f"{from_joint} is not an ancestor of {to_joint}")
        path.append(joint)
    return tuple(j for j in reversed(path) if PARENTS[j] >= 0)


def _relative_rotation(poses: torch.Tensor, from_joint: str, to_joint: str) -> torch.Tensor:
    """(N, J, 3) axis-angles -> (N, 3, 3) composed local rotations along the chain."""
    chain = _chain(from_joint, to_joint)
    rotations = axis_angle_to_matrix(poses[:, list(chain)].float())
    out = rotations[:, 0]
    for i in range(1, len(chain)):
        out = out @ rotations[:, i]
    return out


def _head_rotation(axis: int):
    def fn(coords, idx, poses):
        if poses is None:
            return coords.new_full((coords.shape[0], idx.shape[0]), float("nan"))
        columns = []
        for k in range(idx.shape[0]):
            names = [CAPTION_JOINT_NAMES[int(i)] for i in idx[k]]
            euler = matrix_to_euler(_relative_rotation(poses, names[0], names[1]), "xyz")
            columns.append(euler[:, axis] * _DEG)
        return torch.stack(columns, dim=1).to(coords.dtype)

    return fn


_MEASURES = {
    "angle": _angle,
    "distance": _distance,
    "relative_x": _relative(0),
    "relative_y": _relative(1),
    "relative_z": _relative(2),
    "segment_orientation": _segment_orientation,
    "on_ground": _height,
    "height_above_ground": _height,
    "body_forward_incline": _forward_incline,
    "body_twist": _twist,
    "body_side_lean": _side_lean,
    "body_front_direction": _front_direction,
    "body_left_direction": _left_direction,
    "head_pitch": _head_rotation(0),
    "head_yaw": _head_rotation(1),
    "head_roll": _head_rotation(2),
    "elevation": _elevation,
    "near_ground": _height,
}
assert set(_MEASURES) == set(KINDS), "every kind needs a measure"


def _check_coords(coords: torch.Tensor) -> torch.Tensor:
    if not isinstance(coords, torch.Tensor) or coords.dim() != 3 or coords.shape[1:] != (len(CAPTION_JOINT_NAMES), 3):
        shape = tuple(coords.shape) if isinstance(coords, torch.Tensor) else type(coords).__name__
        raise ValueError(f"coords: expected (N, {len(CAPTION_JOINT_NAMES)}, 3) caption coordinates "
                         f"(`caption_coordinates`), got {shape}")
    return coords.float()


def _check_poses(poses: torch.Tensor | None, num: int) -> torch.Tensor | None:
    if poses is None:
        return None
    poses = as_joint_poses(poses)
    if poses.shape[0] != num:
        raise ValueError(f"poses: expected {num} poses (one per coordinate set), got {poses.shape[0]}")
    return poses


def measure(
    kind: str,
    coords: torch.Tensor,
    joint_sets: Sequence[Sequence[str]] | torch.Tensor,
    poses: torch.Tensor | None = None,
) -> torch.Tensor:
    """Raw measure of one kind on K joint sets: (N, 63, 3) coordinates -> (N, K).

    Args:
        kind: a key of `KINDS` (its `description` says what is measured, in `unit`).
        coords: caption coordinates (`caption_coordinates`).
        joint_sets: K tuples of `KINDS[kind].num_joints` caption joint names, or their (K, m) indices.
        poses: (N, 22 | 52 | 55, 3) axis-angles, needed by the head kinds (`ROTATION_KINDS`); without
            them those kinds return NaN.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown posecode kind {kind!r}; expected one of {sorted(KINDS)}")
    coords = _check_coords(coords)
    idx = _joint_index(joint_sets, KINDS[kind].num_joints)
    return _MEASURES[kind](coords, idx, _check_poses(poses, coords.shape[0]))


@lru_cache(maxsize=1)
def _kind_slices() -> tuple[tuple[str, slice, torch.Tensor], ...]:
    """Contiguous (kind, column slice, joint index) blocks of `POSECODES` (sorted by kind)."""
    blocks, start = [], 0
    while start < len(POSECODES):
        kind = POSECODES[start].kind
        stop = start
        while stop < len(POSECODES) and POSECODES[stop].kind == kind:
            stop += 1
        idx = _joint_index([c.joints for c in POSECODES[start:stop]], KINDS[kind].num_joints)
        blocks.append((kind, slice(start, stop), idx))
        start = stop
    return tuple(blocks)


def measure_posecodes(coords: torch.Tensor, poses: torch.Tensor | None = None) -> torch.Tensor:
    """Raw values of every elementary posecode: (N, 63, 3) -> (N, len(POSECODES)) float32.

    Head-rotation codes are NaN when `poses` (the axis-angles the coordinates come from) are not given.
    """
    coords = _check_coords(coords)
    poses = _check_poses(poses, coords.shape[0])
    out = coords.new_empty(coords.shape[0], len(POSECODES))
    for kind, columns, idx in _kind_slices():
        out[:, columns] = _MEASURES[kind](coords, idx, poses)
    return out


# ------------------------------------------------------------------------------------------- binning


def thresholds_table(kinds: Sequence[str]) -> torch.Tensor:
    """(K, T) thresholds of the given kinds, padded with +inf (T = most thresholds of any kind)."""
    width = max(len(k.thresholds) for k in KINDS.values())
    rows = [list(KINDS[k].thresholds) + [math.inf] * (width - len(KINDS[k].thresholds)) for k in kinds]
    return torch.tensor(rows, dtype=torch.float32).reshape(len(rows), width)


def bin_values(values: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
    """Category index per value: the smallest i with value <= thresholds[k, i] (last category above all).

    values (N, K), thresholds (K, T) (+inf padded) -> (N, K) long. NaN values get -1 (not measurable).
    """
    categories = (values.unsqueeze(-1) > thresholds.to(values.dtype)).sum(-1)
    return torch.where(torch.isnan(values), torch.full_like(categories, -1), categories)


def categorize(kind: str, values: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
    """Bin (N, K) values of one kind (plus optional noise of the same shape) -> (N, K) category indices."""
    if kind not in KINDS:
        raise ValueError(f"unknown posecode kind {kind!r}")
    thresholds = torch.tensor(KINDS[kind].thresholds, dtype=values.dtype)
    v = values if noise is None else values + noise
    categories = (v.unsqueeze(-1) > thresholds).sum(-1)
    return torch.where(torch.isnan(v), torch.full_like(categories, -1), categories)


def category_name(kind: str, index: int) -> str | None:
    """Name (= interpretation) of category `index` of `kind`; None for -1 (not measurable)."""
    return None if index < 0 else KINDS[kind].categories[index]


@lru_cache(maxsize=1)
def _max_noise() -> torch.Tensor:
    return torch.tensor([KINDS[c.kind].max_noise for c in POSECODES], dtype=torch.float32)


def draw_noise(
    num_poses: int, generator: torch.Generator | None, max_noise: torch.Tensor | None = None
) -> torch.Tensor:
    """Uniform offsets in [-m, +m] per pose and code: (N, K) with m = `max_noise` (K,) (default: the
    posecodes' own). The generator is explicit so that captions are reproducible from a seed.

    Only the codes with noise (m > 0) draw from the generator, in column order: the noise-free codes of
    the added kinds (`ADDED_KINDS`) leave every draw of the original codes, and every later draw from
    the same generator, as it was before they were added."""
    m = _max_noise() if max_noise is None else max_noise.float()
    noisy = (m > 0).nonzero().flatten()
    u = torch.full((num_poses, m.shape[0]), 0.5)
    if noisy.numel() == m.shape[0]:
        u = torch.rand((num_poses, m.shape[0]), generator=generator)
    elif noisy.numel():
        u[:, noisy] = torch.rand((num_poses, noisy.numel()), generator=generator)
    return (2.0 * u - 1.0) * m


# --------------------------------------------------------------------------------- eligibility tables


@dataclass(frozen=True)
class _Tables:
    thresholds: torch.Tensor  # (K, T)
    eligibility: torch.Tensor  # (K, C + 1) int8; column C = not measurable
    num_categories: int
    cond_code: torch.Tensor  # (Q,) code of each recipe condition
    cond_mask: torch.Tensor  # (Q, C + 1) bool: categories satisfying the condition
    cond_recipe: torch.Tensor  # (Q,) recipe of each condition
    cond_support2: torch.Tensor  # (Q, C + 1) bool: satisfying categories that are support II of the code
    recipe_super: torch.Tensor  # (P,) super-posecode of each recipe
    num_recipes: int
    suppress_code: torch.Tensor  # (E, 2): (super, elementary code) silenced when the super is produced
    suppress_super: torch.Tensor  # (F, 2): (super, super) silenced
    super_eligibility: torch.Tensor  # (S,) int8


@lru_cache(maxsize=1)
def _tables() -> _Tables:
    width = max(len(k.categories) for k in KINDS.values())
    elig = torch.zeros(len(POSECODES), width + 1, dtype=torch.int8)
    for k, code in enumerate(POSECODES):
        for i, category in enumerate(KINDS[code.kind].categories):
            elig[k, i] = code.eligibility(category)
    cond_code, cond_mask, cond_recipe, cond_support2, recipe_super = [], [], [], [], []
    for s, sup in enumerate(SUPER_POSECODES):
        for recipe in sup.recipes:
            r = len(recipe_super)
            recipe_super.append(s)
            for name, categories in recipe:
                k = POSECODE_INDEX[name]
                code = POSECODES[k]
                cats = KINDS[code.kind].categories
                mask = torch.zeros(width + 1, dtype=torch.bool)
                mask2 = torch.zeros(width + 1, dtype=torch.bool)
                for category in categories:
                    mask[cats.index(category)] = True
                    mask2[cats.index(category)] = category in code.support_2
                cond_code.append(k)
                cond_mask.append(mask)
                cond_support2.append(mask2)
                cond_recipe.append(r)
    suppress_code, suppress_super = [], []
    for s, sup in enumerate(SUPER_POSECODES):
        for name in sup.suppresses:
            if name in SUPER_POSECODE_INDEX:
                suppress_super.append((s, SUPER_POSECODE_INDEX[name]))
            else:
                suppress_code.append((s, POSECODE_INDEX[name]))
    return _Tables(
        thresholds=thresholds_table([c.kind for c in POSECODES]),
        eligibility=elig,
        num_categories=width,
        cond_code=torch.tensor(cond_code),
        cond_mask=torch.stack(cond_mask),
        cond_recipe=torch.tensor(cond_recipe),
        cond_support2=torch.stack(cond_support2),
        recipe_super=torch.tensor(recipe_super),
        num_recipes=len(recipe_super),
        suppress_code=torch.tensor(suppress_code, dtype=torch.long).reshape(-1, 2),
        suppress_super=torch.tensor(suppress_super, dtype=torch.long).reshape(-1, 2),
        super_eligibility=torch.tensor([s.eligibility for s in SUPER_POSECODES], dtype=torch.int8),
    )


# ------------------------------------------------------------------------------------------- results


@dataclass
class Posecodes:
    """Posecodes of N poses. Columns follow `POSECODES` (K) and `SUPER_POSECODES` (S).

    raw: (N, K) measured values (NaN: not measurable, e.g. head codes without joint rotations).
    values: (N, K) raw + noise (what was binned).
    categories: (N, K) long, index into `KINDS[kind].categories`; -1 when not measurable.
    eligibility: (N, K) int8: 0 never said, 1 may be said (skippable), 2 rare (always said), after
        support (type I and II) and super-posecode suppression.
    super_active: (N, S) bool: the super-posecode's recipe holds (a fact, used by pair mining).
    super_eligibility: (N, S) int8: 0 for inactive or suppressed super-posecodes, else 1 or 2.
    """

    raw: torch.Tensor
    values: torch.Tensor
    categories: torch.Tensor
    eligibility: torch.Tensor
    super_active: torch.Tensor
    super_eligibility: torch.Tensor

    def __len__(self) -> int:
        return self.raw.shape[0]

    def describe(self, i: int) -> list[dict]:
        """Every posecode of pose i, before selection: kind, joints, raw value, category, eligibility."""
        out = []
        for k, code in enumerate(POSECODES):
            raw = float(self.raw[i, k])
            out.append({
                "name": code.name,
                "kind": code.kind,
                "joints": list(code.joints),
                "raw": None if math.isnan(raw) else round(raw, 4),
                "value": None if math.isnan(raw) else round(float(self.values[i, k]), 4),
                "unit": KINDS[code.kind].unit,
                "category": category_name(code.kind, int(self.categories[i, k])),
                "eligibility": int(self.eligibility[i, k]),
            })
        for s, sup in enumerate(SUPER_POSECODES):
            out.append({
                "name": sup.name,
                "kind": "super",
                "joints": _super_joints(s),
                "raw": None,
                "value": None,
                "unit": None,
                "category": sup.interpretation if bool(self.super_active[i, s]) else None,
                "eligibility": int(self.super_eligibility[i, s]),
            })
        return out


@cache
def _super_joints(s: int) -> list[str]:
    """Joints of the elementary codes a super-posecode's recipes read, in first-use order."""
    joints: list[str] = []
    for recipe in SUPER_POSECODES[s].recipes:
        for name, _ in recipe:
            joints += [j for j in POSECODES[POSECODE_INDEX[name]].joints if j not in joints]
    return joints


def evaluate_super_posecodes(categories: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Recipes over categories (N, K) -> (super_active (N, S) bool, support-II hits (N, K) bool).

    A super-posecode is active when all conditions of any of its recipes hold. A support-II category
    of a code is silenced when it satisfies a condition of an active super-posecode.
    """
    t = _tables()
    n = categories.shape[0]
    cats = torch.where(categories < 0, torch.full_like(categories, t.num_categories), categories)
    c = cats[:, t.cond_code]  # (N, Q)
    q = torch.arange(t.cond_code.shape[0]).expand(n, -1)
    satisfied = t.cond_mask[q, c]
    unsatisfied = torch.zeros(n, t.num_recipes).index_add_(1, t.cond_recipe, (~satisfied).float())
    recipe_ok = unsatisfied == 0
    active = torch.zeros(n, len(SUPER_POSECODES)).index_add_(1, t.recipe_super, recipe_ok.float()) > 0
    cond_super = t.recipe_super[t.cond_recipe]
    hit = active[:, cond_super] & t.cond_support2[q, c]
    support2 = torch.zeros(n, len(POSECODES)).index_add_(1, t.cond_code, hit.float()) > 0
    return active, support2


def compute_posecodes(
    coords: torch.Tensor,
    poses: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    *,
    noise: bool | torch.Tensor = True,
    raw: torch.Tensor | None = None,
) -> Posecodes:
    """Every posecode of N poses: measure, add noise, bin, super-posecodes, eligibility.

    Args:
        coords: (N, 63, 3) caption coordinates.
        poses: (N, 22 | 52 | 55, 3) axis-angles the coordinates come from (for the head codes).
        generator: seeded generator for the noise (a fresh unseeded draw when None).
        noise: False for none (deterministic binning), or a precomputed (N, K) noise tensor.
        raw: precomputed `measure_posecodes(coords, poses)` (to bin the same measures several times).
    """
    t = _tables()
    raw = measure_posecodes(coords, poses) if raw is None else raw
    n = raw.shape[0]
    if isinstance(noise, torch.Tensor):
        offsets = noise
    elif noise:
        offsets = draw_noise(n, generator)
    else:
        offsets = torch.zeros_like(raw)
    values = raw + offsets
    categories = bin_values(values, t.thresholds)
    cats = torch.where(categories < 0, torch.full_like(categories, t.num_categories), categories)
    eligibility = t.eligibility.gather(1, cats.T).T.contiguous() if n else torch.zeros_like(cats, dtype=torch.int8)
    active, support2 = evaluate_super_posecodes(categories)
    silenced = support2
    if t.suppress_code.numel():
        hits = active[:, t.suppress_code[:, 0]].float()
        silenced = silenced | (torch.zeros(n, len(POSECODES)).index_add_(1, t.suppress_code[:, 1], hits) > 0)
    eligibility = torch.where(silenced, torch.zeros_like(eligibility), eligibility)
    super_elig = torch.where(active, t.super_eligibility.expand(n, -1), torch.zeros(1, dtype=torch.int8))
    if t.suppress_super.numel():
        hits = active[:, t.suppress_super[:, 0]].float()
        silenced_super = torch.zeros(n, len(SUPER_POSECODES)).index_add_(1, t.suppress_super[:, 1], hits) > 0
        super_elig = torch.where(silenced_super, torch.zeros_like(super_elig), super_elig)
    return Posecodes(raw, values, categories, eligibility, active, super_elig)


# ------------------------------------------------------------------------------------------ mirroring

_NEGATED_SAME_CODE = {"body_twist", "body_side_lean", "head_yaw", "head_roll"}


@lru_cache(maxsize=1)
def mirror_posecodes() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """How elementary codes map under a left/right flip of the pose.

    Returns (index (K,), scale (K,), offset (K,)) such that for the flipped pose
    `raw_flipped[:, index[k]] == scale[k] * raw[:, k] + offset[k]`.
    """
    index, scale, offset = [], [], []
    for code in POSECODES:
        mirrored = tuple(mirrored_name(j) for j in code.joints)
        a, b = 1.0, 0.0
        if code.kind in _NEGATED_SAME_CODE or code.kind in ("body_forward_incline", "head_pitch",
                                                           "body_front_direction", "body_left_direction"):
            target = code.name
            if code.kind in _NEGATED_SAME_CODE:
                a = -1.0
            elif code.kind == "body_left_direction":
                a, b = -1.0, 180.0
        elif f"{code.kind}:{'/'.join(mirrored)}" in POSECODE_INDEX:
            target = f"{code.kind}:{'/'.join(mirrored)}"
            a = -1.0 if code.kind == "relative_x" else 1.0
        else:  # a left/right pair mapped onto itself with its joints swapped
            target = f"{code.kind}:{'/'.join(mirrored[::-1])}"
            a = -1.0 if code.kind in ("relative_y", "relative_z") else 1.0
        index.append(POSECODE_INDEX[target])
        scale.append(a)
        offset.append(b)
    return torch.tensor(index), torch.tensor(scale), torch.tensor(offset)


def _swap_sides(text: str) -> str:
    return text.replace("left", "\0").replace("right", "left").replace("\0", "right")


@lru_cache(maxsize=1)
def mirror_super_posecodes() -> torch.Tensor:
    """(S,) index of each super-posecode's mirror image (e.g. kneeling on left <-> on right knee)."""
    return torch.tensor([SUPER_POSECODE_INDEX[_swap_sides(s.name)] for s in SUPER_POSECODES])
