"""AMASS-style motion files made by our own code: for tests, benchmarks and the CMU demo.

- `write_amass_motion`: one `.npz` with the keys of the SMPL+H (`poses` (T, 156), `mocap_framerate`) or
  SMPL-X (`poses` (T, 165), `mocap_frame_rate`, `surface_model_type`) release, z-up;
- `synthetic_amass_release`: smooth sequences of the synthetic world (`sequences.sample_sequences`), one
  file per sequence under `<root>/Synthetic/<subject>/<name>_poses.npz`, as AMASS groups them;
- `amass_release_from_cmu_sequences`: the real CMU salsa sequences (`sequences_dev.npz`: y-up SMPL-X body
  axis-angles at 10 fps, see `/work/shared/data/cmu_mocap/README.md`) as AMASS-style files, one per stretch
  of consecutive frames (a sequence is cut where frames were dropped), under `<root>/CMU/<subject>/`.

Our poses are y-up; AMASS is z-up: the global orientation is turned by `y_up_to_z_up` (the body and its
heading are kept).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from poseembroider.atomic_io import atomic_file
from poseembroider.geometry import y_up_to_z_up

__all__ = ["amass_release_from_cmu_sequences", "synthetic_amass_release", "write_amass_motion"]


def _to_z_up(poses_y: np.ndarray) -> np.ndarray:
    """(..., J, 3) y-up poses -> the same bodies in the z-up AMASS frame (global orientation turned)."""
    out = np.array(poses_y, dtype=np.float32, copy=True)
    out[..., 0, :] = y_up_to_z_up(torch.from_numpy(out[..., 0, :]).double()).float().numpy()
    return out


def write_amass_motion(
    path: Path,
    poses: np.ndarray,
    fps: float,
    *,
    trans: np.ndarray | None = None,
    betas: np.ndarray | None = None,
    gender: str = "neutral",
    release: str = "smplh",
) -> Path:
    """Write (T, 22 | 52, 3) z-up axis-angles as an AMASS `.npz` of `release` ('smplh' or 'smplx'); missing
    hands, jaw and eyes are zeros. Written atomically."""
    poses = np.asarray(poses, dtype=np.float32)
    t = poses.shape[0]
    if poses.ndim != 3 or poses.shape[1:] not in ((22, 3), (52, 3)):
        raise ValueError(f"poses: expected (T, 22 | 52, 3), got {poses.shape}")
    full = np.zeros((t, 52, 3), np.float32)
    full[:, : poses.shape[1]] = poses
    if release == "smplh":
        arrays = {"poses": full.reshape(t, 156), "mocap_framerate": np.array(fps, np.float64)}
    elif release == "smplx":
        smplx = np.zeros((t, 55, 3), np.float32)
        smplx[:, :22], smplx[:, 25:] = full[:, :22], full[:, 22:]
        arrays = {
            "poses": smplx.reshape(t, 165),
            "mocap_frame_rate": np.array(fps, np.float64),
            "surface_model_type": np.array("smplx"),
            "num_betas": np.array(16),
            "root_orient": smplx[:, 0].copy(),
            "pose_body": smplx[:, 1:22].reshape(t, 63),
            "pose_hand": smplx[:, 25:].reshape(t, 90),
        }
    else:
        raise ValueError(f"release {release!r}: use 'smplh' or 'smplx'")
    arrays["trans"] = np.zeros((t, 3), np.float32) if trans is None else np.asarray(trans, np.float32)
    arrays["betas"] = np.zeros(16, np.float32) if betas is None else np.asarray(betas, np.float32)
    arrays["gender"] = np.array(gender)
    path = Path(path)
    with atomic_file(path) as tmp, tmp.open("wb") as f:
        np.savez(f, **arrays)
    return path


def synthetic_amass_release(
    root: Path,
    n_sequences: int = 4,
    frames: int = 30,
    fps: float = 30.0,
    seed: int = 0,
    *,
    body_model=None,
    release: str = "smplh",
) -> list[Path]:
    """`n_sequences` smooth synthetic motions as AMASS files under `root/Synthetic/subject_<k>/`; their paths."""
    from poseembroider.datasets.synthetic.sequences import sample_sequences

    batch = sample_sequences(n_sequences, frames, fps, seed, body_model=body_model)
    poses_z = _to_z_up(batch.poses.numpy())
    paths = []
    for s in range(n_sequences):
        subject = int(batch.subject_id[s])
        walk = np.linspace(0.0, 0.02 * frames, frames, dtype=np.float32)
        trans = np.stack([walk, np.zeros_like(walk), np.full_like(walk, 0.9)], axis=1)
        path = Path(root) / "Synthetic" / f"subject_{subject:02d}" / f"motion_{s:03d}_poses.npz"
        paths.append(
            write_amass_motion(path, poses_z[s], fps, trans=trans, betas=np.pad(batch.betas[s].numpy(), (0, 6)),
                               release=release)
        )  # fmt: skip
    return paths


def amass_release_from_cmu_sequences(
    sequences_file: Path, root: Path, *, release: str = "smplx", fps: float = 10.0, min_frames: int = 2
) -> list[Path]:
    """The CMU sequences of `sequences_file` (keys poses (N, 22, 3) y-up, seq_id, frame, seq_source) as AMASS
    files `root/CMU/<subject>/<trial>_part<k>_poses.npz`, one per run of consecutive frames (>= `min_frames`)."""
    with np.load(sequences_file, allow_pickle=False) as data:
        poses, seq_id, frame = data["poses"], data["seq_id"], data["frame"]
        sources = data["seq_source"]
    poses_z = _to_z_up(poses)
    paths = []
    for s in np.unique(seq_id):
        rows = np.flatnonzero(seq_id == s)
        rows = rows[np.argsort(frame[rows], kind="stable")]
        cuts = np.flatnonzero(np.diff(frame[rows]) != 1) + 1
        subject, trial = str(sources[s]).split("/")[:2]
        trial = Path(trial).stem
        for part, run in enumerate(np.split(rows, cuts)):
            if len(run) < min_frames:
                continue
            path = Path(root) / "CMU" / subject / f"{trial}_part{part:02d}_poses.npz"
            paths.append(write_amass_motion(path, poses_z[run], fps, release=release))
    return paths
