"""The quickstart's first steps: the offline world the models are then trained on.

1. `body_model`: find the licensed SMPL-X file or build the procedural one; say which is used;
   measure the rest-pose proportions.
2. `pose_contact_sheet`: pose real CMU mocap frames on the body (heading normalised so they face the
   camera, random body shapes), render front and side views, write `contact_sheet_poses.png`.
3. `pose_sampler_report`: diversity (mean pairwise MPJPE of a farthest-point subset) and realism
   (median distance from each real CMU pose to its nearest sampled pose) of 10,000 sampled poses.
4. `synthetic_dataset`: generate a small synthetic script + fix dataset (`poseembroider data synth`)
   and write `contact_sheet_crops.png`: 12 val samples drawn at random (seeded), image crops beside their
   ground-truth poses as the camera saw them.
5. `pose_pools`: many more sampled poses and pairs than are rendered, with captions and instructions but
   no images (`poseembroider data pools`): the pose-only models train on them, and validate on the
   synthetic dataset's own val splits (the pools share them).
"""

from __future__ import annotations

import json
import time

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from tqdm import tqdm

from poseembroider.body.body_model import BodyModel
from poseembroider.body.model_file import locate_model_file
from poseembroider.data import load_cmu_dev_poses
from poseembroider.datasets.registry import get_dataset
from poseembroider.datasets.synthetic.generate import SynthConfig, generate_synth
from poseembroider.datasets.synthetic.pose_pools import PosePoolConfig, generate_pools
from poseembroider.datasets.synthetic.report import sampler_report
from poseembroider.datasets.visualization import image_to_uint8, pose_image
from poseembroider.geometry import normalize_global_orient_bedlam
from poseembroider.quickstart.context import QuickstartContext
from poseembroider.rendering import create_renderer, make_contact_sheet, render_body, save_image


def step_body_model(ctx: QuickstartContext) -> dict:
    start = time.perf_counter()
    model_file = locate_model_file()
    body = BodyModel(model_file).eval()
    print(f"[quickstart] body model: {model_file.description}")
    with torch.no_grad():
        rest = body(torch.zeros(1, 22, 3))
    vertices = rest.vertices[0]
    joints = rest.body_joints[0]
    ctx.body = body
    return {
        "kind": model_file.kind,
        "description": model_file.description,
        "path": str(model_file.path),
        "num_vertices": body.num_vertices,
        "num_faces": int(body.faces.shape[0]),
        "rest_height_m": float(vertices[:, 1].max() - vertices[:, 1].min()),
        "rest_arm_span_m": float(vertices[:, 0].max() - vertices[:, 0].min()),
        "rest_hip_height_m": float(joints[1:3, 1].mean() - vertices[:, 1].min()),
        "seconds": round(time.perf_counter() - start, 2),
    }


def step_pose_contact_sheet(ctx: QuickstartContext) -> dict:
    body = ctx.require_body()
    poses, sources = load_cmu_dev_poses(with_sources=True)
    rng = np.random.default_rng(ctx.seed)
    chosen = np.sort(rng.choice(len(poses), size=min(ctx.n_poses, len(poses)), replace=False))
    poses = torch.as_tensor(poses[chosen])
    poses[:, 0], _ = normalize_global_orient_bedlam(poses[:, 0])
    betas = torch.as_tensor(rng.normal(0.0, 1.0, size=(len(chosen), 2)).clip(-2, 2), dtype=torch.float32)
    with torch.no_grad():
        vertices = body(poses, betas=betas).vertices.numpy()

    views, labels = [], []
    start = time.perf_counter()
    with create_renderer(192, 256) as renderer:
        for i in tqdm(range(len(chosen)), desc="rendering poses", unit="pose"):
            front = render_body(renderer, vertices[i], body.faces, "front")
            side = render_body(renderer, vertices[i], body.faces, "side")
            views.append(np.concatenate([front, side], axis=1))
            labels.append(f"CMU {sources[chosen[i]]}")
        backend = type(renderer).__name__
    render_seconds = time.perf_counter() - start
    sheet_path = save_image(make_contact_sheet(views, ncols=4, labels=labels), ctx.out_dir / "contact_sheet_poses.png")
    print(f"[quickstart] wrote {sheet_path}")
    return {
        "pose_source": "CMU mocap dev poses (real), heading normalised; betas[0:2] ~ N(0,1) clipped to [-2, 2]",
        "pose_ids": [str(sources[i]) for i in chosen],
        "images_rendered": 2 * len(chosen),
        "renderer": backend,
        "render_images_per_s": round(2 * len(chosen) / render_seconds, 1),
        "contact_sheet": str(sheet_path),
    }


