"""The background pixels of a rendered window: the environment seen along each pixel's ray.

`render_scene` draws only the body and the occluders with OpenGL; everything behind them comes from
`environment_background`: the environment shaded along the rays of a half-resolution grid of the window
(the background is smooth and often blurred, so half the rays give the same look for a quarter of the
shading cost), blurred like an out-of-focus background, and resized to the window. `shadow_casters`
lists the soft blobs (body joints, occluder parts) whose shadows the environment darkens the floor with.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageFilter

from poseembroider.datasets.synthetic.scene.body import PosedBody
from poseembroider.datasets.synthetic.scene.environment import Environment
from poseembroider.datasets.synthetic.scene.occluders import Occluder
from poseembroider.rendering.camera import Camera

__all__ = ["environment_background", "shadow_casters"]


def environment_background(
    environment: Environment,
    camera: Camera,
    light_direction: np.ndarray,
    casters: np.ndarray,
    blur_pixels: float,
    out_hw: tuple[int, int],
) -> np.ndarray:
    """(H, W, 3) float32 background seen by `camera` (output size), evaluated at half resolution."""
    out_h, out_w = out_hw
    eval_h, eval_w = (out_h + 1) // 2, (out_w + 1) // 2
    step_x, step_y = out_w / eval_w, out_h / eval_h
    cols = (np.arange(eval_w, dtype=np.float64) + 0.5) * step_x - 0.5
    rows = (np.arange(eval_h, dtype=np.float64) + 0.5) * step_y - 0.5
    # rays in OpenGL camera coordinates, then world
    dx = (cols - camera.cx) / camera.fx
    dy = -(rows - camera.cy) / camera.fy
    rays = np.empty((eval_h, eval_w, 3))
    rays[..., 0] = dx[None, :]
    rays[..., 1] = dy[:, None]
    rays[..., 2] = -1.0
    rays = rays.reshape(-1, 3) @ camera.pose[:3, :3].T
    rays /= np.linalg.norm(rays, axis=1, keepdims=True)
    pixel_angle = 1.0 / min(camera.fx / step_x, camera.fy / step_y)
    colors = environment.shade(camera.position, rays, pixel_angle, light_direction, casters)
    small = (colors.reshape(eval_h, eval_w, 3) * 255.0 + 0.5).astype(np.uint8)
    picture = Image.fromarray(small)
    sigma = blur_pixels / step_x
    if sigma > 0.35:
        picture = picture.filter(ImageFilter.GaussianBlur(sigma))
    if picture.size != (out_w, out_h):
        picture = picture.resize((out_w, out_h), Image.BILINEAR)
    return np.asarray(picture, dtype=np.float32) / 255.0


# joints whose soft blobs make the body's shadow: pelvis, spine2, neck, head, knees, ankles, feet,
# shoulders, elbows, wrists (radius in metres: the trunk is wider than the limbs)
_SHADOW_JOINTS = np.array([0, 6, 12, 15, 4, 5, 7, 8, 10, 11, 16, 17, 18, 19, 20, 21])
_SHADOW_RADII = np.array([0.16, 0.16, 0.1, 0.1, 0.08, 0.08, 0.06, 0.06, 0.06, 0.06, 0.1, 0.1, 0.06, 0.06, 0.05, 0.05])


def shadow_casters(body: PosedBody, occluders: Sequence[Occluder]) -> np.ndarray:
    """(K, 4) rows (x, y, z, radius) of the blobs casting soft shadows on the floor."""
    rows = [np.concatenate([body.joints[_SHADOW_JOINTS], _SHADOW_RADII[:, None]], axis=1)]
    for occluder in occluders:
        for part in occluder.parts:
            bottom = part.center - np.array([0.0, part.size[1] / 2.0, 0.0])
            rows.append(
                np.array([[part.center[0], bottom[1] + 0.05, part.center[2], 0.35 * max(part.size[0], part.size[2])]])
            )
    return np.concatenate(rows).astype(np.float64)
