"""Importers of the two downstream heads (released_checkpoints.md §3.6-3.7).

HPSEstimator (`hpsestimator_model_{poseembroider,aligner}_bedlamscript`):

- `pose_prediction_head.init_value` (132) -> `pose_head.init_state`: the learned start, 22 joints x the first
  two columns of the rotation matrix, row by row (the layout of our `matrix_to_rot6d`);
- `pose_prediction_head.regressor_residual.{1,4,7}.*` (index 0 is the concatenation [x̄, state], Dropout and
  LeakyReLU between) -> `pose_head.regressor.{0,3,6}.*`;
- `bodyshape_prediction_head.layers.{0,2}.*` -> `shape_head.layers.{0,2}.*`.

Config: `latentD`, `num_body_joints`, `num_shape_coeffs`, `predict_bodyshape`,
`representation_model_input_types` from the args; the regressor width from the shapes; 3 iterations (the
original's constant); `pretrained_representation_model` = the imported core model (imported first), whose
weights fingerprint is stored.

InstructionGenerator (`instructgen_model_{poseembroider,aligner}_bedlamfix_posefix`):

- `comparison_module.tirg.a` -> `comparison.a`; `comparison_module.tirg.gated_feature_composer.{1,3}.*` and
  `...res_info_composer.{1,3,5}.*` (index 0 is the concatenation [x̄_B, x̄_A]) -> `comparison.<same>.{0,2}.*` and
  `{0,2,4}.*`;
- `modality_input_adapter.encoder_hidden_state_adaptor.*` -> `adapter.*`;
- `text_decoder.embedding.*`, `text_decoder.final_layer.*` -> the same names;
  `text_decoder.transformer_decoder.layers.N.*` (sequence-first) -> `text_decoder.decoder.layers.N.*`;
- `text_decoder.positional_encoding.pe`, `text_decoder.encoder_positional_encoding.pe` (5000, 1, D): recomputed
  (checked equal to the sinusoid table). The original adds the second one to the decoder's memory only when the
  memory has more than one token (text2pose's `forward_cross_attention`); the fused pair is one token, so at
  inference neither model adds anything to it.

Config: `latentD`, `comparison_latentD`, `comparison_module_mode`, `transformer_mode`, `decoder_latentD`,
`decoder_nhead` (not visible in any shape) and `representation_model_input_types` from the args; the layers,
feed-forward width and vocabulary size from the shapes; `text_decoder_name` = 'transformer_' + the imported
DistilBERT folder (the distilbert-base-uncased tokenizer: BOS [CLS], EOS [SEP], PAD [PAD], its vocabulary
size must be the file's).

Greedy decodes equal the original's with the decoding's default limits (`decoding.DEFAULT_MIN_LENGTH` 9,
`DEFAULT_MAX_LENGTH` 199: generated tokens, BOS excluded, the original's 10 and 200 counted with its BOS);
`ORIGINAL_GREEDY` names them.

Both files may hold a copy of their core model under `representation_wrapper.representation_model.`; the
original's loader would put it in place, so such a copy must equal the core model's own release file (else
refused); it is not imported twice.
"""

from __future__ import annotations

import re
from typing import Any

import torch

from poseembroider.compat.assisting import check_positional_table
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
from poseembroider.downstream.instruction_generation.decoding import DEFAULT_MAX_LENGTH, DEFAULT_MIN_LENGTH
from poseembroider.downstream.instruction_generation.model_instruction_generation import (
    DECODER_PREFIX,
    InstructionGenerator,
    InstructionGeneratorConfig,
)
from poseembroider.downstream.pose_estimation.model_pose_estimation import (
    HPSEstimator,
    HPSEstimatorConfig,
    representation_fingerprint,
)
from poseembroider.model import RepresentationModel
from poseembroider.models.pretrained import CheckpointError, load_pretrained, read_model_config

__all__ = ["ORIGINAL_GREEDY", "ORIGINAL_HPS_ITERATIONS", "REPRESENTATION_PREFIX"]

