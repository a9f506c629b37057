"""Datasets whose poses are stored in the z-up AMASS frame: PoseFix-H, PoseScript-H2, 3DPW, imported AMASS motions.

BEDLAM and the synthetic world store heading-normalised poses in the y-up SMPL-X frame; the datasets of
this module store them as the original normalises AMASS-like poses instead: in the z-up frame, the z
Euler angle of the global orientation set to zero (`geometry.normalize_global_orient_amass`), with the
normalising rotation N (`heading_rotation`, R_normalised = N @ R_original) kept per pose. Loading with
the 'amass' normaliser is then the identity up to float rounding (normalising twice changes nothing).

What differs from the y-up datasets is pose B of an in-sequence pair: it is re-expressed with A's
normalisation, `N_A @ N_Bᵀ @ R_B(normalised)`, so the global rotation between A and B survives, and no
frame change follows (the poses are z-up already). `TriModalDatasetFix` does the y-up version.
"""

from __future__ import annotations

from typing import Any

import torch

from poseembroider.datasets.base_dataset import DatasetSource, TriModalDatasetFix, TriModalDatasetScript
from poseembroider.datasets.pose_processing import flip_poses
from poseembroider.geometry import axis_angle_to_matrix, matrix_to_axis_angle

__all__ = ["AmassFrameDatasetFix", "AmassFrameDatasetScript", "refuse_letters"]


def refuse_letters(source: DatasetSource, item_format: str, missing: str, keypoints_2d: bool = False) -> None:
    """Refuse an item format asking for a modality the dataset does not have (`missing`: letters among 'ipt'),
    naming the dataset, instead of a missing-cache error later."""
    names = {"i": "images", "p": "poses", "t": "texts"}
    asked = [names[letter] for letter in missing if letter in item_format]
    if keypoints_2d and "i" in missing:
        asked.append("images (keypoints_2d=True)")
    if asked:
        has = "".join(letter for letter in "ipt" if letter not in missing)
        raise ValueError(
            f"{source.family}-{source.version} has no {' or '.join(asked)}: item_format {item_format!r} asks for "
            f"them; use letters among {has!r}"
        )


class AmassFrameDatasetScript(TriModalDatasetScript):
    """Single elements stored in the z-up AMASS frame. `missing`: modalities the family lacks (letters)."""

    missing_letters = ""

    def __init__(self, source: DatasetSource, split: str, item_format: str = "pt", **kwargs: Any):
        refuse_letters(source, item_format, self.missing_letters, kwargs.get("keypoints_2d", False))
        super().__init__(source, split, item_format=item_format, **kwargs)


class AmassFrameDatasetFix(TriModalDatasetFix):
    """Pairs of poses stored in the z-up AMASS frame (no images: PoseFix-H, imported AMASS motions)."""

    missing_letters = "i"

    def __init__(self, source: DatasetSource, split: str, item_format: str = "pt", **kwargs: Any):
        refuse_letters(source, item_format, self.missing_letters, kwargs.get("keypoints_2d", False))
        super().__init__(source, split, item_format=item_format, **kwargs)

    def _pose_b_in_sequence(self, id_a: int, id_b: int, flip: bool) -> torch.Tensor:
        """(J, 3) pose B with A's normalising rotation: N_A @ N_Bᵀ @ R_B(stored), z-up throughout."""
        headings = self._poses.get("heading_rotation")
        raw_b = self._raw_pose(id_b)[: self.num_body_joints].clone()
        if headings is None:
            return self._pose(raw_b, flip)
        n_a = axis_angle_to_matrix(torch.as_tensor(headings[id_a], dtype=torch.float32))
        n_b = axis_angle_to_matrix(torch.as_tensor(headings[id_b], dtype=torch.float32))
        raw_b[0] = matrix_to_axis_angle(n_a @ n_b.T @ axis_angle_to_matrix(raw_b[0]))
        return flip_poses(raw_b) if flip else raw_b
