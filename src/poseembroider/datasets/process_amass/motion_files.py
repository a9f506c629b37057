"""AMASS motion files (`.npz`) of the SMPL+H and SMPL-X releases, read without pickle.

| key | SMPL+H release (`*_poses.npz`) | SMPL-X release (`*_stageii.npz`) |
| --- | --- | --- |
| `poses` | (T, 156): global, 21 body, 15 + 15 hand joints | (T, 165): global, 21 body, jaw, 2 eyes, 30 hand |
| `trans` | (T, 3) root translation (m) | same |
| `betas` | (16,) shape | (16,) (`num_betas` says how many are used) |
| frame rate | `mocap_framerate` | `mocap_frame_rate` |
| `gender` | 'male' / 'female' / 'neutral' (a 0-d string array) | same |

Both are z-up (the AMASS frame). `read_motion_file` returns the 52 joints the processed format stores
(global, 21 body, 15 + 15 hands: SMPL-X order without jaw and eyes), so both releases give the same
layout. Files without `poses` (`shape.npz`, `*_stagei.npz`: body shape only) are not motions: `None`.
SMPL+H axis-angles are used as SMPL-X ones, the same approximation as for 3DPW's SMPL poses (the 22
body joints share names and order; the rest skeletons differ by a few degrees).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["AmassMotion", "MotionFileError", "read_motion_file", "RELEASE_POSE_WIDTHS"]

RELEASE_POSE_WIDTHS = {156: "smplh", 165: "smplx"}
"""Width of the flat `poses` rows -> release."""
FRAME_RATE_KEYS = ("mocap_framerate", "mocap_frame_rate")
_SMPLX_KEEP = np.r_[0:22, 25:55]  # of the 55 SMPL-X joints: body (22) then hands (30); jaw and eyes dropped


class MotionFileError(ValueError):
    """An AMASS-style motion file that cannot be used (named in the message with the key at fault)."""


@dataclass
class AmassMotion:
    """One motion: `poses` (T, 52, 3) float32 z-up axis-angles (global, 21 body, 30 hand joints); `trans`
    (T, 3) float32; `betas` (B,) float32; `fps` frames per second; `gender`; `release` 'smplh' or 'smplx'."""

    path: Path
    poses: np.ndarray
    trans: np.ndarray
    betas: np.ndarray
    fps: float
    gender: str
    release: str

    @property
    def num_frames(self) -> int:
        return int(self.poses.shape[0])


def _float_array(data, key: str, path: Path) -> np.ndarray:
    try:
        array = np.asarray(data[key])
    except ValueError as err:  # object arrays need pickle: refused
        raise MotionFileError(f"{path}: key {key!r} cannot be read without pickle ({err})") from None
    if not np.issubdtype(array.dtype, np.number):
        raise MotionFileError(f"{path}: key {key!r} has dtype {array.dtype}, expected numbers")
    return array.astype(np.float32)


def _gender(data) -> str:
    if "gender" not in data:
        return "unknown"
    try:
        value = np.asarray(data["gender"])
    except ValueError:  # stored as an object array: needs pickle, which we never allow
        return "unknown"
    item = value.item() if value.size == 1 else value
    if isinstance(item, bytes):
        item = item.decode("latin1")
    return str(item).strip() or "unknown"


def read_motion_file(path: str | Path) -> AmassMotion | None:
    """The motion in the `.npz` file `path` (module docstring), or None for a shape-only file (no `poses`).

    Raises MotionFileError naming the file and the key: unreadable archive, `poses` of another width,
    `trans` whose frame count differs from `poses`, no frame rate, NaN or infinite values.
    """
    path = Path(path)
    try:
        archive = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise MotionFileError(f"motion file not found: {path}") from None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as err:
        raise MotionFileError(f"{path}: not a readable .npz archive ({err})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise MotionFileError(f"{path}: a plain .npy array, expected an .npz archive with 'poses', 'trans', ...")
    with archive as data:
        others = [name for name in data.zip.namelist() if not name.endswith(".npy")]
        if others:  # e.g. a torch.save archive: without this check, "no poses" would call it a shape-only file
            raise MotionFileError(f"{path}: a zip archive of other files ({others[:3]}), not an .npz of arrays")
        try:
            keys = set(data.files)
            if "poses" not in keys:
                return None
            flat = _float_array(data, "poses", path)
            if flat.ndim != 2 or flat.shape[1] not in RELEASE_POSE_WIDTHS:
                raise MotionFileError(
                    f"{path}: key 'poses' has shape {flat.shape}, expected (T, 156) (SMPL+H) or (T, 165) (SMPL-X)"
                )
            release = RELEASE_POSE_WIDTHS[flat.shape[1]]
            poses = flat.reshape(flat.shape[0], -1, 3)
            if release == "smplx":
                poses = poses[:, _SMPLX_KEEP]
            n = poses.shape[0]
            if n == 0:
                raise MotionFileError(f"{path}: key 'poses' holds no frame")
            if "trans" in keys:
                trans = _float_array(data, "trans", path)
                if trans.shape != (n, 3):
                    raise MotionFileError(
                        f"{path}: frame counts disagree: 'poses' has {n} frames, 'trans' has shape {trans.shape} "
                        f"(expected ({n}, 3))"
                    )
            else:
                trans = np.zeros((n, 3), np.float32)
            rate_key = next((k for k in FRAME_RATE_KEYS if k in keys), None)
            if rate_key is None:
                raise MotionFileError(f"{path}: no frame rate: expected key {' or '.join(map(repr, FRAME_RATE_KEYS))}")
            fps = float(_float_array(data, rate_key, path).reshape(-1)[0])
            if not np.isfinite(fps) or fps <= 0:
                raise MotionFileError(f"{path}: key {rate_key!r} is {fps}, expected a positive frame rate")
            betas = _float_array(data, "betas", path).reshape(-1) if "betas" in keys else np.zeros(16, np.float32)
            gender = _gender(data)
        except (zipfile.BadZipFile, EOFError, OSError) as err:  # a member that fails to decompress
            raise MotionFileError(f"{path}: a member of the archive cannot be read ({err})") from None
    if not (np.isfinite(poses).all() and np.isfinite(trans).all()):
        raise MotionFileError(f"{path}: 'poses' or 'trans' holds NaN or infinite values")
    return AmassMotion(path, np.ascontiguousarray(poses), trans, betas, fps, gender, release)