ORIGINAL_HPS_ITERATIONS = 3
"""Residual iterations of the original's `IterativeRegressionHead` (a constant)."""
ORIGINAL_GREEDY = {"min_length": DEFAULT_MIN_LENGTH, "max_length": DEFAULT_MAX_LENGTH}
"""The original's greedy-decoding limits in the terms of `InstructionGenerator.generate` (generated tokens, BOS
excluded): text2pose's `generate_greedy` forbids EOS while the text *with* its BOS is shorter than 10 tokens (so
the 10th generated token may be EOS) and runs at most 199 steps (`range(1, 200)`). `generate(...,
**ORIGINAL_GREEDY)` gives its decodes."""
REPRESENTATION_PREFIX = "representation_wrapper.representation_model."
"""Where a head's state dict would hold its frozen core model (absent from the README-trained release files)."""
DECODER_PE_KEYS = ("text_decoder.positional_encoding.pe", "text_decoder.encoder_positional_encoding.pe")
COPY_TOLERANCE = 1e-6


def _representation(ckpt: ReleaseCheckpoint, ctx: ImportContext) -> tuple[str, str]:
    """(shortname, fingerprint) of the imported core model the head reads (imported first); a copy of the core
    model inside the head's file must equal the core's own file."""
    name = ckpt.arg("pretrained_representation_model", str)
    shortname = ctx.require(name)
    copy = {k[len(REPRESENTATION_PREFIX) :]: v for k, v in ckpt.state.items() if k.startswith(REPRESENTATION_PREFIX)}
    if copy:
        core = ctx.checkpoint(name).state
        for key, value in core.items():
            stored = copy.get(key)
            if stored is not None and (
                stored.shape != value.shape or float((stored.double() - value.double()).abs().max()) > COPY_TOLERANCE
            ):
                raise CheckpointError(
                    f"{ckpt.path}: {REPRESENTATION_PREFIX}{key} differs from {key} of {name}'s release file: this "
                    "head was trained over another version of its core model"
                )
    model = load_pretrained(ctx.written[shortname])
    if not isinstance(model, RepresentationModel):
        raise CheckpointError(f"{ckpt.path}: pretrained_representation_model {name!r} is not PoseEmbroider/Aligner")
    return shortname, representation_fingerprint(model)


def _input_types(ckpt: ReleaseCheckpoint) -> list[str]:
    value = ckpt.arg("representation_model_input_types", (list, tuple, str))
    return [value] if isinstance(value, str) else list(value)


def _expect(ckpt: ReleaseCheckpoint, name: str, expected: Any) -> None:
    value = ckpt.arg(name)
    if value != expected:
        raise CheckpointError(f"{ckpt.path}: args.{name} = {value!r}; the release's heads use {expected!r}")


def _built(cls: type, values: dict[str, Any], ckpt: ReleaseCheckpoint) -> Any:
    try:
        return cls(**values)
    except ValueError as err:
        raise CheckpointError(f"{ckpt.path}: its args do not make a {cls.__name__}: {err}") from None


# --------------------------------------------------------------------------------------------- HPSEstimator


def hps_config(ckpt: ReleaseCheckpoint, ctx: ImportContext) -> HPSEstimatorConfig:
    shortname, fingerprint = _representation(ckpt, ctx)
    return _built(
        HPSEstimatorConfig,
        dict(
            latentD=ckpt.arg("latentD", int),
            num_body_joints=ckpt.arg("num_body_joints", int),
            num_shape_coeffs=ckpt.arg("num_shape_coeffs", int),
            predict_bodyshape=bool(ckpt.arg("predict_bodyshape", (bool, int))),
            regressor_hidden=shape_of(ckpt, "pose_prediction_head.regressor_residual.1.weight", 2)[0],
            n_iterations=ORIGINAL_HPS_ITERATIONS,
            pretrained_representation_model=shortname,
            representation_model_fingerprint=fingerprint,
            representation_model_input_types=_input_types(ckpt),
        ),
        ckpt,
    )


HPS = register_importer(
    Importer(
        kind="HPSEstimator",
        model_class=HPSEstimator,
        rules=(
            KeyRule("pose_prediction_head.init_value", "pose_head.init_state"),
            KeyRule("pose_prediction_head.regressor_residual.1.{p}", "pose_head.regressor.0.{p}"),
            KeyRule("pose_prediction_head.regressor_residual.4.{p}", "pose_head.regressor.3.{p}"),
            KeyRule("pose_prediction_head.regressor_residual.7.{p}", "pose_head.regressor.6.{p}"),
            KeyRule("bodyshape_prediction_head.{rest}", "shape_head.{rest}"),
        ),
        build_config=hps_config,
        ignore=(re.escape(REPRESENTATION_PREFIX) + ".*",),
    )
)


