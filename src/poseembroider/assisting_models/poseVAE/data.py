"""The PoseVAE's training data: the poses of a registry dataset, held in one tensor.

The PoseVAE reads nothing of an item but its pose. A registry dataset builds, per item, a dict of ids, camera
rotation, shape, flip flag and pose, which the DataLoader then collates key by key: about 60 us per sample,
a third of a CPU training step of the skeleton objective. `PoseTensorDataset` reads the poses once
(normalised, in the models' z-up frame, as the dataset hands them out) and serves `{"poses": (J, 3)}` items,
so an epoch over a pool of tens of thousands of poses costs the model's time only.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

__all__ = ["PoseTensorDataset"]


class PoseTensorDataset(Dataset):
    """Items `{"poses": poses[i]}` of a (N, J, 3) tensor of axis-angles (models' z-up frame)."""

    def __init__(self, poses: torch.Tensor):
        poses = torch.as_tensor(poses, dtype=torch.float32)
        if poses.dim() != 3 or poses.shape[-1] != 3:
            raise ValueError(f"poses: expected (N, J, 3) axis-angles, got {tuple(poses.shape)}")
        self.poses = poses.contiguous()

    @classmethod
    def from_dataset(cls, dataset: Dataset, batch_size: int = 4096) -> PoseTensorDataset:
        """The `poses` of every item of `dataset` (e.g. `get_dataset(name, split, item_format="p")`), in order.
        Items are read as the dataset serves them, so a dataset drawing random flips must not be given."""
        batches = [batch["poses"] for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False)]
        if not batches:
            raise ValueError("PoseTensorDataset.from_dataset: the dataset is empty")
        return cls(torch.cat(batches))

    def __len__(self) -> int:
        return len(self.poses)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {"poses": self.poses[index]}
