"""Posed bodies in one call: named views, automatic framing.

Bodies are in the SMPL-X frame: y up, the body faces +z, +x is the body's left. Named views are
orbit angles around the centre of the body's bounding box: "front" looks at the face, "side" at the
body's left side (camera on +x), "back" from behind, "top" straight down (the body's front at the
bottom of the image). The distance comes from `frame_points`, so the whole body fits whatever its
pose.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from poseembroider.rendering.background import BackgroundLike
from poseembroider.rendering.base import Renderer
from poseembroider.rendering.camera import DEFAULT_YFOV_DEG, Camera, frame_points
from poseembroider.rendering.colors import DEFAULT_MESH_COLOR
from poseembroider.rendering.lighting import Light
from poseembroider.rendering.mesh_spec import check_vertices

VIEWS: dict[str, tuple[float, float]] = {
    "front": (0.0, 0.0),
    "side": (90.0, 0.0),
    "back": (180.0, 0.0),
    "top": (0.0, 90.0),
}
"""View name -> (azimuth_deg, elevation_deg)."""

View = str | tuple[float, float]


def view_angles(view: View) -> tuple[float, float]:
    """A view name or an (azimuth_deg, elevation_deg) pair -> (azimuth_deg, elevation_deg)."""
    if isinstance(view, str):
        if view not in VIEWS:
            raise ValueError(
                f"view: expected one of {list(VIEWS)} or (azimuth_deg, elevation_deg), got {view!r}"
            )
        return VIEWS[view]
    angles = tuple(float(a) for a in view)
    if len(angles) != 2:
        raise ValueError(f"view: expected (azimuth_deg, elevation_deg), got {view!r}")
    return angles  # type: ignore[return-value]


def _image_size(image_size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(image_size, int):
        return image_size, image_size
    height, width = image_size
    return int(height), int(width)


def body_camera(
    vertices: object,
    view: View = "front",
    image_size: int | Sequence[int] = 256,
    margin: float = 0.05,
    yfov_deg: float = DEFAULT_YFOV_DEG,
) -> Camera:
    """Camera framing a body: orbiting its bounding-box centre at the distance where it just fits.

    Args:
        vertices: (V, 3) body vertices (numpy or torch).
        view: "front" | "side" | "back" | "top", or (azimuth_deg, elevation_deg).
        image_size: side of a square image, or (height, width).
        margin: fraction of the image kept empty on each side.
    """
    height, width = _image_size(image_size)
    azimuth, elevation = view_angles(view)
    points = check_vertices(vertices)
    return frame_points(
        points, width, height, margin, azimuth_deg=azimuth, elevation_deg=elevation, yfov_deg=yfov_deg
    )


def render_body(
    renderer: Renderer,
    vertices: object,
    faces: object,
    view: View = "front",
    image_size: int | Sequence[int] | None = None,
    color: Sequence[float] | np.ndarray = DEFAULT_MESH_COLOR,
    background: BackgroundLike = None,
    *,
    margin: float = 0.05,
    lights: Sequence[Light] | None = None,
) -> np.ndarray:
    """(H, W, 3) uint8 image of a posed body, framed automatically.

    Args:
        renderer: any backend (`create_renderer()`); it is not closed.
        vertices: (V, 3) body vertices in the SMPL-X frame.
        faces: (F, 3) triangles.
        view: "front" | "side" | "back" | "top", or (azimuth_deg, elevation_deg).
        image_size: side of a square image or (height, width); None = the renderer's size.
        color: RGB floats or per-vertex colours (V, 3|4).
        background: RGB floats, an (H, W, 3) uint8 image, or None (white).
        margin: fraction of the image kept empty on each side.
        lights: None = camera-attached three-point lighting.
    """
    size = (renderer.height, renderer.width) if image_size is None else image_size
    camera = body_camera(vertices, view, size, margin)
    return renderer.render(vertices, faces, camera, lights, color, background)
