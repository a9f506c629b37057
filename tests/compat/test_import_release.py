"""The original's release imports into our classes and computes the original's outputs.

A fake release in the original's format (`release_fixture`: random weights, original key layout, torch pickles
holding an argparse.Namespace) is imported once for the module; every kind is compared with an independent
reference forward written from the reference documents (`release_reference`), max abs difference <= 1e-4: PoseVAE
feature / posterior / decoded rotations, PoseText and PairText embeddings, the SMPLer-X tokens, the DistilBERT token
features, and for PoseEmbroider and the Aligner the modality tokens, x̄ of every input subset and the 9 query
features, both through the model and through `Representation` on raw inputs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import release_reference as ref
import torch
from release_fixture import SHORTNAMES, Sizes, write_fake_release

from poseembroider import config
from poseembroider.assisting_models.imageEncoder.model_imageEncoder import ImageEncoder
from poseembroider.assisting_models.pairText.model_pairText import PairText
from poseembroider.assisting_models.poseText.model_poseText import PoseText
from poseembroider.assisting_models.poseVAE.model_poseVAE import PoseVAE
from poseembroider.assisting_models.textBackbone.model_textBackbone import load_text_encoder
from poseembroider.compat.heads import ORIGINAL_GREEDY
from poseembroider.compat.importers import PROVENANCE_NAME
from poseembroider.compat.release_import import import_release
from poseembroider.modalities import query_types
from poseembroider.models.pretrained import load_pretrained
from poseembroider.registry import load_registry
from poseembroider.representation import Representation

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TOLERANCE = 1e-4
GREEDY_MARGIN = 1e-4  # a greedy step whose top-2 log-probabilities are closer than this may flip on rounding
TEXTS = [
    "the left arm is raised and the knees are bent",
    "his head is slightly bent , the right hand up",
    "a",
    "both feet with the hands and the elbow bent down , the arms raised up a little bit and the left knee bent",
    "her right arm is up",
]
N = len(TEXTS)


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Iterator[dict]:
    """The fake release, imported into a models root of its own (registered there)."""
    root = tmp_path_factory.mktemp("original_release")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(config, "MODELS_ROOT", root / "models")
        files = write_fake_release(root / "release", seed=0)
        report = import_release(root / "release", root / "models" / "pretrained")
        yield {"files": files, "report": report, "root": root}


@pytest.fixture(scope="module")
def inputs(release) -> dict:
    from transformers import AutoTokenizer

    gen = torch.Generator().manual_seed(1)
    tokenizer = AutoTokenizer.from_pretrained(str(release["files"]["distilbert"]), local_files_only=True)
    enc = tokenizer(TEXTS, padding="longest", truncation=True, return_tensors="pt")
    return {
        "poses": torch.randn(N, 22, 3, generator=gen) * 0.6,
        "poses_B": torch.randn(N, 22, 3, generator=gen) * 0.6,
        "pixels": torch.randint(0, 256, (N, 256, 192, 3), generator=gen, dtype=torch.uint8),
        "tokens": enc["input_ids"],
        "lengths": enc["attention_mask"].sum(1),
    }


def _images(inputs: dict) -> torch.Tensor:
    return inputs["pixels"].permute(0, 3, 1, 2).float() / 255.0


def _state(release: dict, shortname: str) -> dict[str, torch.Tensor]:
    return torch.load(release["files"][shortname], weights_only=False)["model"]  # our own fixture file


def _close(ours: torch.Tensor, reference: torch.Tensor, what: str) -> None:
    assert ours.shape == reference.shape, what
    error = float((ours.double() - reference.double()).abs().max())
    assert error <= TOLERANCE, f"{what}: max abs difference {error:.3g}"


def test_every_shortname_and_asset_is_written_registered_and_described(release):
    report = release["report"]
    assert set(report.seconds) == set(SHORTNAMES)
    assert set(report.written) == set(SHORTNAMES) | {"smpler_x_b32", "distilbert-base-uncased"}  # one DistilBERT copy
    assert report.skipped == {}
    registry = load_registry()
    for name, folder in report.written.items():
        assert (folder / "config.json").is_file() and (folder / PROVENANCE_NAME).is_file()
        assert registry[name].path == folder
    described = json.loads((report.written["poseembroider_model_bedlamscript"] / PROVENANCE_NAME).read_text())
    assert described["kind"] == "PoseEmbroider" and described["epoch"] == 137
    assert described["args"]["text_encoder_name"] == "posetext"
    core = json.loads((report.written["poseembroider_model_bedlamscript"] / "config.json").read_text())["config"]
    assert core["pose_encoder_name"] == "posevae_model_bedlamscript" and core["image_encoder_name"] == "smpler_x_b32"
    assert core["core_width"] == Sizes().core_width and core["core_layers"] == 1 and core["core_heads"] == 4
    assert all(core[f"{m}_encoder_fingerprint"] for m in ("image", "pose", "text"))


def test_posevae(release, inputs):
    model = PoseVAE.from_pretrained("posevae_model_bedlamscript")
    expected = ref.posevae(_state(release, "posevae_model_bedlamscript"), inputs["poses"])
    with torch.no_grad():
        q = model.encode(inputs["poses"])
        _close(model.encode_features(inputs["poses"]), expected["feature"], "pose feature")
        _close(q.mean, expected["mu"], "posterior mean")
        _close(q.scale, expected["scale"], "posterior scale")
        _close(model.pose_decoder(q.mean), expected["rotmat"], "decoded rotations")


def test_posetext(release, inputs):
    model = PoseText.from_pretrained("posetext_model_bedlamscript")
    sd = _state(release, "posetext_model_bedlamscript")
    heads = Sizes().bert_heads
    with torch.no_grad():
        _close(model.encode_poses(inputs["poses"]), ref.retrieval_pose(sd, inputs["poses"]), "PoseText poses")
        texts = model.encode_texts(inputs["tokens"], inputs["lengths"])
        _close(texts, ref.text_encoder(sd, inputs["tokens"], inputs["lengths"], heads, True), "PoseText texts")
        raw = model.encode_raw_texts(TEXTS)  # the imported tokenizer gives the release tokenizer's ids
    _close(raw, texts, "PoseText raw texts")


def test_pairtext(release, inputs):
    model = PairText.from_pretrained("pairtext_model_ft_bedlamfix_posefix")
    sd = _state(release, "pairtext_model_ft_bedlamfix_posefix")
    with torch.no_grad():
        pairs = model.encode_pose_pairs(inputs["poses"], inputs["poses_B"])
        _close(pairs, ref.pair_embedding(sd, inputs["poses"], inputs["poses_B"]), "PairText pairs")
        texts = model.encode_texts(inputs["tokens"], inputs["lengths"])
    _close(texts, ref.text_encoder(sd, inputs["tokens"], inputs["lengths"], Sizes().bert_heads, True), "PairText")


def test_frozen_encoder_assets(release, inputs):
    network = torch.load(release["files"]["smplerx"], weights_only=True)["network"]
    encoder = ImageEncoder.from_pretrained("smpler_x_b32")
    assert encoder.frozen
    with torch.no_grad():
        _close(encoder.forward_features(_images(inputs)), ref.smplerx_vit(network, _images(inputs)), "ViT tokens")
    tokenizer, backbone = load_text_encoder("distilbert-base-uncased")
    assert tokenizer.batch(TEXTS)[0].tolist() == inputs["tokens"].tolist()
    mask = torch.arange(inputs["tokens"].shape[1])[None] < inputs["lengths"][:, None]
    with torch.no_grad():
        features = backbone(inputs["tokens"], inputs["lengths"]) * mask[..., None]
    expected = ref.distilbert(release["files"]["bert"], inputs["tokens"], mask, Sizes().bert_heads) * mask[..., None]
    _close(features, expected, "DistilBERT features (the checkpoint's copy, not the folder's own weights)")


def _reference_core(release: dict, inputs: dict, kind: str, shortname: str) -> tuple[dict, dict]:
    """Reference modality tokens and x̄ of every subset."""
    network = torch.load(release["files"]["smplerx"], weights_only=True)["network"]
    posevae = _state(release, "posevae_model_bedlamscript")
    posetext = _state(release, "posetext_model_bedlamscript")
    features = {
        "image": ref.smplerx_vit(network, _images(inputs)),
        "pose": ref.vposer_trunk(posevae, "pose_encoder.encoder", inputs["poses"]),
        "text": ref.text_encoder(posetext, inputs["tokens"], inputs["lengths"], Sizes().bert_heads, False),
    }
    core = _state(release, shortname)
    tokens = ref.modality_tokens(core, kind, features)
    subsets = [(m,) for m in ref.MODALITIES] + [q for q, _ in ref.QUERY_TYPES[6:]] + [ref.MODALITIES]
    return tokens, {s: ref.intermodality(core, kind, tokens, s) for s in subsets}


@pytest.mark.parametrize("kind", ["PoseEmbroider", "Aligner"])
def test_core_models(release, inputs, kind):
    shortname = f"{kind.lower()}_model_bedlamscript"
    rep = Representation.from_pretrained(shortname)
    model = rep.model
    core = _state(release, shortname)
    tokens_ref, xbar_ref = _reference_core(release, inputs, kind, shortname)
    batch = {"images": _images(inputs), "poses": inputs["poses"], "texts_tokens": inputs["tokens"]}
    batch["texts_lengths"] = inputs["lengths"]
    with torch.no_grad():
        tokens = model.encode(batch)
        for m in ref.MODALITIES:
            _close(tokens[m], tokens_ref[m], f"{kind} {m} tokens")
        for subset, expected in xbar_ref.items():
            _close(model.represent(tokens, subset), expected, f"{kind} x̄ of {subset}")
        for query in query_types():
            expected = ref.query_feature(core, kind, xbar_ref[tuple(query.query)], query.target)
            _close(model.query_features(tokens, query), expected, f"{kind} query {query.name}")

    # the front door on raw inputs: uint8 crops, poses already in the models' frame, strings
    pictures = [p.numpy() for p in inputs["pixels"]]
    xbar = rep.represent(images=pictures, poses=inputs["poses"].numpy(), texts=TEXTS, normalization="none")
    _close(xbar, xbar_ref[ref.MODALITIES], f"{kind} Representation.represent")
    _close(rep.embed_texts(TEXTS), tokens_ref["text"], f"{kind} Representation.embed_texts")


def test_folders_load_by_path_and_the_json_is_plain(release):
    for name, folder in release["report"].written.items():
        if name in SHORTNAMES:
            model = load_pretrained(folder)
            assert type(model).__name__ == SHORTNAMES[name][0]
    sizes = {
        n: sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) for n, p in release["report"].written.items()
    }
    assert release["report"].total_bytes() == sum(sizes.values())


def test_outputs_are_the_same_for_each_random_input_seed(release):
    """Guards the test itself: the fake weights are not degenerate (different poses, different embeddings)."""
    model = PoseText.from_pretrained("posetext_model_bedlamscript")
    poses = torch.from_numpy(np.random.default_rng(3).normal(0, 0.5, (4, 22, 3)).astype(np.float32))
    with torch.no_grad():
        embeddings = model.encode_poses(poses)
    assert float(torch.cdist(embeddings, embeddings).max()) > 0.1


def test_output_folders_are_under_out(release):
    out = release["root"] / "models" / "pretrained"
    assert all(Path(p).parent == out for p in release["report"].written.values())


HPS_MODELS = ["hpsestimator_model_poseembroider_bedlamscript", "hpsestimator_model_aligner_bedlamscript"]
INSTRUCTGEN_MODELS = [
    "instructgen_model_poseembroider_bedlamfix_posefix",
    "instructgen_model_aligner_bedlamfix_posefix",
]


@pytest.mark.parametrize("shortname", HPS_MODELS)
def test_hps_estimators(release, inputs, shortname):
    from poseembroider.downstream.pose_estimation.model_pose_estimation import HPSEstimator

    model = HPSEstimator.from_pretrained(shortname)
    sd = _state(release, shortname)
    xbar = torch.randn(N, Sizes().core_latent, generator=torch.Generator().manual_seed(5))
    expected = ref.hps(sd, xbar)
    with torch.no_grad():
        out = model(xbar)
        _close(out["rotations"], expected["rotations"], f"{shortname} rotations")
        _close(out["betas"], expected["betas"], f"{shortname} betas")
        # end to end from images: x̄ by the imported core model (loaded from the head's config), then the head
        kind = "PoseEmbroider" if "poseembroider" in shortname else "Aligner"
        core = f"{kind.lower()}_model_bedlamscript"
        _, xbar_ref = _reference_core(release, inputs, kind, core)
        predicted = model.predict({"images": _images(inputs)}, ["images"])
    expected = ref.hps(sd, xbar_ref[("image",)])
    _close(predicted["rotations"], expected["rotations"], f"{shortname} rotations from images")
    _close(predicted["betas"], expected["betas"], f"{shortname} betas from images")


@pytest.mark.parametrize("shortname", INSTRUCTGEN_MODELS)
def test_instruction_generators(release, inputs, shortname):
    from poseembroider.downstream.instruction_generation.model_instruction_generation import InstructionGenerator

    model = InstructionGenerator.from_pretrained(shortname)
    sd = _state(release, shortname)
    gen = torch.Generator().manual_seed(6)
    xbar_a, xbar_b = (torch.randn(N, Sizes().core_latent, generator=gen) for _ in range(2))
    heads = Sizes().decoder_heads
    memory = ref.tirg_memory(sd, xbar_a, xbar_b)
    tokens, lengths = inputs["tokens"], inputs["lengths"]
    real = (torch.arange(tokens.shape[1])[None] < lengths[:, None])[..., None]
    with torch.no_grad():
        _close(model.memory(xbar_a, xbar_b), memory, f"{shortname} memory")
        logits = model(xbar_a, xbar_b, tokens) * real
        _close(logits, ref.decoder_logits(sd, memory, tokens, lengths, heads) * real, f"{shortname} logits")
        generated = model.generate(xbar_a, xbar_b, decoding="greedy", **ORIGINAL_GREEDY)
    special = model.special
    expected, margins = ref.greedy(sd, memory, heads, special.bos, special.eos, special.pad)
    assert (special.bos, special.eos, special.pad) == (101, 102, 0)  # [CLS], [SEP], [PAD] of the BERT vocabulary
    compared = 0
    for row in range(N):  # greedy ids are compared up to the first step whose top-2 margin is within rounding
        low = (margins[row] < GREEDY_MARGIN).nonzero()
        steps = int(low[0]) if len(low) else margins.shape[1]
        ours = generated.tokens[row, :steps].tolist()
        assert ours == expected[row, :steps].tolist(), f"{shortname} greedy tokens of row {row}"
        if not len(low):  # the whole decode: same end (EOS at the same step, or the 199-token cap)
            ended = (expected[row] == special.eos).nonzero()
            assert int(generated.lengths[row]) == (int(ended[0]) + 1 if len(ended) else expected.shape[1])
        compared += steps
    assert compared >= 40
