"""Person crops as the original BEDLAM pipeline cuts them, and the per-sample facts it records.

Coordinates: full-frame pixel coordinates of `poseembroider.rendering.Camera` (u = column, v = row,
pixel centres at integers, the frame spans [-0.5, W - 0.5] x [-0.5, H - 0.5]). Bounding boxes
[x1, y1, x2, y2] returned by `scale_bbox` are integer *PIL crop boxes*: the crop holds pixel
columns x1 .. x2 - 1 and rows y1 .. y2 - 1, i.e. `frame[y1:y2, x1:x2]`.

The rules (original_system.md 4.1 and 4.4, `process_bedlam_step3.py`, `base_dataset.py`):

1. tight bbox: min/max of the projected body vertices that fall inside the frame;
2. scaled bbox (`sf11`): every side moves out by offset = (sf - 1) * diagonal / 2, the corners are
   truncated with `int()` and clipped to [0, W] x [0, H];
3. padding to 4:3 (H:W) (`PaddResize_smplerx`): for a w x h crop and an (H, W) = (256, 192) output,
   if W / w < H / h (the crop is wider than 3:4) pad top and bottom by int(|w / W * H - h| / 2) zeros
   each, else pad left and right by int(|h / H * W - w| / 2);
4. bicubic (antialiased) resize of the padded crop to 256 x 192.

`CropWindow` turns the same rule into a camera: the padded window of the frame, seen through
intrinsics with a shifted principal point, renders directly to 256 x 192 (what `crop_and_resize`
would cut from a full-resolution render, without rendering the frame).

Selection criteria (`overlap30_res224_j16_sf11`): `res` = max side of the scaled bbox (kept when
> 224), `j16` = number of the 22 body joints projecting inside the frame (kept when >= 16), `overlap`
= fraction of the person's tight bbox covered by the tight bbox of something nearer to the camera
(another person in BEDLAM, an occluder here; kept when <= 0.3).

`cam_rot` (original_system.md 4.3, `bedlam.py::_get_normalized_camera_rotation`): the rotation with
`R_cam = cam_rot @ R_norm`, where R_cam is the body's root orientation in the OpenCV camera frame
(x right, y down, z forward) and R_norm the hip-normalised global orientation (heading removed about
the vertical y axis, `normalize_global_orient_bedlam`). With R_norm = N @ R_world it equals
`W2C_cv @ N^T` (W2C_cv: world-to-camera rotation in the OpenCV convention).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from scipy.spatial.transform import Rotation

from poseembroider.datasets.image_processing import scale_bbox
from poseembroider.geometry.pose_normalization import normalize_global_orient_bedlam
from poseembroider.geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from poseembroider.rendering.camera import Camera

__all__ = [
    "CROP_HW",
    "OPENGL_TO_OPENCV",
    "CropWindow",
    "SelectionCriteria",
    "apply_camera_rotation",
    "bbox_overlap",
    "camera_rotation",
    "crop_and_resize",
    "crop_window",
    "joints_in_frame",
    "padding_to_aspect",
    "points_in_frame",
    "scale_bbox",
    "tight_bbox",
]

CROP_HW: tuple[int, int] = (256, 192)
"""(height, width) of the person crops the image encoder reads."""

OPENGL_TO_OPENCV = np.diag([1.0, -1.0, -1.0])
"""Camera-frame change OpenGL (x right, y up, looking down -z) -> OpenCV (x right, y down, z forward)."""


@dataclass(frozen=True)
class SelectionCriteria:
    """Human-selection thresholds of the original step 3 (the dataset-name tokens)."""

    overlap_threshold: float = 0.3  # max fraction of the tight bbox covered by something nearer
    min_number_of_visible_joints: int = 16  # of the 22 body joints, projecting inside the frame
    resolution_threshold: int = 224  # max side of the scaled bbox must be larger (pixels)
    scale_factor: float = 1.1  # tight bbox -> crop margin (sf11)

    @property
    def name(self) -> str:
        """Dataset-name token, e.g. 'overlap30_res224_j16_sf11'."""
        sf = f"{self.scale_factor:.2f}".rstrip("0").replace(".", "")
        return (
            f"overlap{round(self.overlap_threshold * 100)}_res{self.resolution_threshold}"
            f"_j{self.min_number_of_visible_joints}_sf{sf}"
        )

    def as_dict(self) -> dict:
        """The `criteria` dict stored in the caches (the original's keys)."""
        return {
            "overlap_threshold": self.overlap_threshold,
            "min_number_of_visible_joints": self.min_number_of_visible_joints,
            "resolution_threshold": self.resolution_threshold,
            "scale_factor": self.scale_factor,
        }

    def evaluate(self, overlap: float, resolution: int, num_in_frame_joints: int) -> dict:
        """Criteria values and verdicts for one person: {overlap, resolution, visible_joints,
        passes_overlap, passes_resolution, passes_visible_joints, selected}."""
        verdicts = {
            "passes_overlap": bool(overlap <= self.overlap_threshold),
            "passes_resolution": bool(resolution > self.resolution_threshold),
            "passes_visible_joints": bool(num_in_frame_joints >= self.min_number_of_visible_joints),
        }
        return {
            "overlap": float(overlap),
            "resolution": int(resolution),
            "visible_joints": int(num_in_frame_joints),
            **verdicts,
            "selected": all(verdicts.values()),
        }


def _check_hw(frame_hw: Sequence[int], name: str = "frame_hw") -> tuple[int, int]:
    if len(frame_hw) != 2 or int(frame_hw[0]) <= 0 or int(frame_hw[1]) <= 0:
        raise ValueError(f"{name}: expected (height, width) positive integers, got {frame_hw!r}")
    return int(frame_hw[0]), int(frame_hw[1])


def points_in_frame(points_2d: np.ndarray, frame_hw: Sequence[int]) -> np.ndarray:
    """(..., 2) pixel coordinates -> (...) bool: inside the frame [-0.5, W - 0.5] x [-0.5, H - 0.5]."""
    height, width = _check_hw(frame_hw)
    uv = np.asarray(points_2d, dtype=np.float64)
    with np.errstate(invalid="ignore"):  # NaN (behind the camera) compares False
        return (uv[..., 0] >= -0.5) & (uv[..., 0] <= width - 0.5) & (uv[..., 1] >= -0.5) & (uv[..., 1] <= height - 0.5)


def joints_in_frame(joints_2d: np.ndarray, frame_hw: Sequence[int]) -> np.ndarray:
    """(..., 2) projected joints -> (...) bool, the original's visibility rule `0 < u < W and 0 < v < H`
    (strict, on pixel coordinates whose frame spans [0, W]: ours shifted by half a pixel)."""
    height, width = _check_hw(frame_hw)
    uv = np.asarray(joints_2d, dtype=np.float64) + 0.5
    with np.errstate(invalid="ignore"):
        return (uv[..., 0] > 0) & (uv[..., 0] < width) & (uv[..., 1] > 0) & (uv[..., 1] < height)


def tight_bbox(points_2d: np.ndarray, frame_hw: Sequence[int]) -> np.ndarray | None:
    """(4,) float [u_min, v_min, u_max, v_max] of the in-frame points of (N, 2), None if none is in frame."""
    uv = np.asarray(points_2d, dtype=np.float64).reshape(-1, 2)
    inside = points_in_frame(uv, frame_hw)
    if not inside.any():
        return None
    kept = uv[inside]
    return np.concatenate([kept.min(axis=0), kept.max(axis=0)])


def padding_to_aspect(width: int, height: int, out_hw: Sequence[int] = CROP_HW) -> tuple[int, int, int, int]:
    """Zero padding (left, top, right, bottom) of `PaddResize_smplerx` for a width x height crop.

    Symmetric and truncated with int(), as the original: the padded crop is 4:3 up to one pixel, and the
    resize absorbs the rest.
    """
    out_h, out_w = _check_hw(out_hw, "out_hw")
    if width <= 0 or height <= 0:
        raise ValueError(f"crop size must be positive, got {width} x {height}")
    if out_w / width < out_h / height:  # wider than the output aspect: pad top and bottom
        offset = int(abs(width / out_w * out_h - height) / 2)
        return (0, offset, 0, offset)
    offset = int(abs(height / out_h * out_w - width) / 2)
    return (offset, 0, offset, 0)


def bbox_overlap(this: Sequence[float], other: Sequence[float]) -> float:
    """Fraction of `this` box's area covered by `other` (the original `this_box_is_overlapped` value)."""
    x_a, y_a = max(this[0], other[0]), max(this[1], other[1])
    x_b, y_b = min(this[2], other[2]), min(this[3], other[3])
    inter = max(x_b - x_a, 0.0) * max(y_b - y_a, 0.0)
    area = abs((this[2] - this[0]) * (this[3] - this[1]))
    return float(inter / area) if inter > 0 and area > 0 else 0.0


@dataclass(frozen=True)
class CropWindow:
    """The padded crop window of a frame and its mapping to the output crop.

    Attributes:
        bbox: (x1, y1, x2, y2) int crop box in the frame (`scale_bbox`), PIL convention.
        padding: (left, top, right, bottom) zero padding in frame pixels (`padding_to_aspect`).
        frame_hw: (H, W) of the frame.
        out_hw: (H, W) of the output crop.
    """

    bbox: tuple[int, int, int, int]
    padding: tuple[int, int, int, int]
    frame_hw: tuple[int, int]
    out_hw: tuple[int, int] = CROP_HW

    @property
    def edges(self) -> tuple[float, float, float, float]:
        """(left, top, right, bottom) edges of the padded window in frame pixel coordinates."""
        x1, y1, x2, y2 = self.bbox
        left, top, right, bottom = self.padding
        return (x1 - left - 0.5, y1 - top - 0.5, x2 + right - 0.5, y2 + bottom - 0.5)

    @property
    def scale(self) -> tuple[float, float]:
        """(sx, sy) output pixels per frame pixel."""
        left, top, right, bottom = self.edges
        return self.out_hw[1] / (right - left), self.out_hw[0] / (bottom - top)

    def frame_to_crop(self, points_2d: np.ndarray) -> np.ndarray:
        """(..., 2) frame pixel coordinates -> output crop pixel coordinates (same conventions)."""
        left, top, _, _ = self.edges
        sx, sy = self.scale
        uv = np.asarray(points_2d, dtype=np.float64)
        return np.stack([(uv[..., 0] - left) * sx - 0.5, (uv[..., 1] - top) * sy - 0.5], axis=-1)

    def crop_to_frame(self, points_2d: np.ndarray) -> np.ndarray:
        """Inverse of `frame_to_crop`."""
        left, top, _, _ = self.edges
        sx, sy = self.scale
        uv = np.asarray(points_2d, dtype=np.float64)
        return np.stack([(uv[..., 0] + 0.5) / sx + left, (uv[..., 1] + 0.5) / sy + top], axis=-1)

    def camera(self, frame_camera: Camera, supersample: int = 1) -> Camera:
        """A camera rendering exactly this window at `supersample` x the output size.

        Same pose, focal lengths scaled and the principal point shifted: pixel (j, i) of its image is the
        point of the window that output pixel (j / s, i / s) covers, so averaging s x s blocks gives
        the crop at the output size.
        """
        if (frame_camera.height, frame_camera.width) != tuple(self.frame_hw):
            raise ValueError(
                f"frame camera is {frame_camera.width}x{frame_camera.height}, the window's frame is "
                f"{self.frame_hw[1]}x{self.frame_hw[0]} (W x H)"
            )
        left, top, _, _ = self.edges
        sx, sy = (s * supersample for s in self.scale)
        return Camera(
            width=self.out_hw[1] * supersample,
            height=self.out_hw[0] * supersample,
            fx=frame_camera.fx * sx,
            fy=frame_camera.fy * sy,
            cx=(frame_camera.cx - left) * sx - 0.5,
            cy=(frame_camera.cy - top) * sy - 0.5,
            pose=frame_camera.pose,
            znear=frame_camera.znear,
            zfar=frame_camera.zfar,
        )

    def content_weights(self) -> np.ndarray:
        """(H_out, W_out) float32 fraction of each output pixel covered by frame content (not padding)."""
        x1, y1, x2, y2 = self.bbox
        left, top, _, _ = self.padding
        sx, sy = self.scale

        def coverage(start: float, stop: float, n: int) -> np.ndarray:
            edges = np.arange(n, dtype=np.float64)
            return np.clip(np.minimum(edges + 1, stop) - np.maximum(edges, start), 0.0, 1.0)

        cols = coverage(left * sx, (left + x2 - x1) * sx, self.out_hw[1])
        rows = coverage(top * sy, (top + y2 - y1) * sy, self.out_hw[0])
        return np.outer(rows, cols).astype(np.float32)


def crop_window(
    tight: Sequence[float], frame_hw: Sequence[int], scale_factor: float = 1.1, out_hw: Sequence[int] = CROP_HW
) -> CropWindow:
    """The crop the original pipeline cuts around a tight bbox: scaled, clipped, padded to the output aspect."""
    frame = _check_hw(frame_hw)
    out = _check_hw(out_hw, "out_hw")
    bbox = scale_bbox(tight, scale_factor, frame)
    width, height = int(bbox[2] - bbox[0]), int(bbox[3] - bbox[1])
    if width <= 0 or height <= 0:
        raise ValueError(f"the scaled bbox {bbox.tolist()} is empty (tight bbox {list(tight)}, frame {frame})")
    return CropWindow(
        bbox=tuple(int(v) for v in bbox),  # type: ignore[arg-type]
        padding=padding_to_aspect(width, height, out),
        frame_hw=frame,
        out_hw=out,
    )


def crop_and_resize(frame: np.ndarray, bbox: Sequence[int], out_hw: Sequence[int] = CROP_HW) -> np.ndarray:
    """The original's image path on a full frame: PIL crop to `bbox`, zero-pad to the output aspect
    (`padding_to_aspect`), bicubic antialiased resize -> (H_out, W_out, 3) uint8.

    The reference that `CropWindow` renders reproduce; also the way to crop real frames.
    """
    out_h, out_w = _check_hw(out_hw, "out_hw")
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"frame: expected an (H, W, 3) uint8 image, got {frame.shape} {frame.dtype}")
    x1, y1, x2, y2 = (int(v) for v in bbox)
    crop = frame[max(y1, 0) : y2, max(x1, 0) : x2]
    if crop.size == 0:
        raise ValueError(f"bbox {list(bbox)} selects no pixel of a {frame.shape[1]}x{frame.shape[0]} frame")
    left, top, right, bottom = padding_to_aspect(crop.shape[1], crop.shape[0], (out_h, out_w))
    padded = np.pad(crop, ((top, bottom), (left, right), (0, 0)))
    return np.asarray(Image.fromarray(padded).resize((out_w, out_h), Image.BICUBIC))


