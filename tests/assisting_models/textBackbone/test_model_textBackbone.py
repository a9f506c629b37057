"""Text backbone: DistilBERT read from local folders only (the real one's layout, faked), frozen and
deterministic; the registry; a pretrained distilbertSynth reloads with its tokenizer."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from poseembroider import config
from poseembroider.assisting_models.textBackbone.model_mlm import MaskedLanguageModel
from poseembroider.assisting_models.textBackbone.model_textBackbone import (
    TEXT_BACKBONE_PRESETS,
    TextBackbone,
    get_text_backbone,
    list_text_backbones,
    load_text_encoder,
)
from poseembroider.models.parameters import count_parameters
from poseembroider.text.tokenization import TextModelNotFoundError


def test_registry_lists_both_backbones():
    assert {"distilbertUncased", "distilbertSynth"} <= set(list_text_backbones())


def test_distilbert_uncased_from_transformer_cache_dir(fake_distilbert_dir, monkeypatch, no_network):
    monkeypatch.setattr(config, "TRANSFORMER_CACHE_DIR", fake_distilbert_dir)
    tokenizer, backbone = load_text_encoder("distilbertUncased")
    assert backbone.name == tokenizer.name == "distilbertUncased"
    assert backbone.hidden_size == 32 and backbone.max_length == 64 == tokenizer.max_length
    tokens, lengths = tokenizer.batch(["His left knee is bent.", "Raise both arms up, bring the hands down."])
    features = backbone(tokens, lengths)
    assert features.shape == (2, tokens.shape[1], 32) and torch.isfinite(features).all()
    assert count_parameters(backbone, trainable_only=True) == 0


def test_missing_or_unsafe_folders_are_clear_errors(tmp_path, monkeypatch, fake_distilbert_dir):
    missing = tmp_path / "nowhere" / "distilbert-base-uncased"
    monkeypatch.setattr(config, "TRANSFORMER_CACHE_DIR", missing)
    with pytest.raises(TextModelNotFoundError, match="TRANSFORMER_CACHE_DIR") as err:
        get_text_backbone("distilbertUncased")
    assert str(missing) in str(err.value)
    monkeypatch.setattr(config, "MODELS_ROOT", tmp_path / "models")
    with pytest.raises(TextModelNotFoundError, match="pretrain-backbone") as err:
        get_text_backbone("distilbertSynth")
    assert str(tmp_path / "models" / "distilbert-synth") in str(err.value)

    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text((fake_distilbert_dir / "config.json").read_text())
    (pickled / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(TextModelNotFoundError, match="pickled weights are never loaded"):
        TextBackbone.from_folder(pickled)

    wrong = tmp_path / "wrong_shapes"
    wrong.mkdir()
    (wrong / "model.safetensors").write_bytes((fake_distilbert_dir / "model.safetensors").read_bytes())
    cfg = json.loads((fake_distilbert_dir / "config.json").read_text())
    (wrong / "config.json").write_text(json.dumps({**cfg, "hidden_dim": 2 * cfg["hidden_dim"]}))
    with pytest.raises(ValueError, match="wrong shape"):
        TextBackbone.from_folder(wrong)


def test_frozen_backbone_is_deterministic_and_padding_independent(fake_distilbert_dir):
    tokenizer, backbone = load_text_encoder(fake_distilbert_dir)
    parent = nn.Sequential(backbone)
    parent.train()  # a frozen backbone ignores it
    assert not backbone.training and not backbone.model.training
    assert all(not p.requires_grad for p in backbone.parameters())
    texts = ["left knee bent", "Bring your right hand up, and move the left foot a little bit down."]
    tokens, lengths = tokenizer.batch(texts)
    first, second = backbone(tokens, lengths), backbone(tokens, lengths)
    assert torch.equal(first, second) and not first.requires_grad
    alone = backbone(*tokenizer.batch(texts[:1]))
    n = int(lengths[0])
    torch.testing.assert_close(first[0, :n], alone[0, :n], atol=1e-5, rtol=1e-5)  # the mask hides padding
    with pytest.raises(ValueError, match="positions"):
        backbone(torch.zeros(1, 100, dtype=torch.long), torch.tensor([100]))


def test_a_tokenizer_of_another_model_is_refused(fake_distilbert_dir, wordpiece_dir, tmp_path):
    """The tokenizer and the backbone must come from one model: more tokens than embeddings is an error."""
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for name in ("config.json", "model.safetensors"):
        (mixed / name).write_bytes((fake_distilbert_dir / name).read_bytes())
    for path in wordpiece_dir.iterdir():
        (mixed / path.name).write_bytes(path.read_bytes())
    with pytest.raises(ValueError, match="do not belong together"):
        load_text_encoder(mixed)


def test_pretrained_backbone_reloads_frozen_with_its_tokenizer(pretrained, no_network, tiny_config):
    folder, report = pretrained
    assert {"config.json", "model.safetensors", "tokenizer.json", "vocab.txt"} <= {p.name for p in folder.iterdir()}
    tokenizer, backbone = load_text_encoder("distilbertSynth")  # the default place under MODELS_ROOT
    assert backbone.hidden_size == tiny_config.dim and tokenizer.max_length == tiny_config.max_position_embeddings == 32
    assert count_parameters(backbone, trainable_only=True) == 0 and not backbone.training
    tokens, lengths = tokenizer.batch(["The left knee is bent.", "Raise your right arm."])
    features = backbone(tokens, lengths)
    assert features.shape == (2, tokens.shape[1], tiny_config.dim)
    assert torch.equal(features, backbone(tokens, lengths))
    # the checkpoint round-trips: the reloaded MLM scores held-out text as the trained one did
    mlm = MaskedLanguageModel.from_pretrained(folder, validation_seed=0).eval()
    batch = dict(zip(("texts_tokens", "texts_lengths"), tokenizer.batch(["The left knee is bent."] * 4), strict=True))
    assert mlm.validation_step(batch)["loss"] < report.initial_val_loss


def test_presets_have_the_documented_sizes():
    from transformers import DistilBertForMaskedLM

    sizes = {
        name: count_parameters(DistilBertForMaskedLM(cfg.distilbert_config(650)).distilbert)
        for name, cfg in TEXT_BACKBONE_PRESETS.items()
    }
    assert 3.2e6 < sizes["base"] < 3.6e6 and 0.8e6 < sizes["small"] < 1.0e6 and sizes["tiny"] < 0.2e6
