"""A small 3DPW release made by our own code, in the layout and file formats of the public one.

`write_threedpw_release(root)` writes `root/sequenceFiles/{train,validation,test}/<sequence>.pkl` and
`root/imageFiles/<sequence>/image_{frame:05d}.jpg`:

- motions: smooth synthetic sequences (`sample_sequences`), one or two actors per sequence, walking slowly
  in a y-up world; SMPL `poses` (N, 72) are our 22 body joints plus two zero hand joints, `jointPositions`
  (N, 72) the 22 skeleton joints plus the two fingertip end points as the SMPL hand joints;
- a camera per sequence looking at the actors from a random direction (OpenCV extrinsics `cam_poses`,
  intrinsics `cam_intrinsics`), portrait frames like 3DPW's (smaller);
- `poses2d`: the projected joints in COCO-18 order (nose and eyes / ears from the head end point), confidence
  0.8 inside the image and 0 (with zero coordinates) outside, shape (N, 3, 18) as the release;
- `campose_valid`: True except the last frame of the first actor of the first sequence;
- images: a stick figure per actor on a noisy background (what matters is where the person is);
- the pickles are written as Python 2 wrote them (`dump_python2_pickle`): `str` as byte strings (so they
  need `encoding="latin1"`), `numpy.core.multiarray` names, protocol 2.
"""

from __future__ import annotations

import math
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from poseembroider.atomic_io import atomic_file
from poseembroider.rendering.contact_sheet import save_image

__all__ = ["ThreeDPWReleaseFixture", "dump_python2_pickle", "write_threedpw_release"]

COCO18_FROM_POINTS = (22, 12, 17, 19, 21, 16, 18, 20, 2, 5, 8, 1, 4, 7, 22, 22, 22, 22)
"""Skeleton point (22 body joints, then end points: 22 = head end) of each COCO-18 keypoint: nose, neck,
right shoulder / elbow / wrist, left shoulder / elbow / wrist, right hip / knee / ankle, left hip / knee /
ankle, right eye, left eye, right ear, left ear."""
_FACE_OFFSETS = {14: (-0.03, 0.03), 15: (0.03, 0.03), 16: (-0.08, 0.0), 17: (0.08, 0.0)}  # (x, y) metres
_BONES = ((0, 1), (0, 2), (0, 3), (1, 4), (2, 5), (4, 7), (5, 8), (3, 6), (6, 9), (9, 12), (12, 15),
          (9, 13), (9, 14), (13, 16), (14, 17), (16, 18), (17, 19), (18, 20), (19, 21))  # fmt: skip


class _Python2Pickler(pickle._Pickler):
    """Protocol-2 pickles as Python 2 wrote them: `str` / `bytes` as byte strings, numpy under `numpy.core`."""

    dispatch = dict(pickle._Pickler.dispatch)

    def _save_byte_string(self, obj: str | bytes) -> None:
        data = obj.encode("latin1") if isinstance(obj, str) else bytes(obj)
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[str] = _save_byte_string
    dispatch[bytes] = _save_byte_string

    def save_global(self, obj: Any, name: str | None = None) -> None:
        module = obj.__module__.replace("numpy._core", "numpy.core")
        module = "__builtin__" if module == "builtins" else module
        self.write(pickle.GLOBAL + f"{module}\n{name or obj.__qualname__}\n".encode("ascii"))
        self.memoize(obj)


def dump_python2_pickle(obj: Any, path: Path) -> Path:
    """Write `obj` (dicts, lists, str, numpy arrays) as a Python-2 era pickle, atomically."""
    with atomic_file(path) as tmp, tmp.open("wb") as f:
        _Python2Pickler(f, protocol=2).dump(obj)
    return Path(path)


@dataclass(frozen=True)
class ThreeDPWReleaseFixture:
    root: Path
    sequences: dict[str, list[str]]  # release split folder -> sequence names
    person_frames: dict[str, int]  # release split folder -> actors x frames
    invalid: dict[str, int]  # release split folder -> person-frames with campose_valid False


