"""InstructionGenerator (original_system.md §2.10): the text that turns pose A into pose B, written from the
frozen representations x̄ of A and of B.

    x̄_A, x̄_B (B, latentD), from a frozen PoseEmbroider / Aligner (`pretrained_representation_model`)
      -> TIRG(main = x̄_B, modifier = x̄_A)                                   -> (B, comparison_latentD)
      -> adapter Linear(comparison_latentD, K * decoder_latentD)             -> memory (B, K, decoder_latentD)
    tokens (B, L) -> Embedding · sqrt(d) + sinusoidal positions (dropout)
      -> TransformerDecoder (decoder_nlayers x [causal self-attention, cross-attention to the K memory
         tokens, GELU feed-forward decoder_ff], post-norm, dropout) -> Linear(decoder_latentD, vocab)

K = `memory_tokens` is 1 in the original (the adapter is then the original's Linear(comparison_latentD,
decoder_latentD), so its weights import as they are).
    loss = cross-entropy of next-token prediction with teacher forcing, PAD ignored

Only the fusion, the adapter and the decoder are trained; x̄ comes from outside (a cache of
`features.intermodality`, or computed live), so `forward` takes x̄ tensors and never the representation model.

The text side is the tokenizer of `text_decoder_name` ('transformer_<tokenizer>': `distilbertUncased` as the
original, `distilbertSynth` offline, or a tokenizer folder); BOS / EOS / PAD are its [CLS] / [SEP] / [PAD].
The decoder's vocabulary size is stored in the config (`vocab_size`, filled from the tokenizer when the model
is first built); a tokenizer of another size is refused when the model is built or loaded.

Generation (`generate`) runs a decoding method of `decoding.py` (greedy as the original, beam search, nucleus
sampling, rerank) over an incremental decoder state that caches the self-attention keys and values of the
generated prefix, so each step costs one token's work rather than the whole prefix's (`IncrementalDecoder`; its
test checks it against the full forward). Rerank's listener (`listener_log_probs`, beyond the original) scores
whole texts under the pair and under `distractor_bank_size` x̄ pairs kept with the weights (a buffer, drawn from
the training pairs by the training script: `set_distractor_bank`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from poseembroider.assisting_models.poseText.model_poseText import batch_tensor
from poseembroider.downstream.input_types import check_input_types
from poseembroider.downstream.instruction_generation.decoding import (
    DEFAULT_MAX_LENGTH,
    DEFAULT_MIN_LENGTH,
    Generated,
    SpecialTokens,
    decode,
)
from poseembroider.models.config_fields import config_field
from poseembroider.models.pretrained import PretrainedModel, register_model
from poseembroider.models.text_encoder import CHUNK_TOKENS, PositionalEncoding, length_chunks
from poseembroider.text.tokenization import Tokenizer, get_tokenizer

__all__ = [
    "COMPARISON_MODULES",
    "IncrementalDecoder",
    "InstructionGenerator",
    "InstructionGeneratorConfig",
    "TIRG",
    "TransformerTextDecoder",
    "VocabularyMismatchError",
    "decoder_tokenizer_name",
]

COMPARISON_MODULES = ("tirg",)
TRANSFORMER_MODES = ("crossattention",)
DECODER_PREFIX = "transformer_"


class VocabularyMismatchError(ValueError):
    """The decoder's vocabulary and the tokenizer disagree (size, or special ids out of range)."""


