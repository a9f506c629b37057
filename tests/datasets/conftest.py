"""A tiny dataset written in the processed-cache format, built by hand (independent of the generator)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from poseembroider import config
from poseembroider.data import load_cmu_dev_poses
from poseembroider.datasets.cache_format import cache_file_name, save_cache
from poseembroider.datasets.registry import synth_image_root

SCRIPT_VERSION = "fixture_overlap30_res224_j16_sf11"
FIX_VERSION = SCRIPT_VERSION + "-in15_out20_t05_sim0709"
N = 6

# test-only strings: they exercise the text plumbing, they are not captions
TEXTS = {i: [f"fixture text {i} a about the left arm", f"fixture text {i} b", f"fixture text {i} c"] for i in range(N)}


@pytest.fixture(scope="session")
def tiny_synth_dataset() -> dict:
    cache_dir = config.DATA_CACHE_DIR
    image_root = synth_image_root(SCRIPT_VERSION)
    rng = np.random.default_rng(0)
    poses = load_cmu_dev_poses()[:N]
    ids = [10 + i for i in range(N)]
    images, bboxes = {}, {}
    for data_id in ids:
        rel = f"images/train/{data_id:06d}.png"
        (image_root / rel).parent.mkdir(parents=True, exist_ok=True)
        array = rng.integers(0, 255, size=(300, 200, 3), dtype=np.uint8)
        array[:, :100] = 0  # left half black, to check the horizontal flip
        Image.fromarray(array).save(image_root / rel)
        images[data_id] = rel
        bboxes[data_id] = [0, 0, 200, 300]
    criteria = {"fixture": True}
    stored = {
        data_id: torch.as_tensor(np.concatenate([poses[k], np.zeros((30, 3), np.float32)]))
        for k, data_id in enumerate(ids)
    }
    save_cache(
        {
            "criteria": criteria,
            "bboxes": bboxes,
            "images": images,
            "full_human_visibility": {i: True for i in ids},
            "camera_transformation": {i: (torch.zeros(3), torch.zeros(3)) for i in ids},
        },
        cache_dir / cache_file_name("synthscript", SCRIPT_VERSION, "train", "images", N),
    )
    save_cache(
        {
            "criteria": criteria,
            "poses": stored,
            "shapes": {i: torch.zeros(11) for i in ids},
            "heading_rotation": {i: torch.zeros(3) for i in ids},
        },
        cache_dir / cache_file_name("synthscript", SCRIPT_VERSION, "train", "poses", N),
    )
    save_cache(
        {"criteria": criteria, "texts": {data_id: TEXTS[k] for k, data_id in enumerate(ids)}},
        cache_dir / cache_file_name("synthscript", SCRIPT_VERSION, "train", "rawtexts", N),
    )
    pairs = {0: [ids[0], ids[1]], 1: [ids[2], ids[3]], 2: [ids[4], ids[5]]}
    save_cache(
        {"criteria": criteria, "pair_2_dataid": pairs, "sequence_info": {0: "in", 1: "out", 2: "out"}},
        cache_dir / cache_file_name("synthfix", FIX_VERSION, "train", "pairs", 3),
    )
    save_cache(
        {"criteria": criteria, "texts": {0: ["fixture instruction zero"], 1: ["fixture instruction one"], 2: ["", ""]}},
        cache_dir / cache_file_name("synthfix", FIX_VERSION, "train", "rawtexts", 3),
    )
    return {"script": f"synthscript-{SCRIPT_VERSION}", "fix": f"synthfix-{FIX_VERSION}", "ids": ids, "poses": poses}
