"""Tiny stand-ins of the assisting models, shared by test folders: a text model folder (WordPiece tokenizer
trained on given texts + a randomly initialised tiny DistilBERT), and small saved frozen encoders
(image encoder, PoseVAE, PoseText) for the core models' end-to-end tests."""

from __future__ import annotations

from pathlib import Path

import torch

TINY_CORE: dict[str, object] = dict(
    latentD=16, core_width=8, core_heads=2, core_ff=16, l2normalize=True, single_partials=True, dual_partials=True
)
"""`CoreConfig` fields of the tiny PoseEmbroider / Aligner of the tests (published architecture, small widths)."""

TINY_TEXT_BACKBONE = {"dim": 32, "n_layers": 1, "n_heads": 2, "hidden_dim": 64, "max_position_embeddings": 160}


def make_text_model_folder(folder: Path, texts: list[str], seed: int = 0) -> Path:
    """A WordPiece tokenizer trained on `texts` and a randomly initialised tiny DistilBERT, in one folder
    (the layout of the distilbertSynth / distilbert-base-uncased folders)."""
    from transformers import DistilBertForMaskedLM

    from poseembroider.assisting_models.textBackbone.model_textBackbone import TextBackboneConfig
    from poseembroider.text.tokenization import train_wordpiece_tokenizer

    tokenizer = train_wordpiece_tokenizer(
        texts, vocab_size=1000, out_dir=folder, max_length=TINY_TEXT_BACKBONE["max_position_embeddings"]
    )
    torch.manual_seed(seed)
    backbone_config = TextBackboneConfig(**TINY_TEXT_BACKBONE).distilbert_config(len(tokenizer), tokenizer.pad_token_id)
    DistilBertForMaskedLM(backbone_config).save_pretrained(str(folder))
    return folder


def make_core_encoders(folder: Path, texts: list[str], seed: int = 0) -> dict[str, str]:
    """Save a tiny image encoder, PoseVAE and PoseText (over a tiny text backbone trained on `texts`) under
    `folder`; returns the `--<modality>_encoder_name` folder of each."""
    from poseembroider.assisting_models.imageEncoder.model_imageEncoder import CPU_PRESET, ImageEncoder
    from poseembroider.assisting_models.poseText.model_poseText import PoseText, PoseTextConfig
    from poseembroider.assisting_models.poseVAE.model_poseVAE import PoseVAE, PoseVAEConfig

    torch.manual_seed(seed)
    text_dir = make_text_model_folder(folder / "text_backbone", texts, seed)
    image = ImageEncoder.from_preset(CPU_PRESET, depth=1, embed_dim=32, num_heads=2).freeze()
    pose = PoseVAE(PoseVAEConfig(num_neurons=32, latentD=8)).eval()
    text = PoseText(
        PoseTextConfig(
            text_encoder_name=str(text_dir),
            latentD=16,
            num_neurons=32,
            num_neurons_mini=8,
            transformer_layers=1,
            transformer_heads=2,
            transformer_ff=32,
        )
    ).eval()
    return {
        "image": str(image.save_pretrained(folder / "image")),
        "pose": str(pose.save_pretrained(folder / "pose")),
        "text": str(text.save_pretrained(folder / "text")),
    }


def make_core_models(folder: Path, texts: list[str], seed: int = 0, **config: object) -> dict[str, Path]:
    """Tiny frozen encoders (`make_core_encoders`) and an untrained PoseEmbroider and Aligner over them (latentD
    16, L2-normalised, single + dual bundles), saved under `folder`; returns {class name: model folder}.
    `config` overrides `CoreConfig` fields."""
    from poseembroider.encoders import FrozenEncoders
    from poseembroider.model import Aligner, CoreConfig, PoseEmbroider, encoder_fields

    encoders = make_core_encoders(folder / "encoders", texts, seed)
    values: dict[str, object] = dict(
        TINY_CORE,
        image_encoder_name=encoders["image"],
        pose_encoder_name=encoders["pose"],
        text_encoder_name=encoders["text"],
        **encoder_fields(FrozenEncoders(encoders)),
    )
    values.update(config)
    models: dict[str, Path] = {}
    for cls in (PoseEmbroider, Aligner):
        torch.manual_seed(seed)
        models[cls.__name__] = cls(CoreConfig(**values)).save_pretrained(folder / cls.__name__)
    return models
