"""A small BEDLAM release in BEDLAM's layout (`process_bedlam.fixture`), processed once per module."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from poseembroider.datasets.process_bedlam.fixture import FixtureConfig, build_fixture
from poseembroider.datasets.process_bedlam.pipeline import BedlamConfig

FIXTURE = FixtureConfig(sequences_per_scene=3, frames=45, render_scale=0.2)
SIZES = {"train": 40, "val": 24}


def bedlam_config(release: dict, split: str, root: Path, **changes) -> BedlamConfig:
    cfg = BedlamConfig(
        release["root"],
        split,
        fps_size=SIZES[split],
        scene_table=release["scene_table"],
        cache_dir=root / "cache",
        work_dir=root / "work",
        body_model_file=release["model_file"],
        groups_per_unit=2,
    )
    return replace(cfg, **changes)


@pytest.fixture(scope="module")
def bedlam_release(tmp_path_factory, body_model, procedural_model_file) -> dict:
    """The rendered fixture release (frames at a fifth of their size, resized)."""
    release = build_fixture(tmp_path_factory.mktemp("bedlam_release"), body_model, FIXTURE)
    return {**release, "model_file": procedural_model_file.parent.parent}
