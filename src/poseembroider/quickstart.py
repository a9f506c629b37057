"""The main job on the offline world (`make quickstart` / `poseembroider quickstart`).

Runs a list of steps (`QUICKSTART_STEPS`), each returning a JSON-able dict of what it produced and
measured; the dicts are gathered in `<out>/summary.json`, written last and atomically. Steps:

1. `body_model`: find the licensed SMPL-X file or build the procedural one; say which is used;
   measure the rest-pose proportions.
2. `pose_contact_sheet`: pose real CMU mocap frames on the body (heading normalised so they face the
   camera, random body shapes), render front and side views, write `contact_sheet_poses.png`.
3. `pose_sampler_report`: diversity (mean pairwise MPJPE of a farthest-point subset) and realism
   (median distance from each real CMU pose to its nearest sampled pose) of 10,000 sampled poses.
4. `synthetic_dataset`: generate a small synthetic script + fix dataset (`poseembroider data synth`)
   and write `contact_sheet_crops.png`: image crops beside their ground-truth poses as the camera saw them.
5. the assisting models, trained on it (`quickstart_assisting.ASSISTING_STEPS`): text tokenizer and
   backbone, PoseVAE, PoseText, PairText, image encoder; each registered under its shortname, with its
   validation metrics beside a chance-level reference.
6. the representation models (`quickstart_core.CORE_STEPS`): PoseEmbroider and the Aligner trained on the
   frozen features of those encoders, evaluated on the 9 query types (R@1/5/10, mRecall single / dual /
   total, chance level), each registered under `<model>_model_synthscript`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from poseembroider import config
from poseembroider.atomic_io import write_json_atomic
from poseembroider.quickstart_assisting import ASSISTING_STEPS, AssistingSizes
from poseembroider.quickstart_core import CORE_STEPS, CoreSizes


@dataclass
class QuickstartContext:
    """State shared by the steps."""

    out_dir: Path
    n_poses: int
    seed: int
    n_train: int = 2048
    n_val: int = 512
    sampler_report_size: int = 10_000
    assisting_sizes: AssistingSizes = field(default_factory=AssistingSizes)
    core_sizes: CoreSizes = field(default_factory=CoreSizes)
    artifacts: dict = field(default_factory=dict)  # objects later steps re-use (body model, ...)


QuickstartStep = Callable[[QuickstartContext], dict]


def step_body_model(ctx: QuickstartContext) -> dict:
    from poseembroider.body.body_model import BodyModel
    from poseembroider.body.model_file import locate_model_file

    start = time.perf_counter()
    model_file = locate_model_file()
    body = BodyModel(model_file).eval()
    print(f"[quickstart] body model: {model_file.description}")
    with torch.no_grad():
        rest = body(torch.zeros(1, 22, 3))
    vertices = rest.vertices[0]
    joints = rest.body_joints[0]
    ctx.artifacts["body"] = body
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
    from poseembroider.data import load_cmu_dev_poses
    from poseembroider.geometry import normalize_global_orient_bedlam
    from poseembroider.rendering import create_renderer, make_contact_sheet, render_body, save_image

    body = ctx.artifacts["body"]
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
    from poseembroider.datasets.registry import get_dataset
    from poseembroider.datasets.synthetic.generate import SynthConfig, generate_synth
    from poseembroider.datasets.visualization import image_to_uint8, pose_image
    from poseembroider.rendering import create_renderer, make_contact_sheet, save_image

    cfg = SynthConfig(name="quickstart", n_train=ctx.n_train, n_val=ctx.n_val, seed=ctx.seed, workers=2)
    stats = generate_synth(cfg)
    ctx.artifacts["synth_config"] = cfg
    dataset = get_dataset(cfg.script_name, "val", item_format="ipt", caption_selection=0)
    body = ctx.artifacts["body"]
    views, labels = [], []
    with create_renderer(240, 320) as renderer:
        for index in range(min(12, len(dataset))):
            item = dataset[index]
            crop = image_to_uint8(item["images"])
            seen = pose_image(body, renderer, item["poses"], item["shapes"], cam_rot=item["cam_rot"])
            seen = np.asarray(seen)
            views.append(np.concatenate([_fit_height(crop, seen.shape[0]), seen], axis=1))
            labels.append(f"val id {item['data_ids']}")
    sheet = save_image(make_contact_sheet(views, ncols=4, labels=labels), ctx.out_dir / "contact_sheet_crops.png")
    print(f"[quickstart] synthetic datasets {stats['script_dataset']} / {stats['fix_dataset']}; wrote {sheet}")
    return {**stats, "contact_sheet": str(sheet)}


def _fit_height(image: np.ndarray, height: int) -> np.ndarray:
    from PIL import Image

    width = round(image.shape[1] * height / image.shape[0])
    return np.asarray(Image.fromarray(image).resize((width, height), Image.BICUBIC))


def step_pose_sampler_report(ctx: QuickstartContext) -> dict:
    """Diversity and realism of the pose sampler (10,000 poses against the 108 real CMU poses)."""
    from poseembroider.datasets.synthetic.report import sampler_report

    n = ctx.sampler_report_size
    report = sampler_report(n=n, seed=ctx.seed, fps_size=min(1000, n // 10), body_model=ctx.artifacts["body"])
    print(f"[quickstart] pose sampler: {json.dumps(report)}")
    return report


QUICKSTART_STEPS: dict[str, QuickstartStep] = {
    "body_model": step_body_model,
    "pose_contact_sheet": step_pose_contact_sheet,
    "pose_sampler_report": step_pose_sampler_report,
    "synthetic_dataset": step_synthetic_dataset,
    **ASSISTING_STEPS,
    **CORE_STEPS,
}


def run_quickstart(
    out_dir: Path | None = None,
    n_poses: int = 16,
    seed: int = 0,
    n_train: int = 2048,
    n_val: int = 512,
    sampler_report_size: int = 10_000,
    assisting_sizes: AssistingSizes | None = None,
    core_sizes: CoreSizes | None = None,
) -> dict:
    """Run every step and write `<out_dir>/summary.json`; returns the summary.

    `assisting_sizes` / `core_sizes`: how long the assisting / representation models train (defaults
    `AssistingSizes()`, `CoreSizes()`). Earlier steps' results are in `ctx.artifacts["steps"]`."""
    out_dir = Path(config.GENERAL_EXP_OUTPUT_DIR / "quickstart" if out_dir is None else out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ctx = QuickstartContext(
        out_dir,
        n_poses,
        seed,
        n_train,
        n_val,
        sampler_report_size,
        assisting_sizes or AssistingSizes(),
        core_sizes or CoreSizes(),
    )
    summary: dict = {"seed": seed, "steps": {}}
    ctx.artifacts["steps"] = summary["steps"]
    start = time.perf_counter()
    for name, step in QUICKSTART_STEPS.items():
        step_start = time.perf_counter()
        summary["steps"][name] = step(ctx)
        summary["steps"][name].setdefault("seconds", round(time.perf_counter() - step_start, 2))
    summary["total_seconds"] = round(time.perf_counter() - start, 2)
    path = write_json_atomic(out_dir / "summary.json", summary)
    print(f"[quickstart] wrote {path} ({summary['total_seconds']} s)")
    return summary
