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
    "frozen_token_features",
    "length_chunks",
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

CHUNK_TOKENS = 1024
"""Padded-token budget of one length-sorted chunk of a CPU forward (`TransformerTextEncoder.forward`, see
`length_chunks`). PoseText / PairText training steps at the quickstart's size (latentD 128, one layer, no
dropout, batch 128, one thread; CPU time of one process): 164 / 251 samples/s in one padded call (captions /
instructions), 327 / 523 with budgets of 512 tokens, 353 / 549 with 1024, 360 / 534 with 2048, 353 / 457
with 4096."""


def lengths_to_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """(B,) lengths -> (B, max_len) bool mask, True on the real tokens of right-padded texts."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def masked_average(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of (B, L, D) features over the positions where the (B, L) bool `mask` is True -> (B, D)."""
    weights = mask.to(x.dtype).unsqueeze(-1)  # (B, L, 1)
    return (x * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


def _checked_lengths(tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """`lengths` (B,) on the device of `tokens` (B, L), or a ValueError saying which input is malformed."""
    if tokens.dim() != 2 or lengths.dim() != 1 or lengths.shape[0] != tokens.shape[0]:
        raise ValueError(
            f"texts_tokens must be (B, L) and texts_lengths (B,); got {tuple(tokens.shape)} and {tuple(lengths.shape)}"
        )
    lengths = lengths.to(tokens.device)
    if tokens.shape[0] and (int(lengths.min()) < 1 or int(lengths.max()) > tokens.shape[1]):
        raise ValueError(
            f"texts_lengths must lie in [1, {tokens.shape[1]}] (the padded length of texts_tokens); got "
            f"{int(lengths.min())}..{int(lengths.max())}"
        )
    return lengths


def length_chunks(lengths: torch.Tensor, max_tokens: int = 0, max_texts: int = 0) -> tuple[torch.Tensor, list[int]]:
    """Texts of `lengths` (N,) sorted by length (`order` (N,), stable), cut into consecutive chunks: the
    chunk sizes (summing to N), each chunk holding at most `max_texts` texts and a padded size (texts x its
    longest length) of at most `max_tokens` (0: no limit), and at least one text.

    A token budget adapts the chunks to the texts: captions of ~110 tokens go ~16 to a chunk of 2048
    tokens, short instructions by the hundred, where one call per 16 would cost more in per-call overhead
    than the padding it saves."""
    order = torch.argsort(lengths, stable=True)
    sizes, start = [], 0
    for i, length in enumerate(lengths[order].tolist()):  # ascending: the newest text is the chunk's longest
        count = i - start + 1
        if i > start and ((max_texts and count > max_texts) or (max_tokens and count * length > max_tokens)):
            sizes.append(i - start)
            start = i
    if len(order):
        sizes.append(len(order) - start)
    return order, sizes


@torch.no_grad()
def frozen_token_features(
    backbone: nn.Module, tokens: torch.Tensor, lengths: torch.Tensor, chunk_tokens: int = CHUNK_TOKENS
) -> torch.Tensor:
    """Token features of a frozen text backbone: tokens (B, L) right-padded, lengths (B,) -> (B, L, H), zero
    past each length, computed in length-sorted chunks of at most `chunk_tokens` padded tokens (0: one call).

    What `TransformerTextEncoder.forward(tokens, lengths, features)` takes instead of running its backbone:
    the backbone is frozen, so its features can be computed anywhere beforehand, e.g. in the DataLoader
    workers (`poseText.data.text_collate_fn(..., backbone=...)`), beside the next batches' loading."""
    lengths = _checked_lengths(tokens, lengths)
    if tokens.shape[0] == 0:
        return torch.zeros(0, tokens.shape[1], int(backbone.hidden_size))
    order, sizes = length_chunks(lengths, max_tokens=chunk_tokens)
    out = torch.zeros(*tokens.shape, int(backbone.hidden_size), device=tokens.device)
    for rows in order.split(sizes):
        longest = int(lengths[rows].max())
        out[rows, :longest] = backbone(tokens[rows, :longest], lengths[rows]) * lengths_to_mask(
            lengths[rows], longest
        ).unsqueeze(-1)
    return out


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
        chunk_tokens: int = CHUNK_TOKENS,
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
        if chunk_tokens < 0:
            raise ValueError(f"chunk_tokens must be >= 0 (0: one padded call), got {chunk_tokens}")
        self.text_encoder_name = str(name if name is not None else getattr(backbone, "name", "custom"))
        self.chunk_tokens = chunk_tokens
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

    def forward(
        self, tokens: torch.Tensor, lengths: torch.Tensor, features: torch.Tensor | None = None
    ) -> torch.Tensor:
        """tokens (B, L) int64 right-padded, lengths (B,) -> (B, latentD), unit norm for role 'retrieval'.

        `features` (B, L', H), L' >= the longest length: the frozen backbone's token features of these
        tokens when they were computed beforehand (`frozen_token_features`, e.g. in the DataLoader workers);
        None: the backbone runs here.

        Positions past each length are ignored, so the output does not depend on how much padding the batch
        carries. On the CPU, a batch whose padded size B x L exceeds `chunk_tokens` is encoded in
        length-sorted chunks (`length_chunks`), each cut to its own longest text: the same outputs and
        gradients as one padded call, at the cost of little more than the real tokens (captions run from ~20
        to ~230 tokens, and a padded position costs as much as a real one in every layer). On a GPU one padded
        call is faster.
        """
        lengths = _checked_lengths(tokens, lengths)
        if features is not None:
            self._check_features(features, tokens, lengths)
        if tokens.device.type == "cpu" and 0 < self.chunk_tokens < tokens.shape[0] * tokens.shape[1]:
            order, sizes = length_chunks(lengths, max_tokens=self.chunk_tokens)
            return self._forward_sorted(tokens, lengths, order, sizes, features)
        return self._forward_padded(tokens, lengths, features)

    def _check_features(self, features: torch.Tensor, tokens: torch.Tensor, lengths: torch.Tensor) -> None:
        longest = int(lengths.max()) if len(lengths) else 0
        hidden = self.projection[1].in_features
        if features.dim() != 3 or features.shape[0] != tokens.shape[0] or features.shape[1] < longest:
            raise ValueError(
                f"texts_features must be (B, L, {hidden}) with B = {tokens.shape[0]} texts and L >= their longest "
                f"length {longest}; got {tuple(features.shape)}"
            )
        if features.shape[2] != hidden:
            raise ValueError(
                f"texts_features have {features.shape[2]} channels but the text backbone "
                f"{self.text_encoder_name!r} gives {hidden}: they were computed by another backbone"
            )

    def _forward_padded(
        self, tokens: torch.Tensor, lengths: torch.Tensor, features: torch.Tensor | None = None
    ) -> torch.Tensor:
        """`forward` in one call over checked inputs, padded to the longest text: (B, L), (B,) -> (B, latentD)."""
        longest = int(lengths.max()) if tokens.shape[0] else tokens.shape[1]
        tokens = tokens[:, :longest]
        mask = lengths_to_mask(lengths, tokens.shape[1])  # (B, L) True on real tokens
        if features is None:
            features = self.backbone(tokens, lengths)  # (B, L, H), no autograd
        x = self.positional_encoding(self.projection(features[:, :longest]))  # (B, L, latentD)
        x = self.transformer(x, src_key_padding_mask=~mask)
        pooled = masked_average(x, mask)
        return F.normalize(pooled, dim=-1) if self.role == "retrieval" else pooled

    def _forward_sorted(
        self,
        tokens: torch.Tensor,
        lengths: torch.Tensor,
        order: torch.Tensor,
        sizes: list[int],
        features: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """`_forward_padded` over the chunks of `length_chunks` (`order` (N,), chunk `sizes`), outputs back in
        the input order (differentiable): (N, L), (N,) [, (N, L', H)] -> (N, latentD)."""
        if tokens.shape[0] == 0:
            return self._forward_padded(tokens, lengths, features)
        outputs = [
            self._forward_padded(tokens[rows], lengths[rows], None if features is None else features[rows])
            for rows in order.split(sizes)
        ]
        return torch.cat(outputs).index_select(0, torch.argsort(order))

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
        if batch_size < 1:
            raise ValueError(f"encode_by_length: batch_size must be >= 1, got {batch_size}")
        lengths = _checked_lengths(tokens, lengths)
        return self._forward_sorted(tokens, lengths, *length_chunks(lengths, max_texts=batch_size))

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
