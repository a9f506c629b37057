"""PoseEmbroider and the Aligner baseline: one pose representation from any subset of image, pose, text.

Both models read, per modality, the output of a frozen encoder (`encoders`) — live from
the raw batch (`images`, `poses`, `texts_tokens`/`texts_lengths`) or from cached features
(`image_features`, `pose_features`, `text_features`, see `features/`) — and turn it into one L2-normalised
D-dim token (`encode`):

    image (B, T, D_i) --'layerplus' per token--> average over the T tokens --> (B, D)   [exact image mode]
    image (B, D_i) (pooled before the projection) --'layerplus'--> (B, D)               [compact image mode]
    pose (B, 512) / text (B, D_t) --'layerplus'--> (B, D)
    [Aligner: --external_encoder_projection_type MLP] --> L2 normalisation

PoseEmbroider (original_system.md §2.6) then runs its core over [global token, modality tokens +
modality encodings] and takes the output global token x̄ (`represent`); one reprojection head per
modality maps x̄ into that modality's token space (`predict`). The Aligner (§2.7) represents a bundle by
the re-normalised mean of its tokens and predicts every modality with that same vector.

Training (`training_step`): symBBC of `predict(represent(bundle), m)` against the true tokens of m, for
every training bundle (`--single_partials`, `--dual_partials`, `--triplet_partial`) and every modality m
(PoseEmbroider), or over the modality pairs and mixes (Aligner), with a learnable temperature initialised
at 10, over embeddings gathered from all ranks. A batch may carry a second sub-batch of samples that have
only some modalities (`POOL_BATCH_KEY`, e.g. the captioned poses of a pose-text pool, `--pose_text_pool`):
its terms are those its modalities allow, averaged with the others.

Differences from the original, on purpose: the modality encodings are added out of place (training targets
are the raw modality tokens, as the evaluation gallery), the core is exactly the configured one
(`--core_layers`, `--core_width`, ...; defaults = the built original: 1 layer, width 256, 4 heads,
feed-forward 512), frozen encoders stay in eval mode.

The frozen encoders are not part of the state dict: they are rebuilt from their names when raw inputs
are encoded, and their weight fingerprints are checked against the ones stored in the config.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from poseembroider.encoders import FrozenEncoders, FrozenModalityEncoder
from poseembroider.evaluation.core_retrieval import core_retrieval_metrics
from poseembroider.modalities import MODALITIES, QueryType, check_modalities, query_types, training_bundles
from poseembroider.models.config_fields import config_field
from poseembroider.models.losses import (
    BATCHED_LOSSES,
    RETRIEVAL_LOSSES,
    TEMPERATURE_INIT,
    gather_features,
    learnable_temperature,
)
from poseembroider.models.pose_encoder import L2Norm
from poseembroider.models.pretrained import CheckpointError, PretrainedModel, register_model
from poseembroider.models.projections import (
    ENCODER_PROJECTIONS,
    EXTERNAL_PROJECTIONS,
    LayerPlus,
    MiniMLP,
    encoder_projection,
    external_projection,
)

FEATURE_KEYS: dict[str, str] = {m: f"{m}_features" for m in MODALITIES}
POOL_BATCH_KEY = "pool"
"""Batch key of an extra sub-batch with only some modalities' features (see `training_step`)."""
"""Batch keys of cached frozen features: image (B, T, D_i) or (B, D_i), pose (B, 512), text (B, D_t)."""

IMAGE_FEATURE_MODES = ("exact", "compact")
CORE_TYPES = ("transformer", "mlp")


