"""Fallback backend without OpenGL: flat-shaded triangles drawn by matplotlib's Agg rasteriser.

For machines where neither OSMesa nor EGL works. Triangles are projected with the same
`Camera.project()` as the OpenGL backend (so bounding boxes and keypoints agree between backends),
back faces are culled, the rest are Lambert-shaded per face and painted far to near (painter's
algorithm) as one `PolyCollection` on a pixel-aligned Agg canvas. Only every k-th face is kept when
a scene has more than `max_faces` visible faces, so a full SMPL-X body renders in a fraction of a
second at the cost of small holes. There is no depth buffer (`RenderLayers.depth` is None), and
painter's sorting can misorder intersecting faces; use the OpenGL backend for anything quantitative.

Uses `matplotlib.figure.Figure` with an Agg canvas directly: no pyplot, no global backend switch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from poseembroider.rendering.base import Renderer, RenderLayers
from poseembroider.rendering.camera import Camera
from poseembroider.rendering.lighting import Light, default_lights
from poseembroider.rendering.mesh_spec import MeshSpec, as_mesh_specs, face_normals

_DPI = 100.0


def lambert_shading(
    normals: np.ndarray, centres: np.ndarray, lights: Sequence[Light], camera_pose: np.ndarray, ambient: float
) -> np.ndarray:
    """(F, 3) unit normals and (F, 3) face centres -> (F, 3) RGB shading factors in [0, 1].

    Each light contributes colour * (intensity / brightest intensity) * max(0, n . l); the sum is
    clipped and mapped to [ambient, 1] so unlit faces keep some colour.
    """
    if not lights:
        return np.full_like(normals, ambient)
    top = max(light.intensity for light in lights) or 1.0
    total = np.zeros_like(normals)
    for light in lights:
        if light.kind == "directional":
            towards_light = -light.world_direction(camera_pose)[None, :]
        else:
            towards_light = light.world_position(camera_pose)[None, :] - centres
            towards_light = towards_light / np.maximum(
                np.linalg.norm(towards_light, axis=1, keepdims=True), 1e-12
            )
        cosine = np.clip((normals * towards_light).sum(axis=1, keepdims=True), 0.0, None)
        total += (light.intensity / top) * np.asarray(light.color)[None, :] * cosine
    return ambient + (1.0 - ambient) * np.clip(total, 0.0, 1.0)


class MatplotlibRenderer(Renderer):
    """Software renderer with the `Renderer` surface; no depth output.

    Args:
        width, height: default image size.
        max_faces: draw at most about this many visible faces (every k-th beyond that).
        ambient: shading floor in [0, 1] for faces no light reaches.
    """

    backend_name = "matplotlib"

    def __init__(self, width: int = 256, height: int = 256, *, max_faces: int = 20000, ambient: float = 0.35):
        super().__init__(width, height)
        if max_faces <= 0:
            raise ValueError(f"max_faces: expected a positive integer, got {max_faces}")
        self.max_faces = int(max_faces)
        self.ambient = float(ambient)

    def _visible_triangles(
        self, mesh: MeshSpec, camera: Camera, lights: Sequence[Light], unlit: bool
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(N, 3, 2) projected triangles, (N,) mean depths, (N, 4) shaded colours of one mesh."""
        faces = mesh.faces
        triangles = mesh.vertices[faces].astype(np.float64)  # (F, 3, 3)
        depth = camera.depth(triangles)  # (F, 3)
        normals, _ = face_normals(mesh.vertices, faces)
        centres = triangles.mean(axis=1)
        to_camera = camera.position[None, :] - centres
        facing = (normals * to_camera).sum(axis=1)
        keep = (depth > camera.znear).all(axis=1) & (depth < camera.zfar).all(axis=1)
        if not mesh.double_sided:
            keep &= facing > 0
        normals = np.where((facing < 0)[:, None], -normals, normals)  # double-sided: shade the seen side
        colors = mesh.vertex_rgba()[faces].mean(axis=1)  # (F, 4)
        if not unlit:
            shade = lambert_shading(normals[keep], centres[keep], lights, camera.pose, self.ambient)
            colors = colors[keep]
            colors[:, :3] *= shade
        else:
            colors = colors[keep]
        return camera.project(triangles[keep]), depth[keep].mean(axis=1), colors

    def render_layers(
        self,
        meshes: MeshSpec | Sequence[MeshSpec],
        camera: Camera,
        lights: Sequence[Light] | None = None,
        *,
        unlit: bool = False,
    ) -> RenderLayers:
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415 - keep imports light
        from matplotlib.collections import PolyCollection  # noqa: PLC0415
        from matplotlib.figure import Figure  # noqa: PLC0415

        lights = default_lights() if lights is None else tuple(lights)
        parts = [self._visible_triangles(mesh, camera, lights, unlit) for mesh in as_mesh_specs(meshes)]
        polygons = np.concatenate([p[0] for p in parts])
        depths = np.concatenate([p[1] for p in parts])
        colors = np.clip(np.concatenate([p[2] for p in parts]), 0.0, 1.0)
        stride = max(1, math.ceil(len(polygons) / self.max_faces))
        order = np.argsort(-depths, kind="stable")[::stride]  # far to near, every k-th face

        width, height = camera.width, camera.height
        figure = Figure(figsize=(width / _DPI, height / _DPI), dpi=_DPI)
        figure.patch.set_alpha(0.0)
        canvas = FigureCanvasAgg(figure)
        axes = figure.add_axes((0.0, 0.0, 1.0, 1.0))
        axes.set_axis_off()
        axes.patch.set_alpha(0.0)
        # pixel centres at integers, row 0 at the top: the extent of the image is [-0.5, W - 0.5]
        axes.set_xlim(-0.5, width - 0.5)
        axes.set_ylim(height - 0.5, -0.5)
        if len(order):
            # edges in the face colour close the hairline cracks between adjacent triangles
            axes.add_collection(
                PolyCollection(
                    polygons[order],
                    facecolors=colors[order],
                    edgecolors=colors[order],
                    linewidths=0.25,
                    antialiaseds=False,
                )
            )
        canvas.draw()
        rgba = np.asarray(canvas.buffer_rgba(), dtype=np.float32) / 255.0
        rgba = _fit(rgba, height, width)
        alpha = rgba[..., 3]
        return RenderLayers(color=rgba[..., :3] * alpha[..., None], alpha=alpha, depth=None)


def _fit(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Crop or zero-pad an (h, w, C) canvas to exactly (height, width, C) (guards dpi rounding)."""
    out = np.zeros((height, width, image.shape[2]), image.dtype)
    h, w = min(height, image.shape[0]), min(width, image.shape[1])
    out[:h, :w] = image[:h, :w]
    return out
