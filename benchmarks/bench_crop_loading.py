"""Training items/s of the image-encoder pretraining data: crops preloaded in memory vs decoded from disk each time.

`TriModalDatasetScript` items as `train_imageEncoder.py` reads them (item format 'ip', 2D joints, left/right flips
at p = 0.5, the similarity jitter, photometric processing off as in the quickstart), one process, one torch
thread, over N = 256 samples of a dataset made here in the synthetic world's format: 640x480 JPEG frames of
random pixels (the costliest content to decode: rendered frames decode faster, so the ratio is an upper end), a
person box of 240x320 inside each, a camera rotation and 22 2D joints per sample. Baseline: the previous path,
every crop read from disk, decoded, cropped, padded and resized for each item (with the camera rotation
recomputed); ours: `preload_crops()` once (its cost reported apart), then the items from the in-memory uint8
store. Best of a few interleaved rounds of one epoch each.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from common import write_result
from poseembroider.datasets.base_dataset import DatasetSource, TriModalDatasetScript
from poseembroider.datasets.cache_format import cache_file_name, save_cache
from poseembroider.datasets.image_processing import AffineJitter

N, ROUNDS, VERSION = 256, 3, "bench_overlap30_res224_j16_sf11"


def make_dataset(root: Path) -> DatasetSource:
    """N frames with their boxes, cameras, 2D joints and poses, in the synthetic world's cache format."""
    rng = np.random.default_rng(0)
    image_root, cache_dir = root / "images", root / "cache"
    (image_root / "train").mkdir(parents=True)
    cache_dir.mkdir()
    images, bboxes, cameras, joints, poses = {}, {}, {}, {}, {}
    for data_id in range(N):
        rel = f"train/{data_id:06d}.jpg"
        Image.fromarray(rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)).save(image_root / rel, quality=90)
        images[data_id], bboxes[data_id] = rel, [200.0, 80.0, 440.0, 400.0]
        cameras[data_id] = (torch.as_tensor(rng.normal(size=3) * 0.5, dtype=torch.float32), torch.zeros(3))
        joints[data_id] = torch.as_tensor(rng.uniform([200, 80], [440, 400], (22, 2)), dtype=torch.float32)
        poses[data_id] = torch.as_tensor(rng.normal(size=(52, 3)) * 0.2, dtype=torch.float32)
    criteria = {"benchmark": True}
    images_cache = {
        "criteria": criteria,
        "bboxes": bboxes,
        "images": images,
        "full_human_visibility": dict.fromkeys(range(N), True),
        "camera_transformation": cameras,
        "joints_2d": joints,
    }
    save_cache(images_cache, cache_dir / cache_file_name("synthscript", VERSION, "train", "images", N))
    poses_cache = {"criteria": criteria, "poses": poses, "shapes": {i: torch.zeros(11) for i in range(N)}}
    save_cache(poses_cache, cache_dir / cache_file_name("synthscript", VERSION, "train", "poses", N))
    return DatasetSource("synthscript", VERSION, cache_dir, image_root, "bedlam")


def epoch_seconds(dataset: TriModalDatasetScript) -> float:
    start = time.perf_counter()
    for index in range(len(dataset)):
        dataset[index]
    return time.perf_counter() - start


def main(root: Path) -> None:
    torch.set_num_threads(1)
    source = make_dataset(root)
    settings = dict(
        item_format="ip",
        keypoints_2d=True,
        lr_flip_probability=0.5,
        img_processing="smplerx_eval",
        affine_jitter=AffineJitter(rotation_deg=30.0, scale=(0.8, 1.25), translate=0.1),
        seed=0,
    )
    from_disk = TriModalDatasetScript(source, "train", **settings)
    preloaded = TriModalDatasetScript(source, "train", **settings)
    start = time.perf_counter()
    assert preloaded.preload_crops(progress=False)
    preload_s = time.perf_counter() - start
    times: dict[str, list[float]] = {"from_disk": [], "preloaded": []}
    for _ in range(ROUNDS):
        times["from_disk"].append(epoch_seconds(from_disk))
        times["preloaded"].append(epoch_seconds(preloaded))
    per_s = {name: N / min(values) for name, values in times.items()}
    write_result(
        "crop_loading",
        {
            "ours": "training items from crops preloaded in memory (`preload_crops`), flip + jitter per item",
            "baseline": "the same items with each crop read from disk, decoded, cropped, padded and resized per item",
            "samples": N,
            "items_per_s": {name: round(value) for name, value in per_s.items()},
            "preload_seconds": round(preload_s, 2),
            "preload_items_per_s": round(N / preload_s),
            "ours_samples_per_s": round(per_s["preloaded"]),
            "baseline_samples_per_s": round(per_s["from_disk"]),
            "ratio": round(per_s["preloaded"] / per_s["from_disk"], 2),
        },
    )


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        main(Path(tmp))