@dataclass
class CoreConfig:
    """Architecture of PoseEmbroider / Aligner; defaults are the published recipe (§2.5-2.8)."""

    latentD: int = config_field(512, "size of the representation and of every modality token", min=1)
    num_body_joints: int = config_field(22, "joints of the input poses", min=1)
    image_encoder_name: str = config_field("smplerx_vitb32", "frozen image encoder (preset, shortname or folder)")
    pose_encoder_name: str = config_field("posevae", "frozen pose encoder: a PoseVAE shortname or folder")
    text_encoder_name: str = config_field("posetext", "frozen text encoder: a PoseText shortname or folder")
    image_feature_dim: int = config_field(768, "width of the frozen image tokens", min=1)
    pose_feature_dim: int = config_field(512, "width of the frozen pose feature", min=1)
    text_feature_dim: int = config_field(512, "width of the frozen text feature", min=1)
    image_encoder_fingerprint: str = config_field("", "weights hash of the image encoder the model was trained over")
    pose_encoder_fingerprint: str = config_field("", "weights hash of the pose encoder the model was trained over")
    text_encoder_fingerprint: str = config_field("", "weights hash of the text encoder the model was trained over")
    image_feature_mode: str = config_field(
        "exact",
        "'exact': project each image token, then average (the original); 'compact': average the frozen "
        "tokens, then project (one vector per image in the feature cache)",
        choices=IMAGE_FEATURE_MODES,
    )
    encoder_projection_type: str = config_field(
        "layerplus", "trainable projection of each frozen feature", choices=tuple(ENCODER_PROJECTIONS)
    )
    external_encoder_projection_type: str = config_field(
        "none", "projection after the encoder projection (Aligner: mediummlpxs)", choices=tuple(EXTERNAL_PROJECTIONS)
    )
    l2normalize: bool = config_field(False, "L2-normalise the modality tokens and the predictions (the README sets it)")
    embroider_core_type: str = config_field("transformer", "PoseEmbroider core", choices=CORE_TYPES)
    core_width: int = config_field(256, "transformer core: width inside the core", min=1)
    core_layers: int = config_field(1, "transformer core: encoder layers", min=1)
    core_heads: int = config_field(4, "transformer core: attention heads", min=1)
    core_ff: int = config_field(512, "transformer core: feed-forward width", min=1)
    core_dropout: float = config_field(0.1, "dropout of the projections and the core")
    no_projection_heads: bool = config_field(False, "ablation: compare x̄ itself (L2-normalised) with every modality")
    retrieval_loss: str = config_field("symBBC", "contrastive loss", choices=tuple(RETRIEVAL_LOSSES))
    single_partials: bool = config_field(False, "train on the single-modality bundles")
    dual_partials: bool = config_field(False, "train on the two-modality bundles")
    triplet_partial: bool = config_field(False, "train on the full bundle (image + pose + text)")
    temperature_init: float = config_field(TEMPERATURE_INIT, "initial value of the learnable score scale")

    def __post_init__(self) -> None:
        for name in (
            "latentD",
            "core_width",
            "core_layers",
            "core_heads",
            "core_ff",
            "image_feature_dim",
            "pose_feature_dim",
            "text_feature_dim",
        ):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"--{name} must be >= 1, got {getattr(self, name)}")
        if self.core_width % self.core_heads:
            raise ValueError(f"--core_width {self.core_width} must be a multiple of --core_heads {self.core_heads}")
        for name, choices in (
            ("image_feature_mode", IMAGE_FEATURE_MODES),
            ("embroider_core_type", CORE_TYPES),
            ("encoder_projection_type", tuple(ENCODER_PROJECTIONS)),
            ("external_encoder_projection_type", tuple(EXTERNAL_PROJECTIONS)),
            ("retrieval_loss", tuple(RETRIEVAL_LOSSES)),
        ):
            if getattr(self, name) not in choices:
                raise ValueError(f"--{name} {getattr(self, name)!r} is not one of {list(choices)}")

    @property
    def bundles(self) -> tuple[tuple[str, ...], ...]:
        return training_bundles(self.single_partials, self.dual_partials, self.triplet_partial)

    def encoder_names(self) -> dict[str, str]:
        return {m: getattr(self, f"{m}_encoder_name") for m in MODALITIES}

    def fingerprints(self) -> dict[str, str]:
        return {m: getattr(self, f"{m}_encoder_fingerprint") for m in MODALITIES}


def encoder_fields(encoders: FrozenEncoders) -> dict[str, Any]:
    """The `CoreConfig` fields that follow from the frozen encoders: each feature width and weights fingerprint
    (`<m>_feature_dim`, `<m>_encoder_fingerprint`), so a model is built to fit them and refuses other versions."""
    shapes, prints = encoders.feature_shapes(), encoders.fingerprints()
    fields: dict[str, Any] = {f"{m}_feature_dim": shapes[m][-1] for m in encoders.modalities}
    fields.update({f"{m}_encoder_fingerprint": prints[m] for m in encoders.modalities})
    return fields


