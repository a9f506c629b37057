"""Lights: directional or point, fixed in the world or attached to the camera.

Camera-attached lights keep a subject lit the same way from every viewpoint, which is what orbit
views, contact sheets and synthetic training images want; the default is a camera-attached
three-point rig (key from the upper left, softer fill from the right, rim from behind).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from poseembroider.rendering.colors import RGB, WHITE, as_rgb


def _unit(vector: Sequence[float], name: str) -> tuple[float, float, float]:
    arr = np.asarray(vector, dtype=np.float64)
    norm = float(np.linalg.norm(arr)) if arr.shape == (3,) else 0.0
    if arr.shape != (3,) or not math.isfinite(norm) or norm < 1e-12:
        raise ValueError(f"{name}: expected a non-zero 3D vector, got {vector!r}")
    return tuple(float(c) for c in arr / norm)  # type: ignore[return-value]


@dataclass(frozen=True)
class Light:
    """One light.

    Attributes:
        kind: 'directional' (sun-like, parallel rays) or 'point'.
        direction: for directional lights, the direction the light *travels* (e.g. (0, -1, 0)
            shines downward), in `frame` coordinates.
        position: for point lights, the position in `frame` coordinates.
        color: RGB floats in [0, 1].
        intensity: pyrender units (directional: lux-like, ~1-5; point: candela, falls off with the
            squared distance).
        frame: 'camera' (follows the camera; camera coordinates: x right, y up, the camera looks
            down -z) or 'world'.
    """

    kind: Literal["directional", "point"] = "directional"
    direction: tuple[float, float, float] = (0.0, 0.0, -1.0)
    position: tuple[float, float, float] = (0.0, 0.0, 0.0)
    color: RGB = WHITE
    intensity: float = 3.0
    frame: Literal["camera", "world"] = "camera"

    def __post_init__(self) -> None:
        if self.kind not in ("directional", "point"):
            raise ValueError(f"kind: expected 'directional' or 'point', got {self.kind!r}")
        if self.frame not in ("camera", "world"):
            raise ValueError(f"frame: expected 'camera' or 'world', got {self.frame!r}")
        if not (math.isfinite(self.intensity) and self.intensity >= 0):
            raise ValueError(f"intensity: expected a non-negative number, got {self.intensity!r}")
        object.__setattr__(self, "direction", _unit(self.direction, "direction"))
        position = np.asarray(self.position, dtype=np.float64)
        if position.shape != (3,) or not np.isfinite(position).all():
            raise ValueError(f"position: expected 3 finite numbers, got {self.position!r}")
        object.__setattr__(self, "position", tuple(float(c) for c in position))
        object.__setattr__(self, "color", as_rgb(self.color, "color"))

    @classmethod
    def directional(
        cls,
        direction: Sequence[float],
        intensity: float = 3.0,
        color: RGB = WHITE,
        frame: Literal["camera", "world"] = "camera",
    ) -> Light:
        return cls("directional", direction=tuple(direction), color=color, intensity=intensity, frame=frame)

    @classmethod
    def point(
        cls,
        position: Sequence[float],
        intensity: float = 20.0,
        color: RGB = WHITE,
        frame: Literal["camera", "world"] = "world",
    ) -> Light:
        return cls("point", position=tuple(position), color=color, intensity=intensity, frame=frame)

    def world_pose(self, camera_pose: np.ndarray) -> np.ndarray:
        """(4, 4) pose of the light node in the world; a directional light shines along its -z."""
        local = np.eye(4)
        if self.kind == "directional":
            back = -np.asarray(self.direction)
            helper = np.array([0.0, 1.0, 0.0]) if abs(back[1]) < 0.9 else np.array([1.0, 0.0, 0.0])
            right = np.cross(helper, back)
            right /= np.linalg.norm(right)
            local[:3, 0], local[:3, 1], local[:3, 2] = right, np.cross(back, right), back
        else:
            local[:3, 3] = self.position
        return np.asarray(camera_pose, dtype=np.float64) @ local if self.frame == "camera" else local

    def world_direction(self, camera_pose: np.ndarray) -> np.ndarray:
        """(3,) direction of travel in world coordinates (directional lights)."""
        direction = np.asarray(self.direction)
        return np.asarray(camera_pose)[:3, :3] @ direction if self.frame == "camera" else direction

    def world_position(self, camera_pose: np.ndarray) -> np.ndarray:
        """(3,) position in world coordinates (point lights)."""
        return self.world_pose(camera_pose)[:3, 3]


def three_point_lights(intensity: float = 3.0, color: RGB = WHITE) -> tuple[Light, ...]:
    """Camera-attached key (upper left, front), fill (right, half as bright) and rim (behind, above)."""
    return (
        Light.directional((1.0, -1.0, -1.2), intensity, color),
        Light.directional((-1.0, -0.2, -0.8), 0.5 * intensity, color),
        Light.directional((0.0, -1.0, 1.0), 0.6 * intensity, color),
    )


def default_lights() -> tuple[Light, ...]:
    """The lighting renderers use when none is given."""
    return three_point_lights()
