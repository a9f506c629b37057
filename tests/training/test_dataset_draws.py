"""Datasets' own random draws across a resume (`training.state`): generators kept by a dataset are saved
with the training state (`rng_state` / `set_rng_state`) or follow the epoch (`set_epoch`); one with neither is
named in a warning; a saved state that does not fit the training set is refused; the log rewinds to the
resume point."""

from __future__ import annotations

import json
import logging
import random
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch.utils.data import Subset
from toy_contrastive import PairDataset, make_model

from poseembroider.downstream.instruction_generation.data import WeightedMix
from poseembroider.models.pretrained import CheckpointError
from poseembroider.training.config import TrainerConfig
from poseembroider.training.run_log import RunLog
from poseembroider.training.state import (
    TRAINING_STATE_NAME,
    capture_dataset_state,
    load_training_state,
    restore_dataset_state,
    unsaved_generators,
)
from poseembroider.training.trainer import Trainer

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class NoisyPairs(PairDataset):
    """Pairs with noise drawn per item from the dataset's own generator (as caption choices and flips are)."""

    def __init__(self, n: int, seed: int = 0) -> None:
        super().__init__(n, seed)
        self._rng = random.Random(seed)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        item = super().__getitem__(i)
        return {"a": item["a"] + self._rng.gauss(0, 0.5), "b": item["b"]}


class SavedNoisyPairs(NoisyPairs):
    def rng_state(self) -> dict:
        return {"noise": self._rng.getstate()}

    def set_rng_state(self, state: dict) -> None:
        self._rng.setstate(tuple(state["noise"]))


class EpochPairs(PairDataset):
    """Records the epochs the Trainer announces."""

    def __init__(self, n: int) -> None:
        super().__init__(n)
        self.epochs: list[int] = []

    def set_epoch(self, epoch: int) -> None:
        self.epochs.append(epoch)


class _Killed(BaseException):
    pass


def _kill_at(step: int):
    def callback(trainer, event, logs):
        if event == "step_end" and trainer.global_step == step:
            raise _Killed

    return callback


def _config(out, **overrides) -> TrainerConfig:
    base = TrainerConfig(
        output_dir=str(out),
        epochs=3,
        batch_size=8,
        lr=5e-3,
        log_step=1,
        seed=3,
        tensorboard=False,
        progress=False,
        device="cpu",
    )
    return replace(base, **overrides)


def _fit(dataset_class, config, kill_at=None) -> Trainer:
    trainer = Trainer(
        make_model(0, dropout=0.2),
        Subset(dataset_class(24), range(24)),
        None,
        config,
        callbacks=[_kill_at(kill_at)] if kill_at else (),
    )
    if kill_at is None:
        trainer.fit()
    else:
        with pytest.raises(_Killed):
            trainer.fit()
    return trainer


def _same_weights(a: Trainer, b: Trainer) -> bool:
    return all(
        torch.equal(x, y) for x, y in zip(a.model.state_dict().values(), b.model.state_dict().values(), strict=True)
    )


@pytest.mark.parametrize("workers", [0, 1])
def test_saved_dataset_draws_make_the_resumed_run_exact(tmp_path, workers):
    uninterrupted = _fit(SavedNoisyPairs, _config(tmp_path / "a", num_workers=workers))
    _fit(SavedNoisyPairs, _config(tmp_path / "b", num_workers=workers), kill_at=5)  # mid epoch 2
    state = load_training_state(tmp_path / "b" / "last" / TRAINING_STATE_NAME)
    assert list(state["datasets"][0]) == ["train.dataset"]  # found through the Subset
    resumed = _fit(SavedNoisyPairs, _config(tmp_path / "b", num_workers=workers, resume=True))
    assert _same_weights(resumed, uninterrupted)


def test_an_unsaved_generator_is_named_and_its_draws_restart_on_resume(tmp_path, caplog):
    """The root cause the protocols close: the dataset's generator restarts from its seed on resume."""
    with caplog.at_level(logging.WARNING, logger="poseembroider.training.trainer"):
        uninterrupted = _fit(NoisyPairs, _config(tmp_path / "a"))
    assert "train.dataset._rng" in caplog.text and "--resume" in caplog.text
    assert unsaved_generators(SavedNoisyPairs(8)) == []
    _fit(NoisyPairs, _config(tmp_path / "b"), kill_at=5)
    resumed = _fit(NoisyPairs, _config(tmp_path / "b", resume=True))
    assert not _same_weights(resumed, uninterrupted)


def test_the_trainer_announces_every_epoch_also_after_a_resume(tmp_path):
    trainer = _fit(EpochPairs, _config(tmp_path / "run"), kill_at=5)
    assert trainer.train_dataset.dataset.epochs == [0, 1]
    resumed = _fit(EpochPairs, _config(tmp_path / "run", resume=True))
    assert resumed.train_dataset.dataset.epochs == [1, 2]


def test_a_saved_state_that_does_not_fit_the_training_set_is_refused(tmp_path):
    state = capture_dataset_state(Subset(SavedNoisyPairs(8), range(8)))
    with pytest.raises(CheckpointError, match=r"state\.pt: the saved dataset draws are for \['train\.dataset'\]"):
        restore_dataset_state(SavedNoisyPairs(8), state, tmp_path / "state.pt")
    with pytest.raises(CheckpointError, match=r"train\.dataset \(SavedNoisyPairs\) do not fit"):
        restore_dataset_state(Subset(SavedNoisyPairs(8), range(8)), {"train.dataset": {}}, tmp_path / "state.pt")


def test_a_weighted_mix_draws_by_epoch_as_one_uninterrupted_process(tmp_path):
    parts = [list(range(10)), list(range(100, 130))]

    def epoch_draws(mix: WeightedMix, epoch: int) -> list[int]:
        mix.set_epoch(epoch)
        return [mix[i] for i in range(len(mix))]

    continued = WeightedMix(parts, [1.0, 2.0], seed=3)
    draws = [epoch_draws(continued, e) for e in range(3)]
    assert draws[0] != draws[1] != draws[2]
    assert epoch_draws(WeightedMix(parts, [1.0, 2.0], seed=3), 2) == draws[2]  # resumed at epoch 2, or a worker
    counted = WeightedMix(parts, [1.0, 2.0], seed=3)  # without set_epoch: every request a new draw, as before
    assert [[counted[i] for i in range(len(counted))] for _ in range(3)] == draws


def test_a_resumed_log_drops_the_lines_past_the_resume_point(tmp_path):
    lines = [json.dumps({"kind": "step", "step": s, "loss": 1.0}) for s in range(1, 6)]
    (tmp_path / "log.jsonl").write_text("\n".join(lines) + '\n{"kind": "step", "st')  # cut while writing
    RunLog(tmp_path, tensorboard=False, resume_step=3).close()
    assert [json.loads(line)["step"] for line in (tmp_path / "log.jsonl").read_text().splitlines()] == [1, 2, 3]
    RunLog(tmp_path, tensorboard=False).write("step", 9, {"loss": 0.5})  # without --resume: appended
    assert (tmp_path / "log.jsonl").read_text().count("\n") == 4


def test_numpy_generator_states_survive_weights_only_loading(tmp_path):
    from poseembroider.training.state import save_training_state

    generator = np.random.default_rng(11)
    generator.random(3)
    save_training_state(
        {"format_version": 1, "datasets": [{"x": dict(generator.bit_generator.state)}]}, tmp_path / "s.pt"
    )
    copy = np.random.default_rng(0)
    copy.bit_generator.state = load_training_state(tmp_path / "s.pt")["datasets"][0]["x"]
    assert copy.random() == generator.random()