class RepresentationModel(PretrainedModel, nn.Module):
    """What PoseEmbroider and the Aligner share: projections, frozen encoders, temperature, evaluation."""

    config_class = CoreConfig
    config: CoreConfig

    def __init__(self, config: CoreConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or CoreConfig()
        dims = {"image": cfg.image_feature_dim, "pose": cfg.pose_feature_dim, "text": cfg.text_feature_dim}
        self.encoder_projections = nn.ModuleDict(
            {m: encoder_projection(cfg.encoder_projection_type, dims[m], cfg.latentD) for m in MODALITIES}
        )
        self.external_projections = nn.ModuleDict(
            {m: external_projection(cfg.external_encoder_projection_type, cfg.latentD) for m in MODALITIES}
        )
        self.temperature = learnable_temperature(cfg.temperature_init)
        self.batched_loss = BATCHED_LOSSES[cfg.retrieval_loss]
        self.__dict__["_frozen_encoders"] = None  # kept out of the state dict and of .to()

    # ------------------------------------------------------------------ frozen encoders

    def check_encoder(self, modality: str, encoder: FrozenModalityEncoder) -> None:
        """Refuse a frozen encoder whose weights are not the version the model was trained over."""
        expected = self.config.fingerprints()[modality]
        if expected and encoder.fingerprint != expected:
            raise CheckpointError(
                f"the {modality} encoder {encoder.name!r} has weights fingerprint {encoder.fingerprint}, "
                f"but this model was trained over fingerprint {expected} "
                f"({modality}_encoder_fingerprint in its config.json): another version of that encoder"
            )

    def attach_encoders(self, encoders: FrozenEncoders) -> None:
        """Use `encoders` for raw inputs, after checking they are the versions the model was built over."""
        for modality, encoder in encoders.encoders.items():
            self.check_encoder(modality, encoder)
        self.__dict__["_frozen_encoders"] = encoders

    @property
    def frozen_encoders(self) -> FrozenEncoders:
        """The frozen encoders, built from the config's names on first use."""
        if self._frozen_encoders is None:
            self.attach_encoders(FrozenEncoders(self.config.encoder_names()))
        encoders = self._frozen_encoders
        device = self.temperature.device
        if next(encoders.parameters(), torch.empty(0)).device != device:
            encoders.to(device)
        return encoders

    def features_of(self, batch: Mapping[str, Any], modalities: Sequence[str]) -> dict[str, torch.Tensor]:
        """Frozen features of `modalities`: the cached ones when the batch has them (`FEATURE_KEYS`), else
        computed from the raw inputs by the frozen encoders. Only the given modalities are read."""
        modalities = check_modalities(modalities)
        features = {m: batch[FEATURE_KEYS[m]] for m in modalities if FEATURE_KEYS[m] in batch}
        live = tuple(m for m in modalities if m not in features)
        if live:
            features.update(self.frozen_encoders(batch, live))
        return features

    # ------------------------------------------------------------------ modality tokens

    def _image_token(self, features: torch.Tensor) -> torch.Tensor:
        projection = self.encoder_projections["image"]
        if features.dim() == 3:
            if self.config.image_feature_mode == "exact":  # project each token, then average (original)
                if isinstance(projection, LayerPlus):
                    return projection.project_and_average(features)
                return projection(features.float()).mean(dim=1)
            features = features.float().mean(dim=1)
        elif features.dim() != 2 or self.config.image_feature_mode == "exact":
            raise ValueError(
                f"image features of shape {tuple(features.shape)}: image_feature_mode "
                f"{self.config.image_feature_mode!r} expects (B, T, {self.config.image_feature_dim}) tokens"
                + ("" if self.config.image_feature_mode == "exact" else f" or (B, {self.config.image_feature_dim})")
            )
        return projection(features.float())

    def embed_features(self, features: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Frozen features -> modality tokens {m: (B, D)} (projections, then L2 if `l2normalize`)."""
        tokens = {}
        for m in check_modalities(features):
            x = features[m]
            x = self._image_token(x) if m == "image" else self.encoder_projections[m](x.float())
            x = self.external_projections[m](x)
            tokens[m] = F.normalize(x, dim=-1) if self.config.l2normalize else x
        return tokens

    def encode(self, batch: Mapping[str, Any], modalities: Sequence[str] = MODALITIES) -> dict[str, torch.Tensor]:
        """Modality tokens {m: (B, D)} of a batch (cached features or raw inputs)."""
        return self.embed_features(self.features_of(batch, modalities))

    # ------------------------------------------------------------------ representation (subclasses)

    def represent(self, tokens: Mapping[str, torch.Tensor], modalities: Sequence[str]) -> torch.Tensor:
        """x̄ (B, D) of the bundle `modalities` from their tokens."""
        raise NotImplementedError

    def predict(self, representation: torch.Tensor, target: str) -> torch.Tensor:
        """(..., D) x̄ -> (..., D) embedding compared with the tokens of modality `target`."""
        raise NotImplementedError

    def get_intermodality_token(self, batch: Mapping[str, Any], modalities: Sequence[str]) -> torch.Tensor:
        """x̄ (B, D) of a batch from the given modalities only (the downstream heads' input)."""
        modalities = check_modalities(modalities)
        return self.represent(self.encode(batch, modalities), modalities)

    def query_features(self, tokens: Mapping[str, torch.Tensor], query: QueryType) -> torch.Tensor:
        """(B, D) query embeddings of one query type, compared with the gallery tokens of `query.target`."""
        return self.predict(self.represent(tokens, query.query), query.target)

    # ------------------------------------------------------------------ training

    def training_losses(self, tokens: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """(K,) loss terms of a batch of modality tokens {m: (B, D)}: the terms of every training bundle and
        target that the given modalities allow (all three: every term; pose and text only: their terms)."""
        raise NotImplementedError

    def training_step(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """Mean of the loss terms of the batch and, when it carries one (`POOL_BATCH_KEY`: cached features of
        samples that have only some modalities, e.g. captioned poses without images), of that sub-batch's terms.
        """
        terms = [self.training_losses(self.encode(batch, MODALITIES))]
        pool = batch.get(POOL_BATCH_KEY)
        if pool is not None:
            present = tuple(m for m in MODALITIES if FEATURE_KEYS[m] in pool)
            terms.append(self.training_losses(self.encode(pool, present)))
        return {"loss": torch.cat(terms).mean(), "temperature": self.temperature.detach()[0]}

    def validation_step(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        tokens = self.encode(batch, MODALITIES)
        outputs: dict[str, Any] = {"loss": self.training_losses(tokens).mean()}
        outputs.update({f"gallery_{m}": t for m, t in tokens.items()})
        for query in query_types():
            outputs[f"query_{query.name}"] = self.query_features(tokens, query)
        return outputs

    def validation_epoch_end(self, outputs: list[dict[str, Any]]) -> dict[str, float]:
        """R@1/5/10 of the 9 query types and the mRecall summaries over the whole validation split."""
        galleries = {m: torch.cat([o[f"gallery_{m}"] for o in outputs]) for m in MODALITIES}
        queries = {q.name: torch.cat([o[f"query_{q.name}"] for o in outputs]) for q in query_types()}
        return core_retrieval_metrics(queries, galleries)

    def param_groups(self, lr: float, wd: float) -> list[dict[str, Any]]:
        return [{"params": [p for p in self.parameters() if p.requires_grad]}]


@register_model
class PoseEmbroider(RepresentationModel):
    """The core transformer over [global token, modality tokens] with one reprojection head per modality."""

    def __init__(self, config: CoreConfig | None = None) -> None:
        super().__init__(config)
        cfg = self.config
        d = cfg.latentD
        self.intermodality_token = nn.Parameter(torch.randn(1, d) * 1e-6)
        self.modality_encodings = nn.ParameterDict({m: nn.Parameter(torch.zeros(d)) for m in MODALITIES})
        if cfg.embroider_core_type == "transformer":
            layer = nn.TransformerEncoderLayer(
                d_model=cfg.core_width,
                nhead=cfg.core_heads,
                dim_feedforward=cfg.core_ff,
                dropout=cfg.core_dropout,
                activation="gelu",
                batch_first=True,
            )
            self.core = nn.Sequential(
                nn.Linear(d, cfg.core_width),
                nn.TransformerEncoder(layer, num_layers=cfg.core_layers, enable_nested_tensor=False),
                nn.Linear(cfg.core_width, d),
            )
            self.core_norm: nn.Module = nn.LayerNorm(d, eps=1e-6)
        else:
            self.core = MiniMLP(d, d, d, normalize=True)
            self.core_norm = nn.Identity()
        self.heads = nn.ModuleDict(
            {
                m: L2Norm() if cfg.no_projection_heads else MiniMLP(d, d, d, normalize=cfg.l2normalize)
                for m in MODALITIES
            }
        )

    def represent_bundles(self, tokens: Mapping[str, torch.Tensor], bundles: Sequence[Sequence[str]]) -> torch.Tensor:
        """x̄ of several bundles at once: (K, B, D) for K bundles, tokens {m: (B, D)}.

        Each bundle is the sequence [global token, tokens + modality encodings] (modality order: image, pose,
        text) through the core. With the original's one-layer core, the work every bundle shares is done once
        (`_one_layer_global_output`); deeper cores run the bundles of each size as one batch of sequences.
        """
        bundles = [check_modalities(b) for b in bundles]
        batch = next(iter(tokens.values())).shape[0]
        if self.config.embroider_core_type == "transformer" and self.config.core_layers == 1:
            return self.core_norm(self._one_layer_global_output(tokens, bundles))
        out: list[torch.Tensor | None] = [None] * len(bundles)
        for size in sorted({len(b) for b in bundles}):
            which = [k for k, b in enumerate(bundles) if len(b) == size]
            if self.config.embroider_core_type == "mlp":
                x = torch.stack([sum(tokens[m] for m in bundles[k]) for k in which])  # (k, B, D)
                xbar = self.core(x)
            else:
                seq = torch.stack(
                    [torch.stack([tokens[m] + self.modality_encodings[m] for m in bundles[k]], dim=1) for k in which]
                )  # (k, B, size, D)
                glob = self.intermodality_token.expand(len(which), batch, 1, -1)
                seq = torch.cat([glob, seq], dim=2).flatten(0, 1)  # (k*B, 1+size, D)
                xbar = self.core_norm(self._core_global_output(seq)).view(len(which), batch, -1)
            for j, k in enumerate(which):
                out[k] = xbar[j]
        return torch.stack(out)  # type: ignore[arg-type]

    def _core_global_output(self, seq: torch.Tensor) -> torch.Tensor:
        """`self.core(seq)[:, 0]` (S, D) for sequences seq (S, L, D), computing only what position 0 needs.

        Only the global token's output is read, so the last encoder layer runs its attention query, output
        projection, feed-forward and norms, and the core's output projection, on that token alone (keys and
        values still come from every token).
        """
        into, encoder, out = self.core
        layer = encoder.layers[-1]
        x = into(seq)
        for earlier in encoder.layers[:-1]:
            x = earlier(x)
        first = x[:, :1]  # post-norm layer (norm_first=False), as built in __init__
        h = layer.norm1(first + layer.dropout1(layer.self_attn(first, x, x, need_weights=False)[0]))
        h = layer.norm2(h + layer._ff_block(h))
        return out(h[:, 0])

    def _one_layer_global_output(
        self, tokens: Mapping[str, torch.Tensor], bundles: list[tuple[str, ...]]
    ) -> torch.Tensor:
        """`self.core(sequence of bundle k)[:, 0]` for every bundle: (K, B, D), for a one-layer core.

        The same function as running each bundle's sequence through the core (to float rounding; the attention
        dropout draws differ), without its repeated work: each modality's input projection, keys and values are
        computed once for all the bundles that contain it; the global token is the same in every sequence, so
        its projection, query, key and value are computed once per call; per bundle remain only the softmax
        over its 1 + size keys, the attention output projection, the feed-forward, the norms and the core's
        output projection, on the global token alone.
        """
        into, encoder, out = self.core
        layer = encoder.layers[0]
        attn = layer.self_attn
        width, heads = attn.embed_dim, attn.num_heads
        present = [m for m in MODALITIES if any(m in b for b in bundles)]
        glob = into(self.intermodality_token)  # (1, E)
        q_glob, k_glob, v_glob = F.linear(glob, attn.in_proj_weight, attn.in_proj_bias).view(3, heads, -1)
        q_glob = q_glob * q_glob.shape[-1] ** -0.5  # (H, E/H), scaled as in scaled dot-product attention
        inputs = torch.stack([into(tokens[m] + self.modality_encodings[m]) for m in present])  # (M, B, E)
        kv = F.linear(inputs, attn.in_proj_weight[width:], attn.in_proj_bias[width:])
        k_mod, v_mod = kv.unflatten(-1, (2, heads, -1)).unbind(2)  # (M, B, H, E/H) each
        n_bundles, batch = len(bundles), inputs.shape[1]
        in_bundle = torch.tensor([[m in b for m in present] for b in bundles], device=inputs.device)  # (K, M)
        scores_mod = torch.einsum("mbhd,hd->bhm", k_mod, q_glob)  # (B, H, M)
        scores_mod = scores_mod.unsqueeze(0).masked_fill(~in_bundle[:, None, None, :], float("-inf"))
        scores_glob = (k_glob * q_glob).sum(-1).view(1, 1, heads, 1).expand(n_bundles, batch, heads, 1)
        probs = torch.cat([scores_glob, scores_mod], dim=-1).softmax(-1)  # (K, B, H, 1 + M)
        probs = F.dropout(probs, attn.dropout, self.training)
        context = probs[..., :1] * v_glob + torch.einsum("kbhm,mbhd->kbhd", probs[..., 1:], v_mod)
        h = glob + layer.dropout1(attn.out_proj(context.flatten(-2)))  # post-norm layer, as built in __init__
        h = layer.norm1(h)
        h = layer.norm2(h + layer._ff_block(h))
        return out(h)

    def represent(self, tokens: Mapping[str, torch.Tensor], modalities: Sequence[str]) -> torch.Tensor:
        missing = [m for m in check_modalities(modalities) if m not in tokens]
        if missing:
            raise KeyError(f"no token for modality {missing[0]!r} (have {sorted(tokens)})")
        return self.represent_bundles(tokens, [modalities])[0]

    def predict(self, representation: torch.Tensor, target: str) -> torch.Tensor:
        (target,) = check_modalities([target], "target modality")
        return self.heads[target](representation)

    def training_losses(self, tokens: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """One symBBC term per (training bundle, target modality) over the global batch: (K x M,), for the M
        modalities of `tokens` and the K training bundles made of them only."""
        present = tuple(m for m in MODALITIES if m in tokens)
        bundles = [b for b in self.config.bundles if set(b) <= set(present)]
        if not bundles:
            raise ValueError(f"no training bundle of {self.config.bundles} is made of the modalities {present}")
        xbar = self.represent_bundles(tokens, bundles)  # (K, B, D)
        predictions = torch.stack([self.predict(xbar, m) for m in present], dim=1)  # (K, M, B, D)
        references = torch.stack([tokens[m] for m in present])  # (M, B, D)
        predictions, references = gather_features(predictions.permute(2, 0, 1, 3), references.permute(1, 0, 2))
        scores = torch.einsum("bkmd,cmd->kmbc", predictions, references) * self.temperature  # (K, 3, B, B)
        return self.batched_loss(scores.flatten(0, 1))


@register_model
class Aligner(RepresentationModel):
    """ImageBind-like baseline: modality tokens aligned pairwise; a bundle is the mean of its tokens."""

    def represent(self, tokens: Mapping[str, torch.Tensor], modalities: Sequence[str]) -> torch.Tensor:
        modalities = check_modalities(modalities)
        missing = [m for m in modalities if m not in tokens]
        if missing:
            raise KeyError(f"no token for modality {missing[0]!r} (have {sorted(tokens)})")
        mixed = torch.stack([tokens[m] for m in modalities]).mean(0)
        return F.normalize(mixed, dim=-1) if len(modalities) > 1 else mixed

    def predict(self, representation: torch.Tensor, target: str) -> torch.Tensor:
        check_modalities([target], "target modality")
        return representation

    def training_losses(self, tokens: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """symBBC of each modality pair (single), of each pair's mix vs the third modality (dual), of the
        mix of all three vs each modality (triplet), among the modalities of `tokens`."""
        cfg = self.config
        if not (cfg.single_partials or cfg.dual_partials or cfg.triplet_partial):
            raise ValueError("no training bundle: set --single_partials, --dual_partials or --triplet_partial")
        pairs: list[tuple[torch.Tensor, torch.Tensor]] = []
        for m1, m2 in combinations([m for m in MODALITIES if m in tokens], 2):
            if cfg.single_partials:
                pairs.append((tokens[m1], tokens[m2]))
            (m3,) = [m for m in MODALITIES if m not in (m1, m2)]
            if cfg.dual_partials and m3 in tokens:
                pairs.append((self.represent(tokens, (m1, m2)), tokens[m3]))
        if cfg.triplet_partial and all(m in tokens for m in MODALITIES):
            mixed = self.represent(tokens, MODALITIES)
            pairs.extend((mixed, tokens[m]) for m in MODALITIES)
        if not pairs:
            raise ValueError(f"no training pair of the Aligner's bundles is made of the modalities {sorted(tokens)}")
        queries = torch.stack([q for q, _ in pairs], dim=1)  # (B, K, D)
        targets = torch.stack([t for _, t in pairs], dim=1)
        queries, targets = gather_features(queries, targets)
        scores = torch.einsum("bkd,ckd->kbc", queries, targets) * self.temperature
        return self.batched_loss(scores)


REPRESENTATION_MODELS: dict[str, type[RepresentationModel]] = {"PoseEmbroider": PoseEmbroider, "Aligner": Aligner}
"""`--model` choices."""
