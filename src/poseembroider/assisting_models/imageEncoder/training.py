"""Pretraining the offline image encoder, but the loop: settings, data, lifter warm-up, baseline, publishing.

`train_imageEncoder.py` drives the one Trainer over `ImagePoseRegressor`; everything around that call lives
here, one step each, in the order the script runs them (the order fixes the random draws of a seeded run):

1. `ImageEncoderTrainingConfig`: the script's model and data flags (one field each, `config_field` help);
2. `prepare_run`: `build_regressor` (weights drawn from torch's global generator), `load_training_data`
   (image datasets, then every pose and 2D joint of the training set read once), the training set's mean pose
   as the head's starting point, `mean_pose_baseline` on the validation poses (the chance level), then
   `pretrain_lifter` (the 2D-joints -> pose lifter alone, seconds instead of epochs);
3. (the script) `Trainer(model, train_set, val_set, ..., callbacks=[StepTimer(batch_size)]).fit()`;
4. `publish_encoder`: the best checkpoint's encoder saved alone, frozen, in `<output_dir>/image_encoder/`,
   registered under its shortname, and `results.json` written.

The loop itself stays in the script: this package sits below `training/` (DESIGN.md §3), and the Trainer
knows no model class.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from poseembroider import config
from poseembroider.assisting_models.imageEncoder.keypoint_encoder import (
    KEYPOINT_ENCODER_PRESETS,
    keypoint_encoder_config,
)
from poseembroider.assisting_models.imageEncoder.keypoint_regressor import (
    KeypointPoseRegressor,
    KeypointPoseRegressorConfig,
)
from poseembroider.assisting_models.imageEncoder.model_imageEncoder import (
    CPU_PRESET,
    IMAGE_ENCODER_PRESETS,
    REGRESSOR_POOLINGS,
    TRAIN_PRECISIONS,
    ImagePoseRegressor,
    ImagePoseRegressorConfig,
    image_encoder_config,
)
from poseembroider.atomic_io import write_json_atomic
from poseembroider.body.joints import joint_names_for_count, left_right_permutation
from poseembroider.datasets.image_processing import AffineJitter, flip_keypoints
from poseembroider.datasets.pose_processing import flip_poses
from poseembroider.datasets.registry import get_dataset
from poseembroider.geometry import axis_angle_to_matrix, chordal_mean_axis_angle, geodesic_distance
from poseembroider.models.config_fields import config_field
from poseembroider.registry import register

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_DATASET",
    "ImageEncoderData",
    "ImageEncoderTrainingConfig",
    "PreparedRun",
    "affine_jitter",
    "StepTimer",
    "build_regressor",
    "default_output_dir",
    "default_shortname",
    "first_items",
    "load_training_data",
    "mean_pose_baseline",
    "prepare_run",
    "pretrain_lifter",
    "publish_encoder",
    "stacked_items",
]

DEFAULT_DATASET = "synthscript-quickstart_overlap30_res224_j16_sf11"


@dataclass
class ImageEncoderTrainingConfig:
    """What to pretrain, on what (the Trainer's settings are `TrainerConfig`'s). A None encoder field keeps
    the preset's value."""

    dataset: str = config_field(DEFAULT_DATASET, "single-element dataset with images and poses")
    image_encoder_name: str = config_field(
        CPU_PRESET,
        "architecture preset of the encoder to pretrain: a ViT (`IMAGE_ENCODER_PRESETS`) or the keypoint CNN "
        "(`KEYPOINT_ENCODER_PRESETS`)",
        choices=sorted([*IMAGE_ENCODER_PRESETS, *KEYPOINT_ENCODER_PRESETS]),
    )
    encoder_depth: int | None = config_field(None, "override the preset's number of blocks", min=1)
    encoder_mlp_ratio: float | None = config_field(None, "override the preset's MLP ratio")
    stem_input_pooling: int | None = config_field(None, "override the conv stem's input pooling (1, 2, 4, 8)", min=1)
    stem_stage_blocks: int | None = config_field(None, "override the conv stem's residual blocks per stage", min=1)
    stem_channels: int | None = config_field(
        None, "keypoint CNN: override the learned input stem's maps (0: reduce the crop by averaging)", min=0
    )
    encoder_embed_dim: int | None = config_field(None, "override the preset's token width", min=1)
    encoder_num_heads: int | None = config_field(None, "override the preset's attention heads", min=1)
    drop_path_rate: float | None = config_field(None, "override the preset's stochastic depth")
    num_body_joints: int = config_field(22, "body joints of the regressed pose", choices=[22])
    head_hidden: int = config_field(512, "hidden width of the regression head", min=1)
    wloss_joints: float = config_field(
        10.0, "weight of the root-relative body-joint MPJPE (m) added to the geodesic loss (0: off)"
    )
    pooling: str = config_field(
        "keypoints",
        "how the head reads the tokens: their mean, or per-joint heatmaps over them (+ 2D lifter)",
        choices=list(REGRESSOR_POOLINGS),
    )
    keypoint_dim: int = config_field(32, "'keypoints' pooling: width of each joint's token", min=1)
    wloss_keypoints: float = config_field(
        5.0, "weight of the 2D keypoint KL on the token grid ('keypoints' pooling; 0: off)"
    )
    keypoint_sigma: float = config_field(1.0, "std of the 2D keypoint targets (token cells)")
    wloss_keypoints_l1: float = config_field(
        0.0, "weight of the L1 error of the soft-argmax 2D joints, [-1, 1] crop units ('keypoints' pooling; 0: off)"
    )
    lifter_hidden: int = config_field(
        512, "'keypoints' pooling: hidden width of the 2D-joints -> pose lifter (0: no lifter)"
    )
    wloss_lifting: float = config_field(
        1.0, "weight of the lifter's loss on ground-truth 2D joints in each training step (0: off)"
    )
    lifter_noise_px: float = config_field(4.0, "jitter of the lifter's ground-truth 2D joints")
    lifter_steps: int = config_field(
        500, "steps pretraining the lifter alone on the training set's ground-truth 2D joints, before the images"
    )
    lifter_batch_size: int = config_field(64, "batch size of the lifter pretraining", min=1)
    lifter_lr: float = config_field(2e-3, "peak learning rate of the lifter pretraining")
    train_precision: str = config_field(
        "fp32",
        "number format of the encoder in training steps: bf16 autocast is 2x faster on CPUs with AMX "
        "(validation and the saved encoder stay fp32)",
        choices=list(TRAIN_PRECISIONS),
    )
    lr_flip: float = config_field(
        0.5, "probability of a left/right flip of a training sample (image, pose and 2D joints together)"
    )
    img_augmentation: bool = config_field(
        True,
        "augment the training crops: random resized crop, colour jitter, blur, solarise "
        "(--no_img_augmentation: the plain crops)",
    )
    jitter_rotation_deg: float = config_field(
        0.0, "keypoint training: turn each training crop and its 2D joints by up to this many degrees (0: off)", min=0
    )
    jitter_scale: float = config_field(
        0.0, "keypoint training: zoom each training crop by a factor in [1 / (1 + x), 1 + x] (0: off)", min=0
    )
    jitter_translate: float = config_field(
        0.0, "keypoint training: shift each training crop by up to this share of its width / height (0: off)", min=0
    )
    preload_crops_gb: float = config_field(
        2.0,
        "decode the train and val crops once into memory when each split's crops fit in this many GB "
        "(0: read them from disk every epoch)",
        min=0,
    )
    max_train_samples: int = config_field(0, "use the first N training samples (0: all)")
    max_val_samples: int = config_field(0, "use the first N validation samples (0: all)")
    shortname: str | None = config_field(
        None, "register the frozen encoder under this name (default: imageencoder_<preset>_<dataset>)"
    )
    register: bool = config_field(True, "add the encoder to the local shortname registry (--no_register: do not)")
    torch_threads: int = config_field(
        0, "torch intra-op threads (0: torch's default); 1 is faster on a CPU shared with other jobs"
    )


