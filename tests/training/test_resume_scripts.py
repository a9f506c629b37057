"""Kill and resume the real training scripts: `train_core` (cached features, with and without the pose-text
pool), `train_poseVAE` (L/R flips) and `train_poseText` (random captions, flips) on a tiny world, killed in the
middle of their second epoch and rerun with `--resume`, end with the weights of an uninterrupted run, bit
for bit, and their log reads as the uninterrupted one's.

These scripts draw from generators their datasets keep (caption choice, flips, the pool's order), which the
global RNG states do not cover: before the datasets' draws were checkpointed (`training.state`), the loss
differed from the first step after the resume point on. The toy model of `test_trainer.py` draws nothing of
the kind. The in-process kill is an exception raised from a step callback, past every handler (a
`BaseException`). SIGKILLs of the real command-line processes, at random points of every trainer, are
`tests/reliability/test_kills_trainers.py`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from intermodality_world import make_intermodality_world
from poseembroider import train_core
from poseembroider.assisting_models.poseText import train_poseText
from poseembroider.assisting_models.poseVAE import train_poseVAE
from poseembroider.models.pretrained import load_state_dict_file
from poseembroider.training import run_results
from poseembroider.training.state import TRAINING_STATE_NAME, load_training_state
from poseembroider.training.trainer import Trainer

pytestmark = pytest.mark.usefixtures("one_torch_thread")

EPOCHS = 4
KILL_STEP = 5  # 24 training samples, batch 8: 3 steps per epoch, so step 5 is in the middle of epoch 2


class Killed(BaseException):
    """Stands for SIGKILL: no `except Exception` of the scripts catches it."""


def _killed_at(step: int) -> type[Trainer]:
    def kill(trainer: Trainer, event: str, logs: dict) -> None:
        if event == "step_end" and trainer.global_step == step:
            raise Killed(f"killed after step {step}")

    class KilledTrainer(Trainer):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.callbacks.append(kill)

    return KilledTrainer


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    return make_intermodality_world(tmp_path_factory.mktemp("resume_world"), "resumeworld")


def _core_args(world: dict, out: Path, *extra: str) -> list[str]:
    encoders = world["models"]["PoseEmbroider"].parent / "encoders"
    return [
        *("--dataset", world["script"], "--model", "PoseEmbroider", "--no_img_augmentation"),
        *("--image_feature_mode", "compact", "--image_encoder_name", str(encoders / "image")),
        *("--pose_encoder_name", str(encoders / "pose"), "--text_encoder_name", str(encoders / "text")),
        *("--latentD", "16", "--core_width", "8", "--core_heads", "2", "--core_ff", "16"),
        *("--l2normalize", "--single_partials", "--dual_partials", "--lr_step", "2"),
        *_common_args(out, "0.003"),
        *extra,
    ]


def _common_args(out: Path, lr: str) -> list[str]:
    return [
        *("--batch_size", "8", "--lr", lr, "--epochs", str(EPOCHS), "--val_every", "2", "--log_step", "1"),
        *("--seed", "7", "--output_dir", str(out), "--shortname", "", "--no_progress", "--no_tensorboard"),
    ]


def _posevae_args(world: dict, out: Path) -> list[str]:
    model = ("--latentD", "8", "--num_neurons", "32", "--apply_LR_augmentation", "--device", "cpu")
    return ["--dataset", world["script"], *model, *_common_args(out, "0.001")]


def _posetext_args(world: dict, out: Path) -> list[str]:
    text_dir = world["models"]["PoseEmbroider"].parent / "encoders" / "text_backbone"
    model = ("--latentD", "16", "--num_neurons", "32", "--num_neurons_mini", "8", "--transformer_layers", "1")
    model += ("--transformer_heads", "2", "--transformer_ff", "32", "--apply_LR_augmentation", "--device", "cpu")
    return ["--dataset", world["script"], "--text_encoder_name", str(text_dir), *model, *_common_args(out, "0.001")]


def _run(main, argv: list[str], monkeypatch, kill_step: int | None = None) -> None:
    with monkeypatch.context() as patch:
        if kill_step is not None:
            patch.setattr(run_results, "Trainer", _killed_at(kill_step))
            with pytest.raises(Killed):
                main(argv)
        else:
            assert main(argv) == 0


def _weights(out: Path) -> dict[str, dict[str, torch.Tensor]]:
    return {folder: load_state_dict_file(out / folder / "model.safetensors") for folder in ("last", "best")}


def _log(out: Path) -> list[dict]:
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "time_s"} for r in records]


def assert_same_run(resumed: Path, uninterrupted: Path) -> None:
    """Every tensor of `last/` and `best/` equal (bit for bit), the same log lines (wall times aside)."""
    a, b = _weights(resumed), _weights(uninterrupted)
    for folder in a:
        assert a[folder].keys() == b[folder].keys()
        differ = [k for k in a[folder] if not torch.equal(a[folder][k], b[folder][k])]
        assert not differ, f"{folder}/: {len(differ)} tensors differ after the resume, e.g. {differ[:3]}"
    assert _log(resumed) == _log(uninterrupted)


SCRIPTS = {
    "core": (train_core.main, lambda world, out: _core_args(world, out)),
    "core_pool": (
        train_core.main,
        lambda world, out: _core_args(world, out, "--pose_text_pool", world["script"], "--pose_text_pool_ratio", "0.5"),
    ),
    "posevae": (train_poseVAE.main, _posevae_args),
    "posetext": (train_poseText.main, _posetext_args),
}


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_killed_in_the_second_epoch_and_resumed_ends_with_the_uninterrupted_weights(
    script, world, procedural_model_file, tmp_path, monkeypatch
):
    main, make_args = SCRIPTS[script]
    _run(main, make_args(world, tmp_path / "uninterrupted"), monkeypatch)
    killed = tmp_path / "killed"
    _run(main, make_args(world, killed), monkeypatch, kill_step=KILL_STEP)
    state = load_training_state(killed / "last" / TRAINING_STATE_NAME)
    assert (state["epoch"], state["global_step"]) == (1, 3)  # the resume point: the end of epoch 1
    assert state["datasets"][0], "the training set's own draws are saved"
    assert max(r["step"] for r in _log(killed)) == KILL_STEP  # the killed run logged past its checkpoint
    _run(main, [*make_args(world, killed), "--resume"], monkeypatch)
    assert_same_run(killed, tmp_path / "uninterrupted")


def test_resumed_twice_including_in_the_first_epoch(world, tmp_path, monkeypatch):
    """Killed before any checkpoint (a fresh start), then after epoch 3's checkpoint: still the same run."""
    _run(train_core.main, _core_args(world, tmp_path / "uninterrupted"), monkeypatch)
    out = tmp_path / "killed"
    _run(train_core.main, _core_args(world, out), monkeypatch, kill_step=2)
    assert not (out / "last").exists()
    _run(train_core.main, _core_args(world, out, "--resume"), monkeypatch, kill_step=9)
    _run(train_core.main, _core_args(world, out, "--resume"), monkeypatch)
    assert_same_run(out, tmp_path / "uninterrupted")
