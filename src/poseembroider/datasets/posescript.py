"""PoseScript-H2 (`posescript-H2`, human-written captions): SMPL-X poses of the PoseScript release with their
captions, item formats 'p' / 'pt' / 't' (no images).

The caches are built from the release on first load (`process_posefix.build.ensure_release_caches`), or
beforehand with `poseembroider data process-posefix --dataset posescript-H2`. Poses are stored in the z-up
AMASS frame with their z Euler angle zeroed, as the original normalises them.
"""

from __future__ import annotations

from typing import Any

from poseembroider.datasets.amass_frame import AmassFrameDatasetScript, refuse_letters
from poseembroider.datasets.base_dataset import DatasetSource
from poseembroider.datasets.process_posefix.build import ensure_release_caches

__all__ = ["PoseScriptDataset"]


class PoseScriptDataset(AmassFrameDatasetScript):
    """`posescript-<version>` poses and captions (module docstring); kwargs as `TriModalDatasetScript`."""

    missing_letters = "i"

    def __init__(self, source: DatasetSource, split: str, item_format: str = "pt", **kwargs: Any):
        refuse_letters(source, item_format, self.missing_letters, kwargs.get("keypoints_2d", False))  # before building
        ensure_release_caches(source, split)
        super().__init__(source, split, item_format=item_format, **kwargs)