def default_output_dir(cfg: ImageEncoderTrainingConfig, seed: int) -> Path:
    """`GENERAL_EXP_OUTPUT_DIR/imageEncoder/<preset>_<dataset>_seed<seed>`."""
    return Path(config.GENERAL_EXP_OUTPUT_DIR) / "imageEncoder" / f"{cfg.image_encoder_name}_{cfg.dataset}_seed{seed}"


def default_shortname(cfg: ImageEncoderTrainingConfig) -> str:
    """`imageencoder_<preset>_<dataset>`, unless `cfg.shortname` names one."""
    return cfg.shortname or f"imageencoder_{cfg.image_encoder_name}_{cfg.dataset}"


def _vit_encoder_overrides(cfg: ImageEncoderTrainingConfig) -> dict[str, Any]:
    """The encoder fields of a ViT preset that `cfg` overrides; a keypoint-CNN-only override is an error."""
    if cfg.stem_channels is not None:
        raise ValueError(f"--stem_channels: a setting of the keypoint CNN, not of the ViT {cfg.image_encoder_name!r}")
    return {
        name: value
        for name, value in (
            ("depth", cfg.encoder_depth),
            ("embed_dim", cfg.encoder_embed_dim),
            ("num_heads", cfg.encoder_num_heads),
            ("mlp_ratio", cfg.encoder_mlp_ratio),
            ("stem_input_pooling", cfg.stem_input_pooling),
            ("stem_stage_blocks", cfg.stem_stage_blocks),
            ("drop_path_rate", cfg.drop_path_rate),
        )
        if value is not None
    }


