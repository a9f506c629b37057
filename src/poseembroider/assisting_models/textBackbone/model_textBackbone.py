"""The frozen text backbone of the PoseText text branch: DistilBERT token features, by name.

- `distilbertUncased`, from `config.TRANSFORMER_CACHE_DIR`: the real distilbert-base-uncased (6 layers,
  dim 768, 66 M parameters), as the original;
- `distilbertSynth`, from `config.MODELS_ROOT / "distilbert-synth"` (offline world): a small DistilBERT
  (`TextBackboneConfig`, `TEXT_BACKBONE_PRESETS`) pretrained by masked-language modelling on our
  caption + instruction corpus (`model_mlm.MaskedLanguageModel`, trained by `train_textBackbone.py`).

Both folders have the same layout, the one of the Hugging Face distilbert-base-uncased snapshot: a
`DistilBertForMaskedLM` checkpoint (`config.json` + `model.safetensors`) with its tokenizer files beside it
(`tokenizer.json`, `tokenizer_config.json`, `vocab.txt`). The backbone is the `DistilBertModel` inside
(the MLM head is dropped at load), read with `local_files_only=True` from safetensors only (no pickle),
then frozen: no parameter requires a gradient and it stays in eval mode even when its parent module is
put in training mode, so its features are a deterministic function of the tokens.

`load_text_encoder(name)` gives the tokenizer and the backbone of one text model, checked against each
other: what the text-encoder trunk (`models.text_encoder.TransformerTextEncoder`) is built over.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from poseembroider.models.text_encoder import lengths_to_mask
from poseembroider.registry import Registry
from poseembroider.text.tokenization import (
    TextModelNotFoundError,
    Tokenizer,
    _missing_folder_hint,
    get_tokenizer,
    quiet_transformers,
    text_model_folder,
)

__all__ = [
    "TEXT_BACKBONE_PRESETS",
    "TextBackbone",
    "TextBackboneConfig",
    "get_text_backbone",
    "list_text_backbones",
    "load_distilbert",
    "load_text_backbone",
    "load_text_encoder",
    "register_text_backbone",
]


# ---------------------------------------------------------------- configuration


@dataclass
class TextBackboneConfig:
    """Size of our offline DistilBERT. The defaults (4 layers, dim 256, 4 heads, feed-forward 1024,
    256 positions) have 3.4 M parameters with our ~650-token caption vocabulary (3.2 M in the
    transformer layers, ~0.2 M in the embeddings; the MLM head adds 0.07 M, its projection being tied
    to the token embeddings). distilbert-base-uncased is 66 M."""

    dim: int = 256  # hidden size = size of every token feature
    n_layers: int = 4  # transformer blocks
    n_heads: int = 4  # attention heads (dim must be a multiple)
    hidden_dim: int = 1024  # feed-forward width
    max_position_embeddings: int = 256  # longest text in tokens, [CLS] and [SEP] included
    dropout: float = 0.1  # residual / embedding dropout during pretraining
    attention_dropout: float = 0.1  # attention-probability dropout during pretraining

    def __post_init__(self) -> None:
        if self.dim % self.n_heads:
            raise ValueError(f"dim={self.dim} must be a multiple of n_heads={self.n_heads}")

    def distilbert_config(self, vocab_size: int, pad_token_id: int = 0) -> Any:
        """The transformers `DistilBertConfig` of this size over a vocabulary of `vocab_size` tokens."""
        from transformers import DistilBertConfig

        return DistilBertConfig(
            vocab_size=vocab_size,
            dim=self.dim,
            n_layers=self.n_layers,
            n_heads=self.n_heads,
            hidden_dim=self.hidden_dim,
            max_position_embeddings=self.max_position_embeddings,
            dropout=self.dropout,
            attention_dropout=self.attention_dropout,
            pad_token_id=pad_token_id,
            architectures=["DistilBertForMaskedLM"],
        )


TEXT_BACKBONE_PRESETS: dict[str, TextBackboneConfig] = {
    "base": TextBackboneConfig(),  # 3.4 M parameters
    "small": TextBackboneConfig(dim=128, n_layers=4, n_heads=4, hidden_dim=512),  # 0.9 M
    "tiny": TextBackboneConfig(dim=64, n_layers=2, n_heads=4, hidden_dim=256),  # 0.16 M, tests
}
"""Named sizes of our offline DistilBERT (parameter counts with the ~650-token caption vocabulary)."""


# ---------------------------------------------------------------- loading a folder


def _check_model_folder(folder: Path, name: str | None) -> None:
    if not folder.is_dir():
        raise TextModelNotFoundError(f"text backbone folder not found: {folder}{_missing_folder_hint(name)}")
    if not (folder / "config.json").is_file():
        raise TextModelNotFoundError(f"no config.json in text backbone folder {folder}{_missing_folder_hint(name)}")
    if not (folder / "model.safetensors").is_file():
        pickled = [f for f in ("pytorch_model.bin", "model.pt", "model.pth") if (folder / f).is_file()]
        extra = (
            f"; found only {pickled}: pickled weights are never loaded, convert them to model.safetensors"
            if pickled
            else ""
        )
        raise TextModelNotFoundError(f"no model.safetensors in text backbone folder {folder}{extra}")


def load_distilbert(folder: str | os.PathLike, name: str | None = None, cls_name: str = "DistilBertModel") -> Any:
    """A transformers DistilBERT (`DistilBertModel` or `DistilBertForMaskedLM`) from a local folder.

    Safetensors only, no download; every weight of `cls_name` must be in the file with the shape its
    config.json implies (errors name the file and the keys). `name` only improves the error of a missing
    named folder (how to make it)."""
    import transformers

    folder = Path(folder)
    _check_model_folder(folder, name)
    model_type = json.loads((folder / "config.json").read_text()).get("model_type")
    if model_type != "distilbert":
        raise ValueError(f"{folder / 'config.json'}: model_type {model_type!r}, expected 'distilbert'")
    cls = getattr(transformers, cls_name)
    _check_safetensors_header(folder / "model.safetensors")
    with quiet_transformers():
        try:
            model, info = cls.from_pretrained(
                str(folder), local_files_only=True, use_safetensors=True, output_loading_info=True
            )
        except (RuntimeError, OSError) as err:
            wrong = _shape_mismatches(folder, cls)
            detail = f"weights of the wrong shape for its config.json: {wrong[:8]}" if wrong else str(err)
            raise ValueError(f"{folder / 'model.safetensors'}: cannot be loaded as {cls_name}: {detail}") from None
    missing = list(info.get("missing_keys", []))
    if missing:
        raise ValueError(f"{folder / 'model.safetensors'}: missing weights for {cls_name}: {sorted(missing)[:8]}")
    mismatched = list(info.get("mismatched_keys", []))
    if mismatched:
        raise ValueError(f"{folder / 'model.safetensors'}: weights of the wrong shape: {mismatched[:8]}")
    return model


def _check_safetensors_header(path: Path) -> None:
    """Refuse, naming the file, a safetensors file whose header lies (a length past the file or over the 100 MB
    cap, offsets past the data or overlapping, a dtype or shape that disagrees with the bytes, not JSON):
    safetensors checks the whole header against the file size when it opens it, before reading any tensor.
    transformers would otherwise raise its `SafetensorError`, which names no file."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt"):
            pass
    except Exception as err:  # noqa: BLE001 - safetensors raises its own error type
        detail = f"{type(err).__name__}: {str(err)[:300]}"
        raise ValueError(f"{path} is not a readable safetensors file ({detail})") from None


