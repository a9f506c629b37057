"""SIGKILL every trainer at random points, rerun it with `--resume`, and compare with an uninterrupted run
byte for byte (`reliability_kill_harness`): weights (`model.safetensors`), `training_state.pt`, configs,
`log.jsonl` (without its `time_s` wall times), results files (without their throughput and seconds).

Each runs as `python -m poseembroider.cli <command>` on the tiny world of `intermodality_world`, one torch
thread, with `--resume` from its first start (a fresh start while there is no checkpoint), as a scheduler
that restarts a job would: the uninterrupted run and the killed chain have the same command line. Progress
is the line count of the run's `log.jsonl` (`--log_step 1`: one line per step, one per epoch).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from reliability_kill_harness import (
    CLI,
    KillJob,
    check_kills_leave_the_uninterrupted_outputs,
    config_environment,
    log_lines,
)

from intermodality_world import make_intermodality_world

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("procedural_model_file")]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    return make_intermodality_world(tmp_path_factory.mktemp("kills_world"), "killworld")


def trainer_job(argv: list[str], out: Path, volatile: tuple[str, ...] = ()) -> KillJob:
    """The job of a trainer writing its run into `out`."""
    return KillJob(
        argv=[*CLI, *argv, "--resume"],
        env=config_environment(),
        compared=[out.parent],
        progress=lambda since: log_lines(out / "log.jsonl", since),
        volatile_keys=("time_s", *volatile),
    )


def common(out: Path, epochs: int, lr: str = "0.001", val_every: int = 2) -> list[str]:
    """The Trainer flags of every run here: batches of 8 (3 steps per epoch on 24 samples), a log line per step."""
    return [
        *("--batch_size", "8", "--lr", lr, "--epochs", str(epochs), "--val_every", str(val_every), "--log_step", "1"),
        *("--seed", "7", "--output_dir", str(out), "--shortname", "", "--no_progress", "--no_tensorboard"),
    ]


def text_dir(world: dict) -> Path:
    return world["models"]["PoseEmbroider"].parent / "encoders" / "text_backbone"


def core_args(world: dict, model: str, work: Path, epochs: int) -> list[str]:
    encoders = world["models"]["PoseEmbroider"].parent / "encoders"
    extra = ["--external_encoder_projection_type", "mediummlpxs"] if model == "Aligner" else []
    return [
        *("train-core", "--dataset", world["script"], "--model", model, "--no_img_augmentation", *extra),
        *("--image_feature_mode", "compact", "--image_encoder_name", str(encoders / "image")),
        *("--pose_encoder_name", str(encoders / "pose"), "--text_encoder_name", str(encoders / "text")),
        *("--latentD", "16", "--core_width", "8", "--core_heads", "2", "--core_ff", "16"),
        *("--l2normalize", "--single_partials", "--dual_partials", "--lr_step", "4", "--torch_threads", "1"),
        *("--feature_cache_dir", str(work / "features"), "--pose_text_pool", world["script"]),
        *("--pose_text_pool_ratio", "0.5", *common(work / "run", epochs, lr="0.003")),
    ]


@pytest.mark.reliability(area="kills", subject="train-posevae")
def test_train_posevae(world, tmp_path, cases):
    def make(work: Path) -> KillJob:
        model = ("--latentD", "8", "--num_neurons", "32", "--apply_LR_augmentation", "--device", "cpu")
        argv = ["train-posevae", "--dataset", world["script"], *model, *common(work / "run", 24)]
        return trainer_job(argv, work / "run")

    check_kills_leave_the_uninterrupted_outputs(make, tmp_path, cases)


@pytest.mark.reliability(area="kills", subject="train-posetext")
def test_train_posetext(world, tmp_path, cases):
    def make(work: Path) -> KillJob:
        model = ("--latentD", "16", "--num_neurons", "32", "--num_neurons_mini", "8", "--transformer_layers", "1")
        model += ("--transformer_heads", "2", "--transformer_ff", "32", "--apply_LR_augmentation", "--device", "cpu")
        argv = ["train-posetext", "--dataset", world["script"], "--text_encoder_name", str(text_dir(world)), *model]
        return trainer_job([*argv, *common(work / "run", 16)], work / "run")

    check_kills_leave_the_uninterrupted_outputs(make, tmp_path, cases)


@pytest.mark.reliability(area="kills", subject="train-pairtext")
def test_train_pairtext(world, tmp_path, cases):
    def make(work: Path) -> KillJob:
        model = ("--latentD", "16", "--num_neurons", "32", "--num_neurons_mini", "8", "--transformer_layers", "1")
        model += ("--transformer_heads", "2", "--transformer_ff", "32", "--apply_LR_augmentation", "--device", "cpu")
        argv = ["train-pairtext", "--dataset", world["fix"], "--text_encoder_name", str(text_dir(world)), *model]
        return trainer_job([*argv, *common(work / "run", 16)], work / "run")

    check_kills_leave_the_uninterrupted_outputs(make, tmp_path, cases)


@pytest.mark.parametrize(
    "model",
    [
        pytest.param(name, marks=pytest.mark.reliability(area="kills", subject=f"train-core ({name})"))
        for name in ("PoseEmbroider", "Aligner")
    ],
)
def test_train_core(world, model, tmp_path, cases):
    """Cached frozen features (`--feature_cache_dir` in the job's folder, compared too) and the pose-text pool
    (its own drawn rows); kills during the caching are `test_kills_features`'s subject."""

    def make(work: Path) -> KillJob:
        return trainer_job(core_args(world, model, work, 12), work / "run")

    check_kills_leave_the_uninterrupted_outputs(make, tmp_path, cases)


@pytest.mark.reliability(area="kills", subject="train-image-encoder")
def test_train_image_encoder(world, tmp_path, cases):
    def make(work: Path) -> KillJob:
        model = ("--encoder_depth", "1", "--encoder_embed_dim", "32", "--encoder_num_heads", "2", "--head_hidden")
        model += ("32", "--pooling", "mean", "--lr_flip", "0.5", "--warmup", "2", "--torch_threads", "1")
        argv = ["train-image-encoder", "--dataset", world["script"], *model, "--no_register"]
        argv += [a for a in common(work / "run", 8, val_every=4) if a not in ("--shortname", "")]
        return trainer_job(argv, work / "run", volatile=("train_images_per_s", "train_seconds", "seconds"))

    check_kills_leave_the_uninterrupted_outputs(make, tmp_path, cases)


@pytest.mark.reliability(area="kills", subject="text pretrain-backbone")
def test_text_pretrain_backbone(world, tmp_path, cases):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(f"the person {w} the left arm and the right knee" for w in range(200)) + "\n")

    def make(work: Path) -> KillJob:
        argv = ["text", "pretrain-backbone", "--tokenizer", str(text_dir(world)), "--corpus", str(corpus)]
        argv += ["--size", "tiny", "--steps", "60", "--batch-size", "8", "--val-every", "10", "--threads", "1"]
        argv += ["--run-dir", str(work / "run"), "--out", str(work / "model"), "--seed", "3"]
        return trainer_job(argv, work / "run", volatile=("train_time_s", "train_texts_per_s"))

    check_kills_leave_the_uninterrupted_outputs(make, tmp_path, cases)
