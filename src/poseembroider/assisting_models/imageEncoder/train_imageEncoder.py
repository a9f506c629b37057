"""Pretrain the offline image encoder: regress the SMPL-X body pose from person crops, then keep the encoder.

Without the SMPLer-X weights, PoseEmbroider's frozen image encoder is our own ViT, pretrained here on the
synthetic crops: `ImagePoseRegressor` (encoder + average pooling + MLP head -> 22 x 6D -> rotation matrices)
is trained with the geodesic loss (angle summed over joints, mean over the batch); validation reports the
geodesic error (deg), MPJPE and PA-MPJPE (mm, body joints of the body model with the mean shape). The
encoder of the best checkpoint (lowest `--best_metric`, default pa_mpjpe_mm) is then saved alone, frozen,
in `<output_dir>/image_encoder/` and registered under `--shortname`, for `--image_encoder_name <shortname>`.

    python -m poseembroider.assisting_models.imageEncoder.train_imageEncoder \\
        --dataset synthscript-quickstart_overlap30_res224_j16_sf11 --image_encoder_name vit_tiny_256x192 \\
        --lr 0.0003 --wd 0.05 --batch_size 16 --epochs 20 --val_every 1 --seed 1

(also `poseembroider train-image-encoder ...`). Every Trainer flag is available (`--optimizer`,
`--lr_scheduler`, `--warmup`, `--grad_clip`, `--resume`, ...); `--no_img_augmentation` turns off the
training augmentation (random resized crop, colour jitter, blur, solarisation).

Outputs in `--output_dir` (default `GENERAL_EXP_OUTPUT_DIR/imageEncoder/<preset>_<dataset>_seed<seed>`): the
Trainer's `best/`, `last/`, `log.jsonl`; `image_encoder/` (config.json + model.safetensors of the frozen
encoder); `results.json` (best validation metrics, a mean-pose baseline on the same split, throughput).
"""

from __future__ import annotations

import argparse
import json
import logging
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
    ImagePoseRegressor,
    ImagePoseRegressorConfig,
    image_encoder_config,
)
from poseembroider.geometry import axis_angle_to_matrix, chordal_mean_axis_angle, geodesic_distance
from poseembroider.models.pretrained import atomic_file
from poseembroider.training.config import TrainerConfig, add_dataclass_arguments, dataclass_from_args
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
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    return torch.cat([batch["poses"] for batch in loader])


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

    processing = "smplerx_train" if args.img_augmentation else "smplerx_eval"
    train_set = _subset(
        get_dataset(args.dataset, "train", item_format="ip", img_processing=processing), args.max_train_samples
    )
    val_set = _subset(
        get_dataset(args.dataset, "val", item_format="ip", img_processing="smplerx_eval"), args.max_val_samples
    )
    train_poses = _all_poses(_subset(get_dataset(args.dataset, "train", item_format="p"), args.max_train_samples))
    val_poses = _all_poses(_subset(get_dataset(args.dataset, "val", item_format="p"), args.max_val_samples))

    model = build_model(args)
    model.set_body_model(body_model)
    model.set_mean_pose(train_poses)  # the head starts from the training set's mean pose
    mean_pose = chordal_mean_axis_angle(train_poses[:, : args.num_body_joints])
    baseline = mean_pose_baseline(model, mean_pose, val_poses[:, : args.num_body_joints])

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
    results = {
        "dataset": args.dataset,
        "image_encoder_name": args.image_encoder_name,
        "encoder_config": json.loads((encoder_dir / "config.json").read_text())["config"],
        "encoder_dir": str(encoder_dir),
        "shortname": shortname if args.register else None,
        "train_size": len(train_set),
        "val_size": len(val_set),
        "img_augmentation": args.img_augmentation,
        "best_epoch": best_metrics["epoch"],
        "best_metric": trainer_config.best_metric,
        "val": best_metrics["metrics"],
        "val_mean_pose_baseline": baseline,
        "train_images_per_s": timer.images_per_s,
        "train_seconds": round(train_seconds, 1),
        "epochs": summary["epoch"],
    }
    with atomic_file(output_dir / "results.json") as tmp:
        tmp.write_text(json.dumps(results, indent=2) + "\n")
    return results


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        dataclass_from_args(TrainerConfig, args, output_dir=args.output_dir or "-")  # flag checks, before any work
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
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
