"""Reading poses given by users: `.npz` files (`poseembroider caption / instruct / embed`) and in-memory arrays
or dicts (`Representation.embed_poses`), one parser for both.

Accepted contents (axis-angles, SMPL-X joint order, radians):

- `poses`: (N, 22, 3), (N, 52, 3) or (N, 55, 3), or flat (N, 66) / (N, 156) / (N, 165);
- AMASS style: `root_orient` (N, 3) + `pose_body` (N, 63), optionally `pose_hand` (N, 90) -> 52 joints;
- SMPL-X style (the `smplx` forward's keywords): `global_orient` (N, 3) + `body_pose` (N, 63) or (N, 21, 3)
  -> 22 joints.

Files are opened with `allow_pickle=False`: a pose file never runs code. Values must be finite radians with
every axis-angle's norm at most `MAX_AXIS_ANGLE_NORM` (4π): larger ones are degrees or garbage, not poses.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from poseembroider.npz_files import read_npz

__all__ = ["MAX_AXIS_ANGLE_NORM", "load_pose_file", "poses_from_mapping"]

_JOINT_COUNTS = (22, 52, 55)
MAX_AXIS_ANGLE_NORM = 4 * np.pi
"""Largest accepted rotation angle (radians): any rotation is reachable below 2π, so a norm above 4π means the
values are not axis-angles in radians (degrees, or corrupted numbers such as 1e30)."""


def _fail(path: Path | str, message: str) -> ValueError:
    return ValueError(f"{path}: {message}")


def _array(data, key: str, path: Path | str) -> np.ndarray:
    try:
        value = data[key]
        array = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
    except ValueError as err:  # object arrays need pickle: refused
        raise _fail(path, f"key {key!r} cannot be read without pickle ({err}); save plain float arrays") from None
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise _fail(path, f"key {key!r} has dtype {array.dtype}, expected real numbers (axis-angles)")
    with np.errstate(over="ignore", invalid="ignore"):  # 1e300 becomes inf: refused below, naming the file
        return array.astype(np.float32)


def _from_poses(array: np.ndarray, path: Path | str) -> np.ndarray:
    if array.ndim == 2 and array.shape[1] % 3 == 0 and array.shape[1] // 3 in _JOINT_COUNTS:
        array = array.reshape(array.shape[0], -1, 3)
    if array.ndim != 3 or array.shape[2] != 3 or array.shape[1] not in _JOINT_COUNTS:
        raise _fail(
            path, f"key 'poses' has shape {array.shape}, expected (N, 22|52|55, 3) axis-angles or flat (N, 66|156|165)"
        )
    return array


def _from_amass(data, path: Path | str) -> np.ndarray:
    root = _array(data, "root_orient", path)
    body = _array(data, "pose_body", path)
    if root.ndim != 2 or root.shape[1] != 3:
        raise _fail(path, f"key 'root_orient' has shape {root.shape}, expected (N, 3)")
    if body.ndim != 2 or body.shape[1] != 63 or body.shape[0] != root.shape[0]:
        raise _fail(
            path,
            f"key 'pose_body' has shape {body.shape}, expected ({root.shape[0]}, 63) "
            "(21 body joints, one row per 'root_orient' row)",
        )
    parts = [root[:, None], body.reshape(-1, 21, 3)]
    if "pose_hand" in data:
        hands = _array(data, "pose_hand", path)
        if hands.ndim != 2 or hands.shape != (root.shape[0], 90):
            raise _fail(path, f"key 'pose_hand' has shape {hands.shape}, expected ({root.shape[0]}, 90)")
        parts.append(hands.reshape(-1, 30, 3))
    return np.concatenate(parts, axis=1)


def _from_smplx(data, path: Path | str) -> np.ndarray:
    root = _array(data, "global_orient", path)
    if root.ndim not in (1, 2, 3) or root.shape[-1] != 3 or root.ndim == 3 and root.shape[1] != 1:
        raise _fail(path, f"key 'global_orient' has shape {root.shape}, expected (N, 3), (N, 1, 3) or (3,)")
    root = root.reshape(-1, 3)
    body = _array(data, "body_pose", path)
    if body.ndim == 3 and body.shape[1:] == (21, 3):
        body = body.reshape(body.shape[0], 63)
    if body.ndim != 2 or body.shape != (root.shape[0], 63):
        raise _fail(
            path,
            f"key 'body_pose' has shape {body.shape}, expected ({root.shape[0]}, 63) or "
            f"({root.shape[0]}, 21, 3) (one row per 'global_orient' row)",
        )
    return np.concatenate([root[:, None], body.reshape(-1, 21, 3)], axis=1)


def poses_from_mapping(data, where: Path | str = "poses") -> np.ndarray:
    """(N, 22 | 52 | 55, 3) float32 finite axis-angles from a mapping of arrays (an open `.npz`, a dict of numpy
    arrays or tensors) in one of the layouts of the module doc; errors name `where`, the key and the shape."""
    if "poses" in data:
        poses = _from_poses(_array(data, "poses", where), where)
    elif "root_orient" in data and "pose_body" in data:
        poses = _from_amass(data, where)
    elif "global_orient" in data and "body_pose" in data:
        poses = _from_smplx(data, where)
    else:
        raise _fail(
            where,
            "no pose key: expected 'poses', 'root_orient' + 'pose_body' (AMASS) or 'global_orient' + 'body_pose' "
            f"(SMPL-X); found {sorted(data)}",
        )
    if poses.shape[0] == 0:
        raise _fail(where, "contains no pose (N = 0)")
    if not np.isfinite(poses).all():
        bad = np.argwhere(~np.isfinite(poses).all(axis=-1))[:3].tolist()
        raise _fail(where, f"contains NaN or inf values (first [pose, joint] entries: {bad})")
    norms = np.linalg.norm(poses.astype(np.float64), axis=-1)
    if (norms > MAX_AXIS_ANGLE_NORM).any():
        bad = np.argwhere(norms > MAX_AXIS_ANGLE_NORM)[:3].tolist()
        raise _fail(
            where,
            f"axis-angle norms up to {norms.max():.3g} rad exceed {MAX_AXIS_ANGLE_NORM:.3g} (4π): expected radians "
            f"(first [pose, joint] entries: {bad})",
        )
    return np.ascontiguousarray(poses, dtype=np.float32)


def load_pose_file(path: str | Path) -> torch.Tensor:
    """Axis-angle poses (N, 22 | 52 | 55, 3) float32 from an `.npz` file (formats in the module doc).

    Raises FileNotFoundError for a missing file and ValueError naming the file and the key or shape
    at fault for anything else (a damaged archive included: `npz_files.read_npz`).
    """
    return torch.from_numpy(poses_from_mapping(read_npz(path, "pose file"), Path(path)))
