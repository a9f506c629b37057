"""The Trainer loop: exact resume, stepped LR schedules, checkpoints, logs, contract errors."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from toy_contrastive import LossRecorder, PairDataset, ToyTwoTower, make_model

from poseembroider.models.pretrained import load_pretrained
from poseembroider.training.config import TrainerConfig
from poseembroider.training.state import TRAINING_STATE_NAME, load_training_state
from poseembroider.training.trainer import Trainer

STEPS_PER_EPOCH = 6  # 48 samples, batch 8


def _config(output_dir, **overrides) -> TrainerConfig:
    base = TrainerConfig(
        output_dir=str(output_dir), epochs=4, batch_size=8, lr=5e-3, lr_scheduler="stepLR", lr_step=1, lr_gamma=0.7,
        grad_clip=1.0, val_every=2, log_step=5, best_metric="R@1", best_mode="max", seed=3, deterministic=True,
        tensorboard=False, progress=False, device="cpu",
    )
    return replace(base, **overrides)


def _run(config, callbacks=(), seed_model=0) -> Trainer:
    # dropout on: the resumed run must also restore the torch RNG to draw the same masks
    trainer = Trainer(make_model(seed_model, dropout=0.2), PairDataset(48, seed=0), PairDataset(16, seed=1), config,
                      callbacks=callbacks)
    trainer.fit()
    return trainer


class _Crash(RuntimeError):
    pass


def _crash_at(step: int):
    def callback(trainer, event, logs):
        if event == "step_end" and trainer.global_step == step:
            raise _Crash(f"killed at step {step}")

    return callback


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    return _run(_config(tmp_path_factory.mktemp("uninterrupted")))


def _assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb), f"{name} differs after resuming"


def test_killed_midway_and_resumed_gives_identical_weights(uninterrupted, tmp_path):
    config = _config(tmp_path / "run")
    with pytest.raises(_Crash):
        _run(config, callbacks=[_crash_at(2 * STEPS_PER_EPOCH + 3)])  # in the middle of epoch 3
    state = load_training_state(tmp_path / "run" / "last" / TRAINING_STATE_NAME)
    assert (state["epoch"], state["global_step"]) == (2, 2 * STEPS_PER_EPOCH)
    recorder = LossRecorder()
    # a different initialisation: every weight must come from the checkpoint
    resumed = _run(replace(config, resume=True), callbacks=[recorder], seed_model=123)
    assert len(recorder.losses) == 2 * STEPS_PER_EPOCH  # epochs 3 and 4 only
    assert resumed.global_step == uninterrupted.global_step == 4 * STEPS_PER_EPOCH
    _assert_same_weights(resumed.model, uninterrupted.model)
    assert resumed.best_score == uninterrupted.best_score and resumed.best_epoch == uninterrupted.best_epoch
    assert resumed.lr == pytest.approx(uninterrupted.lr)


def test_extending_a_finished_run_equals_a_longer_run(uninterrupted, tmp_path):
    """Train 2 epochs, then resume the same folder with --epochs 4 (stepLR does not depend on the length)."""
    _run(_config(tmp_path / "run", epochs=2))
    extended = _run(_config(tmp_path / "run", epochs=4, resume=True))
    _assert_same_weights(extended.model, uninterrupted.model)


def test_resume_without_checkpoint_starts_from_scratch(uninterrupted, tmp_path):
    fresh = _run(_config(tmp_path / "run", resume=True))
    _assert_same_weights(fresh.model, uninterrupted.model)


def test_outputs_of_a_run(uninterrupted):
    out = uninterrupted.output_dir
    assert {p.name for p in out.iterdir()} >= {"best", "last", "log.jsonl", "trainer_config.json"}
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "temporary folders left behind"
    lines = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    epochs = [r for r in lines if r["kind"] == "epoch"]
    steps = [r for r in lines if r["kind"] == "step"]
    assert [r["epoch"] for r in epochs] == [1, 2, 3, 4]
    assert len(steps) == 4 * STEPS_PER_EPOCH // 5  # --log_step 5
    assert "val/R@1" in epochs[1] and "val/R@1" not in epochs[0]  # --val_every 2
    assert {"train/loss", "train/temperature", "train/grad_norm", "lr"} <= set(epochs[0])
    best = json.loads((out / "best" / "metrics.json").read_text())
    assert best["epoch"] == uninterrupted.best_epoch and best["metrics"]["R@1"] == uninterrupted.best_score
    last = load_pretrained(out / "last")
    assert isinstance(last, ToyTwoTower)
    _assert_same_weights(last, uninterrupted.model)
    state = load_training_state(out / "last" / TRAINING_STATE_NAME)
    assert state["epoch"] == 4 and set(state["rng"][0]) >= {"python", "numpy", "torch"}
    assert json.loads((out / "trainer_config.json").read_text())["lr_scheduler"] == "stepLR"


def test_deterministic_mode_is_restored_after_fit(uninterrupted):
    assert not torch.are_deterministic_algorithms_enabled()


@pytest.mark.parametrize(
    "scheduler, interval, extra, expected_factors",
    [
        ("stepLR", "epoch", {"lr_step": 2, "lr_gamma": 0.5}, [1, 1, 0.5, 0.5, 0.25]),
        ("multistepLR", "epoch", {"lr_milestones": [1, 4], "lr_gamma": 0.1}, [1, 0.1, 0.1, 0.1, 0.01]),
        ("none", "epoch", {"warmup": 2}, [0.5, 1, 1, 1, 1]),
        # per step, 2 steps per epoch: the LR of each epoch's first step
        ("stepLR", "step", {"lr_step": 3, "lr_gamma": 0.5}, [1, 1, 0.5, 0.25, 0.25]),
    ],
)
def test_lr_schedule_is_stepped(tmp_path, scheduler, interval, extra, expected_factors):
    lrs = []
    config = TrainerConfig(
        output_dir=str(tmp_path), epochs=5, batch_size=8, lr=0.1, lr_scheduler=scheduler, scheduler_interval=interval,
        val_every=100, tensorboard=False, progress=False, device="cpu", **extra,
    )
    trainer = Trainer(make_model(0), PairDataset(16), None, config,
                      callbacks=[lambda t, event, logs: event == "epoch_end" and lrs.append(logs["lr"])])
    trainer.fit()
    assert lrs == pytest.approx([0.1 * f for f in expected_factors])


def test_lr_after_n_epochs_is_the_stepped_value(tmp_path):
    config = TrainerConfig(output_dir=str(tmp_path), epochs=6, batch_size=8, lr=0.2, lr_scheduler="stepLR", lr_step=2,
                           lr_gamma=0.5, tensorboard=False, progress=False, device="cpu")
    trainer = Trainer(make_model(0), PairDataset(16), None, config)
    trainer.fit()
    assert trainer.lr == pytest.approx(0.2 * 0.5 ** (6 // 2))
    assert all(g["lr"] == pytest.approx(0.025) for g in trainer.optimizer.param_groups)


def test_tensorboard_and_param_groups(tmp_path):
    config = TrainerConfig(output_dir=str(tmp_path), epochs=1, batch_size=8, wd=0.01, optimizer="AdamW",
                           progress=False, device="cpu")
    trainer = Trainer(make_model(0), PairDataset(16), None, config)
    assert [g["weight_decay"] for g in trainer.optimizer.param_groups] == [0.01, 0.0]  # from model.param_groups
    trainer.fit()
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


class _NoStep(torch.nn.Module):
    pass


class _BadLoss(torch.nn.Module):
    def __init__(self, value: float = 1.0) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))
        self.value = value

    def training_step(self, batch):
        return {"loss": self.w.sum() * self.value} if self.value != 0 else {"total": self.w.sum()}


def test_contract_errors(tmp_path):
    config = TrainerConfig(output_dir=str(tmp_path), epochs=1, batch_size=8, tensorboard=False, progress=False,
                           device="cpu")
    with pytest.raises(TypeError, match="training_step"):
        Trainer(_NoStep(), PairDataset(16), None, config)
    with pytest.raises(TypeError, match="validation_step"):
        Trainer(_BadLoss(), PairDataset(16), PairDataset(8), config)
    with pytest.raises(TypeError, match="'loss'"):
        Trainer(_BadLoss(0), PairDataset(16), None, config).fit()
    with pytest.raises(FloatingPointError, match="non-finite loss"):
        Trainer(_BadLoss(float("nan")), PairDataset(16), None, config).fit()
    with pytest.raises(ValueError, match="no batch"):
        Trainer(_BadLoss(), PairDataset(4), None, config)
    with pytest.raises(ValueError, match="output_dir"):
        Trainer(_BadLoss(), PairDataset(16), None, replace(config, output_dir=""))
    with pytest.raises(KeyError, match="mRecall"):
        Trainer(make_model(0), PairDataset(16), PairDataset(8), replace(config, best_metric="mRecall")).fit()
