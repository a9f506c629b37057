"""BEDLAM's camera model: intrinsics from the focal length in mm, extrinsics from Unreal positions and angles.

Facts of BEDLAM's `df_full_body.py` (written here as batched float64 torch functions, not copied):

- frames are 1280 x 720 (W x H) on a 36 x 20.25 mm sensor; close-up scenes were rendered with the camera
  rolled by 90 degrees, their frames turned 90 degrees clockwise are 720 x 1280 on a 20.25 x 36 mm sensor;
- intrinsics: fx = f / sensor_w * W, fy = f / sensor_h * H, principal point (W / 2, H / 2), in pixel
  coordinates whose frame spans [0, W] x [0, H] (ours put pixel centres at integers: subtract 0.5);
- Unreal points (cm; x forward, y right, z up) become OpenCV-world points (metres; x right, y down,
  z forward) as (y, -z, x) / 100;
- the camera's Unreal yaw, pitch, roll (degrees) enter negated (close-ups: roll - 90 before negation, i.e.
  +90 after), and the world-to-camera rotation is C = Rz(roll') @ Rx(pitch') @ Ry(yaw');
- a body placed at Unreal (X, Y, Z) with heading `Yaw` plays its motion (y-up SMPL-X frame, `trans`
  metres) rotated by T = Ry(Yaw - 90) @ diag(1, -1, -1) into the OpenCV world, so a motion point p (posed
  at zero translation) lands in the camera at

      p_cam = M @ (p + trans) + t,   M = C @ T,   t = C @ (ue(X, Y, Z) - ue(camera position)).

  (BEDLAM writes M as Rz Rx @ Ry(Yaw - 90 + yaw') @ diag(1, -1, -1): the camera's yaw folded into the
  body's; the same rotation.)

The root orientation in the camera is then M @ R(global_orient) and the SMPL-X translation that places the
body there is M @ (j0 + trans) + t - j0, j0 the rest pelvis of the body's shape (the root rotates about it).
"""

from __future__ import annotations

import math

import torch

from poseembroider.geometry import axis_rotation_matrix

__all__ = [
    "LANDSCAPE_HW",
    "PORTRAIT_HW",
    "SENSOR_MM",
    "body_to_camera",
    "frame_hw",
    "intrinsics",
    "project",
    "unreal_to_opencv",
    "world_to_camera_rotation",
]

LANDSCAPE_HW: tuple[int, int] = (720, 1280)
"""(H, W) of a BEDLAM frame."""
PORTRAIT_HW: tuple[int, int] = (1280, 720)
"""(H, W) of a close-up frame once turned 90 degrees clockwise."""
SENSOR_MM: tuple[float, float] = (36.0, 20.25)
"""(width, height) of BEDLAM's virtual sensor, landscape."""
OPENCV_FROM_SMPLX = torch.diag(torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64))
"""y-up SMPL-X frame -> y-down OpenCV frame (a half turn about x)."""


def frame_hw(closeup: bool) -> tuple[int, int]:
    """(H, W) of the frames the projections refer to (close-ups: the turned frame)."""
    return PORTRAIT_HW if closeup else LANDSCAPE_HW


def intrinsics(focal_length_mm: torch.Tensor, closeup: bool) -> torch.Tensor:
    """(F,) focal lengths in mm -> (F, 3, 3) float64 intrinsics in BEDLAM's pixel convention."""
    height, width = frame_hw(closeup)
    sensor_w, sensor_h = SENSOR_MM[::-1] if closeup else SENSOR_MM
    f = torch.as_tensor(focal_length_mm, dtype=torch.float64)
    k = torch.zeros(*f.shape, 3, 3, dtype=torch.float64)
    k[..., 0, 0] = f / sensor_w * width
    k[..., 1, 1] = f / sensor_h * height
    k[..., 0, 2] = width / 2.0
    k[..., 1, 2] = height / 2.0
    k[..., 2, 2] = 1.0
    return k


def unreal_to_opencv(points_cm: torch.Tensor) -> torch.Tensor:
    """(..., 3) Unreal points (cm; x forward, y right, z up) -> (..., 3) OpenCV-world metres (x right, y down,
    z forward)."""
    p = torch.as_tensor(points_cm, dtype=torch.float64)
    return torch.stack([p[..., 1], -p[..., 2], p[..., 0]], dim=-1) / 100.0


def _rot(degrees: torch.Tensor, axis: str) -> torch.Tensor:
    return axis_rotation_matrix(torch.as_tensor(degrees, dtype=torch.float64) * (math.pi / 180.0), axis)


def world_to_camera_rotation(
    yaw: torch.Tensor, pitch: torch.Tensor, roll: torch.Tensor, closeup: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Camera angles (F,) in Unreal degrees -> (C, Rz Rx), each (F, 3, 3): C the OpenCV world-to-camera
    rotation, Rz Rx its roll-pitch part (C = Rz Rx Ry)."""
    roll_ = -torch.as_tensor(roll, dtype=torch.float64) + (90.0 if closeup else 0.0)
    roll_pitch = _rot(roll_, "z") @ _rot(-torch.as_tensor(pitch, dtype=torch.float64), "x")
    return roll_pitch @ _rot(-torch.as_tensor(yaw, dtype=torch.float64), "y"), roll_pitch


def body_to_camera(
    body_xyz_cm: tuple[float, float, float],
    body_yaw_deg: float,
    camera_xyz_cm: torch.Tensor,
    yaw: torch.Tensor,
    pitch: torch.Tensor,
    roll: torch.Tensor,
    closeup: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(M (F, 3, 3), t (F, 3)) with p_cam = M @ (p + trans) + t for the F camera rows of one body
    (module docstring). Inputs: the body's Unreal placement and heading, the camera rows (F, 3) cm and (F,)
    degrees."""
    rotation, _ = world_to_camera_rotation(yaw, pitch, roll, closeup)
    heading = _rot(torch.tensor(body_yaw_deg - 90.0, dtype=torch.float64), "y")
    m = rotation @ (heading @ OPENCV_FROM_SMPLX)
    offset = unreal_to_opencv(torch.tensor(body_xyz_cm, dtype=torch.float64)) - unreal_to_opencv(camera_xyz_cm)
    return m, (rotation @ offset[..., None])[..., 0]


def project(points: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(F, P, 3) camera points and (F, 3, 3) intrinsics -> ((F, P, 2) pixels in BEDLAM's convention,
    (F, P) bool in front of the camera). Points behind the camera get NaN pixels."""
    z = points[..., 2]
    front = z > 1e-6
    safe_z = torch.where(front, z, torch.ones_like(z))
    u = k[:, None, 0, 0] * points[..., 0] / safe_z + k[:, None, 0, 2]
    v = k[:, None, 1, 1] * points[..., 1] / safe_z + k[:, None, 1, 2]
    uv = torch.stack([u, v], dim=-1)
    return torch.where(front[..., None], uv, torch.full_like(uv, float("nan"))), front
