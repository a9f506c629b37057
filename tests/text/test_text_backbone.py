"""Text backbone: DistilBERT read from local folders only (the real one's layout, faked), frozen and
deterministic; BERT masking; MLM pretraining of our small DistilBERT learns the caption language."""

from __future__ import annotations

import json
import socket

import pytest
import torch
from torch import nn

from poseembroider import config
from poseembroider.text.text_backbone import (
    IGNORE_INDEX,
    TEXT_BACKBONE_PRESETS,
    MaskedLanguageModel,
    TextBackbone,
    TextBackboneConfig,
    collate_texts,
    count_parameters,
    get_text_backbone,
    length_bucketed_batches,
    list_text_backbones,
    load_text_encoder,
    mask_tokens,
    pretrain_text_backbone,
)
from poseembroider.text.tokenization import TextModelNotFoundError, load_tokenizer

TINY = TextBackboneConfig(
    dim=64, n_layers=2, n_heads=4, hidden_dim=128, max_position_embeddings=32, dropout=0.0, attention_dropout=0.0
)
"""A DistilBERT small enough to pretrain in seconds on 2 cores (texts cut at 32 tokens)."""


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def pretrained(caption_corpus, wordpiece_dir, isolated_config):
    """Our small DistilBERT pretrained on the caption corpus, saved at the distilbertSynth place."""
    out = isolated_config["MODELS_ROOT"] / "distilbert-synth"
    report = pretrain_text_backbone(
        caption_corpus,
        load_tokenizer(wordpiece_dir),
        out,
        steps=300,
        batch_size=32,
        seed=0,
        config=TINY,
        lr=3e-3,
        val_fraction=0.15,
        progress=False,
        num_threads=1,  # cores shared with other jobs: one thread is several times faster than two
    )
    return out, report


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


def test_mask_tokens_follows_the_80_10_10_rule():
    generator = torch.Generator().manual_seed(0)
    vocab, special = 500, [0, 1, 2, 3, 4]
    tokens = torch.randint(5, vocab, (64, 128), generator=generator)
    lengths = torch.randint(10, 128, (64,), generator=generator)
    tokens[:, 0] = 2
    tokens[torch.arange(64), lengths - 1] = 3
    tokens[torch.arange(128)[None, :] >= lengths[:, None]] = 0
    inputs, labels = mask_tokens(tokens, lengths, 4, vocab, special, 0.15, torch.Generator().manual_seed(1))
    again = mask_tokens(tokens, lengths, 4, vocab, special, 0.15, torch.Generator().manual_seed(1))
    assert torch.equal(inputs, again[0]) and torch.equal(labels, again[1])
    selected = labels != IGNORE_INDEX
    eligible = (torch.arange(128)[None, :] < lengths[:, None] - 1) & (torch.arange(128)[None, :] > 0)
    assert not (selected & ~eligible).any()  # never [CLS], [SEP] or padding
    assert torch.equal(labels[selected], tokens[selected])
    assert abs(selected.sum() / eligible.sum() - 0.15) < 0.01
    masked = (inputs[selected] == 4).float().mean()
    kept = (inputs[selected] == tokens[selected]).float().mean()
    assert abs(masked - 0.8) < 0.03 and abs(kept - 0.1) < 0.03  # (random replacements may hit the same id)
    assert not torch.isin(inputs[selected & (inputs != 4)], torch.tensor([0, 1, 2, 3])).any()
    assert torch.equal(inputs[~selected], tokens[~selected])
    # one short text still gets one prediction target
    _, few = mask_tokens(torch.tensor([[2, 9, 3]]), torch.tensor([3]), 4, vocab, special, 0.0)
    assert (few != IGNORE_INDEX).sum() == 1 and few[0, 1] == 9


