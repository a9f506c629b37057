from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import poseembroider.datasets as datasets_pkg

APPS = Path(datasets_pkg.__file__).parent


@pytest.mark.render
def test_script_browser_shows_crop_pose_and_texts(tiny_synth_dataset, body_model):
    at = AppTest.from_file(str(APPS / "visualize_dataset_script.py"), default_timeout=120).run()
    assert not at.exception, at.exception
    # other test folders may have written datasets to the session's cache too: pick the fixture's
    at.selectbox(key="dataset").set_value(tiny_synth_dataset["script"]).run()
    assert not at.exception, at.exception
    assert len(at.get("image")) == 2  # the crop and the rendered pose
    texts = [m.value for m in at.markdown]
    assert any("fixture text 0 a" in t for t in texts) and any("fixture text 0 c" in t for t in texts)
    at.number_input(key="index").set_value(3).run()
    assert not at.exception
    assert any("fixture text 3 b" in m.value for m in at.markdown)
    at.slider(key="azimuth").set_value(90).run()
    at.checkbox(key="camera_view").check().run()
    assert not at.exception


@pytest.mark.render
def test_fix_browser_shows_both_sides_and_instructions(tiny_synth_dataset, body_model):
    at = AppTest.from_file(str(APPS / "visualize_dataset_fix.py"), default_timeout=120).run()
    assert not at.exception, at.exception
    at.selectbox(key="dataset").set_value(tiny_synth_dataset["fix"]).run()
    assert not at.exception, at.exception
    assert any("fixture instruction zero" in m.value for m in at.markdown)
    assert len(at.get("image")) == 4  # image and pose, for A and for B
    at.number_input(key="index").set_value(1).run()
    assert not at.exception
    assert any("fixture instruction one" in m.value for m in at.markdown)
