"""The front door: `Representation` gives what the model gives on dataset batches, for every input form, in
any batch size, and refuses bad input naming the argument before any work."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from poseembroider.datasets.image_processing import crop_box, pad_resize, scale_bbox, to_uint8_tensor
from poseembroider.datasets.pose_processing import normalize_poses
from poseembroider.modalities import UnknownModalityError
from poseembroider.model import PoseEmbroider
from poseembroider.registry import UnknownShortnameError, register
from poseembroider.representation import InputError, Representation
from tiny_models import make_core_models

TEXTS = [
    "the person kneels on the floor with both hands on the thighs",
    "someone sits",
    "the left arm is raised above the head while the right arm hangs",
    "a deep squat",
    "the body leans forward",
]
N = len(TEXTS)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("representation")
    models = make_core_models(folder, TEXTS * 3)
    encoders = Representation.from_pretrained(models["PoseEmbroider"]).model.config.encoder_names()
    generator = np.random.default_rng(0)
    pictures = [generator.integers(0, 256, size=(120 + 10 * i, 90 + 7 * i, 3), dtype=np.uint8) for i in range(N)]
    paths = []
    for i, picture in enumerate(pictures):
        paths.append(folder / f"picture_{i}.png")
        Image.fromarray(picture).save(paths[-1])
    poses = torch.from_numpy(generator.normal(0.0, 0.3, size=(N, 55, 3)).astype(np.float32))
    return {"models": models, "encoders": encoders, "pictures": pictures, "paths": paths, "poses": poses, "dir": folder}


@pytest.fixture(scope="module", params=["PoseEmbroider", "Aligner"])
def rep(request, world) -> Representation:
    return Representation.from_pretrained(world["models"][request.param])


def _crops(pictures: list[np.ndarray]) -> torch.Tensor:
    return torch.stack([pad_resize(to_uint8_tensor(p)).float() / 255.0 for p in pictures])


def test_tokens_and_xbar_are_the_models_on_dataset_batches(rep, world):
    """Raw inputs through the front door = the model's `encode` / `represent` on the batch a dataset gives."""
    model = rep.model
    tokens, lengths = model.frozen_encoders.encoders["text"].tokenizer.batch(TEXTS)
    body = normalize_poses(world["poses"][:, :22], "bedlam")
    batch = {"images": _crops(world["pictures"]), "poses": body, "texts_tokens": tokens, "texts_lengths": lengths}
    with torch.no_grad():
        expected = model.encode(batch)
        expected_xbar = model.represent(expected, ("image", "pose", "text"))
    got = {
        "image": rep.embed_images(world["pictures"]),
        "pose": rep.embed_poses(world["poses"]),
        "text": rep.embed_texts(TEXTS),
    }
    for m in got:
        torch.testing.assert_close(got[m], expected[m], atol=1e-5, rtol=1e-4)
    xbar = rep.represent(images=world["pictures"], poses=world["poses"], texts=TEXTS)
    assert xbar.shape == (N, rep.dim) and xbar.dtype == torch.float32
    torch.testing.assert_close(xbar, expected_xbar, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(rep.predict(xbar, "pose"), model.predict(expected_xbar, "pose"), atol=1e-5, rtol=1e-4)


def test_results_do_not_depend_on_the_batch_size(world):
    one = Representation.from_pretrained(world["models"]["PoseEmbroider"], batch_size=1)
    many = Representation.from_pretrained(world["models"]["PoseEmbroider"], batch_size=64)
    torch.testing.assert_close(one.embed_texts(TEXTS), many.embed_texts(TEXTS), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(one.embed_poses(world["poses"]), many.embed_poses(world["poses"]), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(
        one.represent(poses=world["poses"], texts=TEXTS),
        many.represent(poses=world["poses"], texts=TEXTS),
        atol=1e-5,
        rtol=1e-4,
    )


def test_every_image_form_gives_the_same_tokens(rep, world):
    arrays = rep.embed_images(world["pictures"])
    torch.testing.assert_close(rep.embed_images([Image.fromarray(p) for p in world["pictures"]]), arrays)
    torch.testing.assert_close(rep.embed_images(world["paths"]), arrays)
    torch.testing.assert_close(rep.embed_images([str(p) for p in world["paths"]]), arrays)


def test_person_boxes_are_cropped_as_the_datasets_crop_them(rep, world):
    pictures = world["pictures"][:2]
    boxes = np.array([[10.0, 20.0, 70.0, 100.0], [5.0, 5.0, 50.0, 60.0]])
    crops = []
    for picture, box in zip(pictures, boxes, strict=True):
        image = to_uint8_tensor(picture)
        crops.append(pad_resize(crop_box(image, scale_bbox(box, 1.1, image.shape[1:]))).float() / 255.0)
    with torch.no_grad():
        expected = rep.model.encode({"images": torch.stack(crops)}, ("image",))["image"]
    torch.testing.assert_close(rep.embed_images(pictures, boxes=boxes), expected, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(rep.embed_images(pictures, boxes=boxes), rep.embed_images(pictures))


def test_every_pose_form_gives_the_same_tokens(rep, world):
    poses = world["poses"]
    reference = rep.embed_poses(poses[:, :22])
    forms = {
        "(N, 55, 3)": poses,
        "(N, 52, 3) numpy": poses[:, :52].numpy(),
        "flat (N, 66)": poses[:, :22].reshape(N, 66),
        "smplx dict": {"global_orient": poses[:, 0], "body_pose": poses[:, 1:22].reshape(N, 63)},
        "amass dict": {"root_orient": poses[:, 0].numpy(), "pose_body": poses[:, 1:22].reshape(N, 63).numpy()},
        "nested list": poses[:, :22].tolist(),
    }
    for name, form in forms.items():
        torch.testing.assert_close(rep.embed_poses(form), reference, msg=name)


def test_pose_normalization_follows_the_frame_given(rep, world):
    poses = world["poses"][:, :22]
    model_frame = normalize_poses(poses, "amass")
    torch.testing.assert_close(rep.embed_poses(poses, normalization="amass"), rep.embed_poses(model_frame, "none"))
    with torch.no_grad():
        expected = rep.model.encode({"poses": model_frame}, ("pose",))["pose"]
    torch.testing.assert_close(rep.embed_poses(model_frame, "none"), expected, atol=1e-5, rtol=1e-4)


def test_any_subset_is_represented_and_retrieval_finds_the_gallery_rows(rep, world):
    subsets = [{"poses": world["poses"]}, {"texts": TEXTS}, {"images": world["pictures"], "texts": TEXTS}]
    for inputs in subsets:
        assert rep.represent(**inputs).shape == (N, rep.dim)
    gallery = rep.embed_texts(TEXTS)
    scores, indices = rep.retrieve(gallery, gallery, k=3)
    assert scores.shape == indices.shape == (N, 3)
    assert torch.all(scores[:, :-1] >= scores[:, 1:])
    full = gallery @ gallery.T
    torch.testing.assert_close(scores, full.topk(3, dim=1).values)
    xbar = rep.represent(poses=world["poses"])
    via_target = rep.retrieve(xbar, gallery, k=50, target="text")  # k clipped to the gallery
    direct = rep.retrieve(rep.predict(xbar, "text"), gallery, k=N)
    assert via_target[1].shape == (N, N)
    torch.testing.assert_close(via_target[0], direct[0])
    chunked = rep.retrieve(rep.predict(xbar, "text"), gallery, k=N, chunk_size=2)
    torch.testing.assert_close(chunked[0], direct[0])


def test_a_registered_shortname_loads_and_is_listed(world, monkeypatch, tmp_path):
    import poseembroider
    from poseembroider import config

    monkeypatch.setattr(config, "MODELS_ROOT", tmp_path)
    register("tiny_representation_test", world["models"]["PoseEmbroider"])
    rep = Representation.from_pretrained("tiny_representation_test")
    assert isinstance(rep.model, PoseEmbroider)
    assert "tiny_representation_test" in poseembroider.list_models()


# ---------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda r, w: r.embed_texts([]), r"texts: the list is empty"),
        (lambda r, w: r.embed_texts("a single string"), r"texts: expected a list, got str"),
        (lambda r, w: r.embed_texts(["fine", 3]), r"texts\[1\]: a int; expected a string"),
        (lambda r, w: r.embed_texts(["fine", "  "]), r"texts\[1\]: the text is empty"),
        (lambda r, w: r.embed_images([]), r"images: the list is empty"),
        (lambda r, w: r.embed_images([w["pictures"][0].astype(np.float32)]), r"images\[0\]: .*dtype float32.*uint8"),
        (lambda r, w: r.embed_images([w["pictures"][0][..., :2]]), r"images\[0\]: array of shape \(120, 90, 2\)"),
        (lambda r, w: r.embed_images([w["paths"][0], w["dir"] / "missing.png"]), r"images\[1\]: .*missing\.png"),
        (lambda r, w: r.embed_images([w["dir"] / "not_an_image.png"]), r"images\[0\]: .*not_an_image\.png"),
        (lambda r, w: r.embed_images([42]), r"images\[0\]: a int"),
        (lambda r, w: r.embed_images(w["pictures"][:2], boxes=[[0, 0, 5, 5]]), r"boxes: shape \(1, 4\); .*\(2, 4\)"),
        (lambda r, w: r.embed_images(w["pictures"][:1], boxes=[[5, 0, 5, 5]]), r"boxes\[0\].*x2 <= x1"),
        (lambda r, w: r.embed_poses(torch.zeros(3, 21, 3)), r"poses: .*shape \(3, 21, 3\).*\(N, 22\|52\|55, 3\)"),
        (lambda r, w: r.embed_poses(torch.zeros(0, 22, 3)), r"poses: contains no pose"),
        (lambda r, w: r.embed_poses(torch.full((2, 22, 3), float("nan"))), r"poses: contains NaN"),
        (lambda r, w: r.embed_poses(np.array([["a"] * 66])), r"poses: key 'poses' has dtype"),
        (lambda r, w: r.embed_poses("poses.npz"), r"poses: a str"),
        (lambda r, w: r.embed_poses({"global_orient": np.zeros((2, 3))}), r"poses: no pose key"),
        (lambda r, w: r.embed_poses(torch.zeros(2, 22, 3), normalization="up"), r"normalization 'up'"),
        (lambda r, w: r.represent(), r"give at least one of images=, poses=, texts="),
        (lambda r, w: r.represent(poses=w["poses"][:2], texts=TEXTS), r"different lengths \{'pose': 2, 'text': 5\}"),
        (lambda r, w: r.predict(torch.zeros(2, 7), "pose"), r"xbar: \(2, 7\); expected an \(N, 16\) tensor"),
        (lambda r, w: r.retrieve(torch.zeros(2, 16), torch.zeros(3, 16), k=0), r"k=0: expected an integer >= 1"),
        (lambda r, w: r.retrieve(torch.zeros(2, 16), torch.zeros(3, 8)), r"gallery: \(3, 8\)"),
        (lambda r, w: r.represent_tokens({"pose": torch.zeros(2, 7)}), r"tokens\['pose'\]: \(2, 7\)"),
        (
            lambda r, w: r.represent_tokens({"pose": torch.zeros(2, 16), "text": torch.zeros(3, 16)}),
            r"tokens: different lengths \{'pose': 2, 'text': 3\}",
        ),
    ],
)
def test_bad_input_is_refused_naming_what_is_wrong(world, call, message):
    (world["dir"] / "not_an_image.png").write_text("plain text, not a PNG")
    rep = Representation.from_pretrained(world["models"]["PoseEmbroider"])
    with pytest.raises(InputError, match=message):
        call(rep, world)


def test_bad_settings_are_refused(world):
    with pytest.raises(ValueError, match="device 'gpu0'"):
        Representation.from_pretrained(world["models"]["PoseEmbroider"], device="gpu0")
    with pytest.raises(ValueError, match="batch_size=0"):
        Representation.from_pretrained(world["models"]["PoseEmbroider"], batch_size=0)
    with pytest.raises(TypeError, match="expected PoseEmbroider or Aligner"):
        Representation(torch.nn.Linear(2, 2))


def test_unknown_target_modality_is_refused(world):
    rep = Representation.from_pretrained(world["models"]["PoseEmbroider"])
    with pytest.raises(UnknownModalityError, match="'audio'"):
        rep.predict(torch.zeros(1, rep.dim), "audio")


def test_unknown_shortname_and_non_core_folders_are_refused(world):
    with pytest.raises(UnknownShortnameError, match="no_such_model_shortname"):
        Representation.from_pretrained("no_such_model_shortname")
    with pytest.raises(ValueError, match="not PoseEmbroider or Aligner"):
        Representation.from_pretrained(world["encoders"]["pose"])


def test_a_modality_whose_encoder_is_absent_is_refused_but_the_others_work(world, tmp_path):
    model = Representation.from_pretrained(world["models"]["PoseEmbroider"]).model
    model.config = dataclasses.replace(model.config, image_encoder_name=str(tmp_path / "gone"))
    rep = Representation(model)
    assert rep.embed_texts(TEXTS[:2]).shape == (2, rep.dim)
    with pytest.raises(InputError, match=r"cannot embed image inputs here: its image encoder '.*gone'"):
        rep.embed_images(world["pictures"][:1])


def test_inputs_are_checked_before_the_encoders_load(world, monkeypatch):
    rep = Representation.from_pretrained(world["models"]["PoseEmbroider"])
    monkeypatch.setattr(rep, "_encoder", lambda modality: pytest.fail(f"{modality} encoder built before the check"))
    with pytest.raises(InputError):
        rep.embed_texts(["ok", None])
    with pytest.raises(InputError):
        rep.embed_poses(torch.zeros(1, 5, 3))


def test_the_package_root_exports_the_front_door():
    import poseembroider

    assert poseembroider.Representation is Representation
    assert callable(poseembroider.load_pretrained) and callable(poseembroider.list_models)
    assert isinstance(poseembroider.__version__, str)


def test_importing_the_package_stays_light():
    heavy = "('torch', 'streamlit', 'transformers')"
    code = f"import sys, poseembroider; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_path_inputs_are_accepted_as_paths(world):
    assert isinstance(world["paths"][0], Path)
