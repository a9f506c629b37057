"""Where the camera of the virtual frame goes, and where the person lands in the frame (truncation too).

BEDLAM cameras film people from 2.5-8 m, mostly from slightly above, with a small roll, and the person can
be anywhere in the 1280 x 720 frame, sometimes partly outside it (truncation) or filmed in portrait
close-ups. `sample_camera` draws that in three steps:

1. the orbit: field of view, frame orientation, distance, elevation, azimuth and roll around the body's
   centre, never below `min_camera_height` above the floor;
2. unless this draw truncates, the camera backs off until the body fits in the frame with a margin;
3. `frame_shift` draws where the body's bbox goes in the frame: anywhere it fits, or, for truncation,
   pushed out through one side by a drawn fraction of its extent; the camera then turns about its
   centre so the body lands there.

`meets_criteria` tells whether a draw satisfies the resolution and in-frame-joint criteria, which are
known before anything is rendered, so the sampler can redraw the camera instead of rejecting a render.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from poseembroider.datasets.synthetic.crops import SelectionCriteria, crop_window, joints_in_frame, tight_bbox
from poseembroider.datasets.synthetic.scene.camera import frame_camera, projected_box
from poseembroider.datasets.synthetic.scene.params import SceneConfig
from poseembroider.rendering.camera import Camera, orbit_rotation

__all__ = ["CameraDraw", "frame_shift", "meets_criteria", "sample_camera"]

TRUNCATION_SIDES = ("bottom", "top", "left", "right")
TRUNCATION_SIDE_PROBS = (0.5, 0.1, 0.2, 0.2)
"""Feet out of the frame is the common truncation in BEDLAM, the head out the rare one."""


@dataclass(frozen=True, eq=False)
class CameraDraw:
    """One drawn frame camera.

    Attributes:
        frame_hw: (H, W) of the frame (portrait draws swap the configured landscape size).
        fx: focal length in pixels (square pixels: fy = fx).
        pose: (4, 4) OpenGL camera-to-world pose.
        record: the draws behind it, as `SceneParams` keeps them: distance, elevation_deg,
            azimuth_deg, roll_deg, hfov_deg, truncated.
    """

    frame_hw: tuple[int, int]
    fx: float
    pose: np.ndarray
    record: dict[str, float | bool]

    def camera(self) -> Camera:
        """The frame camera of this draw (principal point at the frame centre)."""
        return frame_camera(self.frame_hw, self.fx, self.pose)


def rotation_z(angle: float) -> np.ndarray:
    """(3, 3) rotation by `angle` radians about +z (the camera's roll about its optical axis)."""
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(3, 3) smallest rotation taking unit vector a onto unit vector b."""
    a = a / np.linalg.norm(a)
    b = b / np.linalg.norm(b)
    axis = np.cross(a, b)
    sin, cos = float(np.linalg.norm(axis)), float(a @ b)
    if sin < 1e-12:
        if cos > 0:
            return np.eye(3)
        helper = np.array([1.0, 0.0, 0.0]) if abs(a[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
        axis = np.cross(a, helper)
        axis /= np.linalg.norm(axis)
        return 2.0 * np.outer(axis, axis) - np.eye(3)
    k = axis / sin
    skew = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + sin * skew + (1.0 - cos) * skew @ skew


def meets_criteria(draw: CameraDraw, criteria: SelectionCriteria | None, probe: np.ndarray, joints: np.ndarray) -> bool:
    """Whether the body seen by `draw` passes the criteria known before rendering: enough of the 22 body
    joints `joints` (22, 3) in the frame, and a scaled crop box of the vertices `probe` (P, 3) larger than
    the resolution threshold. Always True without criteria."""
    if criteria is None:
        return True
    frame_hw = draw.frame_hw
    cam = draw.camera()
    if joints_in_frame(cam.project(joints), frame_hw).sum() < criteria.min_number_of_visible_joints:
        return False
    tight = tight_bbox(cam.project(probe), frame_hw)
    if tight is None:
        return False
    window = crop_window(tight, frame_hw, criteria.scale_factor)
    x1, y1, x2, y2 = window.bbox
    return max(x2 - x1, y2 - y1) > criteria.resolution_threshold


def _orbit_pose(
    centre: np.ndarray, lowest: float, azimuth: float, roll: float, distance: float, elevation: float
) -> tuple[np.ndarray, float]:
    """(4, 4) pose looking at `centre` from `distance` at `elevation` / `azimuth` / `roll` (degrees), and the
    elevation used: raised where the camera would otherwise sit below the height `lowest`."""
    if centre[1] + distance * math.sin(math.radians(elevation)) < lowest:
        elevation = math.degrees(math.asin(np.clip((lowest - centre[1]) / distance, -1.0, 1.0)))
    pose = np.eye(4)
    pose[:3, :3] = orbit_rotation(azimuth, elevation) @ rotation_z(math.radians(roll))
    pose[:3, 3] = centre + distance * pose[:3, :3][:, 2]
    return pose, elevation


def frame_shift(
    rng: np.random.Generator,
    box: np.ndarray,
    frame_hw: tuple[int, int],
    truncate: bool,
    truncation_fraction: tuple[float, float],
) -> tuple[float, float]:
    """(du, dv) pixels to move the body's projected bbox `box` (4,) by in the (H, W) frame.

    Without truncation: anywhere that keeps the box inside the frame with a 2 % margin (centred when it
    does not fit). With truncation: one side drawn (`TRUNCATION_SIDES`), and the box pushed out through
    it by a fraction of its extent drawn from `truncation_fraction`.
    """
    height, width = frame_hw
    box_w, box_h = box[2] - box[0], box[3] - box[1]
    lo_u, hi_u = 0.02 * width - box[0], 0.98 * width - box[2]  # shifts keeping the box inside
    lo_v, hi_v = 0.02 * height - box[1], 0.98 * height - box[3]
    shift_u = rng.uniform(lo_u, hi_u) if hi_u > lo_u else 0.5 * (lo_u + hi_u)
    shift_v = rng.uniform(lo_v, hi_v) if hi_v > lo_v else 0.5 * (lo_v + hi_v)
    if truncate:
        side = rng.choice(list(TRUNCATION_SIDES), p=list(TRUNCATION_SIDE_PROBS))
        outside = rng.uniform(*truncation_fraction)
        if side == "bottom":
            shift_v = height - 0.5 + outside * box_h - box[3]
        elif side == "top":
            shift_v = -0.5 - outside * box_h - box[1]
        elif side == "left":
            shift_u = -0.5 - outside * box_w - box[0]
        else:
            shift_u = width - 0.5 + outside * box_w - box[2]
    return shift_u, shift_v


def sample_camera(rng: np.random.Generator, config: SceneConfig, probe: np.ndarray) -> CameraDraw:
    """A frame camera filming the body whose vertices `probe` (P, 3) (world, y up; a subsample is enough)
    span it, drawn from the camera and truncation distributions of `config`."""
    height, width = config.frame_hw
    hfov = rng.uniform(*config.hfov_deg)
    fx = (max(height, width) / 2.0) / math.tan(math.radians(hfov) / 2.0)
    if rng.random() < config.portrait_prob:
        height, width = max(height, width), min(height, width)
    frame_hw = (int(height), int(width))
    distance = rng.uniform(*config.distance)
    elevation = rng.uniform(*config.elevation_deg)
    azimuth = rng.uniform(0.0, 360.0)
    roll = float(np.clip(rng.normal(0.0, config.roll_std_deg), -config.roll_max_deg, config.roll_max_deg))
    truncate = rng.random() < config.truncation_prob
    centre = (probe.min(axis=0) + probe.max(axis=0)) / 2.0
    lowest = float(probe[:, 1].min()) + config.min_camera_height

    pose, elevation = _orbit_pose(centre, lowest, azimuth, roll, distance, elevation)
    if not truncate:  # move back until the body fits in the frame with a small margin
        for _ in range(6):
            box = projected_box(frame_camera(frame_hw, fx, pose), probe)
            grow = max((box[2] - box[0]) / (0.92 * width), (box[3] - box[1]) / (0.92 * height))
            if grow <= 1.0:
                break
            distance *= grow * 1.02
            pose, elevation = _orbit_pose(centre, lowest, azimuth, roll, distance, elevation)
    cam = frame_camera(frame_hw, fx, pose)
    box = projected_box(cam, probe)
    centre_uv = cam.project(centre)
    shift_u, shift_v = frame_shift(rng, box, (height, width), truncate, config.truncation_fraction)
    target = centre_uv + np.array([shift_u, shift_v])
    # turn the camera about its centre so the body centre projects at `target`
    ray = np.array([(target[0] - cam.cx) / fx, -(target[1] - cam.cy) / fx, -1.0])
    pose = pose.copy()
    pose[:3, :3] = pose[:3, :3] @ rotation_between(ray, np.array([0.0, 0.0, -1.0]))
    record = {
        "distance": float(distance),
        "elevation_deg": float(elevation),
        "azimuth_deg": float(azimuth),
        "roll_deg": roll,
        "hfov_deg": float(hfov),
        "truncated": bool(truncate),
    }
    return CameraDraw(frame_hw, float(fx), pose, record)
