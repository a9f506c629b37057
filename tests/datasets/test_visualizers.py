"""The streamlit dataset browsers (`datasets/visualize/`) and the widgets the apps share, driven by AppTest."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import poseembroider.datasets.visualize as visualize_pkg
from poseembroider.datasets.visualization import AZIMUTH_RANGE, AZIMUTH_STEP

APPS = Path(visualize_pkg.__file__).parent


def _split_picker_app() -> None:
    """A page with only the shared dataset / split picker, over a listing of four splits."""
    from pathlib import Path

    import streamlit as st

    from poseembroider.datasets.discovery import AvailableDataset
    from poseembroider.datasets.visualize.common import choose_dataset_and_split

    found = [
        AvailableDataset("synthscript-a", split, 8, "poses", Path("x")) for split in ("train", "dev", "val", "test")
    ]
    found.append(AvailableDataset("synthscript-b", "train", 8, "poses", Path("y")))
    preferred = st.query_params.get("split")
    name, split = choose_dataset_and_split(found, None, preferred)
    st.markdown(f"picked {name} {split}")


def test_the_split_picker_opens_on_the_validation_split():
    at = AppTest.from_function(_split_picker_app, default_timeout=30).run()
    assert not at.exception, at.exception
    assert at.selectbox(key="split").options == ["val", "test", "train", "dev"]
    assert at.selectbox(key="split").value == "val"
    at.selectbox(key="dataset").set_value("synthscript-b").run()  # a dataset with only a train split
    assert at.selectbox(key="split").value == "train" and at.markdown[0].value == "picked synthscript-b train"
    at = AppTest.from_function(_split_picker_app, default_timeout=30)
    at.query_params["split"] = "test"
    assert at.run().selectbox(key="split").value == "test"  # --split chooses another one


def _check_viewpoint_slider(at: AppTest) -> None:
    slider = at.slider(key="azimuth")
    assert (slider.min, slider.max, slider.step, slider.value) == (*AZIMUTH_RANGE, AZIMUTH_STEP, 0)
    for side in (90, -90):  # the side views are reachable
        slider.set_value(side).run()
        assert not at.exception, at.exception
        assert at.slider(key="azimuth").value == side


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
    _check_viewpoint_slider(at)
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
    _check_viewpoint_slider(at)


def test_image_browsers_skip_the_pose_only_pools():
    from poseembroider.datasets.discovery import AvailableDataset

    def has_images(name: str) -> bool:
        return AvailableDataset(name, "train", 8, "poses", Path("x")).has_images

    assert has_images("synthscript-a_overlap30_res224_j16_sf11")
    assert not has_images("synthposes-a_overlap30_res224_j16_sf11")
    assert not has_images("synthpairs-a_overlap30_res224_j16_sf11-in15_out20_t05_sim0709")
    assert not has_images("nofamily-a")
