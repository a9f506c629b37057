"""Shared PoseVAE test data: sampled poses (z-up model frame) and a pose-only dataset in the cache format."""

from __future__ import annotations

import pytest
import torch

from poseembroider import config
from poseembroider.datasets.cache_format import cache_file_name, save_cache
from poseembroider.datasets.pose_processing import normalize_poses

POSEVAE_SCRIPT_VERSION = "posevaetest_overlap30_res224_j16_sf11"
N_TRAIN, N_VAL = 256, 64


@pytest.fixture(scope="session")
def sampled_poses_yup(body_model) -> torch.Tensor:
    """(N_TRAIN + N_VAL, 22, 3) poses of the synthetic pose sampler, as stored (y-up, with heading)."""
    from poseembroider.datasets.synthetic.pose_sampler import PoseSampler

    return PoseSampler(seed=0, body_model=body_model).sample(N_TRAIN + N_VAL).poses


@pytest.fixture(scope="session")
def sampled_poses(sampled_poses_yup) -> torch.Tensor:
    """The same poses in the models' z-up frame (what datasets hand to the models)."""
    return normalize_poses(sampled_poses_yup, "bedlam")


@pytest.fixture(scope="session")
def posevae_dataset(sampled_poses_yup) -> str:
    """`synthscript-posevaetest_…`: poses caches only (train N_TRAIN, val N_VAL), enough for item_format 'p'."""
    for split, chunk in (("train", sampled_poses_yup[:N_TRAIN]), ("val", sampled_poses_yup[N_TRAIN:])):
        ids = list(range(1000, 1000 + len(chunk)))
        stored = {i: torch.cat([p, torch.zeros(30, 3)]) for i, p in zip(ids, chunk, strict=True)}  # (52, 3)
        save_cache(
            {
                "criteria": {"posevae_test": True},
                "poses": stored,
                "shapes": {i: torch.zeros(11) for i in ids},
                "heading_rotation": {i: torch.zeros(3) for i in ids},
            },
            config.DATA_CACHE_DIR / cache_file_name("synthscript", POSEVAE_SCRIPT_VERSION, split, "poses", len(ids)),
        )
    return f"synthscript-{POSEVAE_SCRIPT_VERSION}"
