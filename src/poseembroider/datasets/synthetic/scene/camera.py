"""The pinhole camera of the virtual frame, and the bbox of projected points.

Shared by the camera placement (is the body in the frame?), the occluder placement (how much of the
person does an object hide?) and the framing (occluder overlap): one definition of the frame camera
(square pixels, principal point at the frame centre, pixel centres at integers) so all three agree.
"""

from __future__ import annotations

import numpy as np

from poseembroider.rendering.camera import Camera

__all__ = ["frame_camera", "projected_box"]


def frame_camera(frame_hw: tuple[int, int], fx: float, pose: np.ndarray) -> Camera:
    """The camera of a (H, W) frame with focal length `fx` (pixels) and OpenGL camera-to-world `pose` (4, 4)."""
    return Camera(
        width=frame_hw[1],
        height=frame_hw[0],
        fx=fx,
        fy=fx,
        cx=(frame_hw[1] - 1) / 2.0,
        cy=(frame_hw[0] - 1) / 2.0,
        pose=pose,
        znear=0.05,
        zfar=500.0,
    )


def projected_box(camera: Camera, points: np.ndarray) -> np.ndarray:
    """(4,) bbox of all projected points (in front of the camera), in or out of the frame."""
    uv = camera.project(points)
    uv = uv[np.isfinite(uv).all(axis=1)]
    if len(uv) == 0:
        return np.array([0.0, 0.0, 0.0, 0.0])
    return np.concatenate([uv.min(axis=0), uv.max(axis=0)])
