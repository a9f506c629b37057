"""Session-wide fixtures: an isolated configuration and one procedural body model for all tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from poseembroider import config

pytest_plugins = ("text_fixtures",)  # caption corpus, WordPiece tokenizer, fake DistilBERT folder (session-wide)


@pytest.fixture(scope="session", autouse=True)
def isolated_config(tmp_path_factory) -> dict[str, Path | None]:
    """Point every writable path of the configuration at a temporary folder, so tests never write
    into the project (experiments/, cache/, tools/) nor pick up a licensed SMPL-X file by accident."""
    root = tmp_path_factory.mktemp("poseembroider_home")
    paths = {
        "SMPLX_BODY_MODEL_PATH": None,  # the procedural body, chosen explicitly (no licensed file, no warning)
        "PROCEDURAL_BODY_MODEL_PATH": root / "procedural_smplx",
        "DATA_CACHE_DIR": root / "cache",
        "SYNTH_DATA_DIR": root / "synthetic",
        "MODELS_ROOT": root / "models",
        "GENERAL_EXP_OUTPUT_DIR": root / "experiments",
    }
    saved = {name: getattr(config, name) for name in paths}
    for name, value in paths.items():
        setattr(config, name, value)
    yield paths
    for name, value in saved.items():
        setattr(config, name, value)


@pytest.fixture(scope="session")
def procedural_model_file(isolated_config) -> Path:
    """The procedural SMPL-X-format file, built once per session at the configured place."""
    from poseembroider.body.procedural_model import build_procedural_smplx

    return build_procedural_smplx(isolated_config["PROCEDURAL_BODY_MODEL_PATH"])


@pytest.fixture(scope="session")
def body_model(procedural_model_file):
    """A `BodyModel` over the procedural file (eval mode)."""
    from poseembroider.body.body_model import BodyModel

    return BodyModel.from_directory(procedural_model_file.parent.parent).eval()


@pytest.fixture(scope="module")
def one_torch_thread():
    """Torch on one thread for a module of small-tensor tests: one thread avoids OpenMP synchronisation
    stalls when the 2 cores are shared (10x here); the previous count is restored after the module.
    Use with `pytestmark = pytest.mark.usefixtures("one_torch_thread")`."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test (the offline world must never reach for a hub)."""
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
