"""3DPW release -> processed caches of `threedpw-sf<scale>`: the parser the original never released.

Per sequence file (`sequences.read_sequence_file`), per image frame and actor (a "person-frame"), all in
batched array code:

1. frames whose camera pose is not aligned with the image (`campose_valid` False) are skipped (counted);
2. the 24 SMPL joints are moved into the camera frame (`cam_poses`) and projected with `cam_intrinsics`;
   `joints_2d` (24, 2) and `joints_in_frame` (24,) are stored, `full_human_visibility` = the 22 body joints
   all in the frame (in front of the camera, inside the image);
3. the crop: the tight box of the 2D keypoints (`box_keypoints`: the projected joints inside the image, the
   confident detections of `poses2d`, or both, the default), enlarged by the scale factor of the dataset name
   (`image_processing.scale_bbox`: each side by (sf - 1) x diagonal / 2) and clipped to the image. The
   version names the crop actually made (`sf13` = 1.3; the original called its 1.3 crop `sf1`);
4. the pose: SMPL -> SMPL-X 22-joint body pose by joint name (the first 22 SMPL joints are the SMPL-X body
   joints, same names and order; no fit: the rest skeletons differ by a few degrees, whereas the original
   used SMPLer-X's fitted SMPL-X parameters). The global orientation in the camera frame, R_cam =
   R_extrinsics @ R_world, is normalised as the original does: composed with (-pi/2, 0, 0) (y-down camera
   -> z-up AMASS frame), then its z Euler angle zeroed; N (`heading_rotation`) is kept;
5. `camera_transformation`: cam_rot with R(cam_rot) @ R(y-up version of the stored orientation) = R_cam (the
   format's convention, so `base_dataset` turns it into the rotation from the stored pose to the camera
   view), and the pelvis position in the camera frame (m);
6. extra tables for the standard mesh-recovery protocol: `smpl_poses` (24, 3) (global orientation as stored,
   SMPL hand joints kept), `genders`, `sequence_info` {sequence, frame_index, actor}. Shapes are the SMPL
   betas (10): an approximation of SMPL-X betas (the standard protocol builds gendered SMPL meshes from them).

Data ids run over (sequence file in name order, frame, actor). Every image is checked to exist (a missing one
is an error naming it); the image size is read once per sequence (all frames of a sequence share it).
Splits: train, val, test from the release folders train, validation, test. Outputs (all or nothing per
split): `threedpw_version_<version>_split_<split>_{images,poses}.pt` in the cache folder.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from poseembroider import config
from poseembroider.datasets.cache_writers import CacheDestination, images_cache, poses_cache, write_caches
from poseembroider.datasets.process_threedpw.sequences import ThreeDPWSequence, read_sequence_file
from poseembroider.datasets.threedpw import THREEDPW_SPLITS
from poseembroider.geometry import (
    axis_angle_to_matrix,
    axis_rotation_matrix,
    matrix_to_axis_angle,
    normalize_global_orient_amass,
)

__all__ = [
    "BOX_KEYPOINTS",
    "ReleaseLayoutError",
    "ThreeDPWConfig",
    "find_release_folders",
    "process_sequence",
    "process_threedpw",
    "version_of_scale_factor",
]

BOX_KEYPOINTS = ("both", "projected", "detected")
NUM_BODY = 22
GENERATOR = "poseembroider data process-3dpw"


class ReleaseLayoutError(FileNotFoundError):
    """The release folder lacks `sequenceFiles/<split>` or `imageFiles` (named in the message)."""


def version_of_scale_factor(scale_factor: float) -> str:
    """1.3 -> 'sf13', 1.0 -> 'sf1', 1.25 -> 'sf125' (the digits of the factor, as the BEDLAM names)."""
    if not (math.isfinite(scale_factor) and 1.0 <= scale_factor < 10.0):
        raise ValueError(f"--scale-factor {scale_factor}: expected a number in [1, 10)")
    digits = f"{scale_factor:.3f}".rstrip("0").rstrip(".").replace(".", "")
    return f"sf{digits}"


@dataclass(frozen=True)
class ThreeDPWConfig:
    """What `poseembroider data process-3dpw` makes (module docstring).

    Args:
        root: the release folder (holding `sequenceFiles/` and `imageFiles/`).
        splits: our split names among train, val, test.
        scale_factor: crop = tight 2D-keypoint box enlarged by this factor (named in the version).
        box_keypoints: which 2D keypoints make the tight box: 'both', 'projected' or 'detected'.
        min_detection_confidence: detections at or below this confidence are ignored.
        cache_dir: where the caches go (default DATA_CACHE_DIR).
    """

    root: Path
    splits: tuple[str, ...] = tuple(THREEDPW_SPLITS)
    scale_factor: float = 1.3
    box_keypoints: str = "both"
    min_detection_confidence: float = 0.0
    cache_dir: Path | None = None
    progress: bool = False

    def __post_init__(self) -> None:
        unknown = [s for s in self.splits if s not in THREEDPW_SPLITS]
        if unknown:
            raise ValueError(f"unknown split(s) {unknown}: 3DPW splits are {', '.join(THREEDPW_SPLITS)}")
        if self.box_keypoints not in BOX_KEYPOINTS:
            raise ValueError(f"--box-keypoints {self.box_keypoints!r}: use one of {BOX_KEYPOINTS}")
        version_of_scale_factor(self.scale_factor)
        if self.cache_dir is None:
            object.__setattr__(self, "cache_dir", Path(config.DATA_CACHE_DIR))

    @property
    def version(self) -> str:
        return version_of_scale_factor(self.scale_factor)

    @property
    def dataset_name(self) -> str:
        return f"threedpw-{self.version}"

    def criteria(self, split: str) -> dict[str, Any]:
        return {
            "generator": GENERATOR,
            "scale_factor": self.scale_factor,
            "box_keypoints": self.box_keypoints,
            "min_detection_confidence": self.min_detection_confidence,
            "release_split": THREEDPW_SPLITS[split],
            "pose_conversion": "SMPL joints 0-21 used as the SMPL-X body joints (same names and order; no fit)",
            "pose_frame": "camera-frame orientation composed with (-pi/2, 0, 0), z Euler angle zeroed",
            "shapes": "SMPL betas (10)",
            "transl": "pelvis position in the camera frame (m)",
        }


def _nested(root: Path, name: str) -> Path:
    """`root/name`, or `root/name/name` when the zip was extracted into a folder of its own name."""
    inner = root / name / name
    return inner if inner.is_dir() else root / name


def find_release_folders(root: Path, split: str) -> tuple[Path, Path]:
    """(folder of the split's sequence pickles, image folder) of the release in `root`."""
    root = Path(root)
    sequences = _nested(root, "sequenceFiles") / THREEDPW_SPLITS[split]
    images = _nested(root, "imageFiles")
    if not sequences.is_dir():
        raise ReleaseLayoutError(
            f"3DPW {split} sequences not found: {sequences} (expected <root>/sequenceFiles/"
            f"{THREEDPW_SPLITS[split]}/*.pkl under --threedpw-root {root})"
        )
    if not images.is_dir():
        raise ReleaseLayoutError(f"3DPW images not found: {images} (expected <root>/imageFiles/<sequence>/)")
    return sequences, images


def _image_hw(path: Path) -> tuple[int, int]:
    try:
        with Image.open(path) as image:  # header only
            return image.height, image.width
    except FileNotFoundError:
        raise FileNotFoundError(f"3DPW image not found: {path}") from None
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"3DPW image cannot be read: {path} ({err})") from None


