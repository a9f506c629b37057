"""Backend registry and `create_renderer`, including the fallback when OpenGL is unavailable."""

from __future__ import annotations

import logging

import pytest

from poseembroider.rendering import (
    RENDERER_BACKENDS,
    MatplotlibRenderer,
    MeshRenderer,
    create_renderer,
    list_backends,
    register_backend,
)
from poseembroider.rendering.backends import BACKEND_ENV_VAR


class _NoContext(MeshRenderer):
    def __init__(self, *args, **kwargs):
        raise RuntimeError("no OpenGL context (simulated)")


@pytest.fixture(autouse=True)
def _no_env_override(monkeypatch):
    monkeypatch.delenv(BACKEND_ENV_VAR, raising=False)


def test_registry_lists_both_backends_in_preference_order():
    assert list_backends()[:2] == ["pyrender", "matplotlib"]
    renderer = create_renderer(40, 30, backend="matplotlib", max_faces=50)
    assert isinstance(renderer, MatplotlibRenderer) and (renderer.width, renderer.height) == (40, 30)
    assert renderer.max_faces == 50
    with pytest.raises(ValueError, match="backend.*'nope'"):
        create_renderer(backend="nope")
    with pytest.raises(TypeError):
        register_backend("bad", dict)


def test_auto_falls_back_to_matplotlib_with_a_warning(monkeypatch, caplog):
    monkeypatch.setitem(RENDERER_BACKENDS, "pyrender", _NoContext)
    with caplog.at_level(logging.WARNING, logger="poseembroider.rendering.backends"):
        renderer = create_renderer(32, 32)
    assert isinstance(renderer, MatplotlibRenderer)
    assert "simulated" in caplog.text and "matplotlib" in caplog.text


def test_environment_overrides_auto(monkeypatch):
    monkeypatch.setenv(BACKEND_ENV_VAR, "matplotlib")
    assert isinstance(create_renderer(16, 16), MatplotlibRenderer)


@pytest.mark.render
def test_auto_prefers_opengl_when_a_context_exists(mesh_renderer):
    with create_renderer(16, 16) as renderer:
        assert isinstance(renderer, MeshRenderer)
        assert renderer.platform in ("osmesa", "egl")