def _shape_mismatches(folder: Path, cls: Any) -> list[str]:
    """'name: file shape vs expected shape' for the checkpoint tensors that do not fit the config."""
    from safetensors import safe_open
    from transformers import AutoConfig

    try:
        with quiet_transformers():
            expected = cls(AutoConfig.from_pretrained(str(folder), local_files_only=True)).state_dict()
        prefix = f"{cls.base_model_prefix}."
        wrong = []
        with safe_open(str(folder / "model.safetensors"), framework="pt") as f:
            for key in f.keys():  # noqa: SIM118 - safe_open is not a mapping
                name = key if key in expected else key.removeprefix(prefix)
                if name in expected and tuple(f.get_slice(key).get_shape()) != tuple(expected[name].shape):
                    wrong.append(f"{key}: {tuple(f.get_slice(key).get_shape())} vs {tuple(expected[name].shape)}")
        return wrong
    except Exception:  # noqa: BLE001 - only to enrich an error message
        return []


# ---------------------------------------------------------------- the frozen backbone


class TextBackbone(nn.Module):
    """Token features of a DistilBERT: (tokens (B, L), lengths (B,)) -> (B, L, hidden_size).

    The attention mask comes from `lengths`; features at padding positions are meaningless (mask them,
    e.g. with `lengths_to_mask`). Frozen (the default): parameters do not require gradients, the module
    stays in eval mode, and the forward pass runs without autograd.
    """

    def __init__(self, model: nn.Module, name: str = "custom", frozen: bool = True):
        super().__init__()
        self.model = model
        self.name = name
        self.hidden_size: int = int(model.config.dim)
        self.max_length: int = int(model.config.max_position_embeddings)
        self.vocab_size: int = int(model.config.vocab_size)
        self.frozen = False
        if frozen:
            self.freeze()

    def freeze(self) -> TextBackbone:
        """No gradient, eval mode from now on (also under a parent's `.train()`); returns the backbone."""
        self.frozen = True
        self.model.requires_grad_(False)
        return self.train(False)

    def train(self, mode: bool = True) -> TextBackbone:
        # a frozen backbone ignores its parent's .train(): no dropout, deterministic features
        return super().train(False if self.frozen else mode)

    @classmethod
    def from_folder(cls, folder: str | os.PathLike, name: str | None = None, frozen: bool = True) -> TextBackbone:
        """The `DistilBertModel` of a text model folder (see the module docstring), named after the folder."""
        folder = Path(folder)
        return cls(load_distilbert(folder, name), name or folder.name, frozen)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """tokens (B, L) int64 right-padded, lengths (B,) -> token features (B, L, hidden_size)."""
        if tokens.dim() != 2 or lengths.shape != tokens.shape[:1]:
            raise ValueError(
                f"tokens must be (B, L) and lengths (B,); got {tuple(tokens.shape)} and {tuple(lengths.shape)}"
            )
        if tokens.shape[1] > self.max_length:
            raise ValueError(
                f"texts of {tokens.shape[1]} tokens exceed the {self.max_length} positions of text backbone "
                f"{self.name!r}; tokenize with max_length={self.max_length}"
            )
        mask = lengths_to_mask(lengths.to(tokens.device), tokens.shape[1]).long()
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            return self.model(input_ids=tokens, attention_mask=mask).last_hidden_state

    def extra_repr(self) -> str:
        return f"name={self.name!r}, hidden_size={self.hidden_size}, frozen={self.frozen}"


