"""The streamlit PoseVAE demo shows a pose, its reconstruction and prior samples (tiny untrained model)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

import poseembroider.assisting_models.poseVAE as posevae_pkg
from poseembroider.assisting_models.poseVAE.model_poseVAE import PoseVAE, PoseVAEConfig
from poseembroider.datasets.visualization import AZIMUTH_RANGE, AZIMUTH_STEP
from poseembroider.demos import POSEVAE_MODELS

DEMO = Path(posevae_pkg.__file__).parent / "demo_poseVAE.py"


@pytest.mark.render
def test_demo_shows_original_reconstruction_and_samples(tmp_path, monkeypatch, procedural_model_file, posevae_dataset):
    torch.manual_seed(0)
    PoseVAE(PoseVAEConfig(latentD=8, num_neurons=32)).save_pretrained(tmp_path / "tiny_vae")
    monkeypatch.setenv(POSEVAE_MODELS.env_var, str(tmp_path / "tiny_vae"))
    at = AppTest.from_file(str(DEMO), default_timeout=120).run()
    assert not at.exception, at.exception
    assert at.text_input(key="model_path").value == str(tmp_path / "tiny_vae")
    assert at.radio(key="source").value == "a dataset"  # a dataset exists: its poses first
    at.selectbox(key="dataset").set_value(posevae_dataset).run()
    assert not at.exception, at.exception
    assert at.selectbox(key="split").options == ["val", "train"]
    assert at.selectbox(key="split").value == "val"  # the validation split first
    assert len(at.get("image")) == 2 + 4  # original, reconstruction, 4 prior samples
    assert any("mpjpe_mm" in m.value for m in at.markdown)
    at.number_input(key="index").set_value(7).run()
    at.slider(key="n_samples").set_value(2).run()
    assert not at.exception, at.exception
    assert len(at.get("image")) == 2 + 2
    slider = at.slider(key="azimuth")
    assert (slider.min, slider.max, slider.step) == (*AZIMUTH_RANGE, AZIMUTH_STEP)
    slider.set_value(90).run()  # a side view
    assert not at.exception, at.exception
    at.radio(key="source").set_value("the packaged CMU mocap poses").run()
    assert not at.exception, at.exception
    assert len(at.get("image")) == 2 + 2 and any(c.value == "pose 7 of CMU mocap" for c in at.caption)


@pytest.mark.render
def test_demo_reports_a_missing_model(tmp_path, monkeypatch):
    monkeypatch.setenv(POSEVAE_MODELS.env_var, str(tmp_path / "nothing_here"))
    at = AppTest.from_file(str(DEMO), default_timeout=60).run()
    assert not at.exception, at.exception
    assert any("Cannot load a PoseVAE" in e.value for e in at.error)


def test_demo_without_any_model_says_how_to_get_one(monkeypatch):
    monkeypatch.delenv(POSEVAE_MODELS.env_var, raising=False)
    at = AppTest.from_file(str(DEMO), default_timeout=60).run()  # the session's models root is empty
    assert not at.exception, at.exception
    assert at.text_input(key="model_path").value == ""
    assert any("No PoseVAE model is registered" in i.value for i in at.info) and not at.error