@dataclass
class InstructionGeneratorConfig:
    """Architecture of the InstructionGenerator; defaults are the published recipe (README, not `option.py`,
    whose defaults 768 / 4 the README overrides: quirk 7)."""

    latentD: int = config_field(512, "size of the input representations x̄ (the representation model's latentD)", min=1)
    comparison_module_mode: str = config_field(
        "tirg", "how x̄_A and x̄_B are fused (TIRG, B main, A modifier)", choices=COMPARISON_MODULES
    )
    comparison_latentD: int = config_field(512, "output size of the fusion (TIRG needs it equal to latentD)", min=1)
    decoder_latentD: int = config_field(512, "width of the text decoder", min=1)
    decoder_nhead: int = config_field(8, "attention heads of the text decoder", min=1)
    decoder_nlayers: int = config_field(4, "layers of the text decoder", min=1)
    decoder_ff: int = config_field(1024, "feed-forward width of the text decoder", min=1)
    decoder_dropout: float = config_field(0.1, "dropout of the decoder layers and the positional encoding")
    decoder_word_dropout: float = config_field(
        0.0,
        "training only: probability that a teacher-forced input word is replaced by [MASK] (Bowman et al. 2016), "
        "so the next word must come from the memory more than from the words before it; 0 as the original",
    )
    text_decoder_name: str = config_field(
        "transformer_distilbertUncased",
        "'transformer_<tokenizer>': distilbertUncased (real), distilbertSynth (offline) or a tokenizer folder",
    )
    transformer_mode: str = config_field(
        "crossattention", "how the decoder reads the fused token", choices=TRANSFORMER_MODES
    )
    wloss_specificity: float = config_field(
        0.0,
        "training only: weight of a hinge asking each text to be likelier, per token, under its own pair's x̄ than "
        "under another pair's by --specificity_margin nats (beyond the original; 0: off, as the original); on the "
        "quickstart's world, greedy R@1 from poses 2.3 without, 5.9 at 1, 8.2 at 3 (3 epochs)",
    )
    specificity_margin: float = config_field(0.5, "margin of the specificity hinge, nats per token")
    memory_tokens: int = config_field(
        1,
        "memory tokens the adapter makes of the fused pair (beyond the original's 1: with one token the "
        "cross-attention gives every word the same vector; with several, each word weighs them its own way; "
        "on the quickstart's world 4 and 8 gave greedy R@1 1.8 and 2.4 against 2.3 for 1)",
        min=1,
    )
    distractor_bank_size: int = config_field(
        0,
        "x̄ pairs of training pairs kept with the weights, the distractors of the 'rerank' decoding's listener "
        "(beyond the original; 0: none, and no 'rerank')",
        min=0,
    )
    max_tokens: int = config_field(512, "most tokens of a text (positional table; the original's 512)", min=1)
    vocab_size: int = config_field(0, "decoder vocabulary; 0: the tokenizer's, recorded when the model is built")
    pretrained_representation_model: str = config_field(
        "", "shortname or folder of the frozen PoseEmbroider / Aligner whose x̄ the model reads"
    )
    representation_model_input_types: list[str] = config_field(
        ["poses"], "input types x̄ was made of at training (images, poses)"
    )

    def __post_init__(self) -> None:
        for name in (
            "latentD",
            "comparison_latentD",
            "decoder_latentD",
            "decoder_nhead",
            "decoder_nlayers",
            "decoder_ff",
            "max_tokens",
            "memory_tokens",
        ):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"--{name} must be >= 1, got {getattr(self, name)}")
        if self.distractor_bank_size < 0:
            raise ValueError(f"--distractor_bank_size must be >= 0, got {self.distractor_bank_size}")
        if self.vocab_size < 0:
            raise ValueError(f"vocab_size must be >= 0, got {self.vocab_size}")
        if self.decoder_latentD % self.decoder_nhead or self.decoder_latentD % 2:
            raise ValueError(
                f"--decoder_latentD {self.decoder_latentD} must be even and a multiple of --decoder_nhead "
                f"{self.decoder_nhead}"
            )
        if self.wloss_specificity < 0 or self.specificity_margin < 0:
            raise ValueError(
                f"--wloss_specificity {self.wloss_specificity} and --specificity_margin {self.specificity_margin} "
                "must be >= 0"
            )
        for name in ("decoder_dropout", "decoder_word_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"--{name} must be in [0, 1), got {getattr(self, name)}")
        if self.comparison_module_mode not in COMPARISON_MODULES:
            raise ValueError(
                f"--comparison_module_mode {self.comparison_module_mode!r} is not one of {list(COMPARISON_MODULES)}"
            )
        if self.comparison_module_mode == "tirg" and self.comparison_latentD != self.latentD:
            raise ValueError(
                f"--comparison_latentD {self.comparison_latentD} must equal --latentD {self.latentD} for TIRG "
                "(its gate multiplies x̄_B)"
            )
        if self.transformer_mode not in TRANSFORMER_MODES:
            raise ValueError(f"--transformer_mode {self.transformer_mode!r} is not one of {list(TRANSFORMER_MODES)}")
        self.representation_model_input_types = list(
            check_input_types(self.representation_model_input_types, "--representation_model_input_types")
        )


def decoder_tokenizer_name(text_decoder_name: str) -> str:
    """'transformer_distilbertUncased' -> 'distilbertUncased' (a name without the prefix is taken as is: a
    tokenizer name or folder)."""
    return text_decoder_name.removeprefix(DECODER_PREFIX)


class TIRG(nn.Module):
    """Text Image Residual Gating (Vo et al., CVPR 2019) as the original uses it to compare two poses:

        gate = Linear(ReLU(BN([main, modifier])))                (B, out)
        res  = Linear(ReLU(Linear(ReLU(BN([main, modifier])))))  (B, out)
        out  = sigmoid(gate) * main * a[0] + res * a[1],   a learnable, initialised to [1, 1]

    `main` (B, in) must have the output size (the gate scales it)."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        if in_dim != out_dim:
            raise ValueError(
                f"TIRG: the gate scales the main input, so in_dim ({in_dim}) must equal out_dim ({out_dim})"
            )
        both = 2 * in_dim
        self.a = nn.Parameter(torch.tensor([1.0, 1.0]))
        self.gated_feature_composer = nn.Sequential(nn.BatchNorm1d(both), nn.ReLU(), nn.Linear(both, out_dim))
        self.res_info_composer = nn.Sequential(
            nn.BatchNorm1d(both), nn.ReLU(), nn.Linear(both, both), nn.ReLU(), nn.Linear(both, out_dim)
        )

    def forward(self, main: torch.Tensor, modifier: torch.Tensor) -> torch.Tensor:
        both = torch.cat([main, modifier], dim=1)
        gate = torch.sigmoid(self.gated_feature_composer(both))
        return gate * main * self.a[0] + self.res_info_composer(both) * self.a[1]


class TransformerTextDecoder(nn.Module):
    """Token ids (B, L) and memory (B, M, D) -> next-token logits (B, L, V); causal, PAD keys masked."""

    def __init__(
        self,
        vocab_size: int,
        d_model: int,
        nhead: int,
        nlayers: int,
        dim_feedforward: int,
        dropout: float,
        max_tokens: int,
        pad_token_id: int,
    ) -> None:
        super().__init__()
        self.d_model = d_model
        self.pad_token_id = pad_token_id
        self.embedding = nn.Embedding(vocab_size, d_model)
        self.positional_encoding = PositionalEncoding(d_model, dropout, max_len=max_tokens)
        layer = nn.TransformerDecoderLayer(
            d_model, nhead, dim_feedforward, dropout, activation="gelu", batch_first=True
        )
        self.decoder = nn.TransformerDecoder(layer, nlayers)
        self.final_layer = nn.Linear(d_model, vocab_size)

    def embed(self, tokens: torch.Tensor, offset: int = 0) -> torch.Tensor:
        """(B, L) ids -> (B, L, D): scaled embeddings + positions offset..offset+L-1 (then dropout)."""
        x = self.embedding(tokens) * math.sqrt(self.d_model)
        if offset == 0:
            return self.positional_encoding(x)
        pe = self.positional_encoding.pe[offset : offset + tokens.shape[1]]
        return self.positional_encoding.dropout(x + pe.unsqueeze(0))

    def forward(self, tokens: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        length = tokens.shape[1]
        causal = torch.triu(torch.ones(length, length, dtype=torch.bool, device=tokens.device), diagonal=1)
        x = self.decoder(self.embed(tokens), memory, tgt_mask=causal, tgt_key_padding_mask=tokens == self.pad_token_id)
        return self.final_layer(x)


Listener = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, bool], torch.Tensor]
"""(memory (N, K, D), generated tokens (N, L) after BOS, lengths (N,), length_normalised) -> (N,) log-probability
of the own sample (`InstructionGenerator.listener_log_probs`)."""


class IncrementalDecoder:
    """The decoding state of `TransformerTextDecoder` (`decoding.DecodingState`): one token per row per call,
    the keys and values of every earlier position of each layer's self-attention kept in a cache.

    It computes what the full forward computes for the last position (eval mode: no dropout): the causal mask
    lets a position see only itself and earlier ones, whose keys and values do not change when tokens are
    appended, so they are computed once. The cross-attention reads the memory as the layer does."""

    def __init__(self, decoder: TransformerTextDecoder, memory: torch.Tensor, listener: Listener | None = None) -> None:
        if decoder.training:
            raise RuntimeError("IncrementalDecoder: put the model in eval mode (dropout would differ per call)")
        self.decoder, self.memory = decoder, memory
        self.initial_memory = memory  # `memory` follows the search's rows; the listener judges the samples'
        self.listener = listener
        self.cache: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.position = 0

    def expand(self, k: int) -> IncrementalDecoder:
        return IncrementalDecoder(self.decoder, self.initial_memory.repeat_interleave(k, dim=0))

    def listener_log_probs(
        self, tokens: torch.Tensor, lengths: torch.Tensor, length_normalised: bool = False
    ) -> torch.Tensor:
        """`decoding.ListeningState`: the model's listener over the state's first memory rows."""
        if self.listener is None:
            raise ValueError("this decoding state has no listener: build it with InstructionGenerator.decoding_state")
        return self.listener(self.initial_memory, tokens, lengths, length_normalised)

    def __call__(self, tokens: torch.Tensor, parents: torch.Tensor | None) -> torch.Tensor:
        if parents is not None:
            self.memory = self.memory[parents]
            self.cache = [(k[parents], v[parents]) for k, v in self.cache]
        x = self.decoder.embed(tokens[:, None], self.position)  # (N, 1, D)
        n, d = x.shape[0], x.shape[2]
        new_cache = []
        for index, layer in enumerate(self.decoder.decoder.layers):
            attention = layer.self_attn
            heads = attention.num_heads
            q, k, v = F.linear(x, attention.in_proj_weight, attention.in_proj_bias).chunk(3, dim=-1)
            q, k, v = (t.view(n, 1, heads, d // heads).transpose(1, 2) for t in (q, k, v))  # (N, H, 1, d/H)
            if self.cache:
                k = torch.cat([self.cache[index][0], k], dim=2)
                v = torch.cat([self.cache[index][1], v], dim=2)
            new_cache.append((k, v))
            attended = F.scaled_dot_product_attention(q, k, v)  # the newest position sees every cached one
            x = layer.norm1(x + attention.out_proj(attended.transpose(1, 2).reshape(n, 1, d)))
            x = layer.norm2(x + layer.multihead_attn(x, self.memory, self.memory, need_weights=False)[0])
            x = layer.norm3(x + layer.linear2(layer.activation(layer.linear1(x))))
        self.cache = new_cache
        self.position += 1
        return self.decoder.final_layer(x[:, 0])


@register_model
class InstructionGenerator(PretrainedModel, nn.Module):
    """Corrective-instruction generator over frozen representations (see the module docstring).

    `tokenizer`: the one of `config.text_decoder_name` when None (read from its folder)."""

    config_class = InstructionGeneratorConfig
    chunk_tokens: int = 2 * CHUNK_TOKENS
    """Padded-token budget of one chunk of a CPU loss (`loss`; 0: one padded call)."""

    def __init__(self, config: InstructionGeneratorConfig | None = None, tokenizer: Tokenizer | None = None) -> None:
        super().__init__()
        self.config = cfg = config or InstructionGeneratorConfig()
        if tokenizer is None:
            tokenizer = get_tokenizer(decoder_tokenizer_name(cfg.text_decoder_name))
        self.tokenizer = tokenizer
        size = len(tokenizer)
        if cfg.vocab_size == 0:
            cfg.vocab_size = size
        elif cfg.vocab_size != size:
            raise VocabularyMismatchError(
                f"the decoder has a vocabulary of {cfg.vocab_size} tokens (vocab_size in its config) but the "
                f"tokenizer {tokenizer.name!r} of text_decoder_name {cfg.text_decoder_name!r} has {size}: "
                "the model was trained with another tokenizer"
            )
        self.special = SpecialTokens(tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id)
        out_of_range = {k: v for k, v in vars(self.special).items() if not 0 <= v < cfg.vocab_size}
        if out_of_range:
            raise VocabularyMismatchError(
                f"tokenizer {tokenizer.name!r}: special token ids {out_of_range} outside the decoder "
                f"vocabulary of {cfg.vocab_size}"
            )
        self.comparison = TIRG(cfg.latentD, cfg.comparison_latentD)
        self.adapter = nn.Linear(cfg.comparison_latentD, cfg.memory_tokens * cfg.decoder_latentD)
        self.text_decoder = TransformerTextDecoder(
            cfg.vocab_size,
            cfg.decoder_latentD,
            cfg.decoder_nhead,
            cfg.decoder_nlayers,
            cfg.decoder_ff,
            cfg.decoder_dropout,
            cfg.max_tokens,
            self.special.pad,
        )
        if cfg.distractor_bank_size:
            # saved with the weights, so that 'rerank' needs nothing but the model folder
            self.register_buffer("distractor_xbar", torch.zeros(cfg.distractor_bank_size, 2, cfg.latentD))

    # ------------------------------------------------------------------ forward

    def _check_xbar(self, xbar_A: torch.Tensor, xbar_B: torch.Tensor) -> None:
        d = self.config.latentD
        for name, x in (("xbar_A", xbar_A), ("xbar_B", xbar_B)):
            if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.shape[1] != d:
                shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
                source = self.config.pretrained_representation_model or "a representation model"
                raise ValueError(f"{name}: {shape}; expected (B, {d}) representations x̄ of {source}")
        if xbar_A.shape[0] != xbar_B.shape[0]:
            raise ValueError(f"xbar_A has {xbar_A.shape[0]} rows but xbar_B {xbar_B.shape[0]}")

    def memory(self, xbar_A: torch.Tensor, xbar_B: torch.Tensor) -> torch.Tensor:
        """x̄ of A and B, (B, latentD) each -> the decoder's memory (B, memory_tokens, decoder_latentD)."""
        self._check_xbar(xbar_A, xbar_B)
        fused = self.comparison(main=xbar_B.float(), modifier=xbar_A.float())
        return self.adapter(fused).view(fused.shape[0], self.config.memory_tokens, self.config.decoder_latentD)

    def forward(self, xbar_A: torch.Tensor, xbar_B: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: logits (B, L, V) of the token after each of `tokens` (B, L) ([BOS] w1 ...; PAD
        positions give logits that the loss ignores)."""
        if tokens.shape[1] > self.config.max_tokens:
            raise ValueError(f"texts of {tokens.shape[1]} tokens exceed max_tokens {self.config.max_tokens}")
        return self.text_decoder(tokens, self.memory(xbar_A, xbar_B))

    def loss(self, xbar_A: torch.Tensor, xbar_B: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of every next token of `tokens` (B, L) = [BOS] w1 ... wn [EOS] [PAD]...,
        PAD targets ignored (`text_losses`)."""
        memory = self.memory(xbar_A, xbar_B)
        summed, counts = self.text_losses(memory, self.drop_words(tokens), tokens)
        return summed.sum() / counts.sum().clamp(min=1)

    def text_losses(
        self, memory: torch.Tensor, inputs: torch.Tensor, tokens: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per text: the summed cross-entropy of its next tokens (B,) and their number (B,), teacher-forced on
        `inputs` (B, L) (`tokens` after word dropout) over `memory` (B, K, D); the targets are `tokens[:, 1:]`.

        On the CPU, a batch of more than `chunk_tokens` padded tokens runs the decoder in length-sorted chunks
        (`models.text_encoder.length_chunks`), each cut to its longest text: every text is decoded on its own
        (causal attention, PAD keys masked), so the sums are those of one padded call, without paying for the
        padding (instructions run from ~5 to ~170 tokens)."""
        targets = tokens[:, 1:]
        counts = (targets != self.special.pad).sum(dim=1)
        summed = torch.zeros(tokens.shape[0], device=tokens.device)
        if not (tokens.device.type == "cpu" and 0 < self.chunk_tokens < tokens.numel()):
            chunks = [(torch.arange(tokens.shape[0], device=tokens.device), tokens.shape[1])]
        else:
            lengths = (tokens != self.special.pad).sum(dim=1).clamp(min=2)
            order, sizes = length_chunks(lengths, max_tokens=self.chunk_tokens)
            chunks = [(rows, int(lengths[rows].max())) for rows in order.split(sizes)]
        for rows, longest in chunks:
            logits = self.text_decoder(inputs[rows, : longest - 1], memory[rows])
            token_losses = F.cross_entropy(
                logits.reshape(-1, logits.shape[-1]).float(),
                targets[rows, : longest - 1].reshape(-1),
                ignore_index=self.special.pad,
                reduction="none",
            ).view(len(rows), -1)
            summed = summed.index_add(0, rows, token_losses.sum(dim=1))
        return summed, counts

    def specificity_loss(self, xbar_A: torch.Tensor, xbar_B: torch.Tensor, tokens: torch.Tensor) -> dict:
        """`loss`: the cross-entropy of `loss` + `wloss_specificity` x mean over texts of
        max(0, `specificity_margin` - (NLL under another pair's x̄ - NLL under its own)), per-token NLLs, the
        other pair being the batch rolled by one; with `gap` (detached mean of that difference, nats per
        token). A text must be likelier under its own pair than under another by the margin: a signal for
        what x̄ says about this pair, which the cross-entropy alone barely asks for (beyond the original)."""
        memory = self.memory(xbar_A, xbar_B)
        inputs = self.drop_words(tokens)
        own_sum, counts = self.text_losses(memory, inputs, tokens)
        other_sum, _ = self.text_losses(memory.roll(1, dims=0), inputs, tokens)
        per_token = counts.clamp(min=1)
        gap = (other_sum - own_sum) / per_token
        hinge = torch.relu(self.config.specificity_margin - gap).mean()
        loss = own_sum.sum() / counts.sum().clamp(min=1) + self.config.wloss_specificity * hinge
        return {"loss": loss, "gap": gap.detach().mean()}

    def drop_words(self, tokens: torch.Tensor) -> torch.Tensor:
        """Teacher-forcing inputs: `tokens` (B, L), in training mode each word (not BOS, EOS or PAD) replaced
        by [MASK] with probability `decoder_word_dropout` (torch's generator); unchanged otherwise."""
        rate = self.config.decoder_word_dropout
        if not (self.training and rate > 0):
            return tokens
        special = (tokens == self.special.bos) | (tokens == self.special.eos) | (tokens == self.special.pad)
        dropped = (torch.rand(tokens.shape, device=tokens.device) < rate) & ~special
        return tokens.masked_fill(dropped, self.tokenizer.mask_token_id)

    def _inputs(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        name = type(self).__name__
        try:
            xbar_A, xbar_B = batch_tensor(batch, "xbar_A", name), batch_tensor(batch, "xbar_B", name)
        except KeyError as err:
            raise KeyError(
                f"{err.args[0]}: add the x̄ of each pair element to the items (features.intermodality's "
                "WithIntermodalityFeatures, or instruction_generation.data.WithPairXbar)"
            ) from None
        return xbar_A, xbar_B, batch_tensor(batch, "texts_tokens", name, item_format="t")

    def training_step(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """`{"loss"}`: teacher-forced cross-entropy of the batch's instructions (+ the specificity term and its
        `gap` with `wloss_specificity`)."""
        inputs = self._inputs(batch)
        if self.config.wloss_specificity > 0 and len(inputs[2]) > 1:  # another pair's x̄ needs two pairs
            return self.specificity_loss(*inputs)
        return {"loss": self.loss(*inputs)}

    def validation_step(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """`{"loss", "fake_loss"}`; `fake_loss` is the loss of the texts rolled by B/2 (each pair given another
        pair's instruction), the original's sanity reference: `loss` well below it means x̄ is being read."""
        xbar_A, xbar_B, tokens = self._inputs(batch)
        shift = max(tokens.shape[0] // 2, 1)
        return {
            "loss": self.loss(xbar_A, xbar_B, tokens),
            "fake_loss": self.loss(xbar_A, xbar_B, tokens.roll(shift, dims=0)),
        }

    def param_groups(self, lr: float, wd: float) -> list[dict[str, Any]]:
        """One group of every parameter (fusion, adapter, decoder: nothing here is frozen); weight decay is the
        optimizer's `--wd` (1e-4 in the recipe)."""
        return [{"params": list(self.parameters()), "lr": lr}]

    # ------------------------------------------------------------------ generation

    def decoding_state(self, xbar_A: torch.Tensor, xbar_B: torch.Tensor) -> IncrementalDecoder:
        """The incremental decoding state over the memory of (x̄_A, x̄_B) (eval mode), with the model's listener
        (`listener_log_probs`, which needs kept distractors: `distractor_bank_size`)."""
        return IncrementalDecoder(self.text_decoder, self.memory(xbar_A, xbar_B), self.listener_log_probs)

    @torch.no_grad()
    def set_distractor_bank(self, xbar_A: torch.Tensor, xbar_B: torch.Tensor, seed: int = 0) -> None:
        """Keep `distractor_bank_size` pairs drawn at random (`seed`) from x̄_A / x̄_B (N, latentD), e.g. the
        training pairs', as the listener's distractors (saved with the weights). Fewer than that many pairs are
        each kept about equally often (the listener's normaliser weighs them alike)."""
        size = self.config.distractor_bank_size
        if size == 0:
            raise ValueError("set_distractor_bank: this InstructionGenerator has distractor_bank_size 0")
        self._check_xbar(xbar_A, xbar_B)
        n = xbar_A.shape[0]
        if n == 0:
            raise ValueError("set_distractor_bank: no pairs to keep")
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        rows = order.repeat(-(-size // n))[:size]
        bank = torch.stack([xbar_A[rows], xbar_B[rows]], dim=1)
        self.distractor_xbar.copy_(bank.to(self.distractor_xbar))

    @torch.no_grad()
    def listener_log_probs(
        self, memory: torch.Tensor, tokens: torch.Tensor, lengths: torch.Tensor, length_normalised: bool = False
    ) -> torch.Tensor:
        """(N,) log-probability that a listener who knows this speaker, reading the generated text of each row
        (`tokens` (N, L) after BOS, EOS then PAD; `lengths` (N,)), picks the row's own pair (`memory` (N, K, D))
        among it and the `distractor_bank_size` kept pairs: a softmax over the pairs of the text's summed
        log-likelihood under each (its mean per token when `length_normalised`), uniform prior (the listener of
        the 'rerank' decoding)."""
        if not self.config.distractor_bank_size:
            raise ValueError(
                "this InstructionGenerator keeps no distractor pairs (distractor_bank_size 0): the 'rerank' decoding "
                "needs them; train with --distractor_bank_size N (or call set_distractor_bank)"
            )
        n, size = tokens.shape[0], self.config.distractor_bank_size
        if lengths.shape != (n,):
            raise ValueError(f"listener_log_probs: lengths {tuple(lengths.shape)} for {n} texts")
        texts = torch.cat([torch.full((n, 1), self.special.bos, dtype=tokens.dtype, device=tokens.device), tokens], 1)
        distractors = self.memory(self.distractor_xbar[:, 0], self.distractor_xbar[:, 1])  # (M, K, D)
        own, counts = self.text_losses(memory, texts, texts)
        repeated = texts.repeat(size, 1)  # row j * N + i: text i under distractor j
        others, _ = self.text_losses(distractors.repeat_interleave(n, dim=0), repeated, repeated)
        log_likelihoods = torch.cat([-own[:, None], -others.view(size, n).T], dim=1)  # (N, 1 + M)
        if length_normalised:
            log_likelihoods = log_likelihoods / counts.clamp(min=1)[:, None]
        return log_likelihoods.log_softmax(dim=1)[:, 0]

    @torch.no_grad()
    def generate(
        self,
        xbar_A: torch.Tensor,
        xbar_B: torch.Tensor,
        decoding: str = "greedy",
        max_length: int = DEFAULT_MAX_LENGTH,
        min_length: int = DEFAULT_MIN_LENGTH,
        **options: Any,
    ) -> Generated:
        """Token ids of the instructions turning A into B (x̄ (B, latentD) each), by the decoding method
        `decoding` ('greedy', 'beam', 'nucleus'; `options` such as beam_size, top_p, seed). Eval mode."""
        if self.training:
            raise RuntimeError("InstructionGenerator.generate: call model.eval() first (BatchNorm, dropout)")
        max_length = min(int(max_length), self.config.max_tokens - 1)
        state = self.decoding_state(xbar_A, xbar_B)
        return decode(decoding, state, xbar_A.shape[0], self.special, max_length, min_length, xbar_A.device, **options)

    def texts_of(self, generated: Generated) -> list[str]:
        """The texts of generated token ids (special tokens dropped)."""
        return self.tokenizer.decode_batch(generated.tokens.cpu(), generated.lengths.cpu())

    def generate_texts(
        self, xbar_A: torch.Tensor, xbar_B: torch.Tensor, decoding: str = "greedy", **options: Any
    ) -> list[str]:
        """`generate` then `texts_of`: one instruction per row of x̄_A / x̄_B."""
        return self.texts_of(self.generate(xbar_A, xbar_B, decoding, **options))
