"""3DPW (`threedpw-<version>`, e.g. `threedpw-sf13`): real images with SMPL-X body poses, item formats 'i',
'p', 'ip' (no texts).

The caches are made by `poseembroider data process-3dpw` (`process_threedpw`) from the public release; the
version names the crop (`sf13`: the 2D-keypoint box enlarged with scale factor 1.3, the crop the original
actually used under the name `sf1`). Images are read from `THREEDPW_IMG_DIR` (`<release>/imageFiles`). Poses
are stored in the z-up AMASS frame with the z Euler angle of the global orientation zeroed, after the
original's (-pi/2, 0, 0) frame fix of the camera-frame orientation. Splits: train, val (the release's
`validation`), test.
"""

from __future__ import annotations

from typing import Any

from poseembroider.datasets.amass_frame import AmassFrameDatasetScript
from poseembroider.datasets.base_dataset import DatasetSource
from poseembroider.datasets.cache_format import CacheError

__all__ = ["THREEDPW_SPLITS", "ThreeDPWDataset"]

THREEDPW_SPLITS = {"train": "train", "val": "validation", "test": "test"}
"""Our split name -> the release's folder name."""


class ThreeDPWDataset(AmassFrameDatasetScript):
    """Person crops and poses of processed 3DPW (module docstring); kwargs as `TriModalDatasetScript`."""

    missing_letters = "t"

    def __init__(self, source: DatasetSource, split: str, item_format: str = "ip", **kwargs: Any):
        if split not in THREEDPW_SPLITS:
            raise CacheError(
                f"{source.family}-{source.version}: unknown split {split!r}; 3DPW splits are "
                f"{', '.join(THREEDPW_SPLITS)}"
            )
        super().__init__(source, split, item_format=item_format, **kwargs)
