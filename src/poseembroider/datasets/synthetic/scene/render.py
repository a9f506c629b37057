"""`render_scene`: one OpenGL render of a window of the virtual frame, composited over its background.

The crop window of a frame is rendered directly: the frame camera with its principal point shifted and
its focal lengths scaled (`CropWindow.camera`) sees exactly the pixels the crop would hold, so a sample
costs one render at the crop size instead of a 1280 x 720 one. Body and occluders are lit per vertex and
drawn unlit (the per-pixel shader was two thirds of the render under Mesa's software rasteriser), the
background is added behind them (`background.py`), and the padding outside the frame content is zeroed
as the original pads with zeros. `supersample=s` renders s x s sub-pixels per pixel and box-filters them
for anti-aliased edges. Keep one renderer per size (`create_scene_renderer`): OSMesa recreates its
context when the size changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from poseembroider.datasets.synthetic.crops import CROP_HW, CropWindow
from poseembroider.datasets.synthetic.scene.background import environment_background, shadow_casters
from poseembroider.datasets.synthetic.scene.body import PosedBody
from poseembroider.datasets.synthetic.scene.params import SceneParams
from poseembroider.datasets.synthetic.scene.primitives import Primitive
from poseembroider.rendering.camera import Camera
from poseembroider.rendering.lighting import Light
from poseembroider.rendering.mesh_spec import MeshSpec, vertex_normals
from poseembroider.rendering.vertex_lighting import shade_vertices

__all__ = ["SceneRender", "create_scene_renderer", "render_scene"]


def create_scene_renderer(out_hw: tuple[int, int] = CROP_HW, supersample: int = 1, backend: str = "auto"):
    """A renderer sized for `render_sample` (one framebuffer size: no OpenGL context is recreated)."""
    from poseembroider.rendering import create_renderer

    return create_renderer(out_hw[1] * supersample, out_hw[0] * supersample, backend=backend)


@dataclass(frozen=True, eq=False)
class SceneRender:
    """One rendered window: image (H, W, 3) uint8 (padding zeroed), and for the (supersampled) render:
    depth (sH, sW) float32 (0 = background), alpha (sH, sW) coverage of body and occluders."""

    image: np.ndarray
    depth: np.ndarray
    alpha: np.ndarray
    supersample: int


def _merged_mesh(parts: Sequence[Primitive]) -> MeshSpec:
    """One smooth mesh of all `parts` (faces re-indexed): one draw call for every occluder."""
    arrays = [part.mesh_arrays() for part in parts]
    offsets = np.cumsum([0] + [len(v) for v, _, _ in arrays[:-1]])
    vertices = np.concatenate([v for v, _, _ in arrays])
    faces = np.concatenate([f + o for (_, f, _), o in zip(arrays, offsets, strict=True)])
    colors = np.concatenate([c for _, _, c in arrays])
    return MeshSpec(vertices, faces, colors, smooth=True)


def _lit_mesh(mesh: MeshSpec, camera: Camera, lights: Sequence[Light]) -> MeshSpec:
    """Smooth `mesh` with its colours lit per vertex (`shade_vertices`), to draw unlit: the software
    rasteriser then skips the per-pixel BRDF, two thirds of the cost of a lit render. (The scene's
    meshes are all smooth: a flat-shaded one would need per-face normals.)"""
    normals = vertex_normals(mesh.vertices, mesh.faces)
    colors = shade_vertices(mesh.vertices, normals, mesh.vertex_rgba(), camera.pose, lights)
    return MeshSpec(mesh.vertices, mesh.faces, colors, smooth=mesh.smooth, double_sided=mesh.double_sided)


def _box_downsample(image: np.ndarray, factor: int) -> np.ndarray:
    """Mean over factor x factor blocks of (H * f, W * f, ...) -> (H, W, ...), as s^2 strided sums
    (several times faster than `reshape(...).mean(axis=(1, 3))`)."""
    total = np.zeros_like(image[::factor, ::factor], dtype=np.float32)
    for row in range(factor):
        for col in range(factor):
            total += image[row::factor, col::factor]
    return total / (factor * factor)


def render_scene(
    renderer,
    body: PosedBody,
    body_colors: np.ndarray,
    params: SceneParams,
    window: CropWindow,
    supersample: int = 1,
) -> SceneRender:
    """Render the window `window` of the frame of `params`: body, occluders, environment.

    One OpenGL render at `supersample` x the window's output size (box-filtered down when > 1), the
    environment shaded per pixel ray and blurred by `environment.blur` frame pixels (scaled to the
    window), the padding outside the frame content zeroed.
    """
    frame_camera = params.frame_camera()
    camera = window.camera(frame_camera, supersample)
    meshes = [MeshSpec(body.vertices, body.faces, body_colors)]
    if params.occluders:  # one mesh for all occluder parts: one draw call
        meshes.append(_merged_mesh([part for occluder in params.occluders for part in occluder.parts]))
    layers = renderer.render_layers([_lit_mesh(mesh, camera, params.lights) for mesh in meshes], camera, unlit=True)
    color, alpha = layers.color, layers.alpha
    depth = layers.depth if layers.depth is not None else np.zeros(alpha.shape, np.float32)
    out_h, out_w = window.out_hw
    if supersample > 1:
        color = _box_downsample(color, supersample)
        alpha_out = _box_downsample(alpha, supersample)
    else:
        alpha_out = alpha
    out_camera = window.camera(frame_camera, 1)
    blur = params.environment.blur * window.scale[0]
    background = environment_background(
        params.environment,
        out_camera,
        params.key_light_direction,
        shadow_casters(body, params.occluders),
        blur,
        (out_h, out_w),
    )
    image = color + background * (1.0 - alpha_out[..., None])
    image *= window.content_weights()[..., None]
    image = np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return SceneRender(image=image, depth=depth, alpha=alpha, supersample=supersample)
