"""The mean SMPL-X body pose of a training split: where the HPS head's regression starts, and the baseline
every regression must beat (the original's `datasets/other/compute_mean_smplx_pose.py`, whose
`mean_pose_smplx_bedlam.pkl` the head reads).

`compute_mean_smplx_pose(dataset)`: the chordal L2 mean of each joint's rotation (`geometry.chordal_mean`,
the rotation closest to the arithmetic mean of the rotation matrices) over the split's poses as the datasets
serve them (models' frame, heading-normalised global orientation), and the mean betas. Saved as an `.npz`
(`pose` (J, 3) axis-angles, `betas` (10,), `count`, `source`), read with `allow_pickle=False`: no pickle.

`mean_pose_file(dataset)` names the file of a dataset, `DATA_CACHE_DIR/mean_pose_smplx_<dataset>_<split>.npz`;
`mean_smplx_pose(dataset)` computes it on first use and reads it back afterwards.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from poseembroider import config
from poseembroider.atomic_io import atomic_file
from poseembroider.datasets.registry import get_dataset
from poseembroider.geometry import chordal_mean_axis_angle

__all__ = [
    "MeanPose",
    "compute_mean_smplx_pose",
    "load_mean_pose",
    "mean_pose_file",
    "mean_smplx_pose",
    "save_mean_pose",
]


@dataclass(frozen=True)
class MeanPose:
    """`pose` (J, 3) axis-angles, `betas` (B,) mean shape coefficients, over `count` poses of `source`."""

    pose: torch.Tensor
    betas: torch.Tensor
    count: int
    source: str


def compute_mean_smplx_pose(
    dataset: str, split: str = "train", num_body_joints: int = 22, batch_size: int = 4096
) -> MeanPose:
    """The chordal mean pose and mean betas of every item of registry dataset `dataset`'s `split`."""
    data = get_dataset(dataset, split, item_format="p", num_body_joints=num_body_joints)
    poses, shapes = [], []
    for batch in DataLoader(data, batch_size=batch_size, shuffle=False):
        poses.append(batch["poses"])
        shapes.append(batch["shapes"])
    if not poses:
        raise ValueError(f"{dataset} split {split!r} has no pose: no mean pose to compute")
    all_poses = torch.cat(poses).double()  # float64: a sum over 50k rotation matrices
    mean = chordal_mean_axis_angle(all_poses).float()
    return MeanPose(mean, torch.cat(shapes).mean(0), len(all_poses), f"{dataset}:{split}")


def save_mean_pose(path: str | os.PathLike, mean: MeanPose) -> Path:
    """Write `mean` as an `.npz` atomically (temporary name, then rename)."""
    path = Path(path)
    with atomic_file(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(
                f,
                pose=mean.pose.numpy().astype(np.float32),
                betas=mean.betas.numpy().astype(np.float32),
                count=np.int64(mean.count),
                source=np.str_(mean.source),
            )
    return path


def load_mean_pose(path: str | os.PathLike) -> MeanPose:
    """Read a file of `save_mean_pose` (no pickle); a missing key or a bad shape is an error naming the file."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            pose, betas = np.asarray(data["pose"], np.float32), np.asarray(data["betas"], np.float32)
            count, source = int(data["count"]), str(data["source"])
    except FileNotFoundError:
        raise FileNotFoundError(f"mean pose file {path} not found (compute_mean_smplx_pose writes it)") from None
    except (KeyError, ValueError, OSError) as err:
        raise ValueError(f"{path} is not a mean pose file (pose, betas, count, source): {err}") from err
    if pose.ndim != 2 or pose.shape[1] != 3 or betas.ndim != 1:
        raise ValueError(f"{path}: pose {pose.shape} / betas {betas.shape}, expected (J, 3) / (B,)")
    return MeanPose(torch.from_numpy(pose), torch.from_numpy(betas), count, source)


def mean_pose_file(dataset: str, split: str = "train") -> Path:
    """`DATA_CACHE_DIR/mean_pose_smplx_<dataset>_<split>.npz`."""
    return Path(config.DATA_CACHE_DIR) / f"mean_pose_smplx_{dataset}_{split}.npz"


def mean_smplx_pose(dataset: str, split: str = "train", num_body_joints: int = 22) -> MeanPose:
    """The mean pose of a split from its file, computed and saved first when the file is missing."""
    path = mean_pose_file(dataset, split)
    if path.is_file():
        mean = load_mean_pose(path)
        if mean.pose.shape[0] >= num_body_joints:
            return mean
    mean = compute_mean_smplx_pose(dataset, split, num_body_joints)
    save_mean_pose(path, mean)
    return mean
