"""PoseFix-H (`posefix-H`, human-written modifiers; `posefix-PP` / `posefix-HPP` with the paraphrases): pairs of
SMPL-X poses from the PoseFix release, item formats 'p' / 'pt' (no images).

The caches are built from the release on first load (`process_posefix.build.ensure_release_caches`, as the
original caches on first load), or beforehand with `poseembroider data process-posefix`. Poses are stored in
the z-up AMASS frame with their z Euler angle zeroed; pose B of an in-sequence pair gets A's normalisation
(`amass_frame.AmassFrameDatasetFix`). Evaluation uses the test split's out-of-sequence pairs
(`pair_kinds=("out",)`, "PoseFix-OOS").
"""

from __future__ import annotations

from typing import Any

from poseembroider.datasets.amass_frame import AmassFrameDatasetFix, refuse_letters
from poseembroider.datasets.base_dataset import DatasetSource
from poseembroider.datasets.process_posefix.build import ensure_release_caches

__all__ = ["PoseFixDataset"]


class PoseFixDataset(AmassFrameDatasetFix):
    """`posefix-<version>` pairs (module docstring); kwargs as `TriModalDatasetFix`."""

    def __init__(self, source: DatasetSource, split: str, item_format: str = "pt", **kwargs: Any):
        refuse_letters(source, item_format, self.missing_letters, kwargs.get("keypoints_2d", False))  # before building
        ensure_release_caches(source, split)
        super().__init__(source, split, item_format=item_format, **kwargs)
