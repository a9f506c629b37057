"""Choose the OpenGL platform for offscreen rendering, before OpenGL is first imported.

PyOpenGL binds its platform (GLX, EGL, OSMesa) once, when `OpenGL.GL` is first imported (importing
`pyrender` does that), from the `PYOPENGL_PLATFORM` environment variable; pyrender reads the same
variable again when an `OffscreenRenderer` is created. Both must agree, and the choice cannot be
changed afterwards in the same process. The default (GLX) needs a display, which servers and CI do
not have, so a renderer calls `configure_opengl_platform()` before it imports pyrender:

- a `PYOPENGL_PLATFORM` set by the user is respected;
- otherwise OSMesa (pure software, no display, no GPU) when libOSMesa loads and PyOpenGL is recent
  enough (its OSMesa bindings need PyOpenGL >= 3.1.5), else EGL (GPU, or Mesa's software EGL).

Nothing here runs at import time; `configure_opengl_platform()` sets the environment variable only
when a renderer is created.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from importlib import metadata

ENV_VAR = "PYOPENGL_PLATFORM"
SUPPORTED_PLATFORMS: tuple[str, ...] = ("osmesa", "egl")
"""The platforms pyrender's `OffscreenRenderer` can render with, without a display."""

_MIN_PYOPENGL_FOR_OSMESA = (3, 1, 5)
_OSMESA_LIBRARY_NAMES = ("libOSMesa.so.8", "libOSMesa.so.6", "libOSMesa.so")


class OpenGLPlatformError(RuntimeError):
    """No usable offscreen OpenGL platform, or PyOpenGL was already bound to another one."""


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def pyopengl_version() -> tuple[int, ...] | None:
    """Installed PyOpenGL version, read from package metadata (without importing OpenGL)."""
    try:
        return _version_tuple(metadata.version("PyOpenGL"))
    except metadata.PackageNotFoundError:
        return None


def osmesa_available() -> bool:
    """True when libOSMesa can be loaded and PyOpenGL has working OSMesa bindings."""
    version = pyopengl_version()
    if version is None or version < _MIN_PYOPENGL_FOR_OSMESA:
        return False
    found = ctypes.util.find_library("OSMesa")
    for name in ((found,) if found else ()) + _OSMESA_LIBRARY_NAMES:
        try:
            ctypes.CDLL(name)
        except OSError:
            continue
        return True
    return False


def loaded_opengl_platform() -> str | None:
    """The platform PyOpenGL is already bound to in this process ('osmesa', 'egl', 'glx', ...),
    or None when `OpenGL.platform` has not been imported yet."""
    module = sys.modules.get("OpenGL.platform")
    platform = getattr(module, "PLATFORM", None) if module is not None else None
    if platform is None:
        return None
    name = type(platform).__name__.lower()
    return name[: -len("platform")] if name.endswith("platform") else name


def choose_platform() -> str:
    """The platform a renderer would use now; reads the environment, changes nothing."""
    requested = os.environ.get(ENV_VAR)
    if requested:
        return requested.lower()
    loaded = loaded_opengl_platform()
    if loaded in SUPPORTED_PLATFORMS:
        return loaded
    return "osmesa" if osmesa_available() else "egl"


def configure_opengl_platform(platform: str | None = None) -> str:
    """Pick the offscreen platform and export it as `PYOPENGL_PLATFORM`; returns its name.

    Args:
        platform: force 'osmesa' or 'egl'; None = `choose_platform()`.

    Raises:
        OpenGLPlatformError: the platform is not one pyrender renders offscreen with, it conflicts
            with a user-set `PYOPENGL_PLATFORM`, or PyOpenGL was already imported (e.g. by an earlier
            `import pyrender`) bound to a different platform; the process cannot switch then.
    """
    requested = os.environ.get(ENV_VAR)
    chosen = (platform or choose_platform()).lower()
    if chosen not in SUPPORTED_PLATFORMS:
        raise OpenGLPlatformError(
            f"offscreen rendering needs {ENV_VAR} to be one of {SUPPORTED_PLATFORMS}, got {chosen!r}"
        )
    if platform is not None and requested and requested.lower() != chosen:
        raise OpenGLPlatformError(
            f"platform {platform!r} was requested but the environment sets {ENV_VAR}={requested!r}"
        )
    loaded = loaded_opengl_platform()
    if loaded is not None and loaded != chosen:
        raise OpenGLPlatformError(
            f"PyOpenGL is already bound to the {loaded!r} platform in this process (pyrender or OpenGL "
            f"was imported before the renderer was created), but offscreen rendering needs {chosen!r}. "
            f"Set {ENV_VAR}={chosen} in the environment before anything imports pyrender, or create the "
            "renderer before importing pyrender."
        )
    os.environ[ENV_VAR] = chosen
    return chosen
