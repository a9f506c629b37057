"""training_state.pt: weights_only loading refuses pickled code; RNG states round-trip as tensors."""

# ruff: noqa: NPY002 - the legacy global numpy stream is exactly what the training state saves

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from poseembroider.models.pretrained import CheckpointError
from poseembroider.training.schedules import lr_factor
from poseembroider.training.state import (
    capture_rng_state,
    load_training_state,
    restore_rng_state,
    save_training_state,
)


class _Payload:
    """Unpickling this object would create `marker` (stands for arbitrary code execution)."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickle_carrying_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "training_state.pt"
    torch.save({"format_version": 1, "epoch": 3, "optimizer": _Payload(marker)}, path)
    with pytest.raises(CheckpointError) as err:
        load_training_state(path)
    assert str(path) in str(err.value) and "weights_only" in str(err.value)
    assert not marker.exists(), "the payload ran"


def test_corrupt_and_foreign_files_are_refused(tmp_path):
    path = tmp_path / "training_state.pt"
    path.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="refusing to load .*training_state.pt"):
        load_training_state(path)
    torch.save({"something": 1}, path)
    with pytest.raises(CheckpointError, match="not a training state"):
        load_training_state(path)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_training_state(tmp_path / "missing.pt")


def test_rng_state_round_trip_through_weights_only_file(tmp_path):
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    random.gauss(0, 1)  # leave a cached gaussian in python's state
    state = capture_rng_state()
    path = save_training_state({"format_version": 1, "rng": [state]}, tmp_path / "training_state.pt")
    expected = (random.random(), random.gauss(0, 1), np.random.rand(), np.random.randn(), torch.rand(3))
    restore_rng_state(load_training_state(path)["rng"][0])
    again = (random.random(), random.gauss(0, 1), np.random.rand(), np.random.randn(), torch.rand(3))
    assert expected[:4] == again[:4] and torch.equal(expected[4], again[4])


def test_lr_factor_values():
    assert [lr_factor(t, "stepLR", 10, lr_step=3, lr_gamma=0.5) for t in range(7)] == [1, 1, 1, 0.5, 0.5, 0.5, 0.25]
    assert lr_factor(0, "cosine", 10) == 1.0 and lr_factor(10, "cosine", 10) == pytest.approx(0.0)
    assert lr_factor(5, "cosine", 10, min_ratio=0.2) == pytest.approx(0.6)
    assert [lr_factor(t, "cosine", 12, warmup=2) for t in (0, 1, 2)] == [0.5, 1.0, 1.0]
    assert lr_factor(7, "cosine", 12, warmup=2) == pytest.approx(0.5)
    assert [lr_factor(t, "linear", 12, warmup=2) for t in (0, 1, 2, 7, 12)] == pytest.approx([0.5, 1, 1, 0.5, 0])
    assert lr_factor(5, "linear", 10, min_ratio=0.2) == pytest.approx(0.6)
    assert lr_factor(3, "multistepLR", 10, lr_gamma=0.1, milestones=(3, 1)) == pytest.approx(0.01)
    with pytest.raises(ValueError, match="unknown lr_scheduler"):
        lr_factor(0, "exponential", 10)
