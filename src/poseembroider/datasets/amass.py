"""Imported AMASS-style motions (`poseembroider data import-amass --name NAME`): pose-only datasets.

| name | content |
| --- | --- |
| `amassposes-<name>` | the kept frames of the motions (z-up, z Euler angle zeroed), 3 captions each (our captioner) |
| `amasspairs-<name>-<mining version>` | pairs mined among them (in / out of sequence), 3 instructions each |

Splits train / val are made by sequence (a motion file is in one split). Item formats 'p', 'pt', 't'.
"""

from __future__ import annotations

from poseembroider.datasets.amass_frame import AmassFrameDatasetFix, AmassFrameDatasetScript

__all__ = ["AmassPairsDataset", "AmassPosesDataset"]


class AmassPosesDataset(AmassFrameDatasetScript):
    """`amassposes-<name>`: imported poses and their captions (no images)."""

    missing_letters = "i"


class AmassPairsDataset(AmassFrameDatasetFix):
    """`amasspairs-<name>-<mining version>`: pairs of imported poses and their instructions (no images)."""
