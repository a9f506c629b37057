"""OpenGL backend: pyrender offscreen rendering with one persistent context.

Creating a `pyrender.OffscreenRenderer` compiles shaders and allocates a context and framebuffers;
doing that per image dominates the cost of small renders (see `benchmarks/bench_render.py`), so a
`MeshRenderer` keeps one for its lifetime and only builds a new (cheap) scene per call. pyrender
drops the GPU buffers of meshes that are no longer in the rendered scene, so reusing the renderer
does not leak.

Colours are display colours: lit renders decode them to linear before shading (pyrender's shader
gamma-encodes its output), so a surface facing the key light shows roughly the requested colour;
unlit renders (`unlit=True`) reproduce the colours exactly.

pyrender (and therefore PyOpenGL) is imported only when the first renderer is created, after
`configure_opengl_platform()` has exported `PYOPENGL_PLATFORM`.
"""

from __future__ import annotations

import functools
import os
import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np

from poseembroider.rendering.base import Renderer, RenderLayers
from poseembroider.rendering.camera import Camera
from poseembroider.rendering.colors import RGB, as_rgb
from poseembroider.rendering.lighting import Light, default_lights
from poseembroider.rendering.mesh_spec import MeshSpec, as_mesh_specs, face_normals, vertex_normals
from poseembroider.rendering.platform import configure_opengl_platform
from poseembroider.rendering.vertex_lighting import DEFAULT_AMBIENT, DEFAULT_ROUGHNESS

_GLTF_TRIANGLES = 4


def import_pyrender(platform: str | None = None) -> tuple[Any, str]:
    """Configure the OpenGL platform, then import pyrender; returns (module, platform name)."""
    chosen = configure_opengl_platform(platform)
    import pyrender  # noqa: PLC0415 - must follow the platform choice

    return pyrender, chosen


_LIVE_RENDERERS: weakref.WeakSet[MeshRenderer] = weakref.WeakSet()
"""Open renderers of this process (EGL contexts share one display, see `_delete_egl_context_only`)."""


def _delete_egl_context_only(offscreen: Any) -> None:
    """Free one pyrender EGL renderer without terminating the EGL display.

    pyrender's `EGLPlatform.delete_context()` calls `eglTerminate` on the display, and every EGL
    context of the process lives on that same display: closing one renderer would break all the
    others (EGL_BAD_DISPLAY on their next call). While other renderers are open, only this context
    is destroyed; the last renderer to close terminates the display as usual.
    """
    from OpenGL.EGL import EGL_NO_CONTEXT, EGL_NO_SURFACE, eglDestroyContext, eglMakeCurrent  # noqa: PLC0415

    platform = offscreen._platform
    platform.make_current()
    offscreen._renderer.delete()
    display, context = platform._egl_display, platform._egl_context
    eglMakeCurrent(display, EGL_NO_SURFACE, EGL_NO_SURFACE, EGL_NO_CONTEXT)
    eglDestroyContext(display, context)
    platform._egl_context = platform._egl_display = None
    offscreen._renderer = offscreen._platform = None  # pyrender's __del__ then has nothing to free


@functools.cache
def _context_free_program_cache_class() -> type:
    """A pyrender `ShaderProgramCache` keyed by shader files and defines only.

    pyrender keys compiled programs by `OpenGL.contextdata.getContext()` too; under OSMesa with
    PyOpenGL 3.1.10 that returns a new pointer object on every call, so every frame misses the cache:
    the shaders are recompiled and the old programs are never freed, so memory and the cache grow
    with every image (thousands of images for a synthetic data set). Each pyrender renderer owns
    exactly one context, so the context is not needed in the key.
    """
    from pyrender.shader_program import ShaderProgram, ShaderProgramCache  # noqa: PLC0415

    class ContextFreeProgramCache(ShaderProgramCache):
        def get_program(self, vertex_shader, fragment_shader, geometry_shader=None, defines=None):
            defines = {} if defines is None else defines
            files = (vertex_shader, fragment_shader, geometry_shader)
            names = [os.path.basename(f) for f in files if f is not None]
            key = tuple(sorted([(name, 1) for name in names] + list(defines.items())))
            if key not in self._program_cache:
                paths = [None if f is None else os.path.join(self.shader_dir, f) for f in files]
                self._program_cache[key] = ShaderProgram(
                    vertex_shader=paths[0],
                    fragment_shader=paths[1],
                    geometry_shader=paths[2],
                    defines=defines,
                )
            return self._program_cache[key]

    return ContextFreeProgramCache


def _install_program_cache(offscreen: Any) -> None:
    """Give a pyrender OffscreenRenderer's (still empty) renderer the context-free program cache."""
    renderer = getattr(offscreen, "_renderer", None)
    cache = getattr(renderer, "_program_cache", None)
    cache_class = _context_free_program_cache_class()
    # only an empty cache is swapped: freeing compiled programs would need this context current
    if (
        cache is not None
        and not isinstance(cache, cache_class)
        and not getattr(cache, "_program_cache", True)
    ):
        renderer._program_cache = cache_class()


def gamma_decode(values: np.ndarray) -> np.ndarray:
    """Display colour components in [0, 1] -> linear: the inverse of the `c ** (1 / 2.2)` encoding
    pyrender's lit shader applies to its output."""
    return (np.asarray(values, dtype=np.float32) ** 2.2).astype(np.float32)


class MeshRenderer(Renderer):
    """pyrender offscreen renderer (OSMesa or EGL), one persistent OpenGL context.

    Args:
        width, height: default image size; a camera of another size resizes the framebuffer (with
            OSMesa that recreates the context, so keep one size per renderer when speed matters).
        ambient_light: RGB ambient term, so faces turned away from every light are not black.
        roughness: PBR roughness of every mesh (1 = matte, lower = shinier highlights).
        platform: force 'osmesa' or 'egl'; None = the environment's or the automatic choice.

    Raises:
        OpenGLPlatformError: PyOpenGL is bound to a platform that cannot render offscreen.
        Exception: whatever pyrender raises when no OpenGL context can be created (missing
            libraries, no EGL device); `create_renderer()` catches it and falls back to matplotlib.
    """

    backend_name = "pyrender"

    def __init__(
        self,
        width: int = 256,
        height: int = 256,
        *,
        ambient_light: RGB = DEFAULT_AMBIENT,
        roughness: float = DEFAULT_ROUGHNESS,
        platform: str | None = None,
    ):
        super().__init__(width, height)
        self.ambient_light = as_rgb(ambient_light, "ambient_light")
        self.roughness = float(roughness)
        self._pyrender, self.platform = import_pyrender(platform)
        self._offscreen: Any = None
        self._offscreen = self._create_offscreen(self.width, self.height)
        _LIVE_RENDERERS.add(self)

    @property
    def closed(self) -> bool:
        return self._offscreen is None

    def close(self) -> None:
        if self._offscreen is None:
            return
        offscreen, self._offscreen = self._offscreen, None
        _LIVE_RENDERERS.discard(self)
        if self.platform == "egl" and any(r.platform == "egl" for r in _LIVE_RENDERERS):
            _delete_egl_context_only(offscreen)
        else:
            offscreen.delete()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: the context may already be gone
            pass

    # ---- scene building -----------------------------------------------------------------------

    def _mesh(self, mesh: MeshSpec, unlit: bool) -> Any:
        pyrender = self._pyrender
        vertices, faces = mesh.vertices, mesh.faces
        colors = mesh.color if mesh.per_vertex_colors else None
        if mesh.smooth:  # the flat (unlit) shader reads no normals
            positions, normals, indices = vertices, None if unlit else vertex_normals(vertices, faces), faces
        else:
            positions = vertices[faces].reshape(-1, 3)
            normals = None if unlit else np.repeat(face_normals(vertices, faces)[0].astype(np.float32), 3, axis=0)
            indices = np.arange(3 * len(faces)).reshape(-1, 3)
            colors = None if colors is None else colors[faces].reshape(-1, 4)
        base = np.ones(4, np.float32) if colors is not None else mesh.color.copy()
        if not unlit:  # shading happens in linear space; pyrender gamma-encodes the result
            base[:3] = gamma_decode(base[:3])
            if colors is not None:
                colors = np.concatenate([gamma_decode(colors[:, :3]), colors[:, 3:]], axis=1)
        transparent = base[3] < 1.0 or (colors is not None and bool((colors[:, 3] < 1.0).any()))
        material = pyrender.MetallicRoughnessMaterial(
            baseColorFactor=base,
            metallicFactor=0.0,
            roughnessFactor=self.roughness,
            alphaMode="BLEND" if transparent else "OPAQUE",
            doubleSided=mesh.double_sided,
        )
        primitive = pyrender.Primitive(
            positions=positions,
            normals=normals,
            indices=indices,
            color_0=colors,
            material=material,
            mode=_GLTF_TRIANGLES,
        )
        return pyrender.Mesh([primitive])

    def _light(self, light: Light) -> Any:
        cls = self._pyrender.DirectionalLight if light.kind == "directional" else self._pyrender.PointLight
        return cls(color=np.asarray(light.color), intensity=light.intensity)

    def _scene(
        self, meshes: list[MeshSpec], camera: Camera, lights: Sequence[Light] | None, unlit: bool
    ) -> Any:
        pyrender = self._pyrender
        scene = pyrender.Scene(bg_color=[0.0, 0.0, 0.0, 0.0], ambient_light=list(self.ambient_light))
        for mesh in meshes:
            scene.add(self._mesh(mesh, unlit))
        # pyrender measures the principal point from the image corner, OpenCV-style cameras from
        # the first pixel's centre: shift by half a pixel so `camera.project()` is exact
        scene.add(
            pyrender.IntrinsicsCamera(
                camera.fx, camera.fy, camera.cx + 0.5, camera.cy + 0.5, znear=camera.znear, zfar=camera.zfar
            ),
            pose=np.asarray(camera.pose),
        )
        if not unlit:
            for light in default_lights() if lights is None else lights:
                scene.add(self._light(light), pose=light.world_pose(camera.pose))
        return scene

    def _create_offscreen(self, width: int, height: int) -> Any:
        offscreen = self._pyrender.OffscreenRenderer(width, height)
        _install_program_cache(offscreen)
        return offscreen

    def _offscreen_for(self, camera: Camera) -> Any:
        if self._offscreen is None:
            raise RuntimeError("this MeshRenderer was closed")
        offscreen = self._offscreen
        if (offscreen.viewport_width, offscreen.viewport_height) != (camera.width, camera.height):
            if offscreen._platform.supports_framebuffers():  # EGL: pyrender resizes the framebuffer
                offscreen.viewport_width, offscreen.viewport_height = camera.width, camera.height
            else:  # OSMesa renders into a buffer of fixed size: new context (with our program cache)
                offscreen.delete()
                self._offscreen = offscreen = self._create_offscreen(camera.width, camera.height)
        _install_program_cache(offscreen)
        return offscreen

    # ---- rendering ----------------------------------------------------------------------------

    def render_layers(
        self,
        meshes: MeshSpec | Sequence[MeshSpec],
        camera: Camera,
        lights: Sequence[Light] | None = None,
        *,
        unlit: bool = False,
    ) -> RenderLayers:
        scene = self._scene(as_mesh_specs(meshes), camera, lights, unlit)
        flags = self._pyrender.RenderFlags.RGBA
        if unlit:
            flags |= self._pyrender.RenderFlags.FLAT
        color, depth = self._offscreen_for(camera).render(scene, flags=flags)
        depth = np.array(depth, dtype=np.float32)
        rgb = color[..., :3].astype(np.float32) / 255.0
        if color.shape[-1] == 4:  # framebuffer path (EGL): anti-aliased coverage, premultiplied colour
            alpha = color[..., 3].astype(np.float32) / 255.0
        else:  # OSMesa path: pyrender reads RGB only; coverage is where depth was written
            alpha = (depth > 0).astype(np.float32)
        return RenderLayers(color=rgb, alpha=alpha, depth=depth)

    def render_meshes_depth(self, meshes: MeshSpec | Sequence[MeshSpec], camera: Camera) -> np.ndarray:
        scene = self._scene(as_mesh_specs(meshes), camera, lights=(), unlit=True)
        depth = self._offscreen_for(camera).render(scene, flags=self._pyrender.RenderFlags.DEPTH_ONLY)
        return np.array(depth, dtype=np.float32)