# ---------------------------------------------------------------- registry

TextBackboneFactory = Callable[..., TextBackbone]
"""`factory(folder: str | PathLike | None = None, frozen: bool = True) -> TextBackbone`."""

TEXT_BACKBONES: Registry[TextBackboneFactory] = Registry("text backbone")
"""Backbone factories `(folder: Path | None = None, frozen: bool = True) -> TextBackbone` by name."""
register_text_backbone = TEXT_BACKBONES.register


def list_text_backbones() -> list[str]:
    """The registered backbone names, sorted."""
    return TEXT_BACKBONES.names()


def get_text_backbone(
    name_or_folder: str | os.PathLike, folder: str | os.PathLike | None = None, frozen: bool = True
) -> TextBackbone:
    """A registered backbone by name (optionally from another `folder`), or one loaded from a folder path."""
    return TEXT_BACKBONES.build(
        name_or_folder, lambda path: TextBackbone.from_folder(path, frozen=frozen), folder=folder, frozen=frozen
    )


def load_text_backbone(name: str, folder: str | os.PathLike | None = None, frozen: bool = True) -> TextBackbone:
    """The backbone of the named text model, from its configured folder (`text_model_folder`) or `folder`."""
    folder = Path(folder) if folder is not None else text_model_folder(name)
    return TextBackbone(load_distilbert(folder, name), name, frozen)


@register_text_backbone("distilbertUncased")
def distilbert_uncased_backbone(folder: str | os.PathLike | None = None, frozen: bool = True) -> TextBackbone:
    """The real distilbert-base-uncased from `config.TRANSFORMER_CACHE_DIR` (hidden size 768)."""
    return load_text_backbone("distilbertUncased", folder, frozen)


@register_text_backbone("distilbertSynth")
def distilbert_synth_backbone(folder: str | os.PathLike | None = None, frozen: bool = True) -> TextBackbone:
    """Our small DistilBERT pretrained on the caption corpus (hidden size `TextBackboneConfig.dim`)."""
    return load_text_backbone("distilbertSynth", folder, frozen)


def load_text_encoder(
    name_or_folder: str | os.PathLike, folder: str | os.PathLike | None = None
) -> tuple[Tokenizer, TextBackbone]:
    """The tokenizer and the frozen backbone of one text model, checked against each other; the
    tokenizer truncates to the backbone's number of positions."""
    tokenizer = get_tokenizer(name_or_folder, folder=folder)
    backbone = get_text_backbone(name_or_folder, folder=folder)
    if len(tokenizer) > backbone.vocab_size:
        raise ValueError(
            f"tokenizer {tokenizer.name!r} has {len(tokenizer)} tokens but text backbone {backbone.name!r} only "
            f"{backbone.vocab_size} embeddings: they do not belong together"
        )
    tokenizer.max_length = min(tokenizer.max_length, backbone.max_length)
    return tokenizer, backbone
