"""The two frozen-encoder assets of the release, turned into model folders of ours.

- SMPLer-X `smpler_x_b32.pth.tar` (`ckpt['network']`, the ViT under `module.encoder.`) -> a frozen
  `ImageEncoder` folder (config.json + model.safetensors). Keys: `smplerx_weights.KEY_MAPPING` (`task_tokens` ->
  `reg_token`, `last_norm` -> `norm`, the rest by name). Config: from the shapes (width, depth, patch, task
  tokens, MLP ratio); the heads by width (ViT-B 768 -> 12).
- distilbert-base-uncased folder + the copy of DistilBERT inside a PoseText / PairText checkpoint -> a DistilBERT
  folder (`DistilBertModel` safetensors + the tokenizer files), what `load_text_encoder` reads. Keys: the copy's as
  they are (`embeddings.position_ids` of transformers < 4.31 dropped). Config: the folder's config.json.

The DistilBERT weights that count are the copy inside the retrieval checkpoint (the original's strict load of
the PoseText file overwrites the folder's): the folder gives the architecture and the tokenizer only, and its own
weight file is never read (it may be a pickle). Identical copies (PoseText's and PairText's, frozen alike) give one
folder.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

import torch

from poseembroider.assisting_models.imageEncoder.model_imageEncoder import ImageEncoder, ImageEncoderConfig
from poseembroider.assisting_models.imageEncoder.smplerx_weights import (
    extract_backbone_state,
    load_smplerx_state_dict,
    read_smplerx_network,
)
from poseembroider.assisting_models.textBackbone.model_textBackbone import load_text_encoder
from poseembroider.atomic_io import atomic_directory
from poseembroider.compat.state_mapping import KeyRule, map_state_dict
from poseembroider.models.pretrained import CheckpointError
from poseembroider.text.tokenization import TOKENIZER_FILES, quiet_transformers

__all__ = [
    "DISTILBERT_POSITION_IDS",
    "SMPLERX_IMG_SIZE",
    "image_encoder_config_from_smplerx",
    "import_smplerx",
    "write_distilbert_folder",
]

SMPLERX_IMG_SIZE = (256, 192)
"""Input size of the SMPLer-X ViT the original builds (`img_size`), H x W."""
SMPLERX_PATCH_PADDING = 2
"""Padding of the SMPLer-X / ViTPose patch-embedding conv (ratio 1)."""
SMPLERX_DROP_PATH = 0.3
"""The original's drop-path rate (inactive in a frozen encoder: it runs in eval mode)."""
HEADS_BY_WIDTH = {768: 12, 1024: 16, 1280: 16}
"""Attention heads of the SMPLer-X ViTs (B, L, H) by width; other widths: 64-d heads (the ViT convention)."""
DISTILBERT_POSITION_IDS = "embeddings.position_ids"
"""A buffer that checkpoints of transformers < 4.31 hold and current DistilBertModel state dicts do not."""
TOKENIZER_EXTRA_FILES = ("special_tokens_map.json",)


def _shape(state: Mapping[str, torch.Tensor], key: str, ndim: int, source: str | Path) -> tuple[int, ...]:
    if key not in state:
        raise CheckpointError(f"{source}: missing key {key!r}, needed to read the architecture")
    shape = tuple(state[key].shape)
    if len(shape) != ndim:
        raise CheckpointError(f"{source}: key {key!r} has shape {shape}, expected {ndim} dimensions")
    return shape


