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
| `datasets` | one dict per rank: `{path: rng_state()}` of the training set's own generators (below) |
| `world_size` | number of ranks that wrote it |
| `config` | the TrainerConfig as a dict (for reference) |

Datasets' own random draws. The global RNGs, the sampler and the DataLoader generator are not all a training
set draws from: a dataset may keep a private generator that runs on from one epoch to the next in the main
process (caption choice 'rand', L/R flips, the pose-text pool's order), and a resumed run that rebuilds the
dataset restarts that generator from its seed, so from the first resumed step on, other captions and pool
rows are drawn than in an uninterrupted run. Two protocols close that gap, both found by walking the
training set and the datasets it holds (attributes that are `Dataset`s or lists of them: `Subset`,
`ConcatDataset`, wrappers):

- `rng_state() -> dict` / `set_rng_state(dict)`: a dataset whose draws run on saves its generators' state
  in the training state at each epoch end, restored on resume. Tensors and primitives only, so the file
  still loads with weights_only (`random.Random.getstate()` is a tuple of ints, a numpy generator's
  `bit_generator.state` a dict of ints and strings);
- `set_epoch(epoch)`: a dataset whose draws are a function of (seed, epoch, index) is told the epoch
  before each epoch (as `DistributedSampler.set_epoch`), and needs no saved state.

Inside DataLoader workers datasets draw from generators seeded by the worker's seed (from the DataLoader
generator, re-seeded per epoch), so those draws are a function of (seed, epoch, worker) already. A
dataset holding a generator with neither protocol is named in a warning (`unsaved_generators`).
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from poseembroider.datasets.cache_format import save_torch_file, unsafe_load_reason
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


RNG_TYPES = (random.Random, np.random.Generator, np.random.RandomState, torch.Generator)
"""Generator objects a dataset may hold (`unsaved_generators` looks for them)."""


def _dataset_children(dataset: Any) -> Iterator[tuple[str, Any]]:
    """(attribute path, dataset) of the datasets held by `dataset`: attributes that are `Dataset`s, or
    lists / tuples of them (`Subset.dataset`, `ConcatDataset.datasets`, wrappers' parts), by attribute name."""
    for name, value in sorted(vars(dataset).items()):
        if isinstance(value, Dataset):
            yield name, value
        elif isinstance(value, (list, tuple)) and value and all(isinstance(v, Dataset) for v in value):
            yield from ((f"{name}.{i}", v) for i, v in enumerate(value))


def walk_datasets(dataset: Any, path: str = "train") -> Iterator[tuple[str, Any]]:
    """(path, dataset) of `dataset` and of every dataset it holds, depth first; each object once."""
    seen: set[int] = set()
    stack = [(path, dataset)]
    while stack:
        where, node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        yield where, node
        if hasattr(node, "__dict__"):
            stack.extend(reversed([(f"{where}.{name}", child) for name, child in _dataset_children(node)]))


def set_dataset_epoch(dataset: Any, epoch: int) -> None:
    """Call `set_epoch(epoch)` on `dataset` and on every dataset it holds that has one (module docstring)."""
    for _, node in walk_datasets(dataset):
        if callable(getattr(node, "set_epoch", None)):
            node.set_epoch(epoch)


def capture_dataset_state(dataset: Any) -> dict[str, dict[str, Any]]:
    """`{path: rng_state()}` of `dataset` and the datasets it holds that have `rng_state` (module docstring)."""
    return {
        path: node.rng_state() for path, node in walk_datasets(dataset) if callable(getattr(node, "rng_state", None))
    }


def restore_dataset_state(dataset: Any, state: dict[str, dict[str, Any]], source: str | os.PathLike) -> None:
    """Inverse of `capture_dataset_state`; a state that does not fit the datasets (other paths: the training
    set was built otherwise than when `source` was written) is refused with a `CheckpointError`."""
    nodes = {path: node for path, node in walk_datasets(dataset) if callable(getattr(node, "set_rng_state", None))}
    if set(nodes) != set(state):
        raise CheckpointError(
            f"{source}: the saved dataset draws are for {sorted(state)}, but this training set has {sorted(nodes)}; "
            "resume with the dataset flags of the interrupted run"
        )
    for path, node in nodes.items():
        try:
            node.set_rng_state(state[path])
        except (KeyError, TypeError, ValueError) as err:
            raise CheckpointError(
                f"{source}: the saved draws of {path} ({type(node).__name__}) do not fit: {err}"
            ) from None


def unsaved_generators(dataset: Any) -> list[str]:
    """Paths of generator objects (`RNG_TYPES`) held by datasets that have neither `rng_state` nor `set_epoch`:
    their draws would not continue exactly on resume."""
    found = []
    for path, node in walk_datasets(dataset):
        if not hasattr(node, "__dict__") or callable(getattr(node, "rng_state", None)):
            continue
        if callable(getattr(node, "set_epoch", None)):
            continue
        found += [f"{path}.{name}" for name, value in sorted(vars(node).items()) if isinstance(value, RNG_TYPES)]
    return found


def save_training_state(state: dict[str, Any], path: str | os.PathLike) -> Path:
    """`torch.save` to a temporary name, then rename (`save_torch_file`: a resumed run writes the bytes an
    uninterrupted one does)."""
    return save_torch_file(state, path)


def load_training_state(path: str | os.PathLike) -> dict[str, Any]:
    """Read a training state with `weights_only=True`: a file carrying pickled code or objects is refused."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"training state not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - UnpicklingError, RuntimeError (bad zip), EOFError ...
        raise CheckpointError(
            f"refusing to load {path}: it is not a plain training state that loads with weights_only=True "
            f"(it may carry pickled code, or be corrupt): {unsafe_load_reason(err)}"
        ) from None
    if not isinstance(state, dict) or "format_version" not in state:
        raise CheckpointError(f"{path} is not a training state written by the poseembroider Trainer")
    if state["format_version"] > STATE_FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has format_version {state['format_version']}; this toolkit reads up to {STATE_FORMAT_VERSION}"
        )
    return state
