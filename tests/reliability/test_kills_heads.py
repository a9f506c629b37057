"""SIGKILL the downstream heads' trainers at random points and rerun them with `--resume`: the HPS head
(`train-pose-estimation` on cached x̄) and the instruction generator (`train-instruction-generation` on
cached x̄ of pose pairs) end byte-identical to an uninterrupted run, x̄ caches included (computed by the job
into its folder first). See `reliability_kill_harness` and `test_kills_trainers`."""

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
    return make_intermodality_world(tmp_path_factory.mktemp("kills_heads_world"), "killheads")


def head_job(argv: list[str], work: Path, volatile: tuple[str, ...] = ()) -> KillJob:
    out = work / "run"
    common = ["--lr", "0.002", "--batch_size", "8", "--log_step", "1", "--seed", "5", "--output_dir", str(out)]
    common += ["--shortname", "", "--no_progress", "--no_tensorboard", "--resume"]
    return KillJob(
        argv=[*CLI, *argv, *common],
        env=config_environment(),
        compared=[work],
        progress=lambda since: log_lines(out / "log.jsonl", since),
        volatile_keys=("time_s", *volatile),
    )


@pytest.mark.reliability(area="kills", subject="train-pose-estimation (cached x̄)")
def test_train_pose_estimation(world, tmp_path, cases):
    def make(work: Path) -> KillJob:
        argv = [
            *("train-pose-estimation", "--dataset", world["script"]),
            *("--pretrained_representation_model", str(world["models"]["PoseEmbroider"])),
            *("--representation_model_input_types", "images", "--predict_bodyshape", "--no_img_augmentation"),
            *("--cached_embeddings_file", str(work / "xbar"), "--epochs", "12", "--val_every", "3"),
        ]
        return head_job(argv, work)

    check_kills_leave_the_uninterrupted_outputs(make, tmp_path, cases)


@pytest.mark.reliability(area="kills", subject="train-instruction-generation (cached x̄)")
def test_train_instruction_generation(world, tmp_path, cases):
    text_dir = world["models"]["PoseEmbroider"].parent / "encoders" / "text_backbone"

    def make(work: Path) -> KillJob:
        argv = [
            *("train-instruction-generation", "--dataset", world["fix"]),
            *("--pretrained_representation_model", str(world["models"]["PoseEmbroider"])),
            *("--representation_model_input_types", "poses", "--text_decoder_name", f"transformer_{text_dir}"),
            *("--decoder_latentD", "16", "--decoder_nlayers", "1", "--decoder_nhead", "2", "--decoder_ff", "32"),
            *("--cached_embeddings_file", str(work / "xbar"), "--epochs", "10", "--val_every", "5"),
        ]
        return head_job(argv, work, volatile=("texts_per_s",))

    check_kills_leave_the_uninterrupted_outputs(make, tmp_path, cases)