def image_encoder_config_from_smplerx(state: Mapping[str, torch.Tensor], source: str | Path) -> ImageEncoderConfig:
    """The `ImageEncoderConfig` of a (prefix-free) SMPLer-X ViT state dict, read from its shapes.

    The input size is the original's (256 x 192): a position table that does not fit it is refused, naming
    `pos_embed` and both shapes."""
    width, in_chans, patch, patch_w = _shape(state, "patch_embed.proj.weight", 4, source)
    if patch != patch_w:
        raise CheckpointError(f"{source}: patch_embed.proj.weight has non-square {patch}x{patch_w} patches")
    depth = len({k.split(".")[1] for k in state if k.startswith("blocks.")})
    if depth == 0:
        raise CheckpointError(f"{source}: no 'blocks.N.*' key: not a ViT backbone")
    hidden = _shape(state, "blocks.0.mlp.fc1.weight", 2, source)[0]
    tokens = _shape(state, "task_tokens", 3, source)[1] if "task_tokens" in state else 0
    heads = HEADS_BY_WIDTH.get(width, width // 64)
    if heads < 1 or width % heads:
        raise CheckpointError(f"{source}: cannot tell the attention heads of a ViT of width {width}")
    config = ImageEncoderConfig(
        img_size=SMPLERX_IMG_SIZE,
        patch_size=patch,
        patch_padding=SMPLERX_PATCH_PADDING,
        in_chans=in_chans,
        embed_dim=width,
        depth=depth,
        num_heads=heads,
        mlp_ratio=hidden / width,
        qkv_bias="blocks.0.attn.qkv.bias" in state,
        drop_path_rate=SMPLERX_DROP_PATH,
        num_task_tokens=tokens,
        preset="smplerx_vitb32",
    )
    positions = _shape(state, "pos_embed", 3, source)
    if positions != (1, config.num_patches + 1, width):
        raise CheckpointError(
            f"{source}: pos_embed: file {positions} vs expected {(1, config.num_patches + 1, width)} "
            f"(num_patches + 1 of {SMPLERX_IMG_SIZE[0]}x{SMPLERX_IMG_SIZE[1]} crops in {patch}-pixel patches)"
        )
    return config


def import_smplerx(checkpoint: str | os.PathLike, out: str | os.PathLike) -> Path:
    """The SMPLer-X ViT of `checkpoint` as a frozen `ImageEncoder` folder `out` (what `--image_encoder_name`
    takes). Read with `weights_only=True` (tensors and containers only); strict, errors name keys and shapes."""
    checkpoint = Path(checkpoint)
    state = extract_backbone_state(read_smplerx_network(checkpoint))
    if not state:
        raise CheckpointError(f"{checkpoint}: no key of ckpt['network'] contains 'backbone.' or 'encoder.'")
    encoder = ImageEncoder(image_encoder_config_from_smplerx(state, checkpoint))
    load_smplerx_state_dict(encoder.backbone, state, source=checkpoint)
    encoder.freeze()
    with atomic_directory(out) as tmp:
        encoder.save_pretrained(tmp)
    return Path(out)


def write_distilbert_folder(
    distilbert_dir: str | os.PathLike, state: Mapping[str, torch.Tensor], source: str | Path, out: str | os.PathLike
) -> Path:
    """A text-backbone folder `out`: `DistilBertModel` with the weights `state` (the copy inside a retrieval
    checkpoint, prefix removed), the architecture of `distilbert_dir`/config.json and its tokenizer files.

    Missing, unexpected or misshaped keys are refused naming `source`, the key and both shapes; the written
    folder is loaded back (tokenizer and backbone checked against each other) before it is kept."""
    from transformers import AutoConfig, DistilBertModel

    distilbert_dir = Path(distilbert_dir)
    with quiet_transformers():
        config = AutoConfig.from_pretrained(str(distilbert_dir), local_files_only=True)
    if config.model_type != "distilbert":
        raise CheckpointError(f"{distilbert_dir / 'config.json'}: model_type {config.model_type!r}, not 'distilbert'")
    tokenizer_files = [f for f in (*TOKENIZER_FILES, *TOKENIZER_EXTRA_FILES) if (distilbert_dir / f).is_file()]
    if not any(f in tokenizer_files for f in TOKENIZER_FILES):
        raise FileNotFoundError(f"no tokenizer files ({', '.join(TOKENIZER_FILES)}) in {distilbert_dir}")
    torch.manual_seed(0)  # the weights are all replaced; a fixed seed only keeps the construction reproducible
    model = DistilBertModel(config).eval()
    weights = {k: v for k, v in state.items() if k != DISTILBERT_POSITION_IDS}
    mapped = map_state_dict(weights, [KeyRule("{rest}", "{rest}")], model.state_dict(), source)
    model.load_state_dict(mapped, strict=True)
    out = Path(out)
    with atomic_directory(out) as tmp:
        with quiet_transformers():
            model.save_pretrained(str(tmp))  # safetensors (transformers >= 5 writes nothing else)
        for name in tokenizer_files:
            shutil.copyfile(distilbert_dir / name, tmp / name)
        load_text_encoder(tmp)  # refuses a tokenizer larger than the embedding table, unreadable files, ...
    return out