def _look_at(center: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(4, 4) world -> camera (OpenCV: x right, y down, z forward) for a camera at `center` looking at `target`
    in a y-up world."""
    forward = (target - center) / np.linalg.norm(target - center)
    right = np.cross(np.array([0.0, -1.0, 0.0]), forward)
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    extrinsics = np.eye(4)
    extrinsics[:3, :3] = np.stack([right, down, forward])
    extrinsics[:3, 3] = -extrinsics[:3, :3] @ center
    return extrinsics


def _frame_image(points_2d: np.ndarray, hw: tuple[int, int], rng: np.random.Generator) -> Image.Image:
    """Stick figures of (A, 27, 2) projected skeleton points on a noisy background."""
    background = rng.integers(60, 140, size=(hw[0], hw[1], 3), dtype=np.uint8)
    image = Image.fromarray(background)
    draw = ImageDraw.Draw(image)
    for actor, points in enumerate(points_2d):
        colour = ((230, 80, 60), (60, 120, 230))[actor % 2]
        for i, j in _BONES:
            draw.line([tuple(points[i]), tuple(points[j])], fill=colour, width=3)
        x, y = points[22]
        draw.ellipse([x - 6, y - 6, x + 6, y + 6], outline=colour, width=3)
    return image


def write_threedpw_release(
    root: Path,
    *,
    sequences: dict[str, int] | None = None,
    frames: int = 6,
    image_hw: tuple[int, int] = (256, 144),
    seed: int = 0,
    body_model=None,
    jpeg_quality: int = 85,
) -> ThreeDPWReleaseFixture:
    """Write the release of the module docstring under `root`; `sequences`: release split folder -> count
    (default: test 2, validation 1, train 1). Sequence k has 1 actor when k is odd, 2 otherwise."""
    from poseembroider.body.body_model import BodyModel
    from poseembroider.datasets.synthetic.sequences import sample_sequences
    from poseembroider.datasets.synthetic.skeleton import BodySkeleton

    sequences = sequences if sequences is not None else {"test": 2, "validation": 1, "train": 1}
    body_model = body_model if body_model is not None else BodyModel().eval()
    skeleton = BodySkeleton(body_model)
    rng = np.random.default_rng(seed)
    height, width = image_hw
    focal = 1.3 * height
    intrinsics = np.array([[focal, 0.0, width / 2], [0.0, focal, height / 2], [0.0, 0.0, 1.0]])
    names: dict[str, list[str]] = {}
    person_frames: dict[str, int] = {}
    invalid: dict[str, int] = {}
    k = 0
    for split, count in sequences.items():
        names[split], person_frames[split], invalid[split] = [], 0, 0
        for _ in range(count):
            actors = 1 if k % 2 else 2
            batch = sample_sequences(actors, frames, 30.0, seed * 1000 + k, body_model=body_model)
            poses = batch.poses.double()  # (A, N, 22, 3) y-up world
            walk = np.linspace(0.0, 0.5, frames)  # half a metre whatever the length: actors stay in view
            trans = np.zeros((actors, frames, 3))
            trans[:, :, 0] = (np.arange(actors)[:, None] - (actors - 1) / 2) * 0.9 + walk[None]
            points = skeleton(poses.reshape(-1, 22, 3).float(), batch.betas.repeat_interleave(frames, 0)).points
            points = points.double().numpy().reshape(actors, frames, -1, 3) + trans[:, :, None]
            joints24 = np.concatenate([points[:, :, :22], points[:, :, 23:25]], axis=2)
            target = points[:, 0, :22].mean(axis=(0, 1))
            angle = rng.uniform(-0.6, 0.6)
            center = target + np.array([3.6 * math.sin(angle), 0.3, 3.6 * math.cos(angle)])
            extrinsics = np.repeat(_look_at(center, target)[None], frames, axis=0)
            cam = np.einsum("ij,anpj->anpi", extrinsics[0, :3, :3], points) + extrinsics[0, :3, 3]
            uv = np.stack(
                [focal * cam[..., 0] / cam[..., 2] + width / 2, focal * cam[..., 1] / cam[..., 2] + height / 2], -1
            )
            coco = uv[:, :, list(COCO18_FROM_POINTS)].copy()
            for index, (dx, dy) in _FACE_OFFSETS.items():  # eyes and ears around the head, in pixels
                coco[:, :, index] += np.array([dx, -dy]) * focal / cam[:, :, 22, 2:3]
            inside = (coco[..., 0] >= 0) & (coco[..., 0] < width) & (coco[..., 1] >= 0) & (coco[..., 1] < height)
            keypoints = np.concatenate([np.where(inside[..., None], coco, 0.0), 0.8 * inside[..., None]], -1)
            valid = np.ones((actors, frames), bool)
            if k == 0:
                valid[0, -1] = False
            smpl = np.zeros((actors, frames, 24, 3))
            smpl[:, :, :22] = poses.numpy()
            name = f"fixture_{split}_{k:02d}"
            data = {
                "sequence": name,
                "betas": [batch.betas[a].double().numpy() for a in range(actors)],
                "poses": [smpl[a].reshape(frames, 72) for a in range(actors)],
                "trans": [trans[a] for a in range(actors)],
                "genders": ["m" if a % 2 == 0 else "f" for a in range(actors)],
                "jointPositions": [joints24[a].reshape(frames, 72) for a in range(actors)],
                "poses2d": [keypoints[a].transpose(0, 2, 1) for a in range(actors)],
                "campose_valid": [valid[a] for a in range(actors)],
                "cam_poses": extrinsics,
                "cam_intrinsics": intrinsics,
                "img_frame_ids": np.arange(frames),
                "texture_maps": ["texture.jpg"] * actors,
            }
            dump_python2_pickle(data, Path(root) / "sequenceFiles" / split / f"{name}.pkl")
            for frame in range(frames):
                image = _frame_image(uv[:, frame], image_hw, rng)
                path = Path(root) / "imageFiles" / name / f"image_{frame:05d}.jpg"
                save_image(np.asarray(image), path, quality=jpeg_quality)
            names[split].append(name)
            person_frames[split] += actors * frames
            invalid[split] += int((~valid).sum())
            k += 1
    return ThreeDPWReleaseFixture(Path(root), names, person_frames, invalid)
