"""The image encoder's pretraining pieces, without the Trainer: settings -> regressor, the data helpers, the lifter
warm-up, the mean-pose baseline and the throughput callback (the whole run: test_train_imageEncoder.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import torch

from poseembroider import config
from poseembroider.assisting_models.imageEncoder import training
from poseembroider.assisting_models.imageEncoder.model_imageEncoder import (
    CPU_PRESET,
    ImagePoseRegressor,
    ImagePoseRegressorConfig,
    image_encoder_config,
)
from poseembroider.assisting_models.imageEncoder.training import (
    ImageEncoderTrainingConfig,
    StepTimer,
    build_regressor,
    default_output_dir,
    default_shortname,
    first_items,
    mean_pose_baseline,
    pretrain_lifter,
    stacked_items,
)
from poseembroider.training.config import add_dataclass_arguments, dataclass_from_args

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = {"encoder_depth": 1, "encoder_embed_dim": 32, "encoder_num_heads": 2, "head_hidden": 16, "keypoint_dim": 4}


def test_flags_give_the_config_and_keep_the_original_spelling():
    parser = add_dataclass_arguments(argparse.ArgumentParser(), ImageEncoderTrainingConfig)
    assert dataclass_from_args(ImageEncoderTrainingConfig, parser.parse_args([])) == ImageEncoderTrainingConfig()
    args = parser.parse_args(["--no_img_augmentation", "--no_register", "--encoder_depth", "2", "--pooling", "mean"])
    cfg = dataclass_from_args(ImageEncoderTrainingConfig, args)
    assert not cfg.img_augmentation and not cfg.register and cfg.encoder_depth == 2 and cfg.pooling == "mean"
    assert cfg.image_encoder_name == CPU_PRESET and cfg.encoder_num_heads is None
    with pytest.raises(SystemExit):
        parser.parse_args(["--pooling", "attention"])


def test_default_names_follow_preset_dataset_and_seed():
    cfg = ImageEncoderTrainingConfig(dataset="synthscript-x", image_encoder_name="vit_tiny_256x192")
    assert default_output_dir(cfg, 3) == (
        Path(config.GENERAL_EXP_OUTPUT_DIR) / "imageEncoder" / "vit_tiny_256x192_synthscript-x_seed3"
    )
    assert default_shortname(cfg) == "imageencoder_vit_tiny_256x192_synthscript-x"
    assert default_shortname(ImageEncoderTrainingConfig(shortname="mine")) == "mine"


def test_regressor_takes_the_overrides_and_keypoint_terms_only_with_keypoint_pooling():
    model = build_regressor(ImageEncoderTrainingConfig(**TINY, lifter_hidden=8))
    assert model.config.encoder.depth == 1 and model.config.encoder.embed_dim == 32
    preset = image_encoder_config(CPU_PRESET)
    assert model.config.encoder.mlp_ratio == preset.mlp_ratio  # None keeps the preset's value
    assert model.config.wloss_keypoints == 5.0 and model.config.lifter_hidden == 8 and model.config.wloss_lifting == 1
    no_lifter = build_regressor(ImageEncoderTrainingConfig(**TINY, lifter_hidden=0)).config
    assert no_lifter.lifter_hidden == 0 and no_lifter.wloss_lifting == 0.0 and no_lifter.wloss_keypoints == 5.0
    mean = build_regressor(ImageEncoderTrainingConfig(**TINY, pooling="mean")).config
    assert (mean.wloss_keypoints, mean.lifter_hidden, mean.wloss_lifting) == (0.0, 0, 0.0)


def test_a_keypoint_preset_builds_the_cnn_regressor_with_its_own_overrides():
    from poseembroider.assisting_models.imageEncoder.keypoint_regressor import KeypointPoseRegressor

    cfg = ImageEncoderTrainingConfig(
        image_encoder_name="unet_kp_256x192", encoder_embed_dim=16, stem_input_pooling=1, stem_stage_blocks=2
    )
    model = build_regressor(cfg)
    assert isinstance(model, KeypointPoseRegressor)
    encoder = model.config.encoder
    assert (encoder.embed_dim, encoder.input_pooling, encoder.stage_blocks) == (16, 1, 2)
    assert model.config.wloss_keypoints == 5.0 and model.config.lifter_hidden == 512
    with pytest.raises(ValueError, match="--encoder_depth --drop_path_rate: not a setting of the keypoint CNN"):
        build_regressor(
            ImageEncoderTrainingConfig(image_encoder_name="unet_kp_256x192", encoder_depth=2, drop_path_rate=0.1)
        )
    with pytest.raises(ValueError, match="--pooling mean: the keypoint CNN"):
        build_regressor(ImageEncoderTrainingConfig(image_encoder_name="unet_kp_256x192", pooling="mean"))
    stem = build_regressor(ImageEncoderTrainingConfig(image_encoder_name="unet_kp_small_256x192", stem_channels=8))
    assert stem.config.encoder.stem_channels == 8 and stem.config.encoder.widths == (16, 32, 64, 128, 256)
    with pytest.raises(ValueError, match="--stem_channels: a setting of the keypoint CNN"):
        build_regressor(ImageEncoderTrainingConfig(**TINY, stem_channels=8))


def test_jitter_flags_give_the_similarity_jitter():
    assert training.affine_jitter(ImageEncoderTrainingConfig()) is None
    jitter = training.affine_jitter(
        ImageEncoderTrainingConfig(jitter_rotation_deg=30, jitter_scale=0.25, jitter_translate=0.1)
    )
    assert jitter.rotation_deg == 30 and jitter.scale == pytest.approx((0.8, 1.25)) and jitter.translate == 0.1


def test_first_items_and_stacked_items():
    items = [{"poses": torch.full((2, 3), float(i)), "other": torch.zeros(1)} for i in range(5)]
    assert first_items(items, 0) is items and len(first_items(items, 3)) == 3 and len(first_items(items, 9)) == 5
    stacked = stacked_items(first_items(items, 3), ("poses",), batch_size=2)
    assert set(stacked) == {"poses"} and stacked["poses"].shape == (3, 2, 3)
    assert torch.equal(stacked["poses"][:, 0, 0], torch.tensor([0.0, 1.0, 2.0]))


def test_mean_pose_baseline_is_zero_on_the_mean_pose_and_positive_elsewhere(body_model):
    model = build_regressor(ImageEncoderTrainingConfig(**TINY, pooling="mean"))
    model.set_body_model(body_model)
    mean_pose = 0.2 * torch.randn(22, 3, generator=torch.Generator().manual_seed(0))
    same = mean_pose_baseline(model, mean_pose, mean_pose.expand(3, 22, 3))
    assert set(same) == {"loss", "geodesic_deg", "mpjpe_mm", "pa_mpjpe_mm"}
    assert all(abs(value) < 1e-2 for value in same.values())
    others = mean_pose + 0.3 * torch.randn(4, 22, 3, generator=torch.Generator().manual_seed(1))
    apart = mean_pose_baseline(model, mean_pose, others)
    assert apart["geodesic_deg"] > 1 and 0 < apart["pa_mpjpe_mm"] <= apart["mpjpe_mm"]


def test_step_timer_counts_steps_within_an_epoch_only(monkeypatch):
    clock = iter([0.0, 1.0, 3.0, 10.0, 20.0, 21.0])
    monkeypatch.setattr(training.time, "perf_counter", lambda: next(clock))
    timer = StepTimer(batch_size=4)
    assert timer.images_per_s is None
    for event, epoch in [("step_end", 1), ("step_end", 1), ("step_end", 1), ("epoch_end", 1),
                         ("step_end", 2), ("step_end", 2)]:  # fmt: skip
        timer(None, event, {"epoch": epoch})
    # steps 0->1 (1 s), 1->3 (2 s); the epoch end and the first step of epoch 2 are not counted; 20->21 (1 s)
    assert timer.steps == 3 and timer.seconds == 4.0 and timer.images_per_s == 3.0


def test_lifter_pretraining_lowers_its_loss_and_touches_only_the_lifter():
    torch.manual_seed(0)
    encoder = image_encoder_config("convvit_tiny_256x192", embed_dim=32, num_heads=2, depth=1)
    model = ImagePoseRegressor(
        ImagePoseRegressorConfig(
            encoder=encoder,
            pooling="keypoints",
            keypoint_dim=4,
            lifter_hidden=64,
            wloss_joints=0.0,
            lifter_noise_px=0.0,
        )
    )
    generator = torch.Generator().manual_seed(1)
    poses = 0.4 * torch.randn(8, 22, 3, generator=generator)
    joints = torch.rand(8, 22, 2, generator=generator) * torch.tensor([191.0, 255.0])
    model.set_mean_pose(poses)
    others = {name: p.detach().clone() for name, p in model.named_parameters() if not name.startswith("lifter.")}
    batch = {"poses": poses, "joints_2d_crop": joints}
    with torch.no_grad():
        before = float(model.lifting_step(batch)["loss"])
    report = pretrain_lifter(model, poses, joints, steps=100, batch_size=8, lr=3e-3)
    with torch.no_grad():
        after = float(model.lifting_step(batch)["loss"])
    assert after < 0.7 * before and report["loss"] > 0
    assert all(torch.equal(p, others[name]) for name, p in model.named_parameters() if name in others)
