"""BEDLAM-Script caches point at full 1280x720 frames with a person bbox: the loader crops them."""

import numpy as np
import torch
from PIL import Image

from poseembroider import config
from poseembroider.datasets.cache_format import cache_file_name, save_cache
from poseembroider.datasets.registry import get_dataset

VERSION = "overlap30_res224_j16_sf11"


def test_bedlam_script_crops_full_frames(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "DATA_CACHE_DIR", tmp_path / "cache")
    monkeypatch.setattr(config, "BEDLAM_IMG_DIR", tmp_path / "bedlam_images")
    frame = np.zeros((720, 1280, 3), np.uint8)
    frame[100:400, 600:800] = (250, 10, 10)  # the "person": a red 300x200 block
    rel = "20221010_3_1000_batch01hand_6fps/png/seq_000000/seq_000000_0000.png"
    (config.BEDLAM_IMG_DIR / rel).parent.mkdir(parents=True)
    Image.fromarray(frame).save(config.BEDLAM_IMG_DIR / rel)
    criteria = {
        "overlap_threshold": 0.3,
        "resolution_threshold": 224,
        "min_number_of_visible_joints": 16,
        "scale_factor": 1.1,
    }
    data_id = 7
    save_cache(
        {
            "criteria": criteria,
            "bboxes": {data_id: [600, 100, 800, 400]},
            "images": {data_id: rel},
            "full_human_visibility": {data_id: True},
            "camera_transformation": {data_id: (torch.zeros(3), torch.zeros(3))},
        },
        config.DATA_CACHE_DIR / cache_file_name("bedlamscript", VERSION, "val", "images", 10_000),
    )
    save_cache(
        {"criteria": criteria, "poses": {data_id: torch.zeros(52, 3)}, "shapes": {data_id: torch.zeros(11)}},
        config.DATA_CACHE_DIR / cache_file_name("bedlamscript", VERSION, "val", "poses", 10_000),
    )
    dataset = get_dataset(f"bedlamscript-{VERSION}", "val", item_format="ip")
    item = dataset[0]
    assert item["data_ids"] == data_id and item["images"].shape == (3, 256, 192)
    red = (item["images"][0] > 0.9).float()
    # the 300x200 box is narrower than 4:3 (H:W): 12 black columns are padded on each side (300x224)
    assert abs(red.mean().item() - 200 / 224) < 0.01
    assert red[:, :8].max() == 0 and red[:, -8:].max() == 0 and red[:, 20:-20].min() == 1
