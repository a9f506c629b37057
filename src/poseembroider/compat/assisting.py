"""Importers of the three assisting models (released_checkpoints.md §3.1-3.3).

- PoseVAE: `pose_encoder.encoder.*`, `pose_decoder.decoder.*`, `decsigma_*`: the same names.
- PoseText: `pose_encoder.encoder.{1,2,4,6,7,8,10}.*`, `loss_weight`, `text_encoder.projection.1.*`: the same
  names; `text_encoder.transformer_encoder.layers.N.*` (sequence-first layers) -> `text_encoder.transformer.layers.N.*`
  (batch-first, same weights); `text_encoder.pretrained_text_encoder.*` (the frozen DistilBERT copy) -> a folder of
  its own (`assets.write_distilbert_folder`) named by `text_encoder_name`; `text_encoder.positional_encoding.pe`
  (5000, 1, D) -> recomputed at construction (checked equal to the stored table, else refused).
- PairText: PoseText's, plus `pose_mlp.{1,3,5}.*` (index 0 is the concatenation) -> `pose_mlp.{0,2,4}.*`.

Config mapping: `latentD`, `num_body_joints`, `text_encoder_name` (must be 'distilbertUncased'),
`transformer_topping` from the stored args; the widths the original hard-codes or derives (pose trunk width,
bottleneck, transformer layers and feed-forward width) from the shapes; the 4 attention heads of the text
transformer are the original's constant (not visible in any shape).

Inference is the original's: at evaluation the original's modules run in eval mode as ours do (batch-norm
running statistics, no dropout); the text features are the average of the transformer outputs over the real
tokens, as both implementations compute it.
"""

from __future__ import annotations

import re
from typing import Any

from poseembroider.assisting_models.pairText.model_pairText import PairText, PairTextConfig
from poseembroider.assisting_models.poseText.model_poseText import PoseText, PoseTextConfig
from poseembroider.assisting_models.poseVAE.model_poseVAE import PoseVAE, PoseVAEConfig
from poseembroider.compat.importers import (
    ImportContext,
    Importer,
    count_indices,
    register_importer,
    shape_of,
)
from poseembroider.compat.release_files import ReleaseCheckpoint
from poseembroider.compat.state_mapping import KeyRule
from poseembroider.models.pretrained import CheckpointError
from poseembroider.models.text_encoder import BACKBONE_PREFIX, FINGERPRINT_NAME, PositionalEncoding

__all__ = ["ORIGINAL_TEXT_TRANSFORMER_HEADS", "TEXT_BACKBONE_KEY_PREFIX", "check_positional_table"]

ORIGINAL_TEXT_TRANSFORMER_HEADS = 4
"""Attention heads of the original's text transformer (a constant of its `TransformerTextEncoder`)."""
TEXT_BACKBONE_KEY_PREFIX = "text_encoder.pretrained_text_encoder."
"""Prefix of the frozen DistilBERT copy inside PoseText / PairText checkpoints."""
PE_KEY = "text_encoder.positional_encoding.pe"
PE_TOLERANCE = 1e-6
POSEVAE_LOSS_ARGS = ("wloss_v2v", "wloss_jts", "wloss_rot", "wloss_kld", "wloss_kldnpmul", "kld_epsilon")


def _optional_args(ckpt: ReleaseCheckpoint, names: tuple[str, ...], kind: type) -> dict[str, Any]:
    """The stored args among `names` of type `kind` (training settings: they do not change inference)."""
    return {n: kind(ckpt.args[n]) for n in names if isinstance(ckpt.args.get(n), (int, float)) and ckpt.args[n] >= 0}


# --------------------------------------------------------------------------------------------- PoseVAE


def posevae_config(ckpt: ReleaseCheckpoint, ctx: ImportContext) -> PoseVAEConfig:
    return PoseVAEConfig(
        latentD=ckpt.arg("latentD", int),
        num_body_joints=ckpt.arg("num_body_joints", int),
        num_neurons=shape_of(ckpt, "pose_encoder.encoder.2.weight", 2)[0],
        **_optional_args(ckpt, POSEVAE_LOSS_ARGS, float),
    )


POSEVAE = register_importer(
    Importer(
        kind="PoseVAE",
        model_class=PoseVAE,
        rules=(
            KeyRule("pose_encoder.encoder.{rest}", "pose_encoder.encoder.{rest}"),
            KeyRule("pose_decoder.decoder.{rest}", "pose_decoder.decoder.{rest}"),
            KeyRule("decsigma_{p}", "decsigma_{p}"),
        ),
        build_config=posevae_config,
    )
)


# --------------------------------------------------------------------------------------------- PoseText / PairText