def step_synthetic_dataset(ctx: QuickstartContext) -> dict:
    """A small synthetic script + fix dataset, and a sheet of crops beside their ground-truth poses."""

    cfg = SynthConfig(name="quickstart", n_train=ctx.n_train, n_val=ctx.n_val, seed=ctx.seed, workers=2)
    stats = generate_synth(cfg)
    ctx.synth = cfg
    dataset = get_dataset(cfg.script_name, "val", item_format="ipt", caption_selection=0)
    body = ctx.require_body()
    # the splits are stored in farthest-point order: their first samples are the most extreme poses, so
    # the sheet shows a seeded random draw of the split instead
    chosen = np.sort(np.random.default_rng(ctx.seed).choice(len(dataset), min(12, len(dataset)), replace=False))
    views, labels = [], []
    with create_renderer(240, 320) as renderer:
        for index in chosen.tolist():
            item = dataset[index]
            crop = image_to_uint8(item["images"])
            seen = pose_image(body, renderer, item["poses"], item["shapes"], cam_rot=item["cam_rot"])
            seen = np.asarray(seen)
            views.append(np.concatenate([_fit_height(crop, seen.shape[0]), seen], axis=1))
            labels.append(f"val id {item['data_ids']}")
    title = (
        f"{len(chosen)} of the {len(dataset)} val samples, drawn at random (seed {ctx.seed}): "
        "image crop | ground-truth pose as the camera saw it"
    )
    sheet_image = _with_title(make_contact_sheet(views, ncols=4, labels=labels), title)
    sheet = save_image(sheet_image, ctx.out_dir / "contact_sheet_crops.png")
    print(f"[quickstart] synthetic datasets {stats['script_dataset']} / {stats['fix_dataset']}; wrote {sheet}")
    return {**stats, "contact_sheet": str(sheet), "contact_sheet_samples": title}


def _fit_height(image: np.ndarray, height: int) -> np.ndarray:

    width = round(image.shape[1] * height / image.shape[0])
    return np.asarray(Image.fromarray(image).resize((width, height), Image.BICUBIC))


def _with_title(sheet: np.ndarray, title: str, height: int = 30) -> np.ndarray:
    """(H, W, 3) uint8 sheet with a white band of `height` pixels above it holding `title` (PIL's font)."""

    band = Image.new("RGB", (sheet.shape[1], height), (255, 255, 255))
    font = ImageFont.load_default(size=height // 2)
    left, top, right, bottom = ImageDraw.Draw(band).textbbox((0, 0), title, font=font)
    ImageDraw.Draw(band).text((8 - left, (height - (bottom - top)) // 2 - top), title, fill=(0, 0, 0), font=font)
    return np.concatenate([np.asarray(band), sheet], axis=0)


def step_pose_sampler_report(ctx: QuickstartContext) -> dict:
    """Diversity and realism of the pose sampler (10,000 poses against the 108 real CMU poses)."""
    n = ctx.sampler_report_size
    report = sampler_report(n=n, seed=ctx.seed, fps_size=min(1000, n // 10), body_model=ctx.require_body())
    print(f"[quickstart] pose sampler: {json.dumps(report)}")
    return report


def step_pose_pools(ctx: QuickstartContext) -> dict:
    """`ctx.n_pool` captioned sampled poses and the pairs mined among them, sharing the synthetic val splits."""
    stats = generate_pools(
        PosePoolConfig(ctx.require_synth().script_version, n_train=ctx.n_pool, seed=ctx.seed),
        body_model=ctx.require_body(),
        progress=False,
    )
    ctx.pool_names = {"poses": stats["poses_dataset"], "pairs": stats["pairs_dataset"]}
    stats["stage_seconds"] = stats.pop("seconds")  # 'seconds' is the step's wall time in the summary
    print(
        f"[quickstart] pose-only pools: {stats['poses_dataset']} ({ctx.n_pool} poses), "
        f"{stats['pairs_dataset']} ({stats['n_pairs']} pairs)"
    )
    return stats


WORLD_STEPS = {
    "body_model": step_body_model,
    "pose_contact_sheet": step_pose_contact_sheet,
    "pose_sampler_report": step_pose_sampler_report,
    "synthetic_dataset": step_synthetic_dataset,
    "pose_pools": step_pose_pools,
}
"""Quickstart steps of this module, in order."""
