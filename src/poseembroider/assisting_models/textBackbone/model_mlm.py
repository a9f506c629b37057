"""Masked-language modelling of our small DistilBERT: BERT masking and the model the Trainer pretrains.

`MaskedLanguageModel` follows the contract of `training.trainer.Trainer`:

- `training_step(batch) -> {"loss", "accuracy"}`: masks drawn from the global RNG, which the Trainer seeds
  and saves with its training state, so a resumed run draws the masks an uninterrupted one would;
- `validation_step(batch) -> {"loss", "accuracy", "n_masked", "targets"}`: masks drawn from a generator
  seeded with `validation_seed` at every call, so a batch is always masked the same way and validation
  losses compare across epochs;
- `validation_epoch_end(outputs)`: loss and masked-token accuracy over every masked token of the split
  (a batch of long texts weighs more than one of short texts), and two references measured on the same
  targets: `unigram_accuracy`, always answering the most frequent target token (a model that learnt only
  word frequencies reaches it), and `chance_accuracy`, 1 / number of non-special tokens;
- `param_groups(lr, wd)`: weight decay on the matrices only (not on biases, LayerNorms);
- `save_pretrained(dir)`: the transformers `DistilBertForMaskedLM` layout (config.json + model.safetensors)
  and, when the model knows its tokenizer, the tokenizer files beside them: the folder is then a complete
  text model, which `from_pretrained(dir)` and `model_textBackbone.get_text_backbone(dir)` read back.

Batches are `{"texts_tokens": (B, L) int64, "texts_lengths": (B,) int64}` as `datasets.collate.collate_texts`
makes them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from poseembroider.assisting_models.textBackbone.model_textBackbone import (
    TextBackbone,
    TextBackboneConfig,
    load_distilbert,
)
from poseembroider.models.text_encoder import lengths_to_mask
from poseembroider.text.tokenization import Tokenizer, load_tokenizer, quiet_transformers

__all__ = ["IGNORE_INDEX", "MaskedLanguageModel", "mask_tokens"]

IGNORE_INDEX = -100
"""Label of the positions that are not predicted (cross-entropy `ignore_index`)."""

TIED_PROJECTION = "vocab_projector.weight"
"""The MLM output projection, tied to the token embeddings: transformers does not save it twice."""


def mask_tokens(
    tokens: torch.Tensor,
    lengths: torch.Tensor,
    mask_token_id: int,
    vocab_size: int,
    special_token_ids: Sequence[int],
    probability: float = 0.15,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT masking: (inputs (B, L), labels (B, L)).

    Each real, non-special token is selected with `probability`; a selected token is replaced by [MASK]
    (80 %), by a random non-special token (10 %) or kept (10 %), and its label is the original id; all
    other labels are `IGNORE_INDEX`. At least one token of the batch is selected. Draws come from
    `generator` (a CPU generator: results are moved to the tokens' device) or the global RNG.
    """
    device = tokens.device
    cpu_tokens = tokens.cpu()
    eligible = lengths_to_mask(lengths.cpu(), tokens.shape[1])
    special = torch.tensor(sorted(set(int(i) for i in special_token_ids)), dtype=torch.long)
    eligible &= ~torch.isin(cpu_tokens, special)
    draw = torch.rand(tokens.shape, generator=generator)
    selected = eligible & (draw < probability)
    if not selected.any() and eligible.any():
        selected.view(-1)[torch.where(eligible.view(-1), draw.view(-1), 2.0).argmin()] = True
    action = torch.rand(tokens.shape, generator=generator)
    regular = torch.ones(vocab_size, dtype=torch.bool)
    regular[special[special < vocab_size]] = False
    candidates = regular.nonzero().squeeze(1)
    random_ids = candidates[torch.randint(len(candidates), tokens.shape, generator=generator)]
    inputs = cpu_tokens.clone()
    inputs[selected & (action < 0.8)] = mask_token_id
    replace = selected & (action >= 0.8) & (action < 0.9)
    inputs[replace] = random_ids[replace]
    labels = torch.where(selected, cpu_tokens, torch.full_like(cpu_tokens, IGNORE_INDEX))
    return inputs.to(device), labels.to(device)