def check_positional_table(ckpt: ReleaseCheckpoint, key: str = PE_KEY) -> None:
    """The stored sinusoid table `key` (recomputed by our model, not loaded) must be the standard one: refuse a
    file whose table differs (its model would add other position codes), naming the key."""
    if key not in ckpt.state:
        return
    stored = ckpt.state[key]
    if stored.dim() != 3 or stored.shape[1] != 1 or stored.shape[2] % 2:
        raise CheckpointError(f"{ckpt.path}: {key}: file {tuple(stored.shape)} vs expected (max_len, 1, even D)")
    table = PositionalEncoding(stored.shape[2], max_len=stored.shape[0]).pe  # (max_len, D)
    error = float((stored[:, 0] - table).abs().max()) if stored.numel() else 0.0
    if error > PE_TOLERANCE:
        raise CheckpointError(
            f"{ckpt.path}: {key} differs from the sinusoid table our model recomputes (max abs difference "
            f"{error:.3g}): this file's model adds other position codes"
        )


def text_side_config(ckpt: ReleaseCheckpoint, ctx: ImportContext, owner: str) -> dict[str, Any]:
    """PoseTextConfig fields of a PoseText / PairText checkpoint; writes (or reuses) its DistilBERT folder."""
    name = ckpt.arg("text_encoder_name", str)
    if name != "distilbertUncased":
        raise CheckpointError(f"{ckpt.path}: args.text_encoder_name = {name!r}; the release uses 'distilbertUncased'")
    backbone = {
        k[len(TEXT_BACKBONE_KEY_PREFIX) :]: v for k, v in ckpt.state.items() if k.startswith(TEXT_BACKBONE_KEY_PREFIX)
    }
    if not backbone:
        raise CheckpointError(f"{ckpt.path}: no '{TEXT_BACKBONE_KEY_PREFIX}*' key (the frozen DistilBERT copy)")
    layers = "text_encoder.transformer_encoder.layers."
    return dict(
        latentD=ckpt.arg("latentD", int),
        num_body_joints=ckpt.arg("num_body_joints", int),
        text_encoder_name=ctx.text_backbone(backbone, ckpt, owner),
        transformer_topping=ckpt.arg("transformer_topping", str),
        num_neurons=shape_of(ckpt, "pose_encoder.encoder.2.weight", 2)[0],
        num_neurons_mini=shape_of(ckpt, "pose_encoder.encoder.8.weight", 2)[0],
        transformer_layers=count_indices(ckpt, layers),
        transformer_heads=ORIGINAL_TEXT_TRANSFORMER_HEADS,
        transformer_ff=shape_of(ckpt, layers + "0.linear1.weight", 2)[0],
        **({"retrieval_loss": ckpt.args["retrieval_loss"]} if isinstance(ckpt.args.get("retrieval_loss"), str) else {}),
    )


TEXT_SIDE_RULES = (
    KeyRule("loss_weight", "loss_weight"),
    KeyRule("pose_encoder.encoder.{rest}", "pose_encoder.encoder.{rest}"),
    KeyRule("text_encoder.projection.{rest}", "text_encoder.projection.{rest}"),
    KeyRule("text_encoder.transformer_encoder.layers.{rest}", "text_encoder.transformer.layers.{rest}"),
)
TEXT_SIDE_IGNORED = (re.escape(TEXT_BACKBONE_KEY_PREFIX) + ".*", re.escape(PE_KEY))
TEXT_SIDE_PROVIDED = ("text_encoder." + BACKBONE_PREFIX, "text_encoder." + FINGERPRINT_NAME)


def posetext_config(ckpt: ReleaseCheckpoint, ctx: ImportContext) -> PoseTextConfig:
    return PoseTextConfig(**text_side_config(ckpt, ctx, ckpt.shortname))


def pairtext_config(ckpt: ReleaseCheckpoint, ctx: ImportContext) -> PairTextConfig:
    return PairTextConfig(**text_side_config(ckpt, ctx, ckpt.shortname))


POSETEXT = register_importer(
    Importer(
        kind="PoseText",
        model_class=PoseText,
        rules=TEXT_SIDE_RULES,
        build_config=posetext_config,
        ignore=TEXT_SIDE_IGNORED,
        provided=TEXT_SIDE_PROVIDED,
        check=check_positional_table,
    )
)

PAIRTEXT = register_importer(
    Importer(
        kind="PairText",
        model_class=PairText,
        rules=(
            *TEXT_SIDE_RULES,
            KeyRule("pose_mlp.1.{p}", "pose_mlp.0.{p}"),
            KeyRule("pose_mlp.3.{p}", "pose_mlp.2.{p}"),
            KeyRule("pose_mlp.5.{p}", "pose_mlp.4.{p}"),
        ),
        build_config=pairtext_config,
        ignore=TEXT_SIDE_IGNORED,
        provided=TEXT_SIDE_PROVIDED,
        check=check_positional_table,
    )
)
