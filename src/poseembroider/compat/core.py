"""Importers of the two core models (released_checkpoints.md §3.4-3.5).

| original key (`checkpoint_release_noencoderweights.pth`) | ours |
| --- | --- |
| `temperature` (1,) | `temperature` |
| `{image,pose,text}_encoder.{m}_projection.0.*` ('layerplus' Linear) | `encoder_projections.{m}.0.*` |
| PoseEmbroider: `intermodality_token` (1, 1, D) | `intermodality_token` (1, D) |
| `modality_encoding_{m}` (1, 1, D) | `modality_encodings.{m}` (D,) |
| `embroider_core.0.*`, `embroider_core.2.*` (Linear D -> W, W -> D) | `core.0.*`, `core.2.*` |
| `embroider_core.1.*` (one post-norm batch-first encoder layer) | `core.1.layers.0.*` |
| `norm.*` (LayerNorm(D, eps 1e-6)) | `core_norm.*` |
| `modality_projection_{m}.layers.{0,2}.*` (reprojection MiniMLP) | `heads.{m}.layers.{0,2}.*` |
| Aligner: `{m}_external_encoder_proj.layers.{0,2,5}.*` ('mediummlpxs') | `external_projections.{m}.layers.{0,2,5}.*` |

The frozen encoders are not in these files (the original rebuilds them from the PoseVAE, PoseText and
SMPLer-X files): the imported config names the imported `posevae_model_bedlamscript`,
`posetext_model_bedlamscript` and SMPLer-X folders (`smpler_x_b32`) and stores their weight fingerprints.

Config mapping: `latentD`, `num_body_joints`, `l2normalize`, the projection types, `no_projection_heads` and the
training bundles from the stored args; the core's width and feed-forward width from the shapes (the original
builds Linear(D, D/2), one layer of feed-forward 512, whatever its `nlayers` / `dim_feedforward` say); its 4
heads are the original's constant.

Where our defaults differ from the original on purpose, and why the imported model still computes the
original's outputs at inference (no switch is needed):

- modality encodings: the original adds them in place (`+=`), so its *training targets* include them; the
  inference path is the same in both: x̄ from [global token, token + encoding, ...], gallery tokens without.
- frozen encoders' mode: ours stay in eval mode always; the original's follow the model's mode, and inference
  runs the whole model in eval mode (batch-norm running statistics, no dropout, no drop-path).
- the core: ours is built from `core_layers` / `core_width` / `core_ff`; set from the shapes, it is the one
  layer the original builds.
"""

from __future__ import annotations

from typing import Any

from poseembroider.compat.importers import (
    ENCODER_SHORTNAMES,
    ImportContext,
    Importer,
    count_indices,
    register_importer,
    shape_of,
)
from poseembroider.compat.release_files import ReleaseCheckpoint
from poseembroider.compat.state_mapping import KeyRule
from poseembroider.model import Aligner, CoreConfig, PoseEmbroider
from poseembroider.models.pretrained import CheckpointError

__all__ = ["ORIGINAL_CORE_HEADS", "core_config"]

ORIGINAL_ENCODER_NAMES = {"image": "smplerx_vitb32", "pose": "posevae", "text": "posetext"}
ORIGINAL_CORE_HEADS = 4
"""Attention heads of the original's core layer (a constructor default no released args change)."""
TRAINING_ARGS = ("single_partials", "dual_partials", "triplet_partial", "no_projection_heads")


def core_config(ckpt: ReleaseCheckpoint, ctx: ImportContext) -> CoreConfig:
    """The `CoreConfig` of a PoseEmbroider / Aligner release checkpoint (imports its frozen encoders first)."""
    for modality, expected in ORIGINAL_ENCODER_NAMES.items():
        name = ckpt.arg(f"{modality}_encoder_name", str)
        if name != expected:
            raise CheckpointError(
                f"{ckpt.path}: args.{modality}_encoder_name = {name!r}; the release's core models use {expected!r}"
            )
    names = {
        "image": ctx.image_encoder(),
        "pose": ctx.require(ENCODER_SHORTNAMES["pose"]),
        "text": ctx.require(ENCODER_SHORTNAMES["text"]),
    }
    values: dict[str, Any] = dict(
        latentD=ckpt.arg("latentD", int),
        num_body_joints=ckpt.arg("num_body_joints", int),
        image_encoder_name=names["image"],
        pose_encoder_name=names["pose"],
        text_encoder_name=names["text"],
        encoder_projection_type=ckpt.arg("encoder_projection_type", str),
        external_encoder_projection_type=ckpt.arg("external_encoder_projection_type", str),
        l2normalize=bool(ckpt.arg("l2normalize", (bool, int))),
        image_feature_mode="exact",
        **{n: bool(ckpt.args[n]) for n in TRAINING_ARGS if isinstance(ckpt.args.get(n), (bool, int))},
        **ctx.encoder_fields(names),
    )
    if isinstance(ckpt.args.get("retrieval_loss"), str):
        values["retrieval_loss"] = ckpt.args["retrieval_loss"]
    if ckpt.kind == "PoseEmbroider":
        core_type = ckpt.arg("embroider_core_type", str)
        if core_type != "transformer":
            raise CheckpointError(
                f"{ckpt.path}: args.embroider_core_type = {core_type!r}; only the released 'transformer' core imports"
            )
        extra = count_indices(ckpt, "embroider_core.1.layers.")
        if extra:
            raise CheckpointError(f"{ckpt.path}: embroider_core.1 holds {extra} layers; the original builds one")
        values.update(
            embroider_core_type="transformer",
            core_width=shape_of(ckpt, "embroider_core.0.weight", 2)[0],
            core_layers=1,
            core_heads=ORIGINAL_CORE_HEADS,
            core_ff=shape_of(ckpt, "embroider_core.1.linear1.weight", 2)[0],
        )
    try:
        return CoreConfig(**values)
    except ValueError as err:
        raise CheckpointError(f"{ckpt.path}: its args do not make one of our core configs: {err}") from None


SHARED_RULES = (
    KeyRule("temperature", "temperature"),
    KeyRule("image_encoder.image_projection.{rest}", "encoder_projections.image.{rest}"),
    KeyRule("pose_encoder.pose_projection.{rest}", "encoder_projections.pose.{rest}"),
    KeyRule("text_encoder.text_projection.{rest}", "encoder_projections.text.{rest}"),
)

POSEEMBROIDER = register_importer(
    Importer(
        kind="PoseEmbroider",
        model_class=PoseEmbroider,
        rules=(
            *SHARED_RULES,
            KeyRule("intermodality_token", "intermodality_token", squeeze=True),
            KeyRule("modality_encoding_{p}", "modality_encodings.{p}", squeeze=True),
            KeyRule("embroider_core.0.{p}", "core.0.{p}"),
            KeyRule("embroider_core.1.{rest}", "core.1.layers.0.{rest}"),
            KeyRule("embroider_core.2.{p}", "core.2.{p}"),
            KeyRule("norm.{p}", "core_norm.{p}"),
            KeyRule("modality_projection_{p}.{rest}", "heads.{p}.{rest}"),
        ),
        build_config=core_config,
    )
)

ALIGNER = register_importer(
    Importer(
        kind="Aligner",
        model_class=Aligner,
        rules=(*SHARED_RULES, KeyRule("{p}_external_encoder_proj.{rest}", "external_projections.{p}.{rest}")),
        build_config=core_config,
    )
)
