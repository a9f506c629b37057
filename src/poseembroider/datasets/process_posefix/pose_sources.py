"""Where the poses of PoseFix / PoseScript come from: the converted SMPL-X files, or AMASS itself.

- `SmplxPoseFiles` (the original's source): `<POSEFIX_SMPLX_DIR>/{pose_id:06d}.pkl`, one per pose, made by
  converting the annotated AMASS SMPL-H poses (neutral, zero shape) to SMPL-X with smplx `transfer_model`.
  Each is a standard Python pickle of a dict of CPU torch tensors: `global_orient` (1, 3), `body_pose`
  (21, 3), `left_hand_pose` / `right_hand_pose` (15, 3), and jaw, eyes, `betas`, `transl` we do not use,
  saved with `requires_grad`. They are read with the restricted unpickler (`restricted_pickle`): tensors,
  arrays and containers only. A pose without a file is skipped (counted), as the original does; a file that
  is there but truncated, corrupt or unsafe is an error naming it.
- `AmassPoses`: for users who have AMASS (SMPL+H G) instead of the converted files. The release's
  `ids_2_dataset_sequence_and_frame_index_100k.json` maps each pose id to an AMASS sequence file and frame;
  the SMPL+H axis-angles are used as SMPL-X ones (no fit: same joint names and order for the 22 body joints).
  A pose whose sequence file is missing is skipped (counted).

Both return (52, 3) float32 axis-angles in the z-up AMASS frame, joints in the processed format's order
(global, 21 body, 15 left-hand, 15 right-hand).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from poseembroider.datasets.process_amass.motion_files import read_motion_file
from poseembroider.datasets.process_posefix.release import read_amass_locations
from poseembroider.datasets.restricted_pickle import PickleReadError, load_restricted_pickle

__all__ = [
    "AmassPoses",
    "LoadedPoses",
    "PoseSource",
    "SMPLX_POSE_PARTS",
    "SmplxPoseFiles",
    "pose_file_path",
    "read_smplx_pose_file",
]

SMPLX_POSE_PARTS: tuple[tuple[str, int], ...] = (
    ("global_orient", 1),
    ("body_pose", 21),
    ("left_hand_pose", 15),
    ("right_hand_pose", 15),
)
"""Keys of a converted SMPL-X pose file read into the stored (52, 3) pose, and their joint counts."""


def pose_file_path(smplx_dir: Path, pose_id: int) -> Path:
    return Path(smplx_dir) / f"{int(pose_id):06d}.pkl"


def _joints(value: Any, key: str, joints: int, path: Path) -> torch.Tensor:
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value)
    if not isinstance(value, torch.Tensor):
        raise PickleReadError(f"{path}: key {key!r} is a {type(value).__name__}, expected a tensor")
    if value.numel() != joints * 3:
        raise PickleReadError(
            f"{path}: key {key!r} has shape {tuple(value.shape)}, expected {joints} x 3 axis-angles "
            f"(e.g. ({joints}, 3) or (1, {joints * 3}))"
        )
    return value.detach().to(torch.float32).reshape(joints, 3)


def read_smplx_pose_file(path: str | Path) -> torch.Tensor:
    """(52, 3) float32 pose of a converted SMPL-X pose file (module docstring); errors name the file and key."""
    path = Path(path)
    data = load_restricted_pickle(path, what="SMPL-X pose file")
    if not isinstance(data, Mapping):
        raise PickleReadError(f"{path}: expected a dict of tensors, got {type(data).__name__}")
    missing = [key for key, _ in SMPLX_POSE_PARTS if key not in data]
    if missing:
        raise PickleReadError(f"{path}: missing key(s) {missing} (has {sorted(map(str, data))})")
    pose = torch.cat([_joints(data[key], key, n, path) for key, n in SMPLX_POSE_PARTS])
    if not torch.isfinite(pose).all():
        raise PickleReadError(f"{path}: the pose holds NaN or infinite values")
    return pose


@dataclass
class LoadedPoses:
    """Poses {pose id: (52, 3)} and the ids skipped because their source file is missing."""

    poses: dict[int, torch.Tensor]
    missing: list[int] = field(default_factory=list)


class PoseSource(Protocol):
    name: str

    def load(self, pose_ids: Iterable[int]) -> LoadedPoses: ...


@dataclass(frozen=True)
class SmplxPoseFiles:
    """The converted SMPL-X pose files in `directory` (module docstring)."""

    directory: Path
    name: str = "smplx_pose_files"
    setting: str = "POSEFIX_SMPLX_DIR"  # named when the folder is missing

    def load(self, pose_ids: Iterable[int]) -> LoadedPoses:
        directory = Path(self.directory)
        if not directory.is_dir():
            raise FileNotFoundError(
                f"SMPL-X pose folder not found: {directory} (the converted PoseFix/PoseScript poses, "
                f"{{pose_id:06d}}.pkl; set POSEEMBROIDER_{self.setting})"
            )
        out = LoadedPoses({})
        for pose_id in pose_ids:
            path = pose_file_path(directory, pose_id)
            if not path.is_file():
                out.missing.append(int(pose_id))
                continue
            out.poses[int(pose_id)] = read_smplx_pose_file(path)
        return out


@dataclass(frozen=True)
class AmassPoses:
    """Poses read from AMASS (SMPL+H G) sequence files under `amass_root`, located through the release's
    `ids_2_dataset_sequence_and_frame_index_100k.json` in `release_dir` (module docstring)."""

    amass_root: Path
    release_dir: Path
    name: str = "amass_smplh"

    def load(self, pose_ids: Iterable[int]) -> LoadedPoses:
        pose_ids = [int(p) for p in pose_ids]
        locations = read_amass_locations(self.release_dir, pose_ids)
        by_sequence: dict[str, list[int]] = {}
        for pose_id in pose_ids:
            by_sequence.setdefault(locations[pose_id].sequence, []).append(pose_id)
        out = LoadedPoses({})
        for sequence, ids in sorted(by_sequence.items()):
            path = Path(self.amass_root) / sequence
            if not path.is_file():
                out.missing += ids
                continue
            motion = read_motion_file(path)
            if motion is None:
                raise ValueError(f"{path}: no 'poses' key, but the release locates poses {ids[:5]} in it")
            for pose_id in ids:
                frame = locations[pose_id].frame
                if not 0 <= frame < motion.num_frames:
                    raise ValueError(
                        f"{path}: pose {pose_id} is at frame {frame}, but the file has {motion.num_frames} frames"
                    )
                out.poses[pose_id] = torch.from_numpy(motion.poses[frame].copy())
        return out
