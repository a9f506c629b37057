"""The text branch of PoseText / PairText, also PoseEmbroider's frozen text encoder.

    tokens (B, L), lengths (B,)
      -> frozen text backbone (DistilBERT, given by the caller)                 (B, L, H)
      -> ReLU -> Linear(H, latentD)                                             (B, L, 512)
      -> sinusoidal positional encoding + dropout 0.1
      -> nn.TransformerEncoder: 4 layers, d_model 512, 4 heads, feed-forward 1024, dropout 0.1, gelu,
         padding positions masked out
      -> average over the real tokens ('avgp' topping)                          (B, 512)
      -> L2 normalisation (role 'retrieval'; role None: none, as inside PoseEmbroider)

The trunk receives its backbone and the backbone's tokenizer (it loads nothing itself, so this building
block depends on no assisting model): any module mapping (tokens (B, L), lengths (B,)) to token features
(B, L, H) that has an int `hidden_size` and a `freeze()` method will do. The assisting models pass the
DistilBERT of `assisting_models.textBackbone` ('distilbertUncased', the real one with H = 768, or
'distilbertSynth', our offline one, or a folder), loaded by `load_text_encoder(name)`. The backbone is
frozen: no gradient, always in eval mode. Its weights are not part of our checkpoints (see
`BACKBONE_PREFIX`): the model that owns the trunk re-reads them from the backbone's own folder when it is
built. A fingerprint of the backbone weights is saved instead (`backbone_fingerprint` buffer), so a
checkpoint loaded over a different backbone (another distilbertSynth pretraining, say) fails loudly
instead of giving meaningless embeddings.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from poseembroider.models.pretrained import CheckpointError
from poseembroider.text.tokenization import Tokenizer

__all__ = [
    "BACKBONE_PREFIX",
    "ROLES",
    "TOPPINGS",
    "PositionalEncoding",
    "TransformerTextEncoder",
    "backbone_fingerprint",
    "lengths_to_mask",
    "masked_average",
]

TOPPINGS = ("avgp",)
"""`--transformer_topping` choices: 'avgp' = average of the transformer outputs over the real tokens."""

ROLES = ("retrieval", None)
"""'retrieval': L2-normalised output (PoseText / PairText); None: raw pooled feature (inside PoseEmbroider)."""

BACKBONE_PREFIX = "backbone."
"""State-dict prefix of the frozen backbone inside `TransformerTextEncoder` (left out of checkpoints)."""

FINGERPRINT_NAME = "backbone_fingerprint"


def lengths_to_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """(B,) lengths -> (B, max_len) bool mask, True on the real tokens of right-padded texts."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def masked_average(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of (B, L, D) features over the positions where the (B, L) bool `mask` is True -> (B, D)."""
    weights = mask.to(x.dtype).unsqueeze(-1)  # (B, L, 1)
    return (x * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


@torch.no_grad()
def backbone_fingerprint(backbone: nn.Module) -> torch.Tensor:
    """(4,) float64 summary of a backbone's floating-point weights: number of tensors, of values, their
    sum and sum of squares (accumulated in float64 on the CPU, one tensor at a time)."""
    summary = torch.zeros(4, dtype=torch.float64)
    for tensor in backbone.state_dict().values():
        if tensor.is_floating_point():
            values = tensor.detach().to("cpu", torch.float64)
            summary += torch.stack(
                [values.new_tensor(1.0), values.new_tensor(float(values.numel())), values.sum(), values.square().sum()]
            )
    return summary


class PositionalEncoding(nn.Module):
    """Adds the fixed sinusoidal encoding of "Attention is all you need" to (B, L, D) inputs, then dropout.

    Batch-first version of the original's sequence-first module; the table is rebuilt at construction
    (a non-persistent buffer, not saved).
    """

    def __init__(self, d_model: int, dropout: float = 0.1, max_len: int = 5000):
        super().__init__()
        if d_model % 2:
            raise ValueError(f"PositionalEncoding: d_model must be even, got {d_model}")
        self.dropout = nn.Dropout(dropout)
        position = torch.arange(max_len, dtype=torch.float32).unsqueeze(1)  # (max_len, 1)
        div_term = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
        table = torch.zeros(max_len, d_model)
        table[:, 0::2] = torch.sin(position * div_term)
        table[:, 1::2] = torch.cos(position * div_term)
        self.register_buffer("pe", table, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] > self.pe.shape[0]:
            raise ValueError(f"PositionalEncoding: {x.shape[1]} positions exceed the table of {self.pe.shape[0]}")
        return self.dropout(x + self.pe[: x.shape[1]].unsqueeze(0))


class TransformerTextEncoder(nn.Module):
    """Token ids (B, L) and lengths (B,) -> (B, latentD) text embeddings (see the module docstring).

    `tokenizer` and `backbone` belong together (the caller checks it, e.g. `load_text_encoder`); the
    tokenizer is kept as `self.tokenizer` (a plain attribute: not a module, not saved) for raw texts.
    `name` (default: the backbone's `name`) is how error messages call the backbone, e.g. the
    `text_encoder_name` it was loaded by.
    """

    def __init__(
        self,
        tokenizer: Tokenizer,
        backbone: nn.Module,
        latentD: int = 512,
        topping: str = "avgp",
        role: str | None = "retrieval",
        num_layers: int = 4,
        num_heads: int = 4,
        dim_feedforward: int = 1024,
        dropout: float = 0.1,
        name: str | None = None,
    ):
        super().__init__()
        if topping not in TOPPINGS:
            raise ValueError(f"--transformer_topping {topping!r} is not one of {list(TOPPINGS)}")
        if role not in ROLES:
            raise ValueError(f"text encoder role {role!r} is not one of {list(ROLES)}")
        hidden_size = getattr(backbone, "hidden_size", None)
        if not isinstance(hidden_size, int) or not callable(getattr(backbone, "freeze", None)):
            raise TypeError(
                f"{type(backbone).__name__} is not a text backbone: it needs an int `hidden_size` (size of its "
                "token features) and a `freeze()` method"
            )
        self.text_encoder_name = str(name if name is not None else getattr(backbone, "name", "custom"))
        self.latentD = latentD
        self.topping = topping
        self.role = role
        self.tokenizer: Tokenizer = tokenizer
        self.backbone: nn.Module = backbone.freeze()
        self.projection = nn.Sequential(nn.ReLU(), nn.Linear(hidden_size, latentD))
        self.positional_encoding = PositionalEncoding(latentD, dropout)
        layer = nn.TransformerEncoderLayer(
            d_model=latentD,
            nhead=num_heads,
            dim_feedforward=dim_feedforward,
            dropout=dropout,
            activation="gelu",
            batch_first=True,
        )
        self.transformer = nn.TransformerEncoder(layer, num_layers=num_layers, enable_nested_tensor=False)
        self.register_buffer(FINGERPRINT_NAME, backbone_fingerprint(self.backbone))

    def train(self, mode: bool = True) -> TransformerTextEncoder:
        """Set training mode on the trainable parts; the frozen backbone stays in eval mode."""
        super().train(mode)
        self.backbone.train(False)
        return self

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Every parameter but the frozen backbone's (what the optimizer gets)."""
        return [p for name, p in self.named_parameters() if not name.startswith(BACKBONE_PREFIX)]

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """tokens (B, L) int64 right-padded, lengths (B,) -> (B, latentD), unit norm for role 'retrieval'.

        Positions past each length are ignored; the batch is cut to its longest text first, so the output
        does not depend on how much padding the batch carries.
        """
        if tokens.dim() != 2 or lengths.dim() != 1 or lengths.shape[0] != tokens.shape[0]:
            raise ValueError(
                f"texts_tokens must be (B, L) and texts_lengths (B,); got {tuple(tokens.shape)} and "
                f"{tuple(lengths.shape)}"
            )
        lengths = lengths.to(tokens.device)
        if tokens.shape[0] and (int(lengths.min()) < 1 or int(lengths.max()) > tokens.shape[1]):
            raise ValueError(
                f"texts_lengths must lie in [1, {tokens.shape[1]}] (the padded length of texts_tokens); got "
                f"{int(lengths.min())}..{int(lengths.max())}"
            )
        tokens = tokens[:, : int(lengths.max())] if tokens.shape[0] else tokens
        mask = lengths_to_mask(lengths, tokens.shape[1])  # (B, L) True on real tokens
        features = self.backbone(tokens, lengths)  # (B, L, H), no autograd
        x = self.positional_encoding(self.projection(features))  # (B, L, latentD)
        x = self.transformer(x, src_key_padding_mask=~mask)
        pooled = masked_average(x, mask)
        return F.normalize(pooled, dim=-1) if self.role == "retrieval" else pooled

    def encode_raw_texts(self, texts: list[str], batch_size: int = 64) -> torch.Tensor:
        """Tokenize `texts` with the backbone's tokenizer and encode them: (len(texts), latentD)."""
        tokens, lengths = self.tokenizer.batch(texts)
        device = self.projection[1].weight.device
        return self.encode_by_length(tokens.to(device), lengths.to(device), batch_size)

    def encode_by_length(self, tokens: torch.Tensor, lengths: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
        """`forward` over texts sorted by length, `batch_size` at a time, outputs in the input order.

        tokens (N, L), lengths (N,) -> (N, latentD). For encoding many texts (feature caching): a batch
        of random texts is padded to its longest one (captions vary from ~20 to ~200 tokens), and every
        padded position costs as much as a real one in each layer; texts of similar lengths waste little.
        The outputs equal `forward` on the whole set (padding never reaches the result).
        """
        order = torch.argsort(lengths, stable=True)
        outputs = []
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            outputs.append(self(tokens[chunk], lengths[chunk]))
        if not outputs:
            return self(tokens, lengths)
        result = torch.empty(len(order), outputs[0].shape[1], dtype=outputs[0].dtype, device=outputs[0].device)
        result[order] = torch.cat(outputs)
        return result

    def _load_from_state_dict(
        self,
        state_dict: Mapping[str, Any],
        prefix: str,
        local_metadata: dict,
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        """Refuse weights trained over another backbone than the one loaded (fingerprints differ)."""
        key = prefix + FINGERPRINT_NAME
        if key in state_dict:
            saved = state_dict[key].to("cpu", torch.float64)
            current = getattr(self, FINGERPRINT_NAME).to("cpu", torch.float64)
            if saved.shape != current.shape or not torch.allclose(saved, current, rtol=1e-9, atol=1e-6):
                raise CheckpointError(
                    f"{key}: these weights were trained over another text backbone than the "
                    f"{self.text_encoder_name!r} found now (weight fingerprint {saved.tolist()} vs "
                    f"{current.tolist()}); restore the backbone folder the model was trained with"
                )
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )
