"""Rendering backends by name, and `create_renderer()` which picks one that works here.

"auto" tries the OpenGL backend (pyrender on OSMesa or EGL) and falls back to matplotlib, with a
logged warning, when no offscreen OpenGL context can be created. `POSEEMBROIDER_RENDER_BACKEND`
overrides "auto" (e.g. `=matplotlib` on a machine whose OpenGL driver crashes instead of failing).
"""

from __future__ import annotations

import logging
import os

from poseembroider.rendering.base import Renderer
from poseembroider.rendering.matplotlib_renderer import MatplotlibRenderer
from poseembroider.rendering.mesh_renderer import MeshRenderer

logger = logging.getLogger(__name__)

BACKEND_ENV_VAR = "POSEEMBROIDER_RENDER_BACKEND"

RENDERER_BACKENDS: dict[str, type[Renderer]] = {
    MeshRenderer.backend_name: MeshRenderer,
    MatplotlibRenderer.backend_name: MatplotlibRenderer,
}
"""Backend name -> Renderer class; "auto" tries them in this order."""


def register_backend(name: str, cls: type[Renderer]) -> None:
    """Add (or replace) a backend; `cls(width, height, **kwargs)` must build a `Renderer`."""
    if not (isinstance(cls, type) and issubclass(cls, Renderer)):
        raise TypeError(f"backend {name!r}: expected a Renderer subclass, got {cls!r}")
    RENDERER_BACKENDS[name] = cls


def list_backends() -> list[str]:
    return list(RENDERER_BACKENDS)


def create_renderer(width: int = 256, height: int = 256, backend: str = "auto", **kwargs: object) -> Renderer:
    """Build a renderer.

    Args:
        width, height: default image size.
        backend: a name from `list_backends()`, or "auto" (the environment's choice, else the first
            backend that can be created, in registry order).
        kwargs: passed to the backend class (only for a named backend).

    Raises:
        ValueError: unknown backend name.
    """
    if backend == "auto":
        backend = os.environ.get(BACKEND_ENV_VAR, "auto") or "auto"
    if backend != "auto":
        if backend not in RENDERER_BACKENDS:
            raise ValueError(f"backend: expected 'auto' or one of {list_backends()}, got {backend!r}")
        return RENDERER_BACKENDS[backend](width, height, **kwargs)
    errors = []
    for name, cls in RENDERER_BACKENDS.items():
        try:
            renderer = cls(width, height)
        except Exception as error:  # noqa: BLE001 - any failure to get a context means "try the next"
            errors.append(f"{name}: {type(error).__name__}: {error}")
            continue
        if errors:
            logger.warning("rendering with the %r backend; unavailable: %s", name, "; ".join(errors))
        return renderer
    raise RuntimeError("no rendering backend could be created: " + "; ".join(errors))