def camera_rotation(
    global_orient: Sequence[float] | np.ndarray,
    camera_pose: np.ndarray,
    hip_vector: Sequence[float] | np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """`cam_rot` of a sample and the hip-normalised global orientation it applies to.

    Args:
        global_orient: (3,) axis-angle of the body in the world (y-up SMPL-X frame).
        camera_pose: (4, 4) OpenGL camera-to-world pose of the frame camera.
        hip_vector: (3,) right hip -> left hip in the world (joints[1] - joints[2]); None = the one
            implied by the global orientation.

    Returns:
        (cam_rot (3,), normalised global orientation (3,)), float64 axis-angles, with
        R(cam_rot) @ R(normalised) = R_cam, the root orientation in the OpenCV camera frame.
    """
    # one rotation: plain numpy (scipy) is several times faster than the batched torch path here
    rotation = Rotation.from_rotvec(np.asarray(global_orient, dtype=np.float64).reshape(3)).as_matrix()
    hip = rotation[:, 0] if hip_vector is None else np.asarray(hip_vector, dtype=np.float64).reshape(3)
    heading = np.arctan2(-hip[2], hip[0]) if np.hypot(hip[0], hip[2]) > 1e-6 * max(np.linalg.norm(hip), 1e-12) else None
    if heading is None:  # hip line vertical: use the torch reference implementation's fallback
        orient = torch.as_tensor(np.asarray(global_orient, dtype=np.float64)).reshape(3)
        normalized_t, normalizing_t = normalize_global_orient_bedlam(orient, torch.as_tensor(hip))
        normalizing, normalized = normalizing_t.numpy(), normalized_t.numpy()
    else:
        normalizing = Rotation.from_rotvec([0.0, -heading, 0.0]).as_matrix()  # R_y(-heading) turns the hips to +x
        normalized = Rotation.from_matrix(normalizing @ rotation).as_rotvec()
    world_to_camera = OPENGL_TO_OPENCV @ np.asarray(camera_pose, dtype=np.float64)[:3, :3].T
    cam_rot = Rotation.from_matrix(world_to_camera @ normalizing.T).as_rotvec()
    return cam_rot, normalized


def apply_camera_rotation(cam_rot: Sequence[float], normalized_orient: Sequence[float]) -> np.ndarray:
    """(3,) axis-angle of R(cam_rot) @ R(normalized_orient): the camera-view global orientation."""
    cam = axis_angle_to_matrix(torch.as_tensor(np.asarray(cam_rot, dtype=np.float64)))
    norm = axis_angle_to_matrix(torch.as_tensor(np.asarray(normalized_orient, dtype=np.float64)))
    return matrix_to_axis_angle(cam @ norm).numpy()