def test_length_buckets_cover_each_text_once():
    lengths = [int(x) for x in torch.randint(3, 200, (1000,), generator=torch.Generator().manual_seed(0))]
    batches = length_bucketed_batches(lengths, 32, torch.Generator().manual_seed(0), bucket_batches=5)
    flat = [i for b in batches for i in b]
    assert len(flat) == len(set(flat)) and all(len(b) == 32 for b in batches) and len(flat) >= 1000 - 5 * 32
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) / len(batches)
    assert spread < 60  # texts of a batch have similar lengths (random batches: ~190)


def test_mlm_model_follows_the_trainer_contract(wordpiece_dir, caption_corpus):
    tokenizer = load_tokenizer(wordpiece_dir, max_length=TINY.max_position_embeddings)
    torch.manual_seed(0)
    model = MaskedLanguageModel.from_config(TINY, tokenizer)
    batch = collate_texts([{"texts_tokens": t, "texts_lengths": len(t)} for t in map(tokenizer, caption_corpus[:8])])
    out = model.training_step(batch)
    assert out["loss"].dim() == 0 and out["loss"].requires_grad
    out["loss"].backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    assert model.validation_step(batch) == model.validation_step(batch)  # same masks every time
    assert set(model.validation_step(batch)) == {"loss", "accuracy", "n_masked"}


def test_mlm_pretraining_learns_the_caption_language(pretrained):
    folder, report = pretrained
    assert report.initial_val_loss > 5.5  # ~ log(vocabulary size) at initialisation
    assert report.val_loss < report.initial_val_loss - 1.5
    assert report.val_accuracy > 30 * report.chance_accuracy
    assert report.val_accuracy > report.unigram_accuracy + 0.03  # better than always answering "the"
    assert report.n_backbone_parameters == count_parameters(MaskedLanguageModel.from_pretrained(folder).distilbert)
    metrics = json.loads((folder / "pretraining_metrics.json").read_text())
    assert metrics["val_loss"] == pytest.approx(report.val_loss)


@pytest.mark.slow
def test_longer_mlm_pretraining_uses_the_context(caption_corpus, wordpiece_dir, tmp_path):
    """Beyond the most-frequent-token baseline: the model reads the words around the mask."""
    config = TextBackboneConfig(
        dim=64, n_layers=2, n_heads=4, hidden_dim=256, max_position_embeddings=64, dropout=0.0, attention_dropout=0.0
    )
    report = pretrain_text_backbone(
        caption_corpus,
        load_tokenizer(wordpiece_dir),
        tmp_path / "mlm",
        steps=1500,
        batch_size=32,
        seed=0,
        config=config,
        lr=2e-3,
        val_fraction=0.15,
        progress=False,
        num_threads=1,
    )
    assert report.val_accuracy > report.unigram_accuracy + 0.1


def test_pretrained_backbone_reloads_frozen_with_its_tokenizer(pretrained, no_network):
    folder, report = pretrained
    assert {"config.json", "model.safetensors", "tokenizer.json", "vocab.txt"} <= {p.name for p in folder.iterdir()}
    tokenizer, backbone = load_text_encoder("distilbertSynth")  # the default place under MODELS_ROOT
    assert backbone.hidden_size == TINY.dim and tokenizer.max_length == TINY.max_position_embeddings == 32
    assert count_parameters(backbone, trainable_only=True) == 0 and not backbone.training
    tokens, lengths = tokenizer.batch(["The left knee is bent.", "Raise your right arm."])
    features = backbone(tokens, lengths)
    assert features.shape == (2, tokens.shape[1], TINY.dim)
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


def test_cli_pretrain_backbone(tmp_path, caption_corpus, wordpiece_dir, capsys):
    from poseembroider.cli import main

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(caption_corpus[:40]) + "\n")
    out = tmp_path / "backbone"
    args = ["text", "pretrain-backbone", "--tokenizer", str(wordpiece_dir), "--out", str(out), "--corpus", str(corpus)]
    assert main([*args, "--size", "tiny", "--steps", "2", "--batch-size", "8", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["steps"] == 2
    assert get_text_backbone(out).hidden_size == TEXT_BACKBONE_PRESETS["tiny"].dim
    assert main([*args[:3], str(tmp_path / "no_tokenizer"), *args[4:]]) == 2
