"""SIGKILL the trainers at random points and resume them (see `reliability_kill_harness`)."""

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

pytestmark = pytest.mark.usefixtures("procedural_model_file")


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    return make_intermodality_world(tmp_path_factory.mktemp("kills_world"), "killworld")


def _common(out: Path, lr: str, epochs: int) -> list[str]:
    return [
        *("--batch_size", "8", "--lr", lr, "--epochs", str(epochs), "--val_every", "2", "--log_step", "1"),
        *("--seed", "7", "--output_dir", str(out), "--shortname", "", "--no_progress", "--no_tensorboard"),
    ]


def trainer_job(argv: list[str], out: Path) -> KillJob:
    return KillJob(
        argv=[*CLI, *argv, "--resume"],
        env=config_environment(),
        compared=[out],
        progress=lambda since: log_lines(out / "log.jsonl", since),
        volatile_keys=("time_s",),
    )


@pytest.mark.slow
@pytest.mark.reliability(area="kills", subject="train-posevae")
def test_train_posevae(world, tmp_path, cases):
    def make(root: Path) -> KillJob:
        out = root / "run"
        model = ("--latentD", "8", "--num_neurons", "32", "--apply_LR_augmentation", "--device", "cpu")
        return trainer_job(["train-posevae", "--dataset", world["script"], *model, *_common(out, "0.001", 24)], out)

    check_kills_leave_the_uninterrupted_outputs(make, tmp_path, cases)