def _camera_joints(seq: ThreeDPWSequence) -> tuple[np.ndarray, np.ndarray]:
    """(A, N, 24, 3) joints in the camera frame and (A, N, 24, 2) their pixel projections."""
    rotation, translation = seq.cam_poses[:, :3, :3], seq.cam_poses[:, :3, 3]
    cam = np.einsum("nij,ankj->anki", rotation, seq.joints.astype(np.float64)) + translation[None, :, None, :]
    k = seq.intrinsics
    z = np.where(cam[..., 2:3] > 1e-6, cam[..., 2:3], np.nan)
    uv = np.concatenate([k[0, 0] * cam[..., :1] / z + k[0, 2], k[1, 1] * cam[..., 1:2] / z + k[1, 2]], axis=-1)
    return cam, uv


def _tight_boxes(
    uv: np.ndarray, in_frame: np.ndarray, detected: np.ndarray, mode: str, min_conf: float, hw: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """(M, 4) tight boxes [x1, y1, x2, y2] of the chosen keypoints of M person-frames and (M,) whether any."""
    use_projected = in_frame if mode in ("both", "projected") else np.zeros_like(in_frame)
    points = [np.where(use_projected[..., None], uv, np.nan)]
    if mode in ("both", "detected"):
        confident = detected[..., 2] > min_conf
        xy = np.clip(detected[..., :2], 0, [hw[1] - 1, hw[0] - 1])
        points.append(np.where(confident[..., None], xy, np.nan))
    pts = np.concatenate(points, axis=1)
    has = np.isfinite(pts[..., 0]).any(axis=1)
    with np.errstate(all="ignore"):
        lo = np.nanmin(np.where(has[:, None, None], pts, 0.0), axis=1)
        hi = np.nanmax(np.where(has[:, None, None], pts, 0.0), axis=1)
    return np.concatenate([lo, hi], axis=1), has


def _scaled_boxes(tight: np.ndarray, scale_factor: float, hw: tuple[int, int]) -> np.ndarray:
    """`image_processing.scale_bbox` for (M, 4) boxes at once: sides out by (sf - 1) x diagonal / 2, truncated
    to integers, clipped to the (H, W) image."""
    offset = (scale_factor - 1.0) * np.hypot(tight[:, 2] - tight[:, 0], tight[:, 3] - tight[:, 1]) / 2.0
    boxes = np.stack(
        [tight[:, 0] - offset, tight[:, 1] - offset, tight[:, 2] + offset, tight[:, 3] + offset], axis=1
    ).astype(np.int64)  # truncation toward zero, as int() in scale_bbox
    boxes[:, 0] = np.maximum(boxes[:, 0], 0)
    boxes[:, 1] = np.maximum(boxes[:, 1], 0)
    boxes[:, 2] = np.minimum(boxes[:, 2], hw[1])
    boxes[:, 3] = np.minimum(boxes[:, 3], hw[0])
    return boxes


def _normalised_orientations(seq: ThreeDPWSequence) -> dict[str, torch.Tensor]:
    """Camera-frame orientation, normalised orientation, N and the stored cam_rot of every person-frame."""
    world = axis_angle_to_matrix(torch.from_numpy(seq.poses[:, :, 0]).double())  # (A, N, 3, 3)
    r_cam = torch.from_numpy(seq.cam_poses[:, :3, :3])[None] @ world
    fix = axis_rotation_matrix(torch.tensor(-math.pi / 2, dtype=torch.float64), "x")
    z_up = matrix_to_axis_angle(fix @ r_cam)
    normalised, heading = normalize_global_orient_amass(z_up)
    r_norm = axis_angle_to_matrix(normalised)
    # R(cam_rot) @ R(y-up version of the stored orientation) = R_cam, the y-up version being Rx(-pi/2) @ R_norm
    cam_rot = matrix_to_axis_angle(r_cam @ r_norm.transpose(-1, -2) @ fix.T)
    return {"normalised": normalised, "heading": matrix_to_axis_angle(heading), "cam_rot": cam_rot}


def process_sequence(seq: ThreeDPWSequence, image_dir: Path, cfg: ThreeDPWConfig) -> dict[str, Any]:
    """Records of the kept person-frames of one sequence (frame-major, then actor), and skip counts.

    Returns {'records': {table: list per kept person-frame}, 'skipped': {reason: count}, 'person_frames': A*N}.
    """
    a, n = seq.num_actors, seq.num_frames
    folder = image_dir / seq.name
    for frame_id in seq.frame_ids:
        path = folder / f"image_{int(frame_id):05d}.jpg"
        if not path.is_file():
            raise FileNotFoundError(f"3DPW image not found: {path} (frame {int(frame_id)} of {seq.path.name})")
    hw = _image_hw(folder / f"image_{int(seq.frame_ids[0]):05d}.jpg")
    cam, uv = _camera_joints(seq)
    in_frame = (
        np.isfinite(uv).all(-1) & (uv[..., 0] >= 0) & (uv[..., 0] < hw[1]) & (uv[..., 1] >= 0) & (uv[..., 1] < hw[0])
    )
    # frame-major order (image, then its people), as the original's data ids
    order = lambda x: np.swapaxes(x, 0, 1).reshape(a * n, *x.shape[2:])  # noqa: E731
    flat_uv, flat_in = order(uv), order(in_frame)
    tight, has_points = _tight_boxes(
        flat_uv, flat_in, order(seq.keypoints_2d), cfg.box_keypoints, cfg.min_detection_confidence, hw
    )
    boxes = _scaled_boxes(np.where(has_points[:, None], tight, 0.0), cfg.scale_factor, hw)
    non_empty = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    valid = order(seq.valid)
    keep = valid & has_points & non_empty
    skipped = {
        "invalid_camera_pose": int((~valid).sum()),
        "no_keypoint_in_image": int((valid & ~has_points).sum()),
        "empty_crop": int((valid & has_points & ~non_empty).sum()),
    }
    orient = {k: order(v.numpy()) for k, v in _normalised_orientations(seq).items()}
    body = order(seq.poses)  # (M, 24, 3)
    smpl = body.copy()
    smpl[:, 0] = orient["normalised"]
    frame_of = np.repeat(seq.frame_ids, a)
    actor_of = np.tile(np.arange(a), n)
    rows = np.flatnonzero(keep)
    records: dict[str, list] = {
        "images": [seq.image_path(frame_of[i]) for i in rows],
        "bboxes": boxes[rows].tolist(),
        "frame_bboxes": tight[rows].tolist(),
        "full_human_visibility": flat_in[rows, :NUM_BODY].all(axis=1).tolist(),
        "joints_in_frame": list(torch.from_numpy(flat_in[rows])),
        "joints_2d": list(torch.from_numpy(np.nan_to_num(flat_uv[rows], nan=-1.0)).float()),
        "camera_transformation": [
            (torch.from_numpy(orient["cam_rot"][i]).float(), torch.from_numpy(order(cam)[i, 0]).float()) for i in rows
        ],
        "poses": list(torch.from_numpy(smpl[rows, :NUM_BODY]).float()),
        "smpl_poses": list(torch.from_numpy(smpl[rows]).float()),
        "heading_rotation": list(torch.from_numpy(orient["heading"][rows]).float()),
        "shapes": [torch.from_numpy(seq.betas[actor_of[i]]) for i in rows],
        "genders": [seq.genders[actor_of[i]] for i in rows],
        "sequence_info": [
            {"sequence": seq.name, "frame_index": int(frame_of[i]), "actor": int(actor_of[i])} for i in rows
        ],
    }
    return {"records": records, "skipped": skipped, "person_frames": a * n}


_IMAGE_TABLES = ("images", "bboxes", "full_human_visibility", "camera_transformation", "joints_2d",
                 "joints_in_frame", "frame_bboxes")  # fmt: skip
_POSE_TABLES = ("poses", "shapes", "heading_rotation", "smpl_poses", "genders", "sequence_info")


def process_split(cfg: ThreeDPWConfig, split: str) -> dict[str, Any]:
    """Parse every sequence file of `split` and write its caches; returns counts and timings."""
    from tqdm import tqdm

    sequence_dir, image_dir = find_release_folders(cfg.root, split)
    files = sorted(sequence_dir.glob("*.pkl"))
    if not files:
        raise ReleaseLayoutError(f"no sequence file (*.pkl) in {sequence_dir}")
    start = time.perf_counter()
    records: dict[str, list] = {k: [] for k in (*_IMAGE_TABLES, *_POSE_TABLES)}
    skipped: dict[str, int] = {}
    person_frames = 0
    for path in tqdm(files, desc=f"3DPW {split}", unit="sequence", disable=not cfg.progress):
        out = process_sequence(read_sequence_file(path), image_dir, cfg)
        person_frames += out["person_frames"]
        for key, values in out["records"].items():
            records[key] += values
        for key, count in out["skipped"].items():
            skipped[key] = skipped.get(key, 0) + count
    parsed = time.perf_counter() - start
    ids = range(len(records["images"]))
    criteria = {**cfg.criteria(split), **{f"skipped_{k}": v for k, v in skipped.items()}}
    caches = [
        images_cache(criteria, **{k: dict(zip(ids, records[k], strict=True)) for k in _IMAGE_TABLES}),
        poses_cache(criteria, **{k: dict(zip(ids, records[k], strict=True)) for k in _POSE_TABLES}),
    ]
    paths = write_caches(CacheDestination(Path(cfg.cache_dir), "threedpw", cfg.version, split), caches)
    total = time.perf_counter() - start
    return {
        "dataset": cfg.dataset_name,
        "split": split,
        "sequences": len(files),
        "person_frames": person_frames,
        "kept": len(ids),
        "skipped": skipped,
        "seconds": {"parse": round(parsed, 3), "total": round(total, 3)},
        "person_frames_per_s": round(person_frames / max(total, 1e-9), 1),
        "caches": [str(p) for p in paths],
    }


def process_threedpw(cfg: ThreeDPWConfig) -> dict[str, Any]:
    """`process_split` for every split of `cfg` whose folder exists (an asked split without one: an error).

    Also says whether the image folder is the one the datasets read (`THREEDPW_IMG_DIR`)."""
    image_dir = _nested(Path(cfg.root), "imageFiles")
    splits = {split: process_split(cfg, split) for split in cfg.splits}
    configured = Path(config.THREEDPW_IMG_DIR)
    same = configured.resolve() == image_dir.resolve() if configured.exists() else False
    return {
        "dataset": cfg.dataset_name,
        "splits": splits,
        "image_dir": str(image_dir),
        "image_dir_configured": same,
        "hint": None
        if same
        else f"the datasets read images from THREEDPW_IMG_DIR={configured}: set "
        f"{config.ENV_PREFIX}THREEDPW_IMG_DIR={image_dir}",
    }
