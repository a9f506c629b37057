"""Uploads and megabyte texts in the running streamlit apps (AppTest), over one tiny world: the retrieval demo
(`demo_core.py`), the mesh-recovery demo (pose estimation), the instruction-generation demo (both pictures)
and, for the model field, the PoseVAE demo.

Every file of `reliability_uploads.BAD_UPLOADS` is uploaded in turn: the page shows an error that names the
file, raises nothing, shows no result; a good picture uploaded after them is used (the app stayed up).
Texts of megabytes typed into the description boxes and the model fields (and the URL's `?model=`) get a
short message, not a traceback nor a page carrying the megabytes back.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from reliability_uploads import BAD_UPLOADS, GOOD_UPLOADS, MEGABYTE_TEXT, reference_picture, with_orientation
from streamlit.testing.v1 import AppTest

import poseembroider
from intermodality_world import make_intermodality_world
from poseembroider.demo_core_helpers import MAX_TEXT_CHARS
from poseembroider.demos import MAX_MODEL_NAME_CHARS
from poseembroider.downstream.instruction_generation.model_instruction_generation import (
    InstructionGenerator,
    InstructionGeneratorConfig,
)
from poseembroider.downstream.pose_estimation.model_pose_estimation import (
    HPSEstimator,
    HPSEstimatorConfig,
    representation_fingerprint,
)
from poseembroider.model import PoseEmbroider

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread", "procedural_model_file")]

PACKAGE = Path(poseembroider.__file__).parent
APPS = {
    "retrieval demo": PACKAGE / "demo_core.py",
    "mesh-recovery demo": PACKAGE / "downstream" / "pose_estimation" / "demo_pose_estimation.py",
    "instruction-generation demo": PACKAGE / "downstream" / "instruction_generation" / "demo_instruction_generation.py",
    "PoseVAE demo": PACKAGE / "assisting_models" / "poseVAE" / "demo_poseVAE.py",
}
UPLOAD_SOURCE = {
    "retrieval demo": "an uploaded picture",
    "mesh-recovery demo": "an uploaded picture",
    "instruction-generation demo": "two uploaded pictures",
}
MAX_PAGE_CHARS = 20_000  # what the texts of a page may weigh after a megabyte was typed


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    """The intermodality world plus an untrained mesh-recovery head and instruction generator over it."""
    folder = tmp_path_factory.mktemp("uploads_apps")
    world = make_intermodality_world(folder, "uploadworld", n_train=4, n_val=4)
    rep_dir = world["models"]["PoseEmbroider"]
    torch.manual_seed(0)
    head = HPSEstimator(
        HPSEstimatorConfig(
            latentD=16,
            regressor_hidden=32,
            pretrained_representation_model=str(rep_dir),
            representation_model_fingerprint=representation_fingerprint(PoseEmbroider.from_pretrained(rep_dir)),
        )
    )
    head.set_mean_pose(torch.as_tensor(world["poses"]["train"]).float().mean(0))
    generator = InstructionGenerator(
        InstructionGeneratorConfig(
            latentD=16,
            comparison_latentD=16,
            text_decoder_name=f"transformer_{folder / 'encoders' / 'text_backbone'}",
            pretrained_representation_model=str(rep_dir),
            decoder_latentD=16,
            decoder_nhead=2,
            decoder_nlayers=1,
            decoder_ff=32,
        )
    )
    world["model_of"] = {
        "retrieval demo": str(rep_dir),
        "mesh-recovery demo": str(head.save_pretrained(folder / "head")),
        "instruction-generation demo": str(generator.save_pretrained(folder / "generator")),
        "PoseVAE demo": str(folder / "no_posevae_here"),
    }
    world["dataset_of"] = {
        "retrieval demo": world["script"],
        "mesh-recovery demo": world["script"],
        "instruction-generation demo": world["fix"],
        "PoseVAE demo": world["script"],
    }
    return world


def _app(world: dict, app: str, model: str | None = None) -> AppTest:
    at = AppTest.from_file(str(APPS[app]), default_timeout=300)
    at.query_params["model"] = world["model_of"][app] if model is None else model
    at.query_params["dataset"] = world["dataset_of"][app]
    return at


def _errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def _page_chars(at: AppTest) -> int:
    """Characters of text the page shows (markdown, captions, messages, widget values)."""
    texts = [e.value for kind in (at.error, at.warning, at.info, at.markdown, at.caption) for e in kind]
    texts += [str(w.value) for w in (*at.text_area, *at.text_input)]
    return sum(len(t) for t in texts)


def _upload(at: AppTest, app: str, name: str, data: bytes) -> AppTest:
    mime = "image/jpeg" if name.endswith(".jpg") else "image/png"
    if app == "instruction-generation demo":
        good_name, good = GOOD_UPLOADS["RGB PNG"]
        at.file_uploader(key="upload_A").set_value((good_name, good, "image/png"))
        return at.file_uploader(key="upload_B").set_value((name, data, mime)).run()
    return at.file_uploader(key="upload").set_value((name, data, mime)).run()


def _showed_a_result(at: AppTest, app: str) -> bool:
    if app == "instruction-generation demo":
        return any(s.value.startswith("Generated") for s in at.subheader)
    return len(at.image) > 0


@pytest.mark.parametrize("app", list(UPLOAD_SOURCE))
@pytest.mark.reliability(area="uploads", subject="bad uploads in the running apps (AppTest)")
def test_each_bad_upload_gets_a_message_and_the_app_stays_up(world, app, cases):
    at = _app(world, app).run()
    assert not at.exception, at.exception
    if app == "instruction-generation demo":  # short instructions: an untrained generator writes to the limit
        at.number_input(key="max_length").set_value(8)
        at.number_input(key="min_length").set_value(2)
    at.radio(key="source").set_value(UPLOAD_SOURCE[app]).run()
    assert not at.exception, at.exception
    for what, (name, data, phrase) in BAD_UPLOADS.items():
        cases.tried()
        at = _upload(at, app, name, data)
        assert not at.exception, (what, at.exception)
        assert any(e.startswith(f"{name}: ") and phrase in e for e in _errors(at)), (what, _errors(at))
        if app != "instruction-generation demo":
            assert not _showed_a_result(at, app), what
    cases.tried()  # a good picture after all of them: the app is still up and uses it
    at = _upload(at, app, "phone.jpg", with_orientation(reference_picture(), 6))
    assert not at.exception and not _errors(at), (at.exception, _errors(at))
    assert _showed_a_result(at, app)


@pytest.mark.parametrize("app", ["retrieval demo", "mesh-recovery demo"])
@pytest.mark.reliability(area="uploads", subject="texts of megabytes in the apps' description boxes (AppTest)")
def test_a_megabyte_description_is_cut_at_the_box(world, app, cases):
    """`set_value` sends the megabyte the way a crafted request would (a browser's box stops typing at the
    limit, and AppTest's `input` too): streamlit cuts it on the server at the box's `max_chars`."""
    cases.tried()
    at = _app(world, app).run()
    assert not at.exception, at.exception
    if app == "retrieval demo":
        at.checkbox(key="use_input_text").check()
        at.text_area(key="input_text").set_value(MEGABYTE_TEXT)
        at.button(key="process").click().run()
    else:
        at.text_area(key="input_text").set_value(MEGABYTE_TEXT).run()
    assert not at.exception, at.exception
    assert len(at.text_area(key="input_text").value) <= MAX_TEXT_CHARS
    assert _page_chars(at) < MAX_PAGE_CHARS


@pytest.mark.parametrize("app", list(APPS))
@pytest.mark.reliability(area="uploads", subject="megabyte model names in the apps' model field and ?model= (AppTest)")
def test_a_megabyte_model_name_gets_a_short_message(world, app, cases):
    """The field's value sent as a crafted request would (`set_value`), and `?model=` of 100,000 characters
    (cut to the field's limit) and of 3 MB (streamlit drops query strings over 512 KB: no model then)."""
    for where, text in (("field", MEGABYTE_TEXT), ("url", MEGABYTE_TEXT[:100_000]), ("url", MEGABYTE_TEXT)):
        cases.tried()
        at = _app(world, app, text if where == "url" else None).run()
        if where == "field":
            at.text_input(key="model_path").set_value(text).run()
        assert not at.exception, (where, len(text), at.exception)
        assert _errors(at) or at.info, (where, len(text), "no message")
        assert len(at.text_input(key="model_path").value) <= MAX_MODEL_NAME_CHARS
        assert _page_chars(at) < MAX_PAGE_CHARS, (where, len(text), _page_chars(at))
