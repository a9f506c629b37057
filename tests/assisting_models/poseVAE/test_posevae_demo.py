"""The streamlit PoseVAE demo shows a pose, its reconstruction and prior samples (tiny untrained model)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

import poseembroider.assisting_models.poseVAE as posevae_pkg
from poseembroider.assisting_models.poseVAE.demo_poseVAE import MODEL_ENV_VAR
from poseembroider.assisting_models.poseVAE.model_poseVAE import PoseVAE, PoseVAEConfig

DEMO = Path(posevae_pkg.__file__).parent / "demo_poseVAE.py"


@pytest.mark.render
def test_demo_shows_original_reconstruction_and_samples(tmp_path, monkeypatch, procedural_model_file, posevae_dataset):
    torch.manual_seed(0)
    PoseVAE(PoseVAEConfig(latentD=8, num_neurons=32)).save_pretrained(tmp_path / "tiny_vae")
    monkeypatch.setenv(MODEL_ENV_VAR, str(tmp_path / "tiny_vae"))
    at = AppTest.from_file(str(DEMO), default_timeout=120).run()
    assert not at.exception, at.exception
    assert at.text_input(key="model_path").value == str(tmp_path / "tiny_vae")
    assert at.selectbox(key="source").value.startswith("CMU")
    assert len(at.get("image")) == 2 + 4  # original, reconstruction, 4 prior samples
    assert any("mpjpe_mm" in m.value for m in at.markdown)
    at.number_input(key="index").set_value(7).run()
    at.slider(key="n_samples").set_value(2).run()
    assert not at.exception, at.exception
    assert len(at.get("image")) == 2 + 2
    at.selectbox(key="source").set_value(posevae_dataset).run()  # poses of a dataset cache
    assert not at.exception, at.exception
    assert at.selectbox(key="split").value in ("train", "val") and len(at.get("image")) == 2 + 2


@pytest.mark.render
def test_demo_reports_a_missing_model(tmp_path, monkeypatch):
    monkeypatch.setenv(MODEL_ENV_VAR, str(tmp_path / "nothing_here"))
    at = AppTest.from_file(str(DEMO), default_timeout=60).run()
    assert not at.exception, at.exception
    assert any("Cannot load a PoseVAE" in e.value for e in at.error)
