"""The instruction-generation demo: its pure parts (uploads, pairs of every source, input sets, live x̄,
decoding fields mapped onto the decoding registry, model loading) and the streamlit app driven by AppTest over
a tiny hand-made world (`intermodality_world`: pair and single-element datasets with images, tiny frozen
encoders, an untrained PoseEmbroider) and an untrained tiny InstructionGenerator."""

from __future__ import annotations

import io
import math
import shutil
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

from intermodality_world import make_intermodality_world
from poseembroider.cli import main as cli_main
from poseembroider.datasets.pose_processing import normalize_poses
from poseembroider.datasets.registry import get_dataset
from poseembroider.datasets.synthetic.pose_sampler import PoseSampler
from poseembroider.demo_core_helpers import UploadError
from poseembroider.downstream.instruction_generation import demo_helpers as helpers
from poseembroider.downstream.instruction_generation.data import INPUT_SETS
from poseembroider.downstream.instruction_generation.decoding import UnknownDecodingError, decoding_options
from poseembroider.downstream.instruction_generation.demo_helpers import (
    DecodingChoice,
    InputSetError,
    fix_pair,
    generate,
    generator_representation,
    load_generator,
    offered_input_sets,
    pair_index,
    pair_xbar,
    sampled_pair,
    script_pair,
    uploaded_pair,
)
from poseembroider.downstream.instruction_generation.model_instruction_generation import (
    InstructionGenerator,
    InstructionGeneratorConfig,
)
from poseembroider.features.intermodality import compute_intermodality_features
from poseembroider.models.pretrained import CheckpointError
from tiny_models import make_core_models

pytestmark = pytest.mark.usefixtures("one_torch_thread")

DEMO = Path(helpers.__file__).with_name("demo_instruction_generation.py")
SMALL = dict(decoder_latentD=16, decoder_nhead=2, decoder_nlayers=1, decoder_ff=32)
SCRIPT_SOURCE, SAMPLED_SOURCE, UPLOAD_SOURCE = "two samples of a dataset", "two sampled poses", "two uploaded pictures"


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    """Datasets (val: 6 elements, 5 pairs), the tiny PoseEmbroider and an untrained generator over it."""
    folder = tmp_path_factory.mktemp("instruction_demo")
    world = make_intermodality_world(folder, "igdemo", n_train=3, n_val=6)
    text_dir = folder / "encoders" / "text_backbone"
    generator = _save_generator(folder / "generator", world["models"]["PoseEmbroider"], text_dir)
    world.update(generator=generator, text_dir=text_dir)
    return world


def _save_generator(folder: Path, representation: Path, text_dir: Path) -> str:
    """An untrained tiny InstructionGenerator over `representation`, saved in `folder`."""
    torch.manual_seed(0)
    generator = InstructionGenerator(
        InstructionGeneratorConfig(
            latentD=16,
            comparison_latentD=16,
            text_decoder_name=f"transformer_{text_dir}",
            pretrained_representation_model=str(representation),
            **SMALL,
        )
    )
    return str(generator.save_pretrained(folder))


@pytest.fixture(scope="module")
def imageless_generator(world, tmp_path_factory) -> str:
    """A generator over a PoseEmbroider whose frozen image encoder is not on this machine (its folder
    removed): it reads poses, and cannot make x̄ of images."""
    folder = tmp_path_factory.mktemp("imageless")
    representation = make_core_models(folder, ["the person raises the left arm", "a deep squat"] * 4)
    shutil.rmtree(folder / "encoders" / "image")
    return _save_generator(folder / "generator", representation["PoseEmbroider"], world["text_dir"])


@pytest.fixture(scope="module")
def models(world):
    generator, _ = load_generator(world["generator"])
    return generator, generator_representation(generator)


# ---------------------------------------------------------------------------------------------- uploads