class MaskedLanguageModel(nn.Module):
    """DistilBERT with its MLM head (see the module docstring); the backbone is `.distilbert`.

    The parts of the transformers `DistilBertForMaskedLM` (`distilbert`, `vocab_transform`, `activation`,
    `vocab_layer_norm`, `vocab_projector`) are registered here under their own names, so this module's
    state dict is the one `DistilBertForMaskedLM.save_pretrained` writes: the Trainer resumes from that
    file (`last/model.safetensors`). The tied projection is the one weight the file leaves out
    (`unsaved_prefixes`); it is the token-embedding tensor, reloaded with it.
    """

    unsaved_prefixes: tuple[str, ...] = (TIED_PROJECTION,)

    def __init__(
        self,
        mlm: nn.Module,
        mask_token_id: int,
        special_token_ids: Sequence[int],
        mask_probability: float = 0.15,
        validation_seed: int = 0,
        tokenizer: Tokenizer | None = None,
    ):
        super().__init__()
        self.distilbert = mlm.distilbert
        self.vocab_transform = mlm.vocab_transform
        self.activation = mlm.activation
        self.vocab_layer_norm = mlm.vocab_layer_norm
        self.vocab_projector = mlm.vocab_projector
        # the transformers wrapper, kept out of the module tree (its parts are registered above): it writes
        # the checkpoint in its own format
        object.__setattr__(self, "_transformers_model", mlm)
        self.tokenizer = tokenizer
        self.mask_token_id = int(mask_token_id)
        self.special_token_ids = sorted(set(int(i) for i in special_token_ids))
        self.mask_probability = float(mask_probability)
        self.validation_seed = int(validation_seed)

    @classmethod
    def from_config(cls, config: TextBackboneConfig, tokenizer: Tokenizer, **kwargs: Any) -> MaskedLanguageModel:
        """A randomly initialised model of size `config` over the vocabulary of `tokenizer` (global RNG)."""
        from transformers import DistilBertForMaskedLM

        if tokenizer.max_length > config.max_position_embeddings:
            raise ValueError(
                f"tokenizer {tokenizer.name!r} truncates at {tokenizer.max_length} tokens but the backbone has "
                f"{config.max_position_embeddings} positions"
            )
        mlm = DistilBertForMaskedLM(config.distilbert_config(len(tokenizer), tokenizer.pad_token_id))
        return cls(mlm, tokenizer.mask_token_id, tokenizer.special_token_ids, tokenizer=tokenizer, **kwargs)

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike, **kwargs: Any) -> MaskedLanguageModel:
        """The model and tokenizer saved in `folder` by `save_pretrained`."""
        folder = Path(folder)
        tokenizer = load_tokenizer(folder)
        mlm = load_distilbert(folder, None, "DistilBertForMaskedLM")
        return cls(mlm, tokenizer.mask_token_id, tokenizer.special_token_ids, tokenizer=tokenizer, **kwargs)

    def save_pretrained(self, folder: str | os.PathLike) -> Path:
        """config.json + model.safetensors (transformers layout) and the tokenizer files, in `folder`."""
        folder = Path(folder)
        with quiet_transformers():
            self._transformers_model.save_pretrained(str(folder), safe_serialization=True)
        if self.tokenizer is not None:
            self.tokenizer.save(folder)
        return folder

    @property
    def vocab_size(self) -> int:
        return int(self._transformers_model.config.vocab_size)

    def backbone(self, frozen: bool = True, name: str = "distilbertSynth") -> TextBackbone:
        """The DistilBERT inside (shared, not copied) as a `TextBackbone`."""
        return TextBackbone(self.distilbert, name, frozen)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """MLM loss and accuracy over the labelled positions (logits computed only there).

        tokens (B, L), lengths (B,), labels (B, L) -> {"loss": (), "accuracy": (), "n_masked": ()}."""
        mask = lengths_to_mask(lengths, tokens.shape[1]).long()
        hidden = self.distilbert(input_ids=tokens, attention_mask=mask).last_hidden_state  # (B, L, D)
        where = labels != IGNORE_INDEX
        h = self.vocab_layer_norm(self.activation(self.vocab_transform(hidden[where])))
        logits = self.vocab_projector(h)  # (n_masked, V)
        targets = labels[where]
        loss = F.cross_entropy(logits, targets)
        accuracy = (logits.argmax(dim=-1) == targets).float().mean()
        return {"loss": loss, "accuracy": accuracy, "n_masked": where.sum()}

    def _batch(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        tokens, lengths = batch["texts_tokens"], batch["texts_lengths"]
        lengths = torch.as_tensor(lengths, device=tokens.device)
        return tokens[:, : int(lengths.max())], lengths

    def _mask(self, tokens: torch.Tensor, lengths: torch.Tensor, generator: torch.Generator | None = None):
        return mask_tokens(
            tokens, lengths, self.mask_token_id, self.vocab_size, self.special_token_ids, self.mask_probability,
            generator,
        )

    def training_step(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        tokens, lengths = self._batch(batch)
        inputs, labels = self._mask(tokens, lengths)
        out = self(inputs, lengths, labels)
        return {"loss": out["loss"], "accuracy": out["accuracy"].detach()}

    @torch.no_grad()
    def validation_step(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        """Loss, accuracy and number of masked tokens of the batch, and the masked token ids (`targets`,
        a list of ints) for the most-frequent-token reference of `validation_epoch_end`."""
        tokens, lengths = self._batch(batch)
        inputs, labels = self._mask(tokens, lengths, torch.Generator().manual_seed(self.validation_seed))
        out = self(inputs, lengths, labels)
        return {
            "loss": float(out["loss"]),
            "accuracy": float(out["accuracy"]),
            "n_masked": int(out["n_masked"]),
            "targets": labels[labels != IGNORE_INDEX].tolist(),
        }

    def validation_epoch_end(self, outputs: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        """Over every masked token of the split: `loss`, `accuracy`, `n_masked`, and the references
        `unigram_accuracy` (always the most frequent target) and `chance_accuracy` (uniform guess)."""
        n_masked = sum(int(o["n_masked"]) for o in outputs)
        total = max(n_masked, 1)
        targets = torch.tensor([t for o in outputs for t in o["targets"]], dtype=torch.long)
        n_regular = self.vocab_size - len([i for i in self.special_token_ids if i < self.vocab_size])
        return {
            "loss": sum(float(o["loss"]) * int(o["n_masked"]) for o in outputs) / total,
            "accuracy": sum(float(o["accuracy"]) * int(o["n_masked"]) for o in outputs) / total,
            "n_masked": float(n_masked),
            "unigram_accuracy": float(torch.bincount(targets).max()) / total if len(targets) else 0.0,
            "chance_accuracy": 1.0 / max(n_regular, 1),
        }

    def param_groups(self, lr: float, wd: float) -> list[dict[str, Any]]:
        """Weight decay `wd` on the weight matrices and embeddings, none on biases and LayerNorms."""
        named = list(self.named_parameters())
        return [
            {"params": [p for _, p in named if p.dim() >= 2], "lr": lr, "weight_decay": wd},
            {"params": [p for _, p in named if p.dim() < 2], "lr": lr, "weight_decay": 0.0},
        ]
