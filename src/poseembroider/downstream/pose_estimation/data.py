"""The HPS head's data: ground-truth poses and betas of a split in a given id order, and batches of tensors.

Trained on cached x̄, the head's whole epoch is a few (N, *) tensors (x̄ (N, D), poses (N, J, 3), betas
(N, 10)): `TensorItems` serves them by fancy indexing a batch at a time (`__getitems__`), with no per-item
dict, so a step costs what the head costs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from poseembroider.datasets.registry import get_dataset

__all__ = ["TensorItems", "split_targets"]


def split_targets(
    dataset: str, split: str, data_ids: Sequence[int] | np.ndarray, num_body_joints: int = 22, batch_size: int = 4096
) -> tuple[torch.Tensor, torch.Tensor]:
    """(poses (N, J, 3) axis-angles in the models' frame, betas (N, 10)) of `data_ids` (e.g. a cache's rows),
    in that order; an id absent from the split is an error naming it."""
    data = get_dataset(dataset, split, item_format="p", num_body_joints=num_body_joints)
    poses, shapes, ids = [], [], []
    for batch in DataLoader(data, batch_size=batch_size, shuffle=False):
        poses.append(batch["poses"])
        shapes.append(batch["shapes"])
        ids.append(batch["data_ids"])
    if not ids:
        raise ValueError(f"{dataset} split {split!r} is empty")
    position = {int(i): p for p, i in enumerate(torch.cat(ids).tolist())}
    wanted = [int(i) for i in np.asarray(data_ids).reshape(-1)]
    missing = [i for i in wanted if i not in position]
    if missing:
        raise ValueError(f"data id(s) {missing[:10]} are not in {dataset} split {split!r}")
    order = torch.tensor([position[i] for i in wanted], dtype=torch.long)
    return torch.cat(poses)[order], torch.cat(shapes)[order]


class TensorItems(Dataset):
    """Items `{name: tensor[i]}` of equal-length tensors; `__getitems__` returns a whole batch as one dict
    (pass `collate_batched` of `features.frozen`, or any collate that lets a dict through)."""

    def __init__(self, **tensors: torch.Tensor) -> None:
        if not tensors:
            raise ValueError("TensorItems: give at least one tensor")
        lengths = {name: len(t) for name, t in tensors.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"TensorItems: tensors of different lengths {lengths}")
        self.tensors = {name: torch.as_tensor(t) for name, t in tensors.items()}
        self._length = next(iter(lengths.values()))

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {name: t[index] for name, t in self.tensors.items()}

    def __getitems__(self, indices: Sequence[int]) -> dict[str, Any]:
        index = torch.as_tensor(list(indices), dtype=torch.long)
        return {name: t[index] for name, t in self.tensors.items()}
