"""Posecode categories for pair mining: how many posecodes differ between two poses.

Pair mining (original step 6, `shared/reference/captioning.md` §3.9) keeps a pair A -> B only when
enough posecodes differ: more than 15 for in-sequence pairs, more than 20 for out-of-sequence ones.
The count compares the *categories* of every elementary posecode and the *activity* of every
super-posecode of A and B, measured without noise:

    #different = P - #equal,   P = len(POSECODES) + len(SUPER_POSECODES)

The dataset generator calls `posecode_categories` once per dataset (batched, bounded memory) and
compares rows (`count_differing_rows`, or `datasets.synthetic.pair_mining.count_differing_codes` for
all A x B at once).
"""

from __future__ import annotations

import numpy as np
import torch

from poseembroider.body.body_model import as_joint_poses
from poseembroider.text.captioning.coordinates import caption_coordinates
from poseembroider.text.captioning.posecode_definitions import POSECODES, SUPER_POSECODES
from poseembroider.text.captioning.posecodes import compute_posecodes
from poseembroider.text.captioning.skeleton import skeleton_model

__all__ = [
    "NUM_MINING_POSECODES",
    "count_differing_posecodes",
    "count_differing_rows",
    "posecode_categories",
    "posecode_categories_from_coordinates",
]

NUM_MINING_POSECODES = len(POSECODES) + len(SUPER_POSECODES)
"""P: the columns compared by pair mining (elementary categories, then super-posecode activity)."""


def posecode_categories_from_coordinates(
    coords: torch.Tensor, poses: torch.Tensor | None = None, batch_size: int = 8192
) -> torch.Tensor:
    """(N, 63, 3) caption coordinates (+ their (N, J, 3) axis-angles, for the head codes) -> (N, P) long.

    Columns: the category index of every elementary posecode (`POSECODES` order; -1 when not
    measurable, e.g. head codes without axis-angles), then 0 / 1 for every super-posecode
    (`SUPER_POSECODES` order). No noise: the same pose always gives the same row.
    """
    out = []
    for start in range(0, coords.shape[0], batch_size):
        stop = start + batch_size
        codes = compute_posecodes(coords[start:stop], None if poses is None else poses[start:stop], noise=False)
        out.append(torch.cat([codes.categories, codes.super_active.long()], dim=1))
    return torch.cat(out) if out else torch.zeros(0, NUM_MINING_POSECODES, dtype=torch.long)


def posecode_categories(poses: torch.Tensor | np.ndarray, body_model, batch_size: int = 8192) -> torch.Tensor:
    """Posecode categories of N poses for pair mining: (N, 22 | 52 | 55, 3) axis-angles -> (N, P) long.

    Only the mean-shape skeleton of `body_model` is used (joints-only forward kinematics), each pose
    with its own heading removed, as for captions. Compare two rows with `count_differing_rows`.
    """
    poses = as_joint_poses(poses).float()
    coords = caption_coordinates(poses, skeleton_model(body_model), batch_size=4096)
    return posecode_categories_from_coordinates(coords, poses, batch_size)


def count_differing_rows(categories_a: torch.Tensor, categories_b: torch.Tensor) -> torch.Tensor:
    """(N, P) and (N, P) posecode categories -> (N,) long number of differing posecodes, row by row."""
    if categories_a.shape != categories_b.shape:
        raise ValueError(f"categories: expected two (N, P) tensors of one shape, got {tuple(categories_a.shape)} "
                         f"and {tuple(categories_b.shape)}")
    return categories_a.shape[1] - (categories_a == categories_b).sum(1)


def count_differing_posecodes(
    poses_a: torch.Tensor | np.ndarray, poses_b: torch.Tensor | np.ndarray, body_model
) -> torch.Tensor:
    """(N,) number of differing posecodes between pose A and pose B of each pair (no noise)."""
    poses_a, poses_b = as_joint_poses(poses_a, "poses_a"), as_joint_poses(poses_b, "poses_b")
    if poses_a.shape[0] != poses_b.shape[0]:
        raise ValueError(f"poses_a has {poses_a.shape[0]} poses but poses_b has {poses_b.shape[0]}: one B per A")
    return count_differing_rows(posecode_categories(poses_a, body_model), posecode_categories(poses_b, body_model))
