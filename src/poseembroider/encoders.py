"""The frozen modality encoders of the representation models (DESIGN.md §1, original_system.md §2.4-2.6).

| modality | encoder (`--<modality>_encoder_name`) | batch keys read | feature per item |
| --- | --- | --- | --- |
| image | `ImageEncoder` (`smplerx_vitb32`, saved) or `KeypointImageEncoder` | `images` (B, 3, 256, 192) | (N, D_i) |
| pose | PoseVAE encoder to its 512-d layer (`posevae`) | `poses` (B, 22, 3) | (512,) |
| text | PoseText text branch, no final L2 (`posetext`) | `texts_tokens` (B, L), `texts_lengths` (B,) | (D_t,) |

Names are shortnames or folders; `posevae` / `posetext` are the published models' shortnames. Image tokens:
N = 192 patch tokens for a ViT, 22 joint + 12 context tokens for the keypoint CNN.

Each encoder is frozen: no trainable parameter, always in eval mode (no dropout, drop-path or batch-norm
update; the original left them in training mode), forward under `torch.no_grad()`. Each has a
`fingerprint`: a hash of its weights, stored with cached features and with the core model so that
features or a model made over another encoder version are refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from poseembroider.assisting_models.imageEncoder.model_imageEncoder import build_image_encoder
from poseembroider.assisting_models.poseText.model_poseText import load_posetext_text_encoder
from poseembroider.assisting_models.poseVAE.model_poseVAE import PoseVAE
from poseembroider.modalities import check_modalities

PUBLISHED_ALIASES: dict[str, dict[str, str]] = {
    "pose": {"posevae": "posevae_model_bedlamscript"},
    "text": {"posetext": "posetext_model_bedlamscript"},
}
"""The original's `--pose_encoder_name posevae` / `--text_encoder_name posetext` resolve to these shortnames."""


def weights_fingerprint(module: nn.Module) -> str:
    """First 16 hex digits of a SHA-256 over the names, shapes, dtypes and bytes of the state dict."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tuple(t.shape)}:{t.dtype};".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


class FrozenModalityEncoder(nn.Module):
    """Base class: `forward(batch) -> (B, *feature_shape)` from the batch keys of `input_keys`."""

    modality: str = ""
    input_keys: tuple[str, ...] = ()

    def __init__(self, name: str, module: nn.Module) -> None:
        super().__init__()
        self.name = name
        self.module = module.eval()
        self.module.requires_grad_(False)
        self._fingerprint: str | None = None

    def train(self, mode: bool = True) -> FrozenModalityEncoder:
        """Frozen: stays in eval mode whatever the mode asked."""
        return super().train(False)

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = weights_fingerprint(self.module)
        return self._fingerprint

    @property
    def feature_shape(self) -> tuple[int, ...]:
        raise NotImplementedError

    def _inputs(self, batch: Mapping[str, Any]) -> list[Any]:
        missing = [key for key in self.input_keys if key not in batch]
        if missing:
            raise KeyError(f"the {self.modality} encoder needs batch key(s) {missing}; the batch has {sorted(batch)}")
        device = next(self.module.parameters()).device
        return [
            batch[key].to(device) if isinstance(batch[key], torch.Tensor) else batch[key] for key in self.input_keys
        ]

    def encode(self, *inputs: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, batch: Mapping[str, Any]) -> torch.Tensor:
        with torch.no_grad():
            return self.encode(*self._inputs(batch))


class FrozenImageEncoder(FrozenModalityEncoder):
    """images (B, 3, 256, 192) in [0, 1] -> tokens (B, N, D_i): 192 patch tokens of a ViT, or the keypoint
    CNN's 22 joint + 12 context tokens."""

    modality = "image"
    input_keys = ("images",)

    def __init__(self, name: str) -> None:
        super().__init__(name, build_image_encoder(name, frozen=True))

    @property
    def feature_shape(self) -> tuple[int, ...]:
        return (self.module.num_tokens, self.module.embed_dim)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return self.module.forward_features(images)


class FrozenPoseEncoder(FrozenModalityEncoder):
    """poses (B, J, 3) axis-angles -> (B, 512), the PoseVAE encoder's layer-7 feature."""

    modality = "pose"
    input_keys = ("poses",)

    def __init__(self, name: str) -> None:
        name = PUBLISHED_ALIASES["pose"].get(name, name)
        super().__init__(name, PoseVAE.from_pretrained(name))

    @property
    def feature_shape(self) -> tuple[int, ...]:
        return (self.module.feature_dim,)

    def encode(self, poses: torch.Tensor) -> torch.Tensor:
        return self.module.encode_features(poses)


class FrozenTextEncoder(FrozenModalityEncoder):
    """texts_tokens (B, L) + texts_lengths (B,) -> (B, D_t), the PoseText text branch's pooled feature.
    `tokenizer` is the one of its text backbone (what the dataset must tokenize with)."""

    modality = "text"
    input_keys = ("texts_tokens", "texts_lengths")

    def __init__(self, name: str) -> None:
        name = PUBLISHED_ALIASES["text"].get(name, name)
        super().__init__(name, load_posetext_text_encoder(name, role=None))
        self.tokenizer = self.module.tokenizer

    @property
    def feature_shape(self) -> tuple[int, ...]:
        return (self.module.latentD,)

    def encode(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.module(tokens, lengths)

    def encode_by_length(self, tokens: torch.Tensor, lengths: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
        """Many texts at once, in length-sorted batches (see `TransformerTextEncoder.encode_by_length`)."""
        with torch.no_grad():
            return self.module.encode_by_length(tokens, lengths, batch_size)


FROZEN_ENCODERS: dict[str, Callable[[str], FrozenModalityEncoder]] = {
    "image": FrozenImageEncoder,
    "pose": FrozenPoseEncoder,
    "text": FrozenTextEncoder,
}


def build_frozen_encoder(modality: str, name: str) -> FrozenModalityEncoder:
    """The frozen encoder of `modality` named `name` (shortname, folder or preset)."""
    (modality,) = check_modalities([modality], "frozen encoder")
    return FROZEN_ENCODERS[modality](name)


class FrozenEncoders(nn.Module):
    """The frozen encoders of some modalities; `forward(batch, modalities)` -> {modality: features}."""

    def __init__(self, names: Mapping[str, str]) -> None:
        super().__init__()
        modalities = check_modalities(names, "frozen encoders")
        self.encoders = nn.ModuleDict({m: build_frozen_encoder(m, names[m]) for m in modalities})

    def train(self, mode: bool = True) -> FrozenEncoders:
        return super().train(False)

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(self.encoders.keys())

    def fingerprints(self) -> dict[str, str]:
        return {m: enc.fingerprint for m, enc in self.encoders.items()}

    def feature_shapes(self) -> dict[str, tuple[int, ...]]:
        return {m: enc.feature_shape for m, enc in self.encoders.items()}

    def forward(self, batch: Mapping[str, Any], modalities: tuple[str, ...] | None = None) -> dict[str, torch.Tensor]:
        wanted = self.modalities if modalities is None else check_modalities(modalities)
        missing = [m for m in wanted if m not in self.encoders]
        if missing:
            raise KeyError(f"no frozen encoder for modality {missing[0]!r} (have {list(self.modalities)})")
        return {m: self.encoders[m](batch) for m in wanted}