def _keypoint_encoder_overrides(cfg: ImageEncoderTrainingConfig) -> dict[str, Any]:
    """The keypoint-CNN fields `cfg` overrides; a ViT-only override is an error naming its flag."""
    vit_only = ("encoder_depth", "encoder_num_heads", "encoder_mlp_ratio", "drop_path_rate")
    given = [f"--{name}" for name in vit_only if getattr(cfg, name) is not None]
    if given:
        raise ValueError(f"{' '.join(given)}: not a setting of the keypoint CNN {cfg.image_encoder_name!r} (a ViT's)")
    return {
        name: value
        for name, value in (
            ("embed_dim", cfg.encoder_embed_dim),
            ("input_pooling", cfg.stem_input_pooling),
            ("stage_blocks", cfg.stem_stage_blocks),
            ("stem_channels", cfg.stem_channels),
        )
        if value is not None
    }


def build_regressor(cfg: ImageEncoderTrainingConfig) -> ImagePoseRegressor:
    """The regressor of `cfg`: its preset with the overrides given; a ViT preset gives an
    `ImagePoseRegressor` (keypoint terms only with 'keypoints' pooling, the lifting loss only with a lifter),
    a keypoint-CNN preset a `KeypointPoseRegressor` (always 'keypoints' pooling)."""
    keypoint_cnn = cfg.image_encoder_name in KEYPOINT_ENCODER_PRESETS
    if keypoint_cnn and cfg.pooling != "keypoints":
        raise ValueError(f"--pooling {cfg.pooling}: the keypoint CNN {cfg.image_encoder_name!r} pools by its heatmaps")
    keypoints = cfg.pooling == "keypoints"
    head = {
        "num_body_joints": cfg.num_body_joints,
        "head_hidden": cfg.head_hidden,
        "wloss_joints": cfg.wloss_joints,
        "pooling": cfg.pooling,
        "keypoint_dim": cfg.keypoint_dim,
        "wloss_keypoints": cfg.wloss_keypoints if keypoints else 0.0,
        "keypoint_sigma": cfg.keypoint_sigma,
        "wloss_keypoints_l1": cfg.wloss_keypoints_l1 if keypoints else 0.0,
        "lifter_hidden": cfg.lifter_hidden if keypoints else 0,
        "wloss_lifting": cfg.wloss_lifting if keypoints and cfg.lifter_hidden else 0.0,
        "lifter_noise_px": cfg.lifter_noise_px,
        "train_precision": cfg.train_precision,
    }
    if keypoint_cnn:
        encoder = keypoint_encoder_config(cfg.image_encoder_name, **_keypoint_encoder_overrides(cfg))
        return KeypointPoseRegressor(KeypointPoseRegressorConfig(encoder=encoder, **head))
    encoder_vit = image_encoder_config(cfg.image_encoder_name, **_vit_encoder_overrides(cfg))
    return ImagePoseRegressor(ImagePoseRegressorConfig(encoder=encoder_vit, **head))


