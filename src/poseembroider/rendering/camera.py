"""Pinhole camera: intrinsics in pixels, a camera-to-world pose, and the projection the renderer uses.

Conventions:
- `pose` is the 4x4 camera-to-world matrix in the OpenGL convention pyrender uses: the camera looks
  down its -z axis, +y is up in the image, +x is right.
- Pixel coordinates are (u, v) = (column, row) with the origin at the top-left and pixel *centres*
  at integer coordinates (OpenCV convention): the pixel `image[r, c]` is centred on (c, r), and the
  image spans [-0.5, W - 0.5] x [-0.5, H - 0.5]. `project()` is exact for the rendered images (the
  renderer shifts pyrender's principal point by half a pixel to match).
- Orbit angles follow the SMPL-X body frame (y up, body facing +z, +x = the body's left):
  azimuth 0 puts the camera on the +z side looking toward -z (facing the body), azimuth 90 on
  the +x side; positive elevation puts the camera above the target, looking down.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

DEFAULT_YFOV_DEG = 30.0
"""Vertical field of view of the constructors: narrow enough to keep body proportions natural."""


def _as_points(points: object, name: str = "points") -> np.ndarray:
    arr = points.detach().cpu().numpy() if hasattr(points, "detach") else np.asarray(points)
    arr = np.asarray(arr, dtype=np.float64)
    if arr.ndim == 0 or arr.shape[-1] != 3:
        raise ValueError(f"{name}: expected shape (..., 3), got shape {arr.shape}")
    return arr


def _as_vector3(value: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape != (3,) or not np.isfinite(arr).all():
        raise ValueError(f"{name}: expected 3 finite numbers, got {value!r}")
    return arr


def rotation_y(angle_deg: float) -> np.ndarray:
    """(3, 3) rotation about +y (right-handed: +z turns toward +x)."""
    a = math.radians(angle_deg)
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def rotation_x(angle_deg: float) -> np.ndarray:
    """(3, 3) rotation about +x (right-handed: +y turns toward +z)."""
    a = math.radians(angle_deg)
    c, s = math.cos(a), math.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def look_at_pose(
    eye: Sequence[float], target: Sequence[float], up: Sequence[float] = (0, 1, 0)
) -> np.ndarray:
    """(4, 4) camera-to-world pose of a camera at `eye` looking at `target`, `up` pointing up."""
    eye_, target_, up_ = _as_vector3(eye, "eye"), _as_vector3(target, "target"), _as_vector3(up, "up")
    back = eye_ - target_
    if np.linalg.norm(back) < 1e-12:
        raise ValueError("eye and target coincide: the viewing direction is undefined")
    back /= np.linalg.norm(back)
    right = np.cross(up_, back)
    if np.linalg.norm(right) < 1e-9:
        raise ValueError(f"up {tuple(up_)} is parallel to the viewing direction: pick another up vector")
    right /= np.linalg.norm(right)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, np.cross(back, right), back, eye_
    return pose


def orbit_rotation(azimuth_deg: float, elevation_deg: float) -> np.ndarray:
    """(3, 3) camera-to-world rotation of an orbit camera; its +z column points from target to eye.

    Defined without an up vector, so straight-down views (elevation 90) are well defined: image-up
    then points to -z rotated by the azimuth (the body's back at the top of a top view).
    """
    return rotation_y(azimuth_deg) @ rotation_x(-elevation_deg)


@dataclass(frozen=True, eq=False)
class Camera:
    """A pinhole camera rendering `width` x `height` images.

    Attributes:
        width, height: image size in pixels.
        fx, fy: focal lengths in pixels.
        cx, cy: principal point in pixels (pixel centres at integers: the image centre is
            ((W - 1) / 2, (H - 1) / 2)).
        pose: (4, 4) camera-to-world matrix, OpenGL convention (looks down -z).
        znear, zfar: clipping distances along the viewing axis.
    """

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    pose: np.ndarray = dataclasses.field(default_factory=lambda: np.eye(4))
    znear: float = 0.01
    zfar: float = 100.0

    def __post_init__(self) -> None:
        for name in ("width", "height"):
            value = getattr(self, name)
            if int(value) != value or value <= 0:
                raise ValueError(f"{name}: expected a positive integer, got {value!r}")
            object.__setattr__(self, name, int(value))
        for name in ("fx", "fy", "cx", "cy", "znear", "zfar"):
            value = float(getattr(self, name))
            if not math.isfinite(value):
                raise ValueError(f"{name}: expected a finite number, got {value!r}")
            object.__setattr__(self, name, value)
        if self.fx <= 0 or self.fy <= 0:
            raise ValueError(f"focal lengths must be positive, got fx={self.fx}, fy={self.fy}")
        if not 0 < self.znear < self.zfar:
            raise ValueError(f"expected 0 < znear < zfar, got znear={self.znear}, zfar={self.zfar}")
        pose = np.array(self.pose, dtype=np.float64)
        if pose.shape != (4, 4) or not np.isfinite(pose).all():
            raise ValueError(f"pose: expected a finite (4, 4) camera-to-world matrix, got shape {pose.shape}")
        pose.setflags(write=False)
        object.__setattr__(self, "pose", pose)

    # ---- constructors -------------------------------------------------------------------------

    @classmethod
    def from_fov(
        cls,
        width: int,
        height: int,
        yfov_deg: float = DEFAULT_YFOV_DEG,
        pose: np.ndarray | None = None,
        znear: float = 0.01,
        zfar: float = 100.0,
    ) -> Camera:
        """Square pixels, principal point at the image centre, vertical field of view `yfov_deg`."""
        if not 0 < yfov_deg < 180:
            raise ValueError(f"yfov_deg: expected a value in (0, 180), got {yfov_deg}")
        focal = (height / 2.0) / math.tan(math.radians(yfov_deg) / 2.0)
        return cls(
            width=width,
            height=height,
            fx=focal,
            fy=focal,
            cx=(width - 1) / 2.0,
            cy=(height - 1) / 2.0,
            pose=np.eye(4) if pose is None else pose,
            znear=znear,
            zfar=zfar,
        )

    @classmethod
    def look_at(
        cls,
        eye: Sequence[float],
        target: Sequence[float],
        up: Sequence[float] = (0.0, 1.0, 0.0),
        *,
        width: int,
        height: int,
        yfov_deg: float = DEFAULT_YFOV_DEG,
        znear: float = 0.01,
        zfar: float = 100.0,
    ) -> Camera:
        """Camera at `eye` looking at `target`."""
        return cls.from_fov(width, height, yfov_deg, look_at_pose(eye, target, up), znear, zfar)

    @classmethod
    def orbit(
        cls,
        target: Sequence[float],
        distance: float,
        elevation_deg: float = 0.0,
        azimuth_deg: float = 0.0,
        *,
        width: int,
        height: int,
        yfov_deg: float = DEFAULT_YFOV_DEG,
        znear: float = 0.01,
        zfar: float = 100.0,
    ) -> Camera:
        """Camera `distance` away from `target`, looking at it (azimuth 0: on the +z side)."""
        if not distance > 0:
            raise ValueError(f"distance: expected a positive number, got {distance}")
        rotation = orbit_rotation(azimuth_deg, elevation_deg)
        pose = np.eye(4)
        pose[:3, :3] = rotation
        pose[:3, 3] = _as_vector3(target, "target") + distance * rotation[:, 2]
        return cls.from_fov(width, height, yfov_deg, pose, znear, zfar)

    def with_pose(self, pose: np.ndarray) -> Camera:
        """Same intrinsics, another camera-to-world pose."""
        return dataclasses.replace(self, pose=pose)

    # ---- geometry -----------------------------------------------------------------------------

    @property
    def position(self) -> np.ndarray:
        """(3,) camera centre in world coordinates."""
        return self.pose[:3, 3].copy()

    @property
    def world_to_camera(self) -> np.ndarray:
        """(4, 4) inverse of `pose`."""
        inverse = np.eye(4)
        rotation_t = self.pose[:3, :3].T
        inverse[:3, :3] = rotation_t
        inverse[:3, 3] = -rotation_t @ self.pose[:3, 3]
        return inverse

    @property
    def intrinsics_matrix(self) -> np.ndarray:
        """(3, 3) K in the OpenCV convention (for a camera looking down +z, image y down)."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def to_camera(self, points: object) -> np.ndarray:
        """(..., 3) world points -> (..., 3) camera coordinates (OpenGL: visible points have z < 0)."""
        pts = _as_points(points)
        world_to_camera = self.world_to_camera
        return pts @ world_to_camera[:3, :3].T + world_to_camera[:3, 3]

    def depth(self, points: object) -> np.ndarray:
        """(..., 3) world points -> (...) distance along the viewing axis (the renderer's depth)."""
        return -self.to_camera(points)[..., 2]

    def project(self, points: object) -> np.ndarray:
        """(..., 3) world points -> (..., 2) pixel coordinates (u = column, v = row).

        Points behind the camera (depth <= 0) get NaN; check `depth()` or `in_image()` when that
        can happen.
        """
        cam = self.to_camera(points)
        depth = -cam[..., 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            u = self.cx + self.fx * cam[..., 0] / depth
            v = self.cy - self.fy * cam[..., 1] / depth
        uv = np.stack([u, v], axis=-1)
        uv[depth <= 0] = np.nan
        return uv

    def in_image(self, points: object) -> np.ndarray:
        """(..., 3) world points -> (...) bool: in front of the camera and inside the image."""
        uv = self.project(points)
        with np.errstate(invalid="ignore"):
            return (
                (uv[..., 0] >= -0.5)
                & (uv[..., 0] <= self.width - 0.5)
                & (uv[..., 1] >= -0.5)
                & (uv[..., 1] <= self.height - 0.5)
            )


def frame_points(
    points: object,
    width: int,
    height: int,
    margin: float = 0.05,
    *,
    azimuth_deg: float = 0.0,
    elevation_deg: float = 0.0,
    yfov_deg: float = DEFAULT_YFOV_DEG,
    target: Sequence[float] | None = None,
) -> Camera:
    """Orbit camera around `target` at the smallest distance where all `points` fit in the image.

    Args:
        points: (..., 3) world points to keep in view.
        width, height: image size in pixels.
        margin: fraction of the image width (height) left empty on the left and right (top and
            bottom), in [0, 0.5).
        azimuth_deg, elevation_deg: viewing direction (see `Camera.orbit`).
        yfov_deg: vertical field of view.
        target: point the camera looks at; None = centre of the points' bounding box.

    The distance is exact, not a bounding-sphere estimate: for the orbit orientation R, a point at
    offset q = R^T (p - target) projects at u = cx + fx q_x / (d - q_z), so each point and image side
    gives a lower bound d >= q_z + fx |q_x| / (room on that side); the camera takes the largest.
    """
    if not 0.0 <= margin < 0.5:
        raise ValueError(f"margin: expected a fraction in [0, 0.5), got {margin}")
    pts = _as_points(points).reshape(-1, 3)
    if pts.shape[0] == 0 or not np.isfinite(pts).all():
        raise ValueError(f"points: expected at least one point, all finite, got shape {pts.shape}")
    centre = (pts.min(axis=0) + pts.max(axis=0)) / 2.0 if target is None else _as_vector3(target, "target")
    intrinsics = Camera.from_fov(width, height, yfov_deg)
    rotation = orbit_rotation(azimuth_deg, elevation_deg)
    offsets = (pts - centre) @ rotation  # q = R^T (p - target), one row per point
    qx, qy, qz = offsets[:, 0], offsets[:, 1], offsets[:, 2]
    room_left = intrinsics.cx + 0.5 - margin * width
    room_right = width - 0.5 - intrinsics.cx - margin * width
    room_top = intrinsics.cy + 0.5 - margin * height
    room_bottom = height - 0.5 - intrinsics.cy - margin * height
    needed = np.concatenate(
        [
            qz + intrinsics.fx * np.where(qx > 0, qx / room_right, -qx / room_left),
            qz + intrinsics.fy * np.where(qy > 0, qy / room_top, -qy / room_bottom),
        ]
    )
    extent = float(np.linalg.norm(pts - centre, axis=1).max())
    # keep every point in front of the near plane, also when all points sit at the target
    distance = max(float(needed.max()), float(qz.max()) + 0.05 * max(extent, 1.0))
    return Camera.orbit(
        centre,
        distance,
        elevation_deg,
        azimuth_deg,
        width=width,
        height=height,
        yfov_deg=yfov_deg,
        znear=min(0.01, 0.5 * (distance - float(qz.max()))),
        zfar=max(100.0, 2.0 * (distance + extent)),
    )
