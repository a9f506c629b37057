"""Pretrain the offline image encoder: regress the SMPL-X body pose from person crops, then keep the encoder.

Without the SMPLer-X weights, PoseEmbroider's frozen image encoder is our own ViT, pretrained here on the
synthetic crops: `ImagePoseRegressor` (encoder + average pooling + MLP head -> 22 x 6D -> rotation matrices)
is trained with the geodesic loss (angle summed over joints, mean over the batch) and the root-relative
joint term. By default (`--pooling keypoints`) the encoder's tokens also carry 2D joint heatmaps, supervised on
the 16x12 token grid by the dataset's projected joints (`--wloss_keypoints`), and a lifter MLP maps their
soft-argmax 2D joints to the pose: it is first pretrained alone on the ground-truth 2D joints for
`--lifter_steps` steps (seconds), then trained with the images (`--wloss_lifting` keeps its ground-truth
term). Samples are flipped left/right with `--lr_flip` (image, pose and 2D joints together); with keypoints
the augmentation keeps only its photometric part. Validation reports the geodesic error (deg), MPJPE and
PA-MPJPE (mm, body joints of the body model with the mean shape), and the heatmaps' KL and 2D error. The
encoder of the best checkpoint (lowest `--best_metric`, default pa_mpjpe_mm) is then saved alone, frozen,
in `<output_dir>/image_encoder/` and registered under `--shortname`, for `--image_encoder_name <shortname>`.

    python -m poseembroider.assisting_models.imageEncoder.train_imageEncoder \\
        --dataset synthscript-quickstart_overlap30_res224_j16_sf11 --image_encoder_name vit_tiny_256x192 \\
        --lr 0.0003 --wd 0.05 --batch_size 16 --epochs 20 --val_every 1 --seed 1

(also `poseembroider train-image-encoder ...`). Every Trainer flag is available (`--optimizer`,
`--lr_scheduler`, `--warmup`, `--grad_clip`, `--resume`, ...); `--no_img_augmentation` turns off the
training augmentation (random resized crop, colour jitter, blur, solarisation); `--pooling mean
--lr_flip 0` is the plain regressor of the original recipe.

Outputs in `--output_dir` (default `GENERAL_EXP_OUTPUT_DIR/imageEncoder/<preset>_<dataset>_seed<seed>`): the
Trainer's `best/`, `last/`, `log.jsonl`; `image_encoder/` (config.json + model.safetensors of the frozen
encoder); `results.json` (best validation metrics, a mean-pose baseline on the same split, throughput).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from poseembroider import config
from poseembroider.assisting_models.imageEncoder.model_imageEncoder import (
    CPU_PRESET,
    IMAGE_ENCODER_PRESETS,
    REGRESSOR_POOLINGS,
    ImagePoseRegressor,
    ImagePoseRegressorConfig,
    image_encoder_config,
)
from poseembroider.atomic_io import write_json_atomic
from poseembroider.geometry import axis_angle_to_matrix, chordal_mean_axis_angle, geodesic_distance
from poseembroider.training.config import TrainerConfig, add_dataclass_arguments, dataclass_from_args
from poseembroider.training.script_args import as_usage_error, script_main
from poseembroider.training.trainer import Trainer

logger = logging.getLogger(__name__)

DEFAULT_DATASET = "synthscript-quickstart_overlap30_res224_j16_sf11"

# this model's defaults for the Trainer flags (a ViT trained from scratch wants AdamW, warm-up and decay)
TRAINER_DEFAULTS: dict[str, Any] = {
    "lr": 3e-4,
    "wd": 0.05,
    "optimizer": "AdamW",
    "lr_scheduler": "cosine",
    "scheduler_interval": "step",
    "warmup": 50,
    "grad_clip": 1.0,  # the heatmap, lifter and pose terms start far apart in scale
    "batch_size": 16,
    "epochs": 20,
    "val_every": 1,
    "best_metric": "pa_mpjpe_mm",
    "best_mode": "min",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="train_imageEncoder",
        description="pretrain the offline image encoder: regress the SMPL-X body pose from person crops, then "
        "save the encoder alone, frozen, and register it under a shortname",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    g = parser.add_argument_group("data and model")
    g.add_argument("--dataset", default=DEFAULT_DATASET, help="single-element dataset with images and poses")
    g.add_argument(
        "--image_encoder_name",
        default=CPU_PRESET,
        choices=sorted(IMAGE_ENCODER_PRESETS),
        help="architecture preset of the encoder to pretrain",
    )
    g.add_argument("--encoder_depth", type=int, default=None, help="override the preset's number of blocks")
    g.add_argument("--encoder_mlp_ratio", type=float, default=None, help="override the preset's MLP ratio")
    g.add_argument(
        "--stem_input_pooling", type=int, default=None, help="override the conv stem's input pooling (1, 2, 4, 8)"
    )
    g.add_argument(
        "--stem_stage_blocks", type=int, default=None, help="override the conv stem's residual blocks per stage"
    )
    g.add_argument("--encoder_embed_dim", type=int, default=None, help="override the preset's token width")
    g.add_argument("--encoder_num_heads", type=int, default=None, help="override the preset's attention heads")
    g.add_argument("--drop_path_rate", type=float, default=None, help="override the preset's stochastic depth")
    g.add_argument("--num_body_joints", type=int, default=22, choices=[22])
    g.add_argument("--head_hidden", type=int, default=512, help="hidden width of the regression head")
    g.add_argument(
        "--wloss_joints",
        type=float,
        default=10.0,
        help="weight of the root-relative body-joint MPJPE (m) added to the geodesic loss (0: off)",
    )
    g.add_argument(
        "--pooling",
        default="keypoints",
        choices=list(REGRESSOR_POOLINGS),
        help="how the head reads the tokens: their mean, or per-joint heatmaps over them (+ 2D lifter)",
    )
    g.add_argument("--keypoint_dim", type=int, default=32, help="'keypoints' pooling: width of each joint's token")
    g.add_argument(
        "--wloss_keypoints",
        type=float,
        default=5.0,
        help="weight of the 2D keypoint KL on the token grid ('keypoints' pooling; 0: off)",
    )
    g.add_argument("--keypoint_sigma", type=float, default=1.0, help="std of the 2D keypoint targets (token cells)")
    g.add_argument(
        "--lifter_hidden",
        type=int,
        default=512,
        help="'keypoints' pooling: hidden width of the 2D-joints -> pose lifter (0: no lifter)",
    )
    g.add_argument(
        "--wloss_lifting",
        type=float,
        default=1.0,
        help="weight of the lifter's loss on ground-truth 2D joints in each training step (0: off)",
    )
    g.add_argument("--lifter_noise_px", type=float, default=4.0, help="jitter of the lifter's ground-truth 2D joints")
    g.add_argument(
        "--lifter_steps",
        type=int,
        default=500,
        help="steps pretraining the lifter alone on the training set's ground-truth 2D joints, before the images",
    )
    g.add_argument("--lifter_batch_size", type=int, default=64, help="batch size of the lifter pretraining")
    g.add_argument("--lifter_lr", type=float, default=2e-3, help="peak learning rate of the lifter pretraining")
    g.add_argument(
        "--lr_flip",
        type=float,
        default=0.5,
        help="probability of a left/right flip of a training sample (image, pose and 2D joints together)",
    )
    g.add_argument(
        "--no_img_augmentation",
        dest="img_augmentation",
        action="store_false",
        help="train on the plain crops (no random resized crop / colour jitter / blur / solarise)",
    )
    g.add_argument("--max_train_samples", type=int, default=0, help="use the first N training samples (0: all)")
    g.add_argument("--max_val_samples", type=int, default=0, help="use the first N validation samples (0: all)")
    g.add_argument(
        "--shortname",
        default=None,
        help="register the frozen encoder under this name (default: imageencoder_<preset>_<dataset>)",
    )
    g.add_argument(
        "--no_register",
        dest="register",
        action="store_false",
        help="do not add the encoder to the local shortname registry",
    )
    g.add_argument(
        "--torch_threads",
        type=int,
        default=0,
        help="torch intra-op threads (0: torch's default); 1 is faster on a CPU shared with other jobs",
    )
    add_dataclass_arguments(parser, TrainerConfig, title="training")
    parser.set_defaults(**TRAINER_DEFAULTS)
    return parser


def _subset(dataset: Dataset, limit: int) -> Dataset:
    return Subset(dataset, range(min(limit, len(dataset)))) if limit > 0 else dataset  # type: ignore[arg-type]


def _all_poses(dataset: Dataset, batch_size: int = 512) -> torch.Tensor:
    """(N, 22, 3) poses of a dataset built with item_format 'p' (no image is decoded)."""
    return _all_items(dataset, ("poses",), batch_size)["poses"]


def _all_items(dataset: Dataset, keys: Sequence[str], batch_size: int = 512) -> dict[str, torch.Tensor]:
    """`keys` of every item, stacked: e.g. poses (N, 22, 3) and joints_2d_crop (N, 22, 2)."""
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    batches = list(loader)
    return {key: torch.cat([batch[key] for batch in batches]) for key in keys}


def pretrain_lifter(
    model: ImagePoseRegressor,
    poses: torch.Tensor,
    joints_2d: torch.Tensor,
    steps: int,
    batch_size: int = 64,
    lr: float = 2e-3,
    flip_probability: float = 0.0,
    seed: int = 0,
) -> dict[str, float]:
    """Train the model's lifter alone (no image) on ground-truth 2D joints -> poses: poses (N, J, 3) and
    joints_2d (N, J, 2) in crop pixels, before the image training (seconds instead of epochs: a lifter
    learns 2D -> 3D from a few hundred steps, the image model only gets a few hundred in all).

    AdamW, linear warm-up (50 steps) then cosine decay; samples drawn with replacement, flipped left/right
    (poses and 2D joints together) with `flip_probability`; the 2D joints are jittered by the model's
    `lifter_noise_px`. Returns {'loss': mean loss of the last 10% of steps, 'seconds'}.
    """
    from poseembroider.body.joints import joint_names_for_count, left_right_permutation
    from poseembroider.datasets.image_processing import flip_keypoints
    from poseembroider.datasets.pose_processing import flip_poses

    start = time.perf_counter()
    mirror = left_right_permutation(joint_names_for_count(poses.shape[1]))
    width = model.config.encoder.img_size[1]
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.lifter.parameters(), lr=lr, weight_decay=0.05)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / 50) * 0.5 * (1 + math.cos(math.pi * step / steps))
    )
    model.train()
    tail: list[float] = []
    for step in range(steps):
        index = torch.randint(len(poses), (batch_size,), generator=generator)
        batch_poses, batch_joints = poses[index].clone(), joints_2d[index].clone()
        flip = torch.rand(batch_size, generator=generator) < flip_probability
        if flip.any():
            batch_poses[flip] = flip_poses(batch_poses[flip])
            batch_joints[flip] = flip_keypoints(batch_joints[flip], width, mirror)
        loss = model.lifting_step({"poses": batch_poses, "joints_2d_crop": batch_joints}, model.config.lifter_noise_px)
        optimizer.zero_grad(set_to_none=True)
        loss["loss"].backward()
        optimizer.step()
        schedule.step()
        if step >= steps - max(1, steps // 10):
            tail.append(float(loss["loss"].detach()))
    return {"loss": sum(tail) / max(1, len(tail)), "seconds": round(time.perf_counter() - start, 1)}


@torch.no_grad()
def mean_pose_baseline(model: ImagePoseRegressor, mean_pose: torch.Tensor, val_poses: torch.Tensor) -> dict:
    """Metrics of predicting `mean_pose` (J, 3) for every validation pose (N, J, 3): the chance level."""
    target = axis_angle_to_matrix(val_poses)
    predicted = axis_angle_to_matrix(mean_pose).expand_as(target)
    angles = geodesic_distance(predicted, target)
    sums = {"mpjpe_mm": 0.0, "pa_mpjpe_mm": 0.0}
    for start in range(0, len(target), 256):
        errors = model.joint_errors(predicted[start : start + 256], target[start : start + 256])
        for name in sums:
            sums[name] += float(errors[name].sum())
    return {
        "loss": float(angles.sum(-1).mean()),
        "geodesic_deg": float(torch.rad2deg(angles).mean()),
        **{name: value / len(target) for name, value in sums.items()},
    }


class StepTimer:
    """Trainer callback measuring training throughput (images/s) between consecutive steps of an epoch.

    The first step of each epoch is skipped (it pays for the DataLoader start), so validation and
    checkpointing are not counted; data loading and augmentation are.
    """

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size
        self.seconds = 0.0
        self.steps = 0
        self._last: float | None = None
        self._epoch: int | None = None

    def __call__(self, trainer: Trainer, event: str, logs: dict[str, Any]) -> None:
        now = time.perf_counter()
        if event == "step_end":
            if self._last is not None and logs.get("epoch") == self._epoch:
                self.seconds += now - self._last
                self.steps += 1
            self._last, self._epoch = now, logs.get("epoch")
        elif event == "epoch_end":
            self._last = None

    @property
    def images_per_s(self) -> float | None:
        return self.steps * self.batch_size / self.seconds if self.seconds > 0 else None


def _default_output_dir(args: argparse.Namespace) -> Path:
    name = f"{args.image_encoder_name}_{args.dataset}_seed{args.seed}"
    return Path(config.GENERAL_EXP_OUTPUT_DIR) / "imageEncoder" / name


def build_model(args: argparse.Namespace) -> ImagePoseRegressor:
    overrides = {
        name: value
        for name, value in (
            ("depth", args.encoder_depth),
            ("embed_dim", args.encoder_embed_dim),
            ("num_heads", args.encoder_num_heads),
            ("mlp_ratio", args.encoder_mlp_ratio),
            ("stem_input_pooling", args.stem_input_pooling),
            ("stem_stage_blocks", args.stem_stage_blocks),
            ("drop_path_rate", args.drop_path_rate),
        )
        if value is not None
    }
    encoder = image_encoder_config(args.image_encoder_name, **overrides)
    return ImagePoseRegressor(
        ImagePoseRegressorConfig(
            encoder=encoder,
            num_body_joints=args.num_body_joints,
            head_hidden=args.head_hidden,
            wloss_joints=args.wloss_joints,
            pooling=args.pooling,
            keypoint_dim=args.keypoint_dim,
            wloss_keypoints=args.wloss_keypoints if args.pooling == "keypoints" else 0.0,
            keypoint_sigma=args.keypoint_sigma,
            lifter_hidden=args.lifter_hidden if args.pooling == "keypoints" else 0,
            wloss_lifting=args.wloss_lifting if args.pooling == "keypoints" and args.lifter_hidden else 0.0,
            lifter_noise_px=args.lifter_noise_px,
        )
    )


def train(args: argparse.Namespace, body_model: nn.Module | None = None) -> dict[str, Any]:
    """Run the pretraining described by parsed `args`; returns the content of results.json."""
    from poseembroider.datasets.registry import get_dataset
    from poseembroider.registry import register

    if not args.output_dir:
        args.output_dir = str(_default_output_dir(args))
    trainer_config = dataclass_from_args(TrainerConfig, args)
    output_dir = Path(trainer_config.output_dir)
    if args.torch_threads > 0:
        torch.set_num_threads(args.torch_threads)
    torch.manual_seed(trainer_config.seed)

    model = build_model(args)
    # 2D joints in the items when a loss or a metric reads them (not with mean pooling)
    keypoints = model.config.pooling == "keypoints"
    if not args.img_augmentation:
        processing = "smplerx_eval"
    else:  # the random resized crop would move the pixels away from the 2D joints
        processing = "smplerx_train_photometric" if keypoints else "smplerx_train"
    train_set = _subset(
        get_dataset(
            args.dataset,
            "train",
            item_format="ip",
            img_processing=processing,
            lr_flip_probability=args.lr_flip,
            keypoints_2d=keypoints,
            seed=trainer_config.seed,
        ),
        args.max_train_samples,
    )
    val_set = _subset(
        get_dataset(args.dataset, "val", item_format="ip", img_processing="smplerx_eval", keypoints_2d=keypoints),
        args.max_val_samples,
    )
    train_items = _all_items(
        _subset(get_dataset(args.dataset, "train", item_format="p", keypoints_2d=keypoints), args.max_train_samples),
        ("poses", "joints_2d_crop") if keypoints else ("poses",),
    )
    train_poses = train_items["poses"]
    val_poses = _all_poses(_subset(get_dataset(args.dataset, "val", item_format="p"), args.max_val_samples))

    model.set_body_model(body_model)
    model.set_mean_pose(train_poses)  # the head starts from the training set's mean pose
    mean_pose = chordal_mean_axis_angle(train_poses[:, : args.num_body_joints])
    baseline = mean_pose_baseline(model, mean_pose, val_poses[:, : args.num_body_joints])
    lifter_pretraining = None
    if model.config.lifter_hidden and args.lifter_steps > 0:
        lifter_pretraining = pretrain_lifter(
            model,
            train_poses[:, : args.num_body_joints],
            train_items["joints_2d_crop"],
            args.lifter_steps,
            args.lifter_batch_size,
            args.lifter_lr,
            args.lr_flip,
            trainer_config.seed,
        )
        logger.info("lifter pretrained on ground-truth 2D joints: %s", lifter_pretraining)

    timer = StepTimer(trainer_config.batch_size)
    start = time.perf_counter()
    summary = Trainer(model, train_set, val_set, trainer_config, callbacks=[timer]).fit()
    train_seconds = time.perf_counter() - start

    best = ImagePoseRegressor.from_pretrained(output_dir / "best")
    encoder_dir = best.frozen_encoder().save_pretrained(output_dir / "image_encoder")
    best_metrics = json.loads((output_dir / "best" / "metrics.json").read_text())
    shortname = args.shortname or f"imageencoder_{args.image_encoder_name}_{args.dataset}"
    if args.register:
        register(shortname, encoder_dir)
    train_seconds += lifter_pretraining["seconds"] if lifter_pretraining else 0.0
    results = {
        "dataset": args.dataset,
        "image_encoder_name": args.image_encoder_name,
        "encoder_config": json.loads((encoder_dir / "config.json").read_text())["config"],
        "encoder_dir": str(encoder_dir),
        "shortname": shortname if args.register else None,
        "train_size": len(train_set),
        "val_size": len(val_set),
        "img_augmentation": args.img_augmentation,
        "lr_flip": args.lr_flip,
        "lifter_pretraining": lifter_pretraining,
        "best_epoch": best_metrics["epoch"],
        "best_metric": trainer_config.best_metric,
        "val": best_metrics["metrics"],
        "val_mean_pose_baseline": baseline,
        "train_images_per_s": timer.images_per_s,
        "train_seconds": round(train_seconds, 1),
        "epochs": summary["epoch"],
    }
    write_json_atomic(output_dir / "results.json", results)
    return results


@script_main()
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with as_usage_error(ValueError):  # flag checks, before any work
        dataclass_from_args(TrainerConfig, args, output_dir=args.output_dir or "-")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    results = train(args)
    val, base = results["val"], results["val_mean_pose_baseline"]
    print(
        f"image encoder saved in {results['encoder_dir']}"
        + (f" (shortname {results['shortname']})" if results["shortname"] else "")
        + f"\nval (best epoch {results['best_epoch']}): PA-MPJPE {val['pa_mpjpe_mm']:.1f} mm, "
        f"MPJPE {val['mpjpe_mm']:.1f} mm, geodesic {val['geodesic_deg']:.2f} deg "
        f"(mean-pose baseline: {base['pa_mpjpe_mm']:.1f} mm, {base['mpjpe_mm']:.1f} mm, "
        f"{base['geodesic_deg']:.2f} deg)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
