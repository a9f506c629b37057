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
from poseembroider.npz_files import read_npz

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
    """Read a file of `save_mean_pose` (no pickle); a damaged file, a missing key, a bad shape or dtype, or a
    non-finite value is an error naming the file and the key."""
    path = Path(path)
    try:
        data = read_npz(path, "mean pose file")
    except FileNotFoundError:
        raise FileNotFoundError(f"mean pose file {path} not found (compute_mean_smplx_pose writes it)") from None
    missing = [key for key in ("pose", "betas", "count", "source") if key not in data]
    if missing:
        raise ValueError(f"{path} is not a mean pose file: missing key(s) {missing} (has {sorted(data)})")
    arrays = {}
    for key, ndim in (("pose", 2), ("betas", 1)):
        value = data[key]
        if value.dtype.kind not in "fiu" or value.ndim != ndim or (key == "pose" and value.shape[1] != 3):
            wanted = "(J, 3)" if key == "pose" else "(B,)"
            raise ValueError(f"{path}: key {key!r} is {value.shape} {value.dtype}, expected {wanted} real numbers")
        with np.errstate(over="ignore", invalid="ignore"):
            arrays[key] = value.astype(np.float32)
        if not np.isfinite(arrays[key]).all():
            raise ValueError(f"{path}: key {key!r} holds NaN or inf values")
    if arrays["pose"].shape[0] == 0:
        raise ValueError(f"{path}: key 'pose' holds no joint")
    count, source = data["count"], data["source"]
    if count.shape != () or count.dtype.kind not in "iu" or int(count) < 1:
        raise ValueError(f"{path}: key 'count' is {count!r}, expected one int >= 1")
    if source.shape != () or source.dtype.kind != "U":
        raise ValueError(f"{path}: key 'source' is {source.dtype} {source.shape}, expected one string")
    return MeanPose(torch.from_numpy(arrays["pose"]), torch.from_numpy(arrays["betas"]), int(count), str(source))


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
