"""Text-backbone test helpers: a DistilBERT small enough to pretrain in seconds, no network, and one
pretraining run shared by the model and script tests (the corpus and tokenizer come from `text_fixtures`)."""

from __future__ import annotations

import pytest

from poseembroider.assisting_models.textBackbone.model_textBackbone import TextBackboneConfig


@pytest.fixture(scope="session")
def tiny_config() -> TextBackboneConfig:
    """A DistilBERT small enough to pretrain in seconds on 2 cores (texts cut at 32 tokens)."""
    return TextBackboneConfig(
        dim=64, n_layers=2, n_heads=4, hidden_dim=128, max_position_embeddings=32, dropout=0.0, attention_dropout=0.0
    )




@pytest.fixture(scope="session")
def pretrained(caption_corpus, wordpiece_dir, isolated_config, tiny_config):
    """Our small DistilBERT pretrained on the caption corpus, saved at the distilbertSynth place."""
    from poseembroider.assisting_models.textBackbone.train_textBackbone import pretrain_backbone
    from poseembroider.text.tokenization import load_tokenizer

    out = isolated_config["MODELS_ROOT"] / "distilbert-synth"
    report = pretrain_backbone(
        caption_corpus,
        load_tokenizer(wordpiece_dir),
        out,
        steps=800,  # 300 leave the masked-token accuracy within noise of the most-frequent-token one, 450 on some CPUs
        batch_size=32,
        seed=0,
        config=tiny_config,
        lr=3e-3,
        val_fraction=0.15,
        progress=False,
        num_threads=1,  # cores shared with other jobs: one thread is several times faster than two
    )
    return out, report