def _picture(width: int, height: int, fmt: str = "PNG", color=(255, 0, 0)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format=fmt)
    return buffer.getvalue()


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height and whose pixel data is a few bytes (a decompression bomb's
    shape: nothing is decoded when the size is refused from the header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


def test_uploaded_pictures_make_a_pair_of_images_and_bad_ones_are_refused_naming_the_file():
    # the checks themselves are demo_core_helpers.check_upload's (tested with the mesh-recovery demo)
    pair = uploaded_pair((_picture(100, 300), "a.png"), (_picture(90, 120, "JPEG", (0, 200, 0)), "b.jpg"))
    assert pair.A.image.shape == (3, 256, 192) and pair.A.pose is None and pair.references == ()
    assert torch.allclose(pair.A.image[:, 128, 96], torch.tensor([1.0, 0.0, 0.0]), atol=1e-2)
    assert pair.A.label == "upload a.png" and offered_input_sets(pair) == ["V_A,V_B"]
    for data, message in ((b"notes", "not a readable PNG/JPG"), (_png_header_only(30_000, 30_000), "too many pixels")):
        with pytest.raises(UploadError, match=message) as info:
            uploaded_pair((_picture(90, 120), "a.png"), (data, "b.png"))
        assert str(info.value).startswith("b.png: ")


# ---------------------------------------------------------------------------------------------- decoding fields


def test_each_method_gets_the_options_its_registered_function_takes():
    choices = [DecodingChoice(m, beam_size=3, top_p=0.5, seed=7, samples=4) for m in helpers.methods()]
    greedy, beam, nucleus, rerank = choices
    assert helpers.methods() == ["greedy", "beam", "nucleus", "rerank"]
    assert rerank.call() == ("rerank", {"min_length": 9, "max_length": 199, "top_p": 0.5, "seed": 7})
    assert greedy.call() == ("greedy", {"min_length": 9, "max_length": 199})
    assert beam.call() == ("beam", {"min_length": 9, "max_length": 199, "beam_size": 3})
    assert nucleus.call() == ("nucleus", {"min_length": 9, "max_length": 199, "top_p": 0.5, "seed": 7})
    for choice in choices:
        assert set(choice.options) <= set(decoding_options(choice.method))
    assert [c.count for c in choices] == [1, 1, 4, 4]  # only a sampling method (one with a seed) draws several
    assert beam.describe() == "beam search, beam_size 3, 9 to 199 tokens"


@pytest.mark.parametrize(
    ("fields", "error", "message"),
    [
        ({"method": "topk"}, UnknownDecodingError, "'topk'.*greedy"),
        ({"beam_size": 0}, ValueError, "beam_size=0"),
        ({"beam_size": 2.5}, ValueError, "beam_size=2.5"),
        ({"top_p": 0.0}, ValueError, "top_p=0.0"),
        ({"top_p": math.nan}, ValueError, "top_p=nan"),
        ({"top_p": 1.5}, ValueError, "top_p=1.5"),
        ({"seed": -1}, ValueError, "seed=-1"),
        ({"seed": True}, ValueError, "seed=True"),
        ({"min_length": 20, "max_length": 20}, ValueError, "min_length=20 must be below max_length=20"),
        ({"max_length": 0}, ValueError, "max_length=0"),
        ({"max_length": 10_000}, ValueError, "max_length=10000"),
        ({"samples": 0}, ValueError, "samples=0"),
    ],
)
def test_bad_decoding_fields_are_refused_naming_the_field(fields, error, message):
    with pytest.raises(error, match=message):
        DecodingChoice(**fields)


def test_generation_follows_the_choice(world, models):
    generator, rep = models
    pair = fix_pair(get_dataset(world["fix"], "val", item_format="ipt", caption_selection=0), 1)
    xbar_A, xbar_B = pair_xbar(rep, pair, "P_A,P_B")
    drawn = generate(generator, xbar_A, xbar_B, DecodingChoice("nucleus", seed=3, samples=3, max_length=12))
    again = generate(generator, xbar_A, xbar_B, DecodingChoice("nucleus", seed=3, samples=3, max_length=12))
    assert len(drawn) == 3 and [t.text for t in drawn] == [t.text for t in again]  # same seed, same texts
    assert all(1 <= t.tokens <= 12 and math.isfinite(t.score) for t in drawn)
    greedy = generate(generator, xbar_A, xbar_B, DecodingChoice("greedy", min_length=5, max_length=12))
    assert len(greedy) == 1 and greedy[0].tokens >= 5
    expected = generator.generate_texts(xbar_A, xbar_B, "greedy", min_length=5, max_length=12)
    assert greedy[0].text == expected[0]
    short, _ = load_generator(world["generator"])
    short.config.max_tokens = 8  # a generator whose texts are at most 7 tokens long
    with pytest.raises(ValueError, match="min_length=9: this generator writes at most 7 tokens"):
        generate(short, xbar_A, xbar_B, DecodingChoice("greedy"))
    assert len(generate(short, xbar_A, xbar_B, DecodingChoice("greedy", min_length=2))[0].text.split()) <= 7


# ---------------------------------------------------------------------------------------------- pairs and x̄


def test_a_dataset_pair_has_its_annotations_as_references(world):
    dataset = get_dataset(world["fix"], "val", item_format="ipt", caption_selection=0)
    pair = fix_pair(dataset, 2, world["fix"], "val")
    pair_id = dataset.pair_ids[2]
    assert pair.key == ("fix", world["fix"], "val", pair_id)
    assert list(pair.references) == dataset.instructions_of(pair_id) and pair.references
    assert pair.A.pose.shape == (22, 3) and pair.A.image.shape == (3, 256, 192)
    assert offered_input_sets(pair) == list(INPUT_SETS)  # poses and images on both sides: all five
    assert pair_index(dataset, pair_id) == 2
    with pytest.raises(ValueError, match="no pair with id 999"):
        pair_index(dataset, 999)
    with pytest.raises(ValueError, match="pair index 5: out of range"):
        fix_pair(dataset, 5)


def test_two_samples_of_a_dataset_make_a_pair_without_references(world):
    dataset = get_dataset(world["script"], "val", item_format="ipt", caption_selection=0)
    pair = script_pair(dataset, 4, 1)
    assert pair.A.label == f"data id {world['ids']['val'][4]}" and pair.B.label == f"data id {world['ids']['val'][1]}"
    assert pair.references == () and pair.A.texts == tuple(dataset.captions_of(world["ids"]["val"][4]))
    assert script_pair(dataset, 3, 3).notes == ("A and B are the same sample",)
    with pytest.raises(ValueError, match="index of B 6"):
        script_pair(dataset, 0, 6)


def test_sampled_poses_are_reproducible_from_the_seed(body_model):
    first, again, other = sampled_pair(5, body_model), sampled_pair(5, body_model), sampled_pair(6, body_model)
    for side in ("A", "B"):
        assert torch.equal(first.side(side).pose, again.side(side).pose)
        assert torch.equal(first.side(side).shape, again.side(side).shape)
    assert first.references == again.references and len(first.references) == 3
    assert not torch.equal(first.A.pose, other.A.pose)
    drawn = PoseSampler(5, body_model=body_model).sample(2)  # the sampler's first two draws, datasets' frame
    assert torch.equal(torch.stack([first.A.pose, first.B.pose]), normalize_poses(drawn.poses, "bedlam"))
    assert offered_input_sets(first) == ["P_A,P_B"] and first.A.image is None
    with pytest.raises(ValueError, match="seed=-2"):
        sampled_pair(-2, body_model)


def test_live_xbar_is_the_cached_xbar_the_generator_trains_on(world, models, tmp_path):
    _, rep = models
    dataset = get_dataset(world["fix"], "val", item_format="ipt", caption_selection=0)
    cache = compute_intermodality_features(
        rep.model, world["fix"], "val", ("poses",), model_dir=world["models"]["PoseEmbroider"], root=tmp_path
    )
    for index in (0, 3):
        pair = fix_pair(dataset, index)
        xbar_A, xbar_B = pair_xbar(rep, pair, "P_A,P_B")
        pair_id = np.array([dataset.pair_ids[index]])
        assert torch.allclose(xbar_A, cache.rows(pair_id, "A").float(), atol=1e-4)
        assert torch.allclose(xbar_B, cache.rows(pair_id, "B").float(), atol=1e-4)
    images_A, mixed_B = pair_xbar(rep, pair, "V_A+P_A,V_B+P_B")
    assert images_A.shape == (1, 16) and not torch.allclose(images_A, xbar_A)


def test_an_input_set_the_pair_cannot_feed_is_refused(world, models, body_model):
    _, rep = models
    sampled = sampled_pair(1, body_model)
    with pytest.raises(InputSetError, match=r"V_A,V_B needs the images of A.*offers \['P_A,P_B'\]"):
        pair_xbar(rep, sampled, "V_A,V_B")
    uploads = uploaded_pair((_picture(90, 120), "a.png"), (_picture(90, 120, color=(0, 255, 0)), "b.png"))
    assert (
        offered_input_sets(uploads) == ["V_A,V_B"]
        and uploads.key != uploaded_pair((_picture(90, 120), "a.png"), (_picture(90, 120), "b.png")).key
    )
    xbar_A, xbar_B = pair_xbar(rep, uploads, "V_A,V_B")
    assert xbar_A.shape == xbar_B.shape == (1, 16) and not torch.allclose(xbar_A, xbar_B)
    with pytest.raises(InputSetError, match="needs the poses of B"):
        pair_xbar(rep, uploads, "V_A,P_B")


# ---------------------------------------------------------------------------------------------- models


def test_a_folder_without_a_generator_is_refused_naming_it(world, tmp_path):
    with pytest.raises(CheckpointError, match="'PoseEmbroider' model, not a 'InstructionGenerator'"):
        load_generator(world["models"]["PoseEmbroider"])
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        load_generator(tmp_path)
    generator, _ = load_generator(world["generator"])
    generator.config.pretrained_representation_model = ""
    with pytest.raises(ValueError, match="names no representation model"):
        generator_representation(generator)
    generator.config.pretrained_representation_model = str(tmp_path / "gone")
    with pytest.raises(ValueError, match="representation model .*gone.* does not load"):
        generator_representation(generator)


# ---------------------------------------------------------------------------------------------- the app


def _app(world, model: str | None = None) -> AppTest:
    at = AppTest.from_file(str(DEMO), default_timeout=240)
    at.query_params["model"] = model or world["generator"]
    at.query_params["dataset"] = world["fix"]
    return at


def _short(at: AppTest) -> AppTest:
    at.number_input(key="max_length").set_value(12)
    at.number_input(key="min_length").set_value(3)
    return at.run()


def _generated(at: AppTest) -> list[str]:
    titles = [s.value for s in at.subheader]
    assert any(t.startswith("Generated instruction") for t in titles), titles
    return [c.value for c in at.caption if "mean log-likelihood" in c.value]


@pytest.mark.render
def test_app_writes_instructions_for_a_dataset_pair_with_its_references(world):
    at = _short(_app(world).run())
    assert not at.exception, at.exception
    assert at.selectbox(key="dataset").value == world["fix"] and at.selectbox(key="split").value == "val"
    assert len(at.image) == 4  # image and body of A and of B
    assert at.selectbox(key="input_set").value == "P_A,P_B"  # the generator's own input set first
    assert at.selectbox(key="input_set").options == [helpers.describe_input_set(s) for s in INPUT_SETS]
    assert len(_generated(at)) == 1 and any("greedy (the original's)" in c.value for c in at.caption)
    dataset = get_dataset(world["fix"], "val", item_format="ipt", caption_selection=0)
    references = [m.value for m in at.markdown if m.value.startswith("**0.**")]
    assert references == [f"**0.** {dataset.instructions_of(dataset.pair_ids[0])[0]}"]

    at.selectbox(key="input_set").set_value("V_A+P_A,V_B+P_B").run()
    assert not at.exception, at.exception
    assert any(c.value.endswith("from x̄ of the input set (V_A+P_A,V_B+P_B)") for c in at.caption)
    assert any("trained on x̄ of poses" in c.value for c in at.caption)

    at.selectbox(key="method").set_value("nucleus").run()
    at.number_input(key="samples").set_value(2).run()
    assert not at.exception, at.exception
    assert len(_generated(at)) == 2 and any(c.value.startswith("nucleus sampling, top_p 0.9") for c in at.caption)
    at.selectbox(key="method").set_value("beam").run()
    at.number_input(key="beam_size").set_value(2).run()
    assert len(_generated(at)) == 1 and any("beam_size 2" in c.value for c in at.caption)

    at.number_input(key="min_length").set_value(30).run()  # above max_length 12: refused, nothing decoded
    assert not at.exception, at.exception
    assert any("min_length=30 must be below max_length=12" in e.value for e in at.sidebar.error)
    assert not any(s.value.startswith("Generated") for s in at.subheader)
    assert any(s.value == "Reference instructions" for s in at.subheader)
    at.number_input(key="min_length").set_value(3).run()

    at.radio(key="select_by").set_value("pair id").run()
    at.number_input(key="pair_id").set_value(999).run()
    assert not at.exception, at.exception
    assert any("no pair with id 999" in e.value for e in at.error)


@pytest.mark.render
def test_app_on_two_samples_and_on_sampled_poses(world):
    at = _short(_app(world).run())
    at.radio(key="source").set_value(SCRIPT_SOURCE).run()
    assert not at.exception, at.exception
    at.selectbox(key="dataset").set_value(world["script"]).run()
    at.number_input(key="index_B").set_value(4).run()
    assert not at.exception, at.exception
    assert len(at.image) == 4 and len(_generated(at)) == 1
    assert not [s for s in at.subheader if s.value == "Reference instructions"]

    at.radio(key="source").set_value(SAMPLED_SOURCE).run()
    assert not at.exception, at.exception
    assert len(at.image) == 2  # two bodies, no picture
    assert at.selectbox(key="input_set").options == [helpers.describe_input_set("P_A,P_B")]
    first = [m.value for m in at.markdown]
    assert any(s.value == "Reference instructions" for s in at.subheader)
    assert any("rule-based instruction writer" in c.value for c in at.caption)
    at.number_input(key="pose_seed").set_value(1).run()
    at.number_input(key="pose_seed").set_value(0).run()
    assert [m.value for m in at.markdown] == first  # the same seed gives the same poses and texts


@pytest.mark.render
def test_app_uploads_use_the_images_and_bad_ones_get_a_message(world):
    at = _short(_app(world).run())
    at.radio(key="source").set_value(UPLOAD_SOURCE).run()
    assert not at.exception, at.exception
    assert any("Upload a picture" in i.value for i in at.info)
    at.file_uploader(key="upload_A").set_value(("a.png", _picture(90, 120), "image/png")).run()
    at.file_uploader(key="upload_B").set_value(("b.jpg", _picture(120, 160, "JPEG", (0, 200, 0)), "image/jpeg")).run()
    assert not at.exception, at.exception
    assert len(at.image) == 2 and len(_generated(at)) == 1
    assert at.selectbox(key="input_set").value == "V_A,V_B"
    assert not at.warning
    assert any(c.value.endswith("from x̄ of the input set (V_A,V_B)") for c in at.caption)
    for data, message in (
        (b"not an image", "b.jpg: not a readable PNG/JPG"),
        (_png_header_only(30_000, 30_000), "too many pixels"),
        (_png_header_only(9_000, 8_000), "72 megapixels"),
        (_picture(4, 4), "too small"),
    ):
        at.file_uploader(key="upload_B").set_value(("b.jpg", data, "image/jpeg")).run()
        assert not at.exception, at.exception
        assert any(message in e.value for e in at.error), [e.value for e in at.error]
        assert not at.subheader or not any(s.value.startswith("Generated") for s in at.subheader)
    at.file_uploader(key="upload_B").set_value(("b.jpg", _picture(120, 160, "JPEG"), "image/jpeg")).run()
    assert not at.exception and not at.error and len(_generated(at)) == 1  # the app is still up


def test_app_messages_for_a_folder_without_a_generator(world, tmp_path):
    at = _app(world, str(world["models"]["PoseEmbroider"])).run()
    assert not at.exception, at.exception
    assert any("Cannot load an InstructionGenerator" in e.value and "'PoseEmbroider'" in e.value for e in at.error)
    at = _app(world, str(tmp_path)).run()
    assert any("Cannot load an InstructionGenerator" in e.value and "no config.json" in e.value for e in at.error)


@pytest.mark.render
def test_app_says_when_an_input_set_cannot_be_used(world, imageless_generator, monkeypatch):
    at = _short(_app(world, imageless_generator).run())
    assert not at.exception, at.exception
    assert len(_generated(at)) == 1  # (P_A,P_B): the poses are embedded
    at.selectbox(key="input_set").set_value("V_A,V_B").run()
    assert not at.exception, at.exception
    assert any("cannot make x̄ of input set V_A,V_B" in e.value and "image encoder" in e.value for e in at.error), [
        e.value for e in at.error
    ]
    assert any(s.value == "Reference instructions" for s in at.subheader)  # the rest of the page stays

    monkeypatch.setattr(sys, "argv", ["demo_instruction_generation.py", "--input_set", "V_A,V_B"])
    at = _short(_app(world).run())
    at.radio(key="source").set_value(SAMPLED_SOURCE).run()
    assert not at.exception, at.exception
    assert any("The input set V_A,V_B cannot be used for this pair" in w.value for w in at.warning)
    assert at.selectbox(key="input_set").value == "P_A,P_B" and len(_generated(at)) == 1


def test_app_without_any_model_says_how_to_get_one(monkeypatch):
    monkeypatch.delenv("POSEEMBROIDER_INSTRUCTION_DEMO_MODEL", raising=False)
    at = AppTest.from_file(str(DEMO), default_timeout=60).run()  # the session's models root holds no generator
    assert not at.exception, at.exception
    assert any("No InstructionGenerator model is registered" in i.value for i in at.info) and not at.error


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
    assert cli_main(["demo", "instruction", "--decoding", "beam", "--input_set", "V_A,V_B"]) == 0
    assert calls[0][:5] == [sys.executable, "-m", "streamlit", "run", str(DEMO)]
    assert calls[0][-6:] == ["--split", "val", "--decoding", "beam", "--input_set", "V_A,V_B"]
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["demo", "instruction", "--help"])
    assert exit_info.value.code == 0 and "--top_p" in capsys.readouterr().out
