"""PoseText (§2.2 of the reference): pose-text retrieval, and the source of PoseEmbroider's text encoder.

    poses (B, 22, 3) -> RetrievalPoseEncoder (VPoser trunk -> 512 -> 32 -> 512, L2)   -> (B, 512)
    texts (B, L)     -> TransformerTextEncoder (frozen DistilBERT -> 4-layer transformer -> avg, L2) -> (B, 512)
    loss = symBBC(texts @ posesᵀ * loss_weight),  loss_weight learnable, initialised at 10

Under `torchrun` the loss is computed over the embeddings of every rank (`gather_features`), so the
negatives of each sample are the whole global batch, as one process with that batch would see them.

`TextRetrievalModel` holds what PoseText and PairText share (text branch, temperature, loss, validation
metrics, optimizer groups); each subclass says how it embeds the "pose side" of a batch. The frozen text
backbone is not saved in checkpoints (`unsaved_prefixes`): it is re-read from its own folder by
`text_encoder_name` when the model is built.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from poseembroider.assisting_models.textBackbone.model_textBackbone import load_text_encoder
from poseembroider.evaluation.retrieval import pose_text_retrieval_metrics
from poseembroider.models.config_fields import config_field
from poseembroider.models.losses import (
    RETRIEVAL_LOSSES,
    gather_features,
    get_retrieval_loss,
    learnable_temperature,
    scaled_scores,
)
from poseembroider.models.pose_encoder import RetrievalPoseEncoder
from poseembroider.models.pretrained import PretrainedModel, register_model
from poseembroider.models.text_encoder import BACKBONE_PREFIX, ROLES, TOPPINGS, TransformerTextEncoder

__all__ = [
    "PoseText",
    "PoseTextConfig",
    "TextRetrievalModel",
    "batch_tensor",
    "load_posetext_text_encoder",
]


@dataclass
class PoseTextConfig:
    """Architecture of PoseText (and PairText); defaults are the published recipe (§2.2, §2.3)."""

    latentD: int = config_field(512, "size of the joint embedding space", min=1)
    num_body_joints: int = config_field(
        22, "joints of the input poses (22: global orientation + 21 body joints)", min=1
    )
    text_encoder_name: str = config_field(
        "distilbertUncased",
        "frozen text backbone: 'distilbertUncased' (real DistilBERT), 'distilbertSynth' (offline) or a folder",
    )
    transformer_topping: str = config_field("avgp", "how the text transformer outputs are pooled", choices=TOPPINGS)
    retrieval_loss: str = config_field(
        "symBBC", "contrastive loss over the score matrix", choices=tuple(RETRIEVAL_LOSSES)
    )
    num_neurons: int = config_field(512, "width of the pose encoder trunk", min=1)
    num_neurons_mini: int = config_field(32, "bottleneck of the pose encoder head", min=1)
    pose_dropout: float = config_field(0.1, "dropout of the pose encoder trunk (layer 5)")
    transformer_layers: int = config_field(4, "layers of the text transformer", min=1)
    transformer_heads: int = config_field(4, "attention heads of the text transformer", min=1)
    transformer_ff: int = config_field(1024, "feed-forward width of the text transformer", min=1)
    transformer_dropout: float = config_field(0.1, "dropout of the text transformer and its positional encoding")

    def __post_init__(self) -> None:
        for name in (
            "latentD",
            "num_body_joints",
            "num_neurons",
            "num_neurons_mini",
            "transformer_layers",
            "transformer_heads",
            "transformer_ff",
        ):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"--{name} must be >= 1, got {getattr(self, name)}")
        if self.latentD % self.transformer_heads or self.latentD % 2:
            raise ValueError(
                f"--latentD {self.latentD} must be even and a multiple of --transformer_heads {self.transformer_heads}"
            )
        for name in ("pose_dropout", "transformer_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"--{name} must be in [0, 1), got {getattr(self, name)}")
        if self.transformer_topping not in TOPPINGS:
            raise ValueError(f"--transformer_topping {self.transformer_topping!r} is not one of {list(TOPPINGS)}")
        get_retrieval_loss(self.retrieval_loss)  # unknown names list the known ones


def batch_tensor(batch: Mapping[str, Any], key: str, model: str, item_format: str = "pt") -> torch.Tensor:
    """`batch[key]`, or a KeyError naming the keys the batch has and the dataset item format needed."""
    if not isinstance(batch, Mapping) or key not in batch:
        keys = sorted(batch) if isinstance(batch, Mapping) else type(batch).__name__
        raise KeyError(f"{model} expects a batch with {key!r} (dataset item_format {item_format!r}); got {keys}")
    return batch[key]


class TextRetrievalModel(PretrainedModel, nn.Module):
    """Shared part of PoseText and PairText: text branch, learnable temperature, contrastive loss.

    Subclasses build `self.text_encoder` with `_build_text_side` and implement `embed_batch(batch) ->
    (x (B, D), texts (B, D))`, x being what the texts describe (a pose, a pair of poses).
    """

    unsaved_prefixes = ("text_encoder." + BACKBONE_PREFIX,)
    config: PoseTextConfig

    def _build_text_side(self, cfg: PoseTextConfig) -> None:
        tokenizer, backbone = load_text_encoder(cfg.text_encoder_name)  # read from the backbone's own folder
        self.text_encoder = TransformerTextEncoder(
            tokenizer,
            backbone,
            name=cfg.text_encoder_name,
            latentD=cfg.latentD,
            topping=cfg.transformer_topping,
            role="retrieval",
            num_layers=cfg.transformer_layers,
            num_heads=cfg.transformer_heads,
            dim_feedforward=cfg.transformer_ff,
            dropout=cfg.transformer_dropout,
        )
        self.loss_weight = learnable_temperature()  # (1,), init 10
        self.retrieval_loss = get_retrieval_loss(cfg.retrieval_loss)

    def encode_texts(
        self, tokens: torch.Tensor, lengths: torch.Tensor, features: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Token ids (B, L) right-padded and lengths (B,) -> (B, latentD) unit-norm text embeddings.
        `features` (B, L, H): the frozen backbone's token features, when computed beforehand."""
        return self.text_encoder(tokens, lengths, features)

    def encode_raw_texts(self, texts: list[str]) -> torch.Tensor:
        """Texts tokenized with the text backbone's tokenizer -> (len(texts), latentD)."""
        return self.text_encoder.encode_raw_texts(texts)

    def embed_batch(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def _texts_of(self, batch: Mapping[str, Any]) -> torch.Tensor:
        name = type(self).__name__
        tokens = batch_tensor(batch, "texts_tokens", name)
        lengths = torch.as_tensor(batch_tensor(batch, "texts_lengths", name), device=tokens.device)
        return self.encode_texts(tokens, lengths, batch.get("texts_features"))  # (B, L, H) from the loader, if any

    def contrastive_loss(self, x: torch.Tensor, texts: torch.Tensor) -> torch.Tensor:
        """Loss over the (B', B') scores `texts @ xᵀ * loss_weight`, B' = B x world size (gathered)."""
        x, texts = gather_features(x, texts)
        return self.retrieval_loss(scaled_scores(texts, x, self.loss_weight))

    def training_step(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """`{"loss", "loss_weight"}` (the temperature, logged)."""
        x, texts = self.embed_batch(batch)
        return {"loss": self.contrastive_loss(x, texts), "loss_weight": self.loss_weight.detach()}

    def validation_step(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """The loss over the batch, and the (B, latentD) embeddings kept for `validation_epoch_end`."""
        x, texts = self.embed_batch(batch)
        return {"loss": self.contrastive_loss(x, texts), "poses": x, "texts": texts}

    def validation_epoch_end(self, outputs: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        """p2t / t2p R@1, R@5, R@10 (percent) over the whole split, and their mean `mRecall`."""
        poses = torch.cat([o["poses"] for o in outputs]).float()
        texts = torch.cat([o["texts"] for o in outputs]).float()
        return pose_text_retrieval_metrics(poses, texts)

    def param_groups(self, lr: float, wd: float) -> list[dict[str, Any]]:
        """One Adam group of every trainable parameter (the frozen text backbone excluded). Weight decay is
        the optimizer's (`--wd`, 0 in the recipe: the original's Adam has none)."""
        params = [p for name, p in self.named_parameters() if not name.startswith(self.unsaved_prefixes)]
        return [{"params": params, "lr": lr}]


@register_model
class PoseText(TextRetrievalModel):
    """Pose-text retrieval model (see the module docstring); poses (B, J, 3) axis-angles, z-up model frame."""

    config_class = PoseTextConfig

    def __init__(self, config: PoseTextConfig | None = None):
        super().__init__()
        self.config = config or PoseTextConfig()
        cfg = self.config
        self.pose_encoder = RetrievalPoseEncoder(
            cfg.latentD, cfg.num_body_joints, cfg.num_neurons, cfg.num_neurons_mini, cfg.pose_dropout
        )
        self._build_text_side(cfg)

    def encode_poses(self, poses: torch.Tensor) -> torch.Tensor:
        """(B, J, 3) or (B, 3J) axis-angles -> (B, latentD) unit-norm pose embeddings."""
        return self.pose_encoder(poses)

    def embed_batch(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """`batch["poses"]` (B, J, 3) and its texts -> pose and text embeddings, (B, latentD) each."""
        return self.encode_poses(batch_tensor(batch, "poses", "PoseText")), self._texts_of(batch)


def load_posetext_text_encoder(
    name_or_path: str = "posetext_model_bedlamscript", role: str | None = None
) -> TransformerTextEncoder:
    """The text branch of a trained PoseText, frozen (no gradient, eval mode), with `role` None (no final
    L2 normalisation, the 512-d pooled feature PoseEmbroider projects) or 'retrieval'."""
    if role not in ROLES:
        raise ValueError(f"text encoder role {role!r} is not one of {list(ROLES)}")
    encoder = PoseText.from_pretrained(name_or_path).text_encoder
    encoder.role = role
    encoder.requires_grad_(False)
    return encoder.eval()
