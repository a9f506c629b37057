"""The any-to-any retrieval demo: its pure parts (occlusion, uploaded pictures, query batches, ranking, the
split's gallery) and the streamlit app driven by AppTest over a tiny hand-made dataset, tiny frozen
encoders and untrained PoseEmbroider / Aligner models."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from core_batches import feature_batch, small_config
from PIL import Image
from streamlit.testing.v1 import AppTest

import poseembroider
from poseembroider import config
from poseembroider.cli import main as cli_main
from poseembroider.datasets.cache_format import cache_file_name, save_cache
from poseembroider.datasets.registry import get_dataset, synth_image_root
from poseembroider.demo_core_helpers import (
    MAX_TEXT_CHARS,
    PATCH_GRID,
    occlude_patches,
    prepare_uploaded_image,
    query_batch,
)
from poseembroider.modalities import UnknownModalityError
from poseembroider.model import Aligner, PoseEmbroider
from poseembroider.representation import retrieve_from_batch as retrieve
from poseembroider.representation import split_gallery
from tiny_models import make_core_models

DEMO = Path(poseembroider.__file__).parent / "demo_core.py"
VERSION = "democore_overlap30_res224_j16_sf11"
DATASET = f"synthscript-{VERSION}"
CAPTIONS = [
    ["the person raises the left arm above the head", "left arm up"],
    ["the person squats with both knees bent", "a deep squat"],
    ["the body leans forward with the right hand on the knee", "leaning forward"],
    ["the person stands straight with arms along the body", "standing still"],
    ["the right leg is lifted and bent at the knee", "one leg up"],
    ["both arms are stretched out to the sides", "arms wide open"],
]
N = len(CAPTIONS)
IDS = [100 + 7 * i for i in range(N)]
K = 3


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ---------------------------------------------------------------------------------------------- occlusion


def test_occlusion_blacks_out_whole_patches_and_nothing_else():
    image = torch.rand(3, 256, 192) + 0.1
    out = occlude_patches(image, x=2, y=3, size=4)
    hidden = torch.zeros(256, 192, dtype=torch.bool)
    hidden[48:112, 32:96] = True  # rows 3*16 .. 7*16, columns 2*16 .. 6*16
    assert (out[:, hidden] == 0).all()
    assert torch.equal(out[:, ~hidden], image[:, ~hidden])
    assert (image > 0).all()  # the input is left untouched


def test_occlusion_is_clipped_to_the_image_and_size_zero_is_a_no_op():
    image = torch.ones(3, 256, 192)
    rows, columns = PATCH_GRID
    assert (rows, columns) == (16, 12)
    out = occlude_patches(image, x=columns - 1, y=rows - 1, size=5)
    assert out.shape == image.shape
    assert (out[:, 240:, 176:] == 0).all() and int((out == 0).sum()) == 3 * 16 * 16
    assert torch.equal(occlude_patches(image, 4, 4, 0), image)
    with pytest.raises(ValueError, match="size=-1"):
        occlude_patches(image, 0, 0, -1)


# ---------------------------------------------------------------------------------------------- uploads


def _png(width: int, height: int, color=(255, 0, 0)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="PNG")
    return buffer.getvalue()


def test_uploaded_picture_is_padded_to_4_3_and_resized_like_the_crops():
    tall = prepare_uploaded_image(_png(100, 300))  # too narrow for 4:3: black columns on both sides
    assert tall.shape == (3, 256, 192) and tall.dtype == torch.float32
    assert 0.0 <= float(tall.min()) and float(tall.max()) <= 1.0
    assert torch.allclose(tall[:, 128, 96], torch.tensor([1.0, 0.0, 0.0]), atol=1e-2)
    assert float(tall[:, 128, :40].abs().max()) < 1e-2 and float(tall[:, 128, -40:].abs().max()) < 1e-2
    wide = prepare_uploaded_image(_png(400, 100, (0, 0, 255)))  # too wide: black rows above and below
    assert torch.allclose(wide[:, 128, 96], torch.tensor([0.0, 0.0, 1.0]), atol=1e-2)
    assert float(wide[:, :60, 96].abs().max()) < 1e-2


def test_an_unreadable_upload_is_refused_with_its_name():
    with pytest.raises(ValueError, match="notes.png"):
        prepare_uploaded_image(b"not an image", "notes.png")


def test_query_batch_is_a_batch_of_one():
    batch = query_batch(torch.rand(3, 256, 192), torch.zeros(22, 3), torch.tensor([101, 7, 8, 102]))
    assert batch["images"].shape == (1, 3, 256, 192) and batch["poses"].shape == (1, 22, 3)
    assert batch["texts_tokens"].tolist() == [[101, 7, 8, 102]] and batch["texts_lengths"].tolist() == [4]
    assert set(query_batch(pose=torch.zeros(22, 3))) == {"poses"}


# ---------------------------------------------------------------------------------------------- ranking


@pytest.mark.parametrize("modality", ["image", "pose", "text"])
def test_each_gallery_item_finds_itself_first_when_the_query_is_its_own_token(modality):
    # Aligner, one modality: predict(represent(token)) is the (unit) token itself, so the item's own row
    # scores 1 and every other row less
    torch.manual_seed(0)
    model = Aligner(small_config()).eval()
    features = feature_batch()
    galleries = model.encode(features)
    found = retrieve(model, features, [modality], galleries, k=3)
    assert set(found) == {"image", "pose", "text"}
    assert found[modality].indices[:, 0].tolist() == list(range(8))
    assert torch.allclose(found[modality].scores[:, 0], torch.ones(8), atol=1e-5)


def test_poseembroider_ranks_each_modality_with_its_reprojection():
    torch.manual_seed(0)
    model = PoseEmbroider(small_config()).eval()
    features = feature_batch()
    galleries = model.encode(features)
    query = {k: v[2:4] for k, v in features.items()}
    found = retrieve(model, query, ["text", "image"], galleries, k=50)  # any order; k clipped to the gallery
    with torch.no_grad():
        xbar = model.represent(model.encode(query, ["image", "text"]), ["image", "text"])
        for target in ("image", "pose", "text"):
            expected = model.predict(xbar, target) @ galleries[target].T
            assert found[target].indices.shape == (2, 8)
            assert torch.allclose(found[target].scores, expected.sort(dim=1, descending=True).values, atol=1e-6)
            assert torch.allclose(expected.gather(1, found[target].indices), found[target].scores, atol=1e-6)


def test_retrieve_refuses_bad_queries():
    model = PoseEmbroider(small_config()).eval()
    features = feature_batch()
    galleries = model.encode(features)
    with pytest.raises(ValueError, match="no query modality"):
        retrieve(model, features, [], galleries, k=3)
    with pytest.raises(UnknownModalityError, match="'audio'"):
        retrieve(model, features, ["audio"], galleries, k=3)
    with pytest.raises(ValueError, match="k=0"):
        retrieve(model, features, ["pose"], galleries, k=0)


# ---------------------------------------------------------------------------------------------- a tiny world


def _write_dataset() -> None:
    """Six samples in the processed-cache format (val split): noise pictures, CMU poses, two captions each."""
    from poseembroider.data import load_cmu_dev_poses

    rng = np.random.default_rng(0)
    root = synth_image_root(VERSION)
    poses = load_cmu_dev_poses()[::17][:N]
    images, bboxes = {}, {}
    for k, data_id in enumerate(IDS):
        rel = f"images/val/{data_id:06d}.png"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        tint = np.array([(k * 97) % 256, (k * 53 + 80) % 256, (255 - k * 41) % 256])  # a colour per sample
        pixels = 0.5 * rng.integers(0, 255, size=(300, 220, 3)) + 0.5 * tint
        Image.fromarray(pixels.astype(np.uint8)).save(root / rel)
        images[data_id], bboxes[data_id] = rel, [10, 0, 210, 300]
    criteria = {"demo_core_test": True}
    save_cache(
        {
            "criteria": criteria,
            "bboxes": bboxes,
            "images": images,
            "full_human_visibility": {i: True for i in IDS},
            "camera_transformation": {i: (torch.zeros(3), torch.zeros(3)) for i in IDS},
        },
        config.DATA_CACHE_DIR / cache_file_name("synthscript", VERSION, "val", "images", N),
    )
    save_cache(
        {
            "criteria": criteria,
            "poses": {i: torch.cat([torch.as_tensor(p), torch.zeros(30, 3)]) for i, p in zip(IDS, poses, strict=True)},
            "shapes": {i: torch.zeros(11) for i in IDS},
            "heading_rotation": {i: torch.zeros(3) for i in IDS},
        },
        config.DATA_CACHE_DIR / cache_file_name("synthscript", VERSION, "val", "poses", N),
    )
    save_cache(
        {"criteria": criteria, "texts": dict(zip(IDS, CAPTIONS, strict=True))},
        config.DATA_CACHE_DIR / cache_file_name("synthscript", VERSION, "val", "rawtexts", N),
    )


@pytest.fixture(scope="module")
def demo_world(tmp_path_factory) -> dict:
    """The dataset, tiny frozen encoders and one untrained saved model of each kind over them."""
    _write_dataset()
    folder = tmp_path_factory.mktemp("demo_core")
    models = make_core_models(folder, [t for caps in CAPTIONS for t in caps])
    models = {name: str(path) for name, path in models.items()}
    return {"dataset": DATASET, "models": models}


def test_split_gallery_matches_the_live_encoding_of_the_queries(demo_world):
    """The gallery comes from the feature cache, the demo's queries from the live encoders: a sample's
    query tokens are its gallery row (up to the fp16 storage of the image tokens)."""
    from poseembroider.models.pretrained import load_pretrained

    model = load_pretrained(demo_world["models"]["PoseEmbroider"])
    gallery = split_gallery(model, DATASET, "val")
    assert gallery.data_ids.tolist() == IDS and len(gallery) == N
    assert {m: tuple(t.shape) for m, t in gallery.tokens.items()} == {m: (N, 16) for m in ("image", "pose", "text")}
    dataset = get_dataset(DATASET, "val", item_format="ipt", caption_selection=0)
    tokenizer = model.frozen_encoders.encoders["text"].tokenizer
    item = dataset[4]
    assert item["raw_texts"] == CAPTIONS[4][0]
    batch = query_batch(item["images"], item["poses"], tokenizer(item["raw_texts"]))
    with torch.no_grad():
        live = model.encode(batch)
    assert torch.allclose(live["pose"][0], gallery.tokens["pose"][4], atol=1e-5)
    assert torch.allclose(live["text"][0], gallery.tokens["text"][4], atol=1e-4)
    assert torch.allclose(live["image"][0], gallery.tokens["image"][4], atol=1e-2)


# ---------------------------------------------------------------------------------------------- the app


def _app(model_dir: str) -> AppTest:
    at = AppTest.from_file(str(DEMO), default_timeout=240)
    at.query_params["model"] = model_dir
    at.query_params["dataset"] = DATASET
    return at


def _result_texts(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown if m.value[:2] == "**" and m.value.split("**")[1].rstrip(".").isdigit()]


def _result_captions(at: AppTest) -> list[str]:
    return [c for image in at.image for c in image.captions if " · " in c]


@pytest.mark.render
def test_app_shows_k_results_per_modality_for_any_input(demo_world):
    at = _app(demo_world["models"]["PoseEmbroider"]).run()
    assert not at.exception, at.exception
    assert at.selectbox(key="dataset").value == DATASET and at.selectbox(key="split").value == "val"
    assert len(at.image) == 2  # the query crop and its rendered pose
    assert any("No input selected" in i.value for i in at.info)
    at.number_input(key="n_retrieve").set_value(K)

    at.checkbox(key="use_image").check()
    at.button(key="process").click().run()
    assert not at.exception, at.exception
    assert [s.value for s in at.subheader] == [f"Top {K} images", f"Top {K} poses", f"Top {K} texts"]
    assert len(at.image) == 2 + 3 * K  # + images, rendered poses, the pose of each text
    assert len(_result_texts(at)) == K and all("_" in t for t in _result_texts(at))
    assert any(m.value.startswith("**Query:** image (PoseEmbroider") for m in at.markdown)

    at.checkbox(key="use_image").uncheck()
    at.checkbox(key="use_pose").check()
    at.checkbox(key="use_text").check()
    at.button(key="process").click().run()
    assert not at.exception, at.exception
    assert any(m.value.startswith("**Query:** pose + annotated text") for m in at.markdown)
    assert len(at.image) == 2 + 3 * K and len(_result_texts(at)) == K

    at.number_input(key="index").set_value(3).run()  # another sample, same inputs
    assert not at.exception, at.exception
    assert any(f"data id {IDS[3]}" in c.value for c in at.caption) and len(_result_captions(at)) == 2 * K
    at.radio(key="select_by").set_value("data id").run()
    at.number_input(key="data_id").set_value(IDS[5]).run()
    assert not at.exception, at.exception
    assert any(f"data id {IDS[5]}" in c.value for c in at.caption) and len(_result_captions(at)) == 2 * K
    at.number_input(key="data_id").set_value(IDS[5] + 1).run()
    assert any(f"No sample with data id {IDS[5] + 1}" in e.value for e in at.error)
    at.radio(key="select_by").set_value("index").run()

    for key in ("use_pose", "use_text"):
        at.checkbox(key=key).uncheck()
    at.button(key="process").click().run()
    assert not at.exception, at.exception
    assert any("No input selected" in w.value for w in at.warning)
    assert len(at.image) == 2 and not at.subheader


@pytest.mark.render
def test_app_uses_the_typed_text_the_occlusion_and_uploads(demo_world):
    # the Aligner with one input modality ranks that modality by cosine to the query token itself: the
    # typed caption of sample 4 finds sample 4's text first, the unoccluded crop finds its own image first
    at = _app(demo_world["models"]["Aligner"]).run()
    assert not at.exception, at.exception
    at.number_input(key="n_retrieve").set_value(K)
    at.checkbox(key="use_input_text").check()
    at.text_area(key="input_text").input(CAPTIONS[4][0])
    at.button(key="process").click().run()
    assert not at.exception, at.exception
    assert CAPTIONS[4][0] in _result_texts(at)[0]
    assert any(c.value == f"query text: {CAPTIONS[4][0]}" for c in at.caption)
    at.text_area(key="input_text").input(CAPTIONS[1][0])
    at.button(key="process").click().run()
    assert CAPTIONS[1][0] in _result_texts(at)[0]

    at.checkbox(key="use_input_text").uncheck()
    at.checkbox(key="use_image").check()
    at.button(key="process").click().run()
    assert not at.exception, at.exception
    plain_query, plain_results = at.image[0].value, _result_captions(at)
    assert plain_results[0].startswith(f"1. id {IDS[0]} ") and plain_results[0].endswith("the query sample")
    at.slider(key="mask_x").set_value(2)
    at.slider(key="mask_y").set_value(3)
    at.slider(key="mask_size").set_value(6).run()
    assert not at.exception, at.exception
    assert at.image[0].value != plain_query  # another picture in the query
    assert "occluded" in at.image[0].captions[0]
    assert _result_captions(at) != plain_results  # and other scores

    at.radio(key="source").set_value("an uploaded picture").run()
    assert not at.exception, at.exception
    assert any("Upload a picture" in i.value for i in at.info)
    at.file_uploader(key="upload").set_value(("person.png", _png(120, 300), "image/png")).run()
    assert not at.exception, at.exception
    assert not [c for c in at.checkbox if c.key in ("use_pose", "use_text")]  # a picture has no pose nor text
    assert len(at.image) == 1 and any("No input selected" in i.value for i in at.info)
    at.checkbox(key="use_image").check()
    at.button(key="process").click().run()
    assert not at.exception, at.exception
    assert len(at.image) == 1 + 3 * K
    assert not any("the query sample" in c for c in _result_captions(at))


def test_app_reports_a_missing_model(tmp_path):
    at = _app(str(tmp_path / "nothing_here")).run()
    assert not at.exception, at.exception
    assert any("Cannot load a PoseEmbroider / Aligner" in e.value for e in at.error)


def test_app_without_any_model_says_how_to_get_one(monkeypatch):
    monkeypatch.delenv("POSEEMBROIDER_CORE_DEMO_MODEL", raising=False)
    at = AppTest.from_file(str(DEMO), default_timeout=60).run()  # the session's models root is empty
    assert not at.exception, at.exception
    assert at.text_input(key="model_path").value == ""
    assert any("No PoseEmbroider / Aligner model is registered" in i.value for i in at.info) and not at.error


@pytest.mark.render
def test_the_query_text_follows_the_chosen_sample_and_keeps_the_users_edits(demo_world):
    """A keyed text area ignores a new `value=`: the box once kept the first sample's caption for the whole
    session, so "use the input text" queried with it after another sample was picked."""
    at = _app(demo_world["models"]["Aligner"]).run()
    assert not at.exception, at.exception
    assert at.text_area(key="input_text").value == CAPTIONS[0][0]
    at.number_input(key="n_retrieve").set_value(K)
    at.number_input(key="index").set_value(2).run()  # another sample
    assert at.text_area(key="input_text").value == CAPTIONS[2][0]
    at.checkbox(key="use_input_text").check()
    at.button(key="process").click().run()
    assert not at.exception, at.exception
    assert any(c.value == f"query text: {CAPTIONS[2][0]}" for c in at.caption)
    assert CAPTIONS[2][0] in _result_texts(at)[0]  # the Aligner finds the caption typed itself first
    assert len([c for c in at.caption if c.value.startswith("id ")]) == K  # under each text, no "1." list

    at.text_area(key="input_text").input("both arms are stretched out")  # the user's edit
    at.button(key="process").click().run()
    assert at.text_area(key="input_text").value == "both arms are stretched out"
    assert any(c.value == "query text: both arms are stretched out" for c in at.caption)
    at.slider(key="mask_size").set_value(2).run()  # a rerun with the same sample keeps the edit
    assert at.text_area(key="input_text").value == "both arms are stretched out"
    assert at.text_area(key="input_text").proto.max_chars == MAX_TEXT_CHARS  # a pasted megabyte is cut at the box

    at.radio(key="select_by").set_value("data id").run()
    at.number_input(key="data_id").set_value(IDS[5]).run()  # another sample, by data id
    assert at.text_area(key="input_text").value == CAPTIONS[5][0]
    at.button(key="process").click().run()
    assert any(c.value == f"query text: {CAPTIONS[5][0]}" for c in at.caption)
    assert CAPTIONS[5][0] in _result_texts(at)[0]


# ---------------------------------------------------------------------------------------------- the command


def test_cli_launches_streamlit_on_the_demo(monkeypatch, capsys):
    import subprocess

    calls = []

    class App:  # the streamlit process, not started
        def __init__(self, command: list[str]) -> None:
            calls.append(command)

        def wait(self, timeout: float | None = None) -> int:
            return 0

    monkeypatch.setattr(subprocess, "Popen", App)
    assert cli_main(["demo", "core", "--model_path", "m", "--server.port", "8600", "--n_retrieve", "4"]) == 0
    streamlit_run = [sys.executable, "-m", "streamlit", "run", str(DEMO)]
    settings = ["--server.headless", "true", "--browser.gatherUsageStats", "false", "--client.toolbarMode", "viewer"]
    settings += ["--server.address", "localhost"]
    app_flags = ["--split", "val", "--model_path", "m", "--n_retrieve", "4"]
    assert calls == [[*streamlit_run, *settings, "--server.port", "8600", "--", *app_flags]]
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["demo", "core", "--help"])
    assert exit_info.value.code == 0 and "--n_retrieve" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["demo-core", "--no_such_flag"])
    assert exit_info.value.code == 2 and not calls[1:]
