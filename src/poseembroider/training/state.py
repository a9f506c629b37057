"""The resumable training state: `training_state.pt`, written with `torch.save`, read with `weights_only=True`.

It holds only tensors and primitive containers (no pickled objects), so loading it can never run code:

| key | content |
| --- | --- |
| `format_version` | int |
| `epoch`, `global_step` | completed epochs, optimisation steps |
| `best_score`, `best_epoch` | best validation value of `best_metric` so far (or None) |
| `optimizer`, `scheduler` | their `state_dict()` |
| `rng` | one dict per rank: python / numpy / torch (/ cuda) RNG states as tensors |
| `sampler` | `{"seed", "epoch", "generator"}`: data order and DataLoader generator (worker seeds) |
| `world_size` | number of ranks that wrote it |
| `config` | the TrainerConfig as a dict (for reference) |
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from poseembroider.atomic_io import atomic_file
from poseembroider.models.pretrained import CheckpointError

TRAINING_STATE_NAME = "training_state.pt"
STATE_FORMAT_VERSION = 1


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - the legacy global stream is what libraries draw from
    torch.manual_seed(seed)


def seed_worker(worker_id: int) -> None:
    """DataLoader `worker_init_fn`: numpy and python follow the per-worker torch seed (itself drawn from
    the loader's seeded generator), so augmentations in workers are reproducible."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)  # noqa: NPY002
    random.seed(seed)


def capture_rng_state() -> dict[str, Any]:
    """This process's RNG states, as tensors and numbers only."""
    version, py_state, gauss = random.getstate()
    name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state(legacy=True)  # noqa: NPY002
    state: dict[str, Any] = {
        "python_version": int(version),
        "python": torch.tensor(py_state, dtype=torch.int64),
        "python_gauss": gauss,
        "numpy_name": str(name),
        "numpy": torch.from_numpy(np.asarray(np_keys, dtype=np.int64)),
        "numpy_pos": int(np_pos),
        "numpy_has_gauss": int(np_has_gauss),
        "numpy_gauss": float(np_gauss),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of `capture_rng_state`."""
    random.setstate((state["python_version"], tuple(int(v) for v in state["python"].tolist()), state["python_gauss"]))
    np.random.set_state(  # noqa: NPY002
        (
            state["numpy_name"],
            state["numpy"].numpy().astype(np.uint32),
            state["numpy_pos"],
            state["numpy_has_gauss"],
            state["numpy_gauss"],
        )
    )
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = state["cuda"][: torch.cuda.device_count()]
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda_states])


def save_training_state(state: dict[str, Any], path: str | os.PathLike) -> Path:
    """`torch.save` to a temporary name, then rename."""
    path = Path(path)
    with atomic_file(path) as tmp:
        torch.save(state, tmp)
    return path


def load_training_state(path: str | os.PathLike) -> dict[str, Any]:
    """Read a training state with `weights_only=True`: a file carrying pickled code or objects is refused."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"training state not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - UnpicklingError, RuntimeError (bad zip), EOFError ...
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            f"refusing to load {path}: it is not a plain training state that loads with weights_only=True "
            f"(it may carry pickled code, or be corrupt): {type(err).__name__}: {first_line}"
        ) from None
    if not isinstance(state, dict) or "format_version" not in state:
        raise CheckpointError(f"{path} is not a training state written by the poseembroider Trainer")
    if state["format_version"] > STATE_FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has format_version {state['format_version']}; this toolkit reads up to {STATE_FORMAT_VERSION}"
        )
    return state