# --------------------------------------------------------------------------------------------- InstructionGenerator


def check_decoder_tables(ckpt: ReleaseCheckpoint) -> None:
    for key in DECODER_PE_KEYS:
        check_positional_table(ckpt, key)


def _tokenizer_folder(ctx: ImportContext) -> str:
    """The imported DistilBERT folder (its tokenizer is the original decoder's): the one PoseText reads."""
    posetext = ctx.require(ENCODER_SHORTNAMES["text"])
    return str(read_model_config(ctx.written[posetext])["config"]["text_encoder_name"])


def instructgen_config(ckpt: ReleaseCheckpoint, ctx: ImportContext) -> InstructionGeneratorConfig:
    _expect(ckpt, "text_decoder_name", "transformer_distilbertUncased")
    _expect(ckpt, "comparison_module_mode", "tirg")
    _expect(ckpt, "transformer_mode", "crossattention")
    shortname, _ = _representation(ckpt, ctx)
    layers = "text_decoder.transformer_decoder.layers."
    nlayers = count_indices(ckpt, layers)
    stored = ckpt.arg("decoder_nlayers", int)
    if stored != nlayers:
        raise CheckpointError(f"{ckpt.path}: args.decoder_nlayers = {stored} but the file holds {nlayers} layers")
    return _built(
        InstructionGeneratorConfig,
        dict(
            latentD=ckpt.arg("latentD", int),
            comparison_module_mode="tirg",
            comparison_latentD=ckpt.arg("comparison_latentD", int),
            decoder_latentD=ckpt.arg("decoder_latentD", int),
            decoder_nhead=ckpt.arg("decoder_nhead", int),
            decoder_nlayers=nlayers,
            decoder_ff=shape_of(ckpt, layers + "0.linear1.weight", 2)[0],
            text_decoder_name=DECODER_PREFIX + _tokenizer_folder(ctx),
            transformer_mode="crossattention",
            vocab_size=shape_of(ckpt, "text_decoder.embedding.weight", 2)[0],
            pretrained_representation_model=shortname,
            representation_model_input_types=_input_types(ckpt),
        ),
        ckpt,
    )


class _InstructionGeneratorImporter(Importer):
    """The decoder's vocabulary must be the imported tokenizer's: a mismatch is refused naming the file."""

    def convert(self, ckpt: ReleaseCheckpoint, ctx: ImportContext) -> torch.nn.Module:
        try:
            return super().convert(ckpt, ctx)
        except ValueError as err:
            if isinstance(err, CheckpointError):
                raise
            raise CheckpointError(f"{ckpt.path}: {err}") from None


INSTRUCTGEN = register_importer(
    _InstructionGeneratorImporter(
        kind="InstructionGenerator",
        model_class=InstructionGenerator,
        rules=(
            KeyRule("comparison_module.tirg.a", "comparison.a"),
            KeyRule("comparison_module.tirg.gated_feature_composer.1.{p}", "comparison.gated_feature_composer.0.{p}"),
            KeyRule("comparison_module.tirg.gated_feature_composer.3.{p}", "comparison.gated_feature_composer.2.{p}"),
            KeyRule("comparison_module.tirg.res_info_composer.1.{p}", "comparison.res_info_composer.0.{p}"),
            KeyRule("comparison_module.tirg.res_info_composer.3.{p}", "comparison.res_info_composer.2.{p}"),
            KeyRule("comparison_module.tirg.res_info_composer.5.{p}", "comparison.res_info_composer.4.{p}"),
            KeyRule("modality_input_adapter.encoder_hidden_state_adaptor.{p}", "adapter.{p}"),
            KeyRule("text_decoder.embedding.{p}", "text_decoder.embedding.{p}"),
            KeyRule("text_decoder.final_layer.{p}", "text_decoder.final_layer.{p}"),
            KeyRule("text_decoder.transformer_decoder.layers.{rest}", "text_decoder.decoder.layers.{rest}"),
        ),
        build_config=instructgen_config,
        ignore=(re.escape(REPRESENTATION_PREFIX) + ".*", *(re.escape(k) for k in DECODER_PE_KEYS)),
        check=check_decoder_tables,
    )
)