def first_items(dataset: Dataset, limit: int) -> Dataset:
    """The first `limit` items of `dataset` (all of them when `limit` <= 0)."""
    return Subset(dataset, range(min(limit, len(dataset)))) if limit > 0 else dataset  # type: ignore[arg-type]


def stacked_items(dataset: Dataset, keys: Sequence[str], batch_size: int = 512) -> dict[str, torch.Tensor]:
    """`keys` of every item, stacked: e.g. poses (N, 22, 3) and joints_2d_crop (N, 22, 2) of a dataset built
    with item format 'p' (no image is decoded)."""
    batches = list(DataLoader(dataset, batch_size=batch_size, shuffle=False))
    return {key: torch.cat([batch[key] for batch in batches]) for key in keys}


@dataclass
class ImageEncoderData:
    """The image datasets of a run, and the poses read once from their pose-only twins."""

    train_set: Dataset
    val_set: Dataset
    train_poses: torch.Tensor  # (N, J, 3) axis-angle
    train_joints_2d: torch.Tensor | None  # (N, J, 2) crop pixels; None without 'keypoints' pooling
    val_poses: torch.Tensor  # (M, J, 3)


def affine_jitter(cfg: ImageEncoderTrainingConfig) -> AffineJitter | None:
    """The similarity jitter of the `jitter_*` flags (None when all are 0)."""
    if not (cfg.jitter_rotation_deg or cfg.jitter_scale or cfg.jitter_translate):
        return None
    return AffineJitter(
        rotation_deg=cfg.jitter_rotation_deg,
        scale=(1 / (1 + cfg.jitter_scale), 1 + cfg.jitter_scale),
        translate=cfg.jitter_translate,
    )


def load_training_data(cfg: ImageEncoderTrainingConfig, keypoints: bool, seed: int) -> ImageEncoderData:
    """Train and val sets of `cfg.dataset` (images + poses, with their 2D joints when `keypoints`), cut to
    `max_*_samples`. With augmentation and keypoints the training crops get only the photometric part (the
    random resized crop would move the pixels away from the 2D joints); the `jitter_*` similarity, with or
    without it, moves the 2D joints with the pixels."""
    if not cfg.img_augmentation:
        processing = "smplerx_eval"
    else:
        processing = "smplerx_train_photometric" if keypoints else "smplerx_train"
    jitter = affine_jitter(cfg)
    if jitter is not None and not keypoints:
        raise ValueError("--jitter_*: the similarity jitter serves keypoint training ('keypoints' pooling)")
    train_set = first_items(
        get_dataset(
            cfg.dataset,
            "train",
            item_format="ip",
            img_processing=processing,
            lr_flip_probability=cfg.lr_flip,
            keypoints_2d=keypoints,
            seed=seed,
            affine_jitter=jitter,
        ),
        cfg.max_train_samples,
    )
    val_set = first_items(
        get_dataset(cfg.dataset, "val", item_format="ip", img_processing="smplerx_eval", keypoints_2d=keypoints),
        cfg.max_val_samples,
    )
    if cfg.preload_crops_gb > 0:
        for dataset in (train_set, val_set):
            base = dataset.dataset if isinstance(dataset, Subset) else dataset
            base.preload_crops(max_bytes=int(cfg.preload_crops_gb * 2**30))
    train_items = stacked_items(
        first_items(get_dataset(cfg.dataset, "train", item_format="p", keypoints_2d=keypoints), cfg.max_train_samples),
        ("poses", "joints_2d_crop") if keypoints else ("poses",),
    )
    val_poses = stacked_items(
        first_items(get_dataset(cfg.dataset, "val", item_format="p"), cfg.max_val_samples), ("poses",)
    )["poses"]
    return ImageEncoderData(train_set, val_set, train_items["poses"], train_items.get("joints_2d_crop"), val_poses)


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
    """Trainer callback (`callback(trainer, event, logs)`) measuring training throughput (images/s) between
    consecutive steps of an epoch.

    The first step of each epoch is skipped (it pays for the DataLoader start), so validation and
    checkpointing are not counted; data loading and augmentation are.
    """

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size
        self.seconds = 0.0
        self.steps = 0
        self._last: float | None = None
        self._epoch: int | None = None

    def __call__(self, trainer: Any, event: str, logs: dict[str, Any]) -> None:
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


