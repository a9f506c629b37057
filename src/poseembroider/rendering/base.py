"""The surface every rendering backend offers, built on one method: `render_layers`.

A backend turns meshes + camera + lights into `RenderLayers` (premultiplied colour, coverage alpha,
depth); compositing over a background, RGBA export and the single-mesh shortcuts are shared here, so
the OpenGL and the matplotlib backends behave the same way from the caller's side.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from poseembroider.rendering.background import BackgroundLike, composite
from poseembroider.rendering.camera import Camera
from poseembroider.rendering.colors import DEFAULT_MESH_COLOR
from poseembroider.rendering.lighting import Light
from poseembroider.rendering.mesh_spec import MeshSpec, as_mesh_specs


@dataclass(frozen=True, eq=False)
class RenderLayers:
    """One rendered view.

    Attributes:
        color: (H, W, 3) float32 in [0, 1], premultiplied by `alpha` (black where nothing is drawn).
        alpha: (H, W) float32 coverage in [0, 1] (fractional on anti-aliased edges).
        depth: (H, W) float32 distance along the viewing axis, 0 where nothing is drawn; None for
            backends without a depth buffer.
    """

    color: np.ndarray
    alpha: np.ndarray
    depth: np.ndarray | None = None

    @property
    def mask(self) -> np.ndarray:
        """(H, W) bool: pixels covered by a mesh."""
        return self.alpha > 0

    def composite(self, background: BackgroundLike = None) -> np.ndarray:
        """(H, W, 3) uint8 over a background colour or image (None = white)."""
        return composite(self.color, self.alpha, background)

    def rgba(self) -> np.ndarray:
        """(H, W, 4) uint8, straight (not premultiplied) alpha, transparent where nothing is drawn."""
        alpha = self.alpha[..., None]
        with np.errstate(divide="ignore", invalid="ignore"):
            straight = np.where(alpha > 0, self.color / np.maximum(alpha, 1e-6), 0.0)
        out = np.concatenate([straight, alpha], axis=-1)
        return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)


class Renderer(abc.ABC):
    """Renders meshes to numpy images. Use as a context manager or call `close()` when done.

    `width` and `height` are the default image size; each call renders at its camera's size.
    """

    backend_name: ClassVar[str] = ""

    def __init__(self, width: int = 256, height: int = 256):
        if int(width) != width or int(height) != height or width <= 0 or height <= 0:
            raise ValueError(f"width, height: expected positive integers, got {width}, {height}")
        self.width, self.height = int(width), int(height)

    @abc.abstractmethod
    def render_layers(
        self,
        meshes: MeshSpec | Sequence[MeshSpec],
        camera: Camera,
        lights: Sequence[Light] | None = None,
        *,
        unlit: bool = False,
    ) -> RenderLayers:
        """Render meshes into colour, alpha and depth layers.

        Args:
            meshes: one MeshSpec or several, drawn in one scene (nearer surfaces occlude farther).
            camera: viewpoint and image size.
            lights: None = `default_lights()` (camera-attached three-point lighting).
            unlit: draw the plain mesh colours without shading (masks, segmentation, colour checks).
        """

    def close(self) -> None:  # noqa: B027 - optional hook: backends without resources keep it
        """Release backend resources; the renderer cannot be used afterwards."""

    def __enter__(self) -> Renderer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def render_meshes(
        self,
        meshes: MeshSpec | Sequence[MeshSpec],
        camera: Camera,
        lights: Sequence[Light] | None = None,
        background: BackgroundLike = None,
        *,
        unlit: bool = False,
    ) -> np.ndarray:
        """(H, W, 3) uint8 image of several meshes over a background (None = white)."""
        return self.render_layers(as_mesh_specs(meshes), camera, lights, unlit=unlit).composite(background)

    def render(
        self,
        vertices: object,
        faces: object,
        camera: Camera,
        lights: Sequence[Light] | None = None,
        color: Sequence[float] | np.ndarray = DEFAULT_MESH_COLOR,
        background: BackgroundLike = None,
        smooth: bool = True,
        *,
        unlit: bool = False,
    ) -> np.ndarray:
        """(H, W, 3) uint8 image of one mesh.

        Args:
            vertices: (V, 3) numpy array or torch tensor.
            faces: (F, 3) integer indices.
            camera: viewpoint and image size.
            lights: None = camera-attached three-point lighting.
            color: RGB(A) floats in [0, 1], or per-vertex colours (V, 3|4).
            background: RGB floats, an (H, W, 3) uint8 image, or None (white).
            smooth: smooth or flat shading.
            unlit: plain colours, no shading.
        """
        mesh = MeshSpec(vertices, faces, color, smooth)
        return self.render_meshes([mesh], camera, lights, background, unlit=unlit)

    def render_rgba(
        self,
        vertices: object,
        faces: object,
        camera: Camera,
        lights: Sequence[Light] | None = None,
        color: Sequence[float] | np.ndarray = DEFAULT_MESH_COLOR,
        smooth: bool = True,
        *,
        unlit: bool = False,
    ) -> np.ndarray:
        """(H, W, 4) uint8 image of one mesh, transparent where it is not."""
        mesh = MeshSpec(vertices, faces, color, smooth)
        return self.render_layers([mesh], camera, lights, unlit=unlit).rgba()

    def render_depth(self, vertices: object, faces: object, camera: Camera) -> np.ndarray:
        """(H, W) float32 depth along the viewing axis (`camera.depth()` units), 0 where empty."""
        return self.render_meshes_depth([MeshSpec(vertices, faces)], camera)

    def render_meshes_depth(self, meshes: MeshSpec | Sequence[MeshSpec], camera: Camera) -> np.ndarray:
        """(H, W) float32 depth of several meshes (occlusion, visibility), 0 where empty."""
        depth = self.render_layers(as_mesh_specs(meshes), camera, unlit=True).depth
        if depth is None:
            raise NotImplementedError(f"the {self.backend_name!r} backend has no depth buffer")
        return depth
