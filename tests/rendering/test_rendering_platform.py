"""OpenGL platform choice: environment first, OSMesa when it loads, else EGL; clear conflict errors."""

from __future__ import annotations

import subprocess
import sys
import types

import pytest

from poseembroider.rendering import platform as gl_platform
from poseembroider.rendering.platform import OpenGLPlatformError


def _fake_loaded_platform(monkeypatch, class_name: str) -> None:
    module = types.ModuleType("OpenGL.platform")
    module.PLATFORM = type(class_name, (), {})()
    monkeypatch.setitem(sys.modules, "OpenGL.platform", module)


@pytest.fixture
def fresh_process(monkeypatch):
    """As if OpenGL had not been imported and PYOPENGL_PLATFORM were unset."""
    monkeypatch.delenv("PYOPENGL_PLATFORM", raising=False)
    monkeypatch.delitem(sys.modules, "OpenGL.platform", raising=False)


def test_user_setting_is_respected(monkeypatch, fresh_process):
    monkeypatch.setenv("PYOPENGL_PLATFORM", "egl")
    monkeypatch.setattr(gl_platform, "osmesa_available", lambda: True)
    assert gl_platform.choose_platform() == "egl"
    assert gl_platform.configure_opengl_platform() == "egl"


@pytest.mark.parametrize(("osmesa", "expected"), [(True, "osmesa"), (False, "egl")])
def test_prefers_osmesa_when_it_loads(monkeypatch, fresh_process, osmesa, expected):
    monkeypatch.setattr(gl_platform, "osmesa_available", lambda: osmesa)
    assert gl_platform.choose_platform() == expected
    assert gl_platform.configure_opengl_platform() == expected
    assert gl_platform.os.environ["PYOPENGL_PLATFORM"] == expected


def test_old_pyopengl_rules_out_osmesa(monkeypatch):
    monkeypatch.setattr(gl_platform, "pyopengl_version", lambda: (3, 1, 0))
    assert not gl_platform.osmesa_available()


def test_already_bound_to_another_platform_is_a_clear_error(monkeypatch, fresh_process):
    _fake_loaded_platform(monkeypatch, "GLXPlatform")  # e.g. `import pyrender` without the variable
    monkeypatch.setattr(gl_platform, "osmesa_available", lambda: True)
    assert gl_platform.loaded_opengl_platform() == "glx"
    with pytest.raises(OpenGLPlatformError, match="already bound to the 'glx' platform"):
        gl_platform.configure_opengl_platform()


def test_adopts_a_usable_platform_already_bound(monkeypatch, fresh_process):
    _fake_loaded_platform(monkeypatch, "EGLPlatform")
    monkeypatch.setattr(gl_platform, "osmesa_available", lambda: True)
    assert gl_platform.configure_opengl_platform() == "egl"


def test_unsupported_or_conflicting_requests_raise(monkeypatch, fresh_process):
    monkeypatch.setenv("PYOPENGL_PLATFORM", "glx")
    with pytest.raises(OpenGLPlatformError, match="osmesa"):
        gl_platform.configure_opengl_platform()
    monkeypatch.setenv("PYOPENGL_PLATFORM", "egl")
    with pytest.raises(OpenGLPlatformError, match="environment sets"):
        gl_platform.configure_opengl_platform("osmesa")


def test_importing_the_package_has_no_side_effects():
    code = (
        "import os, sys; os.environ.pop('PYOPENGL_PLATFORM', None); import poseembroider.rendering; "
        "bad = [m for m in ('pyrender', 'OpenGL', 'matplotlib.pyplot') if m in sys.modules]; "
        "assert not bad, bad; assert 'PYOPENGL_PLATFORM' not in os.environ"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
