"""The loader turns images by the images cache's `image_rotation` before cropping (BEDLAM close-ups)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from poseembroider import config
from poseembroider.datasets.cache_format import cache_file_name
from poseembroider.datasets.cache_writers import (
    CacheDestination,
    CacheInputError,
    images_cache,
    poses_cache,
    write_caches,
)
from poseembroider.datasets.image_processing import load_image
from poseembroider.datasets.registry import get_dataset

VERSION = "overlap30_res224_j16_sf11"


def test_load_image_turns_clockwise(tmp_path):
    array = np.zeros((20, 40, 3), np.uint8)
    array[:, :5] = 255  # a white band on the left
    Image.fromarray(array).save(tmp_path / "a.png")
    turned = np.asarray(load_image(tmp_path / "a.png", 90))
    assert turned.shape == (40, 20, 3) and turned[:5].min() == 255 and turned[5:].max() == 0  # left -> top
    with pytest.raises(ValueError, match="rotation_cw must be 0, 90, 180 or 270"):
        load_image(tmp_path / "a.png", 45)


def test_bedlam_closeup_crop_is_cut_from_the_turned_frame(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "DATA_CACHE_DIR", tmp_path / "cache")
    monkeypatch.setattr(config, "BEDLAM_IMG_DIR", tmp_path / "images")
    portrait = np.zeros((1280, 720, 3), np.uint8)
    portrait[200:800, 100:500] = (250, 10, 10)  # the person, in the turned (portrait) frame
    rel = "closeup/png/seq_000000/seq_000000_0000.png"
    (config.BEDLAM_IMG_DIR / rel).parent.mkdir(parents=True)
    Image.fromarray(np.rot90(portrait, 1)).save(config.BEDLAM_IMG_DIR / rel)  # stored turned back
    criteria = {"scale_factor": 1.1}
    caches = [
        images_cache(
            criteria,
            images={3: rel},
            bboxes={3: [100, 200, 500, 800]},
            full_human_visibility={3: True},
            camera_transformation={3: (torch.zeros(3), torch.zeros(3))},
            image_rotation={3: 90},
        ),
        poses_cache(criteria, poses={3: torch.zeros(52, 3)}, shapes={3: torch.zeros(11)}),
    ]
    write_caches(CacheDestination(config.DATA_CACHE_DIR, "bedlamscript", VERSION, "val", 1), caches)
    assert (config.DATA_CACHE_DIR / cache_file_name("bedlamscript", VERSION, "val", "images", 1)).exists()
    item = get_dataset(f"bedlamscript-{VERSION}", "val", item_format="ip")[0]  # found with its own size
    red = item["images"][0] > 0.9
    assert red.float().mean() > 0.7  # the crop is the person (a 600x400 box padded to 4:3: 600x450)
    with pytest.raises(CacheInputError, match="image_rotation', id 3: expected degrees clockwise"):
        images_cache(
            criteria,
            images={3: rel},
            bboxes={3: [1, 2, 3, 4]},
            full_human_visibility={3: True},
            camera_transformation={3: (torch.zeros(3), torch.zeros(3))},
            image_rotation={3: 45},
        )
