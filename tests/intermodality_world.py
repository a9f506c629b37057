"""A tiny world for the downstream heads' tests: a single-element dataset and its pairs (train and val splits,
written by hand in the processed-cache format, images of noise, real CMU poses, random betas, test-only texts)
and an untrained tiny PoseEmbroider and Aligner over tiny frozen encoders (`tiny_models.make_core_models`).

Build it once per test module (`make_intermodality_world(tmp_path_factory.mktemp(...))`); the caches go to
the session's isolated DATA_CACHE_DIR, so give each module its own `name`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from poseembroider import config
from poseembroider.data import load_cmu_dev_poses
from poseembroider.datasets.cache_format import cache_file_name, save_cache
from poseembroider.datasets.registry import synth_image_root
from tiny_models import make_core_models

WORDS = ["left", "right", "arm", "leg", "raised", "bent", "knee", "forward", "back", "sits", "kneels", "squats"]
PAIR_VERSION_SUFFIX = "-in15_out20_t05_sim0709"


def _texts(rng: np.random.Generator, count: int) -> list[str]:
    """Test-only strings (they exercise the text plumbing, they are not captions)."""
    return ["the person " + " ".join(rng.choice(WORDS, size=int(rng.integers(3, 8)))) for _ in range(count)]


def write_split(name: str, split: str, ids: list[int], poses: np.ndarray, rng: np.random.Generator) -> None:
    """Images, poses, shapes and three texts per element of `synthscript-<name>_...` split `split`, and pairs
    (consecutive ids, alternating in / out sequence) of `synthfix-<...>`."""
    version = f"{name}_overlap30_res224_j16_sf11"
    cache_dir, image_root = config.DATA_CACHE_DIR, synth_image_root(version)
    images, bboxes = {}, {}
    for data_id in ids:
        relative = f"images/{split}/{data_id:06d}.png"
        (image_root / relative).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, size=(120, 90, 3), dtype=np.uint8)).save(image_root / relative)
        images[data_id], bboxes[data_id] = relative, [0, 0, 90, 120]
    criteria = {"test_world": name}
    count = len(ids)
    save_cache(
        {
            "criteria": criteria,
            "bboxes": bboxes,
            "images": images,
            "full_human_visibility": {i: True for i in ids},
            "camera_transformation": {i: (torch.zeros(3), torch.zeros(3)) for i in ids},
        },
        cache_dir / cache_file_name("synthscript", version, split, "images", count),
    )
    stored = {i: torch.as_tensor(np.concatenate([poses[k], np.zeros((30, 3), np.float32)])) for k, i in enumerate(ids)}
    shapes = {i: torch.as_tensor(rng.normal(0, 0.5, size=11).astype(np.float32)) for i in ids}
    headings = {i: torch.as_tensor(rng.normal(0, 0.3, size=3).astype(np.float32)) for i in ids}
    save_cache(
        {"criteria": criteria, "poses": stored, "shapes": shapes, "heading_rotation": headings},
        cache_dir / cache_file_name("synthscript", version, split, "poses", count),
    )
    texts = {i: _texts(rng, 3) for i in ids}
    save_cache(
        {"criteria": criteria, "texts": texts},
        cache_dir / cache_file_name("synthscript", version, split, "rawtexts", count),
    )
    pairs = {p: [ids[p], ids[p + 1]] for p in range(count - 1)}
    kinds = {p: "in" if p % 2 else "out" for p in pairs}
    fix_version = version + PAIR_VERSION_SUFFIX
    save_cache(
        {"criteria": criteria, "pair_2_dataid": pairs, "sequence_info": kinds},
        cache_dir / cache_file_name("synthfix", fix_version, split, "pairs", len(pairs)),
    )
    save_cache(
        {"criteria": criteria, "texts": {p: _texts(rng, 1) for p in pairs}},
        cache_dir / cache_file_name("synthfix", fix_version, split, "rawtexts", len(pairs)),
    )


def make_intermodality_world(folder: Path, name: str, n_train: int = 24, n_val: int = 8, seed: int = 0) -> dict:
    """Write the datasets and models; returns {'script', 'fix' (dataset names), 'ids' {split: ids}, 'poses'
    {split: (N, 22, 3)}, 'models' {'PoseEmbroider', 'Aligner': folder}, 'dir'}."""
    rng = np.random.default_rng(seed)
    all_poses = load_cmu_dev_poses()
    ids = {"train": list(range(100, 100 + n_train)), "val": list(range(500, 500 + n_val))}
    cycled = all_poses[np.arange(n_train + n_val) % len(all_poses)]  # the 108 CMU poses again past 108 samples
    poses = {"train": cycled[:n_train], "val": cycled[n_train:]}
    for split in ("train", "val"):
        write_split(name, split, ids[split], poses[split], rng)
    models = make_core_models(folder, _texts(rng, 60), seed)
    version = f"{name}_overlap30_res224_j16_sf11"
    return {
        "script": f"synthscript-{version}",
        "fix": f"synthfix-{version}{PAIR_VERSION_SUFFIX}",
        "ids": ids,
        "poses": poses,
        "models": models,
        "dir": folder,
    }
