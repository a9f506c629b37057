"""Evaluation of an HPS head on x̄ of a split (original_system.md §5.2): predictions, errors, per-sample files.

For one input set (images, texts, images+texts, poses...), the head regresses every sample's rotations (and
betas) from its x̄ (`predict_from_xbar`); `evaluation.mesh_recovery.evaluate_smplx_predictions` poses both bodies
with zero translation and measures, per sample, PA-MPJPE, MPJPE, PVE (mm) and the rotation error (degrees) on
SMPL-X joints 0-21 (the paper's protocol), and on the 14 H36M joints when a regressor file is configured. Betas as
the original: the predicted ones against the true ones when images are in the input and the head predicts shape
(`uses_betas`), else the mean shape on both sides. The baseline is the training split's mean pose (and mean betas
when betas are compared): the answer of a head that learnt nothing from x̄ (`mean_pose_predictions`).

Per-sample values are kept in `per_sample_<split>_<dataset>.npz` beside the result file (`save_per_sample`), so
two heads (PoseEmbroider vs the Aligner) are compared sample by sample afterwards (`compare_per_sample`).
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from poseembroider.atomic_io import atomic_file
from poseembroider.downstream.pose_estimation.mean_pose import MeanPose
from poseembroider.downstream.pose_estimation.model_pose_estimation import HPSEstimator
from poseembroider.evaluation.bootstrap import paired_bootstrap_difference
from poseembroider.evaluation.mesh_recovery import MeshRecoveryErrors
from poseembroider.geometry import axis_angle_to_matrix

__all__ = [
    "compare_per_sample",
    "load_per_sample",
    "mean_pose_predictions",
    "per_sample_path",
    "predict_from_xbar",
    "save_per_sample",
    "uses_betas",
]


def uses_betas(head: HPSEstimator, input_types: tuple[str, ...]) -> bool:
    """Whether the evaluation compares betas: the head predicts them and images are among the inputs."""
    return head.shape_head is not None and "images" in input_types


@torch.no_grad()
def predict_from_xbar(head: HPSEstimator, xbar: torch.Tensor, batch_size: int = 1024) -> dict[str, torch.Tensor]:
    """`head(xbar)` in eval mode, batch by batch: `rotations` (N, J, 3, 3) and `betas` (N, B) if it has a shape
    head, on the CPU."""
    head.eval()
    device = head.pose_head.init_state.device
    parts = [head(xbar[s : s + batch_size].to(device)) for s in range(0, len(xbar), batch_size)]
    return {key: torch.cat([p[key] for p in parts]).cpu() for key in parts[0]}


def mean_pose_predictions(mean: MeanPose, count: int, num_joints: int, with_betas: bool) -> dict[str, torch.Tensor]:
    """The baseline's answer for `count` samples: the mean pose's rotations (count, J, 3, 3), and the mean betas
    (count, 10) when betas are compared."""
    out = {"rotations": axis_angle_to_matrix(mean.pose[:num_joints]).expand(count, -1, -1, -1)}
    if with_betas:
        out["betas"] = mean.betas[:10].expand(count, -1)
    return out


def per_sample_path(result_dir: str | os.PathLike, split: str, dataset: str) -> Path:
    """`<result_dir>/per_sample_<split>_<dataset>.npz`, beside `result_<split>_<dataset>.json`."""
    return Path(result_dir) / f"per_sample_{split}_{dataset}.npz"


def save_per_sample(path: str | os.PathLike, data_ids: np.ndarray, errors: Mapping[str, MeshRecoveryErrors]) -> Path:
    """Write `data_ids` (N,) and every `<input set>/<protocol>/<metric>` (N,) float64 array, atomically."""
    arrays = {"data_ids": np.asarray(data_ids, dtype=np.int64)}
    for name, result in errors.items():
        for protocol, metrics in result.per_sample.items():
            arrays.update({f"{name}/{protocol}/{m}": v.numpy() for m, v in metrics.items()})
    with atomic_file(Path(path)) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)
    return Path(path)


def load_per_sample(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The arrays of `save_per_sample` (no pickle); `ValueError` naming the file for anything else (a pickle, a
    zip of other members such as a `torch.save` file, an object array, no `data_ids`)."""
    path = Path(path)
    try:
        data = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise FileNotFoundError(f"per-sample file not found: {path}") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(f"{path}: not a per-sample .npz of save_per_sample ({err})") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ValueError(f"{path}: a plain .npy array, expected the .npz of save_per_sample")
    with data:
        others = [name for name in data.zip.namelist() if not name.endswith(".npy")]
        if others or "data_ids" not in data.files:
            found = others[:3] or sorted(data.files)[:8]
            raise ValueError(f"{path}: not a per-sample .npz of save_per_sample (holds {found}, no 'data_ids' array)")
        try:
            return {key: data[key] for key in data.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
            raise ValueError(f"{path}: a member cannot be read as a plain array ({err})") from None


def compare_per_sample(
    a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray], key: str, seed: int = 0
) -> dict[str, object]:
    """Head A vs head B on the same samples for one `<input set>/<protocol>/<metric>` key: the paired bootstrap
    difference (A - B) of the two per-sample files' values; files over other samples are refused."""
    if not np.array_equal(a["data_ids"], b["data_ids"]):
        raise ValueError("the two per-sample files hold other samples (data_ids differ): evaluate both on one split")
    for name, values in (("A", a), ("B", b)):
        if key not in values:
            raise KeyError(f"{key!r} is not in per-sample file {name} (keys: {sorted(values)[:8]} ...)")
    return paired_bootstrap_difference(torch.from_numpy(a[key]), torch.from_numpy(b[key]), seed=seed).as_dict()
