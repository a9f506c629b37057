"""train_imageEncoder end to end on a tiny generated synthetic dataset: the loss goes down, the frozen encoder
is saved, registered and loadable by its shortname; the CLI forwards to the script."""

from __future__ import annotations

import json

import pytest
import torch

from poseembroider.assisting_models.imageEncoder import train_imageEncoder as script
from poseembroider.assisting_models.imageEncoder.keypoint_encoder import KeypointImageEncoder
from poseembroider.assisting_models.imageEncoder.model_imageEncoder import (
    ImageEncoder,
    ImagePoseRegressor,
    build_image_encoder,
)
from poseembroider.cli import main as cli_main
from poseembroider.datasets.synthetic.generate import SynthConfig, generate_synth
from poseembroider.registry import resolve

pytestmark = [pytest.mark.render, pytest.mark.usefixtures("one_torch_thread")]  # the dataset is rendered


@pytest.fixture(scope="module")
def tiny_dataset(procedural_model_file) -> str:
    cfg = SynthConfig(name="imgenc_tiny", n_train=16, n_val=8, seed=5, workers=1, pool_factor=1.5, chunk_size=8,
                      body_model_file=procedural_model_file)
    generate_synth(cfg)
    return cfg.script_name


FAST = ["--encoder_depth", "2", "--encoder_embed_dim", "64", "--encoder_num_heads", "2", "--head_hidden", "64",
        "--batch_size", "8", "--lr", "0.002", "--warmup", "2", "--no_progress", "--no_tensorboard",
        "--lifter_hidden", "32", "--lifter_steps", "20", "--lifter_batch_size", "8"]


def test_short_training_lowers_the_loss_and_saves_a_frozen_encoder(tiny_dataset, body_model, tmp_path):
    args = script.build_parser().parse_args(
        ["--dataset", tiny_dataset, "--epochs", "6", "--no_img_augmentation", "--output_dir", str(tmp_path / "run"),
         "--shortname", "imageencoder_test_tiny", *FAST]
    )
    results = script.train(args, body_model=body_model)

    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    losses = [r["train/loss"] for r in records if "train/loss" in r]
    assert len(losses) == 6 and losses[-1] < losses[0]
    val = results["val"]
    assert set(val) >= {"loss", "geodesic_deg", "mpjpe_mm", "pa_mpjpe_mm", "keypoint_kl", "keypoint_err_px"}
    assert 0 < val["keypoint_err_px"] < 300 and results["lr_flip"] == 0.5  # the recipe's defaults
    assert results["lifter_pretraining"]["loss"] > 0 and results["lifter_pretraining"]["seconds"] >= 0
    assert 0 < val["pa_mpjpe_mm"] <= val["mpjpe_mm"] < 1000 and 0 < val["geodesic_deg"] < 90
    assert results["train_size"] == 16 and results["val_size"] == 8 and results["train_images_per_s"] > 0
    assert set(results["val_mean_pose_baseline"]) == {"loss", "geodesic_deg", "mpjpe_mm", "pa_mpjpe_mm"}
    saved = ImagePoseRegressor.from_pretrained(tmp_path / "run" / "best").config
    assert saved.pooling == "keypoints" and saved.wloss_keypoints > 0 and saved.lifter_hidden == 32

    assert resolve("imageencoder_test_tiny") == (tmp_path / "run" / "image_encoder").resolve()
    encoder = build_image_encoder("imageencoder_test_tiny")
    assert isinstance(encoder, ImageEncoder) and encoder.frozen
    assert not any(p.requires_grad for p in encoder.parameters())
    assert encoder(torch.rand(2, 3, 256, 192)).shape == (2, 192, 64)
    # the saved encoder is the encoder of the best checkpoint
    best = ImagePoseRegressor.from_pretrained(tmp_path / "run" / "best")
    assert all(torch.equal(a, b) for a, b in zip(best.encoder.state_dict().values(), encoder.state_dict().values(),
                                                   strict=True))


def test_the_keypoint_cnn_trains_and_is_saved_as_the_image_encoder(tiny_dataset, body_model, tmp_path):
    args = script.build_parser().parse_args(
        ["--dataset", tiny_dataset, "--epochs", "2", "--no_img_augmentation", "--output_dir", str(tmp_path / "kp"),
         "--image_encoder_name", "unet_kp_256x192", "--encoder_embed_dim", "32", "--head_hidden", "32",
         "--lifter_hidden", "16", "--lifter_steps", "5", "--lifter_batch_size", "8", "--batch_size", "8",
         "--wloss_keypoints_l1", "5", "--train_precision", "bf16", "--shortname", "imageencoder_test_kp",
         "--warmup", "2", "--no_progress", "--no_tensorboard"]
    )
    results = script.train(args, body_model=body_model)
    assert 0 < results["val"]["pa_mpjpe_mm"] and 0 < results["val"]["keypoint_err_px"] < 300
    assert results["encoder_config"]["heatmap_stride"] == 8 and results["image_encoder_name"] == "unet_kp_256x192"
    encoder = build_image_encoder("imageencoder_test_kp")
    assert isinstance(encoder, KeypointImageEncoder) and encoder.frozen
    assert encoder.forward_features(torch.rand(2, 3, 256, 192)).shape == (2, 34, 32)


def test_cli_forwards_flags_to_the_script(tiny_dataset, body_model, tmp_path, monkeypatch, capsys):
    """`poseembroider train-image-encoder <flags>` = `train_imageEncoder.main(<flags>)` (augmentation on; the
    plain mean-pooling regressor, without 2D joints)."""
    monkeypatch.setattr("poseembroider.body.body_model.BodyModel", lambda: body_model)
    out = tmp_path / "cli_run"
    code = cli_main(["train-image-encoder", "--dataset", tiny_dataset, "--epochs", "1", "--output_dir", str(out),
                     "--no_register", "--max_train_samples", "8", "--max_val_samples", "4", *FAST,
                     "--pooling", "mean", "--lr_flip", "0"])
    assert code == 0
    assert "PA-MPJPE" in capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    assert results["img_augmentation"] and results["train_size"] == 8 and results["shortname"] is None
    assert results["lifter_pretraining"] is None and "keypoint_kl" not in results["val"]
    assert results["encoder_config"]["stem_stage_blocks"] == 1  # the CPU preset
    assert (out / "image_encoder" / "model.safetensors").is_file()


def test_bad_flags_fail_before_any_work(capsys):
    with pytest.raises(SystemExit) as exit_info:  # refused at parse time, naming the flag
        script.main(["--epochs", "0", "--dataset", "does-not-matter"])
    assert exit_info.value.code == 2 and "argument --epochs: must be an integer >= 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        script.main(["--image_encoder_name", "resnet50"])

