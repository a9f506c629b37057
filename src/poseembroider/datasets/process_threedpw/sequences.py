"""The sequence files of the public 3DPW release, read safely and checked.

`sequenceFiles/{train,validation,test}/<sequence>.pkl` are Python-2 era pickles (numpy arrays, lists, str;
read with `encoding="latin1"` through the restricted unpickler: nothing but arrays and containers can be
rebuilt). Each is a dict; the keys used here (A actors, N image frames):

| key | content |
| --- | --- |
| `sequence` | the sequence name (also the image folder `imageFiles/<sequence>/image_{frame:05d}.jpg`) |
| `poses` | A x (N, 72) SMPL axis-angles in the world frame (global orientation, 21 body joints, 2 hand joints) |
| `trans` | A x (N, 3) SMPL root translations (m, world) |
| `betas` | A x (10,) SMPL shapes (some files hold more coefficients: the first 10 are used) |
| `genders` | A x 'm' / 'f' |
| `jointPositions` | A x (N, 72) the 24 SMPL joints (m, world) |
| `poses2d` | A x (N, 3, 18) detected 2D keypoints (x, y, confidence; COCO-18 order, 0 when not detected) |
| `campose_valid` | A x (N,) whether the camera pose of that frame was aligned with the image |
| `cam_poses` | (N, 4, 4) world -> camera extrinsics (OpenCV camera: x right, y down, z forward) |
| `cam_intrinsics` | (3, 3) K |
| `img_frame_ids` | (N,) the image index of each frame |

`read_sequence_file` returns them as arrays with the actor axis first and checks that every per-actor list
has A entries and every per-frame array N frames: a file whose frame counts disagree is an error naming the
file, the key and both counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from poseembroider.datasets.restricted_pickle import PickleReadError, load_restricted_pickle

__all__ = ["SequenceFileError", "ThreeDPWSequence", "read_sequence_file"]

PER_ACTOR_KEYS = ("poses", "trans", "betas", "genders", "jointPositions", "poses2d", "campose_valid")
PER_FRAME_KEYS = ("cam_poses", "img_frame_ids")
REQUIRED_KEYS = ("sequence", *PER_ACTOR_KEYS, *PER_FRAME_KEYS, "cam_intrinsics")
GENDERS = {"m": "male", "f": "female", "male": "male", "female": "female", "n": "neutral", "neutral": "neutral"}


class SequenceFileError(ValueError):
    """A 3DPW sequence file whose content is not what the release holds (file and key named)."""


@dataclass
class ThreeDPWSequence:
    """One sequence, actor axis first. `poses` (A, N, 24, 3) float32 world-frame SMPL axis-angles; `trans`
    (A, N, 3); `betas` (A, 10); `joints` (A, N, 24, 3) world (m); `keypoints_2d` (A, N, 18, 3) (x, y,
    confidence); `valid` (A, N) bool; `genders` A x 'male' / 'female'; `cam_poses` (N, 4, 4) world -> camera;
    `intrinsics` (3, 3); `frame_ids` (N,) int64."""

    path: Path
    name: str
    poses: np.ndarray
    trans: np.ndarray
    betas: np.ndarray
    joints: np.ndarray
    keypoints_2d: np.ndarray
    valid: np.ndarray
    genders: list[str]
    cam_poses: np.ndarray
    intrinsics: np.ndarray
    frame_ids: np.ndarray

    @property
    def num_actors(self) -> int:
        return int(self.poses.shape[0])

    @property
    def num_frames(self) -> int:
        return int(self.poses.shape[1])

    def image_path(self, frame_id: int) -> str:
        """The frame's image, relative to the release's `imageFiles` folder."""
        return f"{self.name}/image_{int(frame_id):05d}.jpg"


def _array(value: Any, path: Path, key: str, shape: tuple[int | None, ...], dtype=np.float32) -> np.ndarray:
    """`value` as an array of `shape` (None: any size); errors name the file, the key and both shapes."""
    try:
        array = np.asarray(value)
        if array.dtype == object:
            raise TypeError("object array")
        array = array.astype(dtype)
    except (TypeError, ValueError) as err:
        raise SequenceFileError(f"{path}: key {key!r} is not a numeric array ({err})") from None
    wanted = "(" + ", ".join("N" if d is None else str(d) for d in shape) + ")"
    if array.ndim != len(shape) or any(d is not None and d != n for d, n in zip(shape, array.shape, strict=True)):
        raise SequenceFileError(f"{path}: key {key!r} has shape {array.shape}, expected {wanted}")
    return array


def read_sequence_file(path: str | Path) -> ThreeDPWSequence:
    """The checked content of a 3DPW sequence pickle (module docstring).

    Raises FileNotFoundError, PickleReadError (truncated / corrupt), UnsafePickleError (a global outside the
    allow-list) or SequenceFileError (missing key, wrong shape, counts that disagree), each naming the file.
    """
    path = Path(path)
    data = load_restricted_pickle(path, encoding="latin1", torch_tensors=False, what="3DPW sequence file")
    if not isinstance(data, dict):
        raise PickleReadError(f"{path}: expected a dict, got {type(data).__name__}")
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise SequenceFileError(f"{path}: missing key(s) {missing} (has {sorted(map(str, data))})")
    for key in PER_ACTOR_KEYS:
        if not isinstance(data[key], list | tuple):
            raise SequenceFileError(
                f"{path}: key {key!r} should hold one entry per actor, got {type(data[key]).__name__}"
            )
    actors = len(data["poses"])
    if actors == 0:
        raise SequenceFileError(f"{path}: key 'poses' holds no actor")
    for key in PER_ACTOR_KEYS:
        if len(data[key]) != actors:
            raise SequenceFileError(
                f"{path}: actor counts disagree: 'poses' has {actors} actors, {key!r} has {len(data[key])}"
            )
    frame_ids = _array(data["img_frame_ids"], path, "img_frame_ids", (None,), np.int64)
    n = len(frame_ids)
    counts = {"img_frame_ids": n, "cam_poses": len(np.asarray(data["cam_poses"]))}
    for key in ("poses", "trans", "jointPositions", "poses2d", "campose_valid"):
        for a, value in enumerate(data[key]):
            counts[f"{key}[{a}]"] = len(np.asarray(value))
    wrong = {k: v for k, v in counts.items() if v != n}
    if wrong:
        listed = ", ".join(f"{k} {v}" for k, v in wrong.items())
        raise SequenceFileError(
            f"{path}: frame counts disagree: 'img_frame_ids' has {n} frames, but {listed} (one entry per image frame)"
        )
    poses = np.stack([_array(p, path, f"poses[{a}]", (n, 72)) for a, p in enumerate(data["poses"])])
    joints = np.stack([_array(j, path, f"jointPositions[{a}]", (n, 72)) for a, j in enumerate(data["jointPositions"])])
    betas = []
    for a, b in enumerate(data["betas"]):
        b = _array(b, path, f"betas[{a}]", (None,)) if np.ndim(b) == 1 else _array(b, path, f"betas[{a}]", (1, None))
        if b.size < 10:
            raise SequenceFileError(f"{path}: key 'betas[{a}]' holds {b.size} coefficients, expected >= 10")
        betas.append(b.reshape(-1)[:10])
    keypoints = np.stack(
        [_array(k, path, f"poses2d[{a}]", (n, 3, 18)).transpose(0, 2, 1) for a, k in enumerate(data["poses2d"])]
    )
    genders = []
    for a, g in enumerate(data["genders"]):
        g = g.decode("latin1") if isinstance(g, bytes) else str(g)
        if g.lower() not in GENDERS:
            raise SequenceFileError(f"{path}: key 'genders[{a}]' is {g!r}, expected 'm' or 'f'")
        genders.append(GENDERS[g.lower()])
    name = data["sequence"]
    if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
        raise SequenceFileError(f"{path}: key 'sequence' is {name!r}, expected the sequence (folder) name")
    sequence = ThreeDPWSequence(
        path=path,
        name=name,
        poses=poses.reshape(actors, n, 24, 3),
        trans=np.stack([_array(t, path, f"trans[{a}]", (n, 3)) for a, t in enumerate(data["trans"])]),
        betas=np.stack(betas),
        joints=joints.reshape(actors, n, 24, 3),
        keypoints_2d=keypoints,
        valid=np.stack(
            [_array(v, path, f"campose_valid[{a}]", (n,), bool) for a, v in enumerate(data["campose_valid"])]
        ),
        genders=genders,
        cam_poses=_array(data["cam_poses"], path, "cam_poses", (n, 4, 4), np.float64),
        intrinsics=_array(data["cam_intrinsics"], path, "cam_intrinsics", (3, 3), np.float64),
        frame_ids=frame_ids,
    )
    valid, any_valid = sequence.valid, sequence.valid.any(axis=0)  # invalid frames are skipped, not checked
    checked = (
        ("poses", sequence.poses[valid]),
        ("trans", sequence.trans[valid]),
        ("jointPositions", sequence.joints[valid]),
        ("cam_poses", sequence.cam_poses[any_valid]),
    )
    for key, value in checked:
        if not np.isfinite(value).all():
            raise SequenceFileError(f"{path}: key {key!r} holds NaN or infinite values in frames marked valid")
    return sequence