@dataclass
class PreparedRun:
    """A regressor ready for the Trainer, its data, and what was measured before the image training."""

    model: ImagePoseRegressor
    data: ImageEncoderData
    baseline: dict[str, float]  # `mean_pose_baseline` on the validation poses
    lifter_pretraining: dict[str, float] | None  # `pretrain_lifter`'s report; None when skipped


def prepare_run(cfg: ImageEncoderTrainingConfig, seed: int, body_model: nn.Module | None = None) -> PreparedRun:
    """Steps 2 of the module docstring: build the regressor, load the data, start the head from the training
    set's mean pose, measure the mean-pose baseline, pretrain the lifter (with a lifter and `lifter_steps`)."""
    model = build_regressor(cfg)
    # 2D joints in the items when a loss or a metric reads them (not with mean pooling)
    data = load_training_data(cfg, keypoints=model.config.pooling == "keypoints", seed=seed)
    joints = cfg.num_body_joints
    model.set_body_model(body_model)
    model.set_mean_pose(data.train_poses)
    mean_pose = chordal_mean_axis_angle(data.train_poses[:, :joints])
    baseline = mean_pose_baseline(model, mean_pose, data.val_poses[:, :joints])
    lifter_pretraining = None
    if model.config.lifter_hidden and cfg.lifter_steps > 0:
        assert data.train_joints_2d is not None  # a lifter exists only with 'keypoints' pooling
        lifter_pretraining = pretrain_lifter(
            model,
            data.train_poses[:, :joints],
            data.train_joints_2d,
            cfg.lifter_steps,
            cfg.lifter_batch_size,
            cfg.lifter_lr,
            cfg.lr_flip,
            seed,
        )
        logger.info("lifter pretrained on ground-truth 2D joints: %s", lifter_pretraining)
    return PreparedRun(model, data, baseline, lifter_pretraining)


def publish_encoder(
    run: PreparedRun,
    cfg: ImageEncoderTrainingConfig,
    output_dir: str | Path,
    best_metric: str,
    epochs: int,
    train_seconds: float,
    images_per_s: float | None,
) -> dict[str, Any]:
    """After the Trainer: save the encoder of `<output_dir>/best` alone, frozen, in `<output_dir>/image_encoder/`,
    register it (`cfg.register`), write and return `results.json` (best validation metrics, the mean-pose
    baseline, throughput; `train_seconds` of the Trainer, the lifter pretraining's are added)."""
    output_dir = Path(output_dir)
    best = type(run.model).from_pretrained(output_dir / "best")
    encoder_dir = best.frozen_encoder().save_pretrained(output_dir / "image_encoder")
    best_metrics = json.loads((output_dir / "best" / "metrics.json").read_text())
    shortname = default_shortname(cfg)
    if cfg.register:
        register(shortname, encoder_dir)
    lifter_pretraining = run.lifter_pretraining
    train_seconds += lifter_pretraining["seconds"] if lifter_pretraining else 0.0
    results = {
        "dataset": cfg.dataset,
        "image_encoder_name": cfg.image_encoder_name,
        "encoder_config": json.loads((encoder_dir / "config.json").read_text())["config"],
        "encoder_dir": str(encoder_dir),
        "shortname": shortname if cfg.register else None,
        "train_size": len(run.data.train_set),  # type: ignore[arg-type]
        "val_size": len(run.data.val_set),  # type: ignore[arg-type]
        "img_augmentation": cfg.img_augmentation,
        "lr_flip": cfg.lr_flip,
        "lifter_pretraining": lifter_pretraining,
        "best_epoch": best_metrics["epoch"],
        "best_metric": best_metric,
        "val": best_metrics["metrics"],
        "val_mean_pose_baseline": run.baseline,
        "train_images_per_s": images_per_s,
        "train_seconds": round(train_seconds, 1),
        "epochs": epochs,
    }
    write_json_atomic(output_dir / "results.json", results)
    return results
