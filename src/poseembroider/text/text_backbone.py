"""The frozen text backbone of the PoseText text branch: DistilBERT token features, by name.

- `distilbertUncased`, from `config.TRANSFORMER_CACHE_DIR`: the real distilbert-base-uncased (6 layers,
  dim 768, 66 M parameters), as the original;
- `distilbertSynth`, from `config.MODELS_ROOT / "distilbert-synth"` (offline world): a small DistilBERT
  (`TextBackboneConfig`, `TEXT_BACKBONE_PRESETS`) pretrained by masked-language modelling on our
  caption + instruction corpus.

Both folders have the same layout, the one of the Hugging Face distilbert-base-uncased snapshot: a
`DistilBertForMaskedLM` checkpoint (`config.json` + `model.safetensors`) with its tokenizer files beside it
(`tokenizer.json`, `tokenizer_config.json`, `vocab.txt`). The backbone is the `DistilBertModel` inside
(the MLM head is dropped at load), read with `local_files_only=True` from safetensors only (no pickle),
then frozen: no parameter requires a gradient and it stays in eval mode even when its parent module is
put in training mode, so its features are a deterministic function of the tokens.

Offline pretraining: `MaskedLanguageModel` follows the Trainer contract (`training_step(batch) ->
{"loss": ...}`, `validation_step(batch) -> dict`, `save_pretrained` / `from_pretrained`); batches are
`{"texts_tokens": (B, L) int64, "texts_lengths": (B,) int64}` as the datasets give them
(`collate_texts`). `pretrain_text_backbone` is the stand-alone loop (AdamW, warm-up + linear decay,
tqdm) used by `poseembroider text pretrain-backbone`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from poseembroider.atomic_io import atomic_files_into, write_json_atomic
from poseembroider.text.tokenization import (
    TextModelNotFoundError,
    Tokenizer,
    load_tokenizer,
    quiet_transformers,
    text_model_folder,
)

__all__ = [
    "MaskedLanguageModel",
    "PretrainingReport",
    "TEXT_BACKBONE_PRESETS",
    "TextBackbone",
    "TextBackboneConfig",
    "TextCorpusDataset",
    "collate_texts",
    "count_parameters",
    "get_text_backbone",
    "length_bucketed_batches",
    "lengths_to_mask",
    "list_text_backbones",
    "load_text_backbone",
    "load_text_encoder",
    "mask_tokens",
    "pretrain_text_backbone",
    "register_text_backbone",
    "torch_threads",
]

MODEL_FILES: tuple[str, ...] = ("config.json", "model.safetensors")
IGNORE_INDEX = -100
"""Label of the positions that are not predicted (cross-entropy `ignore_index`)."""


# ---------------------------------------------------------------- configuration


@dataclass
class TextBackboneConfig:
    """Size of our offline DistilBERT. The defaults (4 layers, dim 256, 4 heads, feed-forward 1024,
    256 positions) have 3.4 M parameters with our ~650-token caption vocabulary (3.2 M in the
    transformer layers, ~0.2 M in the embeddings; the MLM head adds 0.07 M, its projection being tied
    to the token embeddings). distilbert-base-uncased is 66 M."""

    dim: int = 256  # hidden size = size of every token feature
    n_layers: int = 4  # transformer blocks
    n_heads: int = 4  # attention heads (dim must be a multiple)
    hidden_dim: int = 1024  # feed-forward width
    max_position_embeddings: int = 256  # longest text in tokens, [CLS] and [SEP] included
    dropout: float = 0.1  # residual / embedding dropout during pretraining
    attention_dropout: float = 0.1  # attention-probability dropout during pretraining

    def __post_init__(self) -> None:
        if self.dim % self.n_heads:
            raise ValueError(f"dim={self.dim} must be a multiple of n_heads={self.n_heads}")

    def distilbert_config(self, vocab_size: int, pad_token_id: int = 0):
        from transformers import DistilBertConfig

        return DistilBertConfig(
            vocab_size=vocab_size,
            dim=self.dim,
            n_layers=self.n_layers,
            n_heads=self.n_heads,
            hidden_dim=self.hidden_dim,
            max_position_embeddings=self.max_position_embeddings,
            dropout=self.dropout,
            attention_dropout=self.attention_dropout,
            pad_token_id=pad_token_id,
            architectures=["DistilBertForMaskedLM"],
        )


TEXT_BACKBONE_PRESETS: dict[str, TextBackboneConfig] = {
    "base": TextBackboneConfig(),  # 3.4 M parameters
    "small": TextBackboneConfig(dim=128, n_layers=4, n_heads=4, hidden_dim=512),  # 0.9 M
    "tiny": TextBackboneConfig(dim=64, n_layers=2, n_heads=4, hidden_dim=256),  # 0.16 M, tests
}
"""Named sizes of our offline DistilBERT (parameter counts with the ~650-token caption vocabulary)."""


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Distinct parameters (tied weights counted once)."""
    seen = {id(p): p for p in module.parameters() if p.requires_grad or not trainable_only}
    return sum(p.numel() for p in seen.values())


def lengths_to_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """(B,) lengths -> (B, max_len) bool mask, True on real tokens."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


# ---------------------------------------------------------------- loading a folder


def _check_model_folder(folder: Path, name: str | None) -> None:
    from poseembroider.text.tokenization import _missing_folder_hint

    if not folder.is_dir():
        raise TextModelNotFoundError(f"text backbone folder not found: {folder}{_missing_folder_hint(name)}")
    if not (folder / "config.json").is_file():
        raise TextModelNotFoundError(f"no config.json in text backbone folder {folder}{_missing_folder_hint(name)}")
    if not (folder / "model.safetensors").is_file():
        pickled = [f for f in ("pytorch_model.bin", "model.pt", "model.pth") if (folder / f).is_file()]
        extra = (
            f"; found only {pickled}: pickled weights are never loaded, convert them to model.safetensors"
            if pickled
            else ""
        )
        raise TextModelNotFoundError(f"no model.safetensors in text backbone folder {folder}{extra}")


def _load_distilbert(folder: Path, name: str | None, cls_name: str = "DistilBertModel"):
    """A transformers DistilBERT model (`DistilBertModel` or `DistilBertForMaskedLM`) from a local folder."""
    import transformers

    _check_model_folder(folder, name)
    model_type = json.loads((folder / "config.json").read_text()).get("model_type")
    if model_type != "distilbert":
        raise ValueError(f"{folder / 'config.json'}: model_type {model_type!r}, expected 'distilbert'")
    cls = getattr(transformers, cls_name)
    with quiet_transformers():
        try:
            model, info = cls.from_pretrained(
                str(folder), local_files_only=True, use_safetensors=True, output_loading_info=True
            )
        except (RuntimeError, OSError) as err:
            wrong = _shape_mismatches(folder, cls)
            detail = f"weights of the wrong shape for its config.json: {wrong[:8]}" if wrong else str(err)
            raise ValueError(f"{folder / 'model.safetensors'}: cannot be loaded as {cls_name}: {detail}") from None
    missing = list(info.get("missing_keys", []))
    if missing:
        raise ValueError(f"{folder / 'model.safetensors'}: missing weights for {cls_name}: {sorted(missing)[:8]}")
    mismatched = list(info.get("mismatched_keys", []))
    if mismatched:
        raise ValueError(f"{folder / 'model.safetensors'}: weights of the wrong shape: {mismatched[:8]}")
    return model


def _shape_mismatches(folder: Path, cls) -> list[str]:
    """'name: file shape vs expected shape' for the checkpoint tensors that do not fit the config."""
    from safetensors import safe_open
    from transformers import AutoConfig

    try:
        with quiet_transformers():
            expected = cls(AutoConfig.from_pretrained(str(folder), local_files_only=True)).state_dict()
        prefix = f"{cls.base_model_prefix}."
        wrong = []
        with safe_open(str(folder / "model.safetensors"), framework="pt") as f:
            for key in f.keys():
                name = key if key in expected else key.removeprefix(prefix)
                if name in expected and tuple(f.get_slice(key).get_shape()) != tuple(expected[name].shape):
                    wrong.append(f"{key}: {tuple(f.get_slice(key).get_shape())} vs {tuple(expected[name].shape)}")
        return wrong
    except Exception:  # noqa: BLE001 - only to enrich an error message
        return []


# ---------------------------------------------------------------- the frozen backbone


class TextBackbone(nn.Module):
    """Token features of a DistilBERT: (tokens (B, L), lengths (B,)) -> (B, L, hidden_size).

    The attention mask comes from `lengths`; features at padding positions are meaningless (mask them,
    e.g. with `lengths_to_mask`). Frozen (the default): parameters do not require gradients, the module
    stays in eval mode, and the forward pass runs without autograd.
    """

    def __init__(self, model, name: str = "custom", frozen: bool = True):
        super().__init__()
        self.model = model
        self.name = name
        self.hidden_size: int = int(model.config.dim)
        self.max_length: int = int(model.config.max_position_embeddings)
        self.vocab_size: int = int(model.config.vocab_size)
        self.frozen = False
        if frozen:
            self.freeze()

    def freeze(self) -> TextBackbone:
        self.frozen = True
        self.model.requires_grad_(False)
        return self.train(False)

    def train(self, mode: bool = True) -> TextBackbone:
        # a frozen backbone ignores its parent's .train(): no dropout, deterministic features
        return super().train(False if self.frozen else mode)

    @classmethod
    def from_folder(cls, folder: str | os.PathLike, name: str | None = None, frozen: bool = True) -> TextBackbone:
        folder = Path(folder)
        return cls(_load_distilbert(folder, name), name or folder.name, frozen)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if tokens.dim() != 2 or lengths.shape != tokens.shape[:1]:
            raise ValueError(
                f"tokens must be (B, L) and lengths (B,); got {tuple(tokens.shape)} and {tuple(lengths.shape)}"
            )
        if tokens.shape[1] > self.max_length:
            raise ValueError(
                f"texts of {tokens.shape[1]} tokens exceed the {self.max_length} positions of text backbone "
                f"{self.name!r}; tokenize with max_length={self.max_length}"
            )
        mask = lengths_to_mask(lengths.to(tokens.device), tokens.shape[1]).long()
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            return self.model(input_ids=tokens, attention_mask=mask).last_hidden_state

    def extra_repr(self) -> str:
        return f"name={self.name!r}, hidden_size={self.hidden_size}, frozen={self.frozen}"


# ---------------------------------------------------------------- registry

_TEXT_BACKBONES: dict[str, Callable[..., TextBackbone]] = {}


def register_text_backbone(name: str) -> Callable[[Callable[..., TextBackbone]], Callable[..., TextBackbone]]:
    """Decorator registering a factory `(folder: Path | None = None, frozen: bool = True) -> TextBackbone`."""

    def register(factory: Callable[..., TextBackbone]) -> Callable[..., TextBackbone]:
        if name in _TEXT_BACKBONES:
            raise ValueError(f"text backbone {name!r} is already registered")
        _TEXT_BACKBONES[name] = factory
        return factory

    return register


def list_text_backbones() -> list[str]:
    return sorted(_TEXT_BACKBONES)


def get_text_backbone(
    name_or_folder: str | os.PathLike, folder: str | os.PathLike | None = None, frozen: bool = True
) -> TextBackbone:
    """A registered backbone by name (optionally from another `folder`), or one loaded from a folder path."""
    key = str(name_or_folder)
    if key in _TEXT_BACKBONES:
        return _TEXT_BACKBONES[key](folder=folder, frozen=frozen)
    path = Path(name_or_folder)
    if path.is_dir():
        return TextBackbone.from_folder(path, frozen=frozen)
    raise KeyError(f"{key!r} is neither a registered text backbone ({list_text_backbones()}) nor a folder")


def load_text_backbone(name: str, folder: str | os.PathLike | None = None, frozen: bool = True) -> TextBackbone:
    folder = Path(folder) if folder is not None else text_model_folder(name)
    return TextBackbone(_load_distilbert(folder, name), name, frozen)


@register_text_backbone("distilbertUncased")
def distilbert_uncased_backbone(folder: str | os.PathLike | None = None, frozen: bool = True) -> TextBackbone:
    """The real distilbert-base-uncased from `config.TRANSFORMER_CACHE_DIR` (hidden size 768)."""
    return load_text_backbone("distilbertUncased", folder, frozen)


@register_text_backbone("distilbertSynth")
def distilbert_synth_backbone(folder: str | os.PathLike | None = None, frozen: bool = True) -> TextBackbone:
    """Our small DistilBERT pretrained on the caption corpus (hidden size `TextBackboneConfig.dim`)."""
    return load_text_backbone("distilbertSynth", folder, frozen)


def load_text_encoder(
    name_or_folder: str | os.PathLike, folder: str | os.PathLike | None = None
) -> tuple[Tokenizer, TextBackbone]:
    """The tokenizer and the frozen backbone of one text model, checked against each other; the
    tokenizer truncates to the backbone's number of positions."""
    from poseembroider.text.tokenization import get_tokenizer

    tokenizer = get_tokenizer(name_or_folder, folder=folder)
    backbone = get_text_backbone(name_or_folder, folder=folder)
    if len(tokenizer) > backbone.vocab_size:
        raise ValueError(
            f"tokenizer {tokenizer.name!r} has {len(tokenizer)} tokens but text backbone {backbone.name!r} only "
            f"{backbone.vocab_size} embeddings: they do not belong together"
        )
    tokenizer.max_length = min(tokenizer.max_length, backbone.max_length)
    return tokenizer, backbone


# ---------------------------------------------------------------- masked-language modelling


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
    """DistilBERT with its MLM head, pretrained on our corpus; the backbone is `.distilbert`.

    Follows the Trainer contract: `training_step(batch) -> {"loss", "accuracy"}` (masks drawn from the
    global RNG, which the Trainer seeds and checkpoints), `validation_step(batch) -> {"loss", "accuracy",
    "n_masked"}` (masks drawn from a generator seeded with `validation_seed` at every call, so the same
    batch is always masked the same way and validation losses compare across epochs).
    `save_pretrained(dir)` writes config.json + model.safetensors and, when the model knows its tokenizer
    (built by `from_config` or `from_pretrained`), the tokenizer files beside them: the folder is then a
    complete text model, which `from_pretrained(dir)` and `get_text_backbone(dir)` read back.
    """

    def __init__(
        self,
        mlm,
        mask_token_id: int,
        special_token_ids: Sequence[int],
        mask_probability: float = 0.15,
        validation_seed: int = 0,
        tokenizer: Tokenizer | None = None,
    ):
        super().__init__()
        self.mlm = mlm
        self.tokenizer = tokenizer
        self.mask_token_id = int(mask_token_id)
        self.special_token_ids = sorted(set(int(i) for i in special_token_ids))
        self.mask_probability = float(mask_probability)
        self.validation_seed = int(validation_seed)

    @classmethod
    def from_config(cls, config: TextBackboneConfig, tokenizer: Tokenizer, **kwargs) -> MaskedLanguageModel:
        from transformers import DistilBertForMaskedLM

        if tokenizer.max_length > config.max_position_embeddings:
            raise ValueError(
                f"tokenizer {tokenizer.name!r} truncates at {tokenizer.max_length} tokens but the backbone has "
                f"{config.max_position_embeddings} positions"
            )
        mlm = DistilBertForMaskedLM(config.distilbert_config(len(tokenizer), tokenizer.pad_token_id))
        return cls(mlm, tokenizer.mask_token_id, tokenizer.special_token_ids, tokenizer=tokenizer, **kwargs)

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike, **kwargs) -> MaskedLanguageModel:
        folder = Path(folder)
        tokenizer = load_tokenizer(folder)
        mlm = _load_distilbert(folder, None, "DistilBertForMaskedLM")
        return cls(mlm, tokenizer.mask_token_id, tokenizer.special_token_ids, tokenizer=tokenizer, **kwargs)

    def save_pretrained(self, folder: str | os.PathLike) -> Path:
        folder = Path(folder)
        with quiet_transformers():
            self.mlm.save_pretrained(str(folder), safe_serialization=True)
        if self.tokenizer is not None:
            self.tokenizer.save(folder)
        return folder

    @property
    def distilbert(self):
        return self.mlm.distilbert

    @property
    def vocab_size(self) -> int:
        return int(self.mlm.config.vocab_size)

    def backbone(self, frozen: bool = True, name: str = "distilbertSynth") -> TextBackbone:
        return TextBackbone(self.mlm.distilbert, name, frozen)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """MLM loss and accuracy over the labelled positions (logits computed only there)."""
        mask = lengths_to_mask(lengths, tokens.shape[1]).long()
        hidden = self.mlm.distilbert(input_ids=tokens, attention_mask=mask).last_hidden_state
        where = labels != IGNORE_INDEX
        h = self.mlm.vocab_layer_norm(self.mlm.activation(self.mlm.vocab_transform(hidden[where])))
        logits = self.mlm.vocab_projector(h)  # (n_masked, V)
        targets = labels[where]
        loss = F.cross_entropy(logits, targets)
        accuracy = (logits.argmax(dim=-1) == targets).float().mean()
        return {"loss": loss, "accuracy": accuracy, "n_masked": where.sum()}

    def _batch(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        tokens, lengths = batch["texts_tokens"], batch["texts_lengths"]
        lengths = torch.as_tensor(lengths, device=tokens.device)
        return tokens[:, : int(lengths.max())], lengths

    def training_step(self, batch: dict) -> dict[str, torch.Tensor]:
        tokens, lengths = self._batch(batch)
        inputs, labels = mask_tokens(
            tokens, lengths, self.mask_token_id, self.vocab_size, self.special_token_ids, self.mask_probability
        )
        out = self(inputs, lengths, labels)
        return {"loss": out["loss"], "accuracy": out["accuracy"].detach()}

    @torch.no_grad()
    def validation_step(self, batch: dict) -> dict[str, float]:
        tokens, lengths = self._batch(batch)
        generator = torch.Generator().manual_seed(self.validation_seed)
        inputs, labels = mask_tokens(
            tokens,
            lengths,
            self.mask_token_id,
            self.vocab_size,
            self.special_token_ids,
            self.mask_probability,
            generator,
        )
        out = self(inputs, lengths, labels)
        return {"loss": float(out["loss"]), "accuracy": float(out["accuracy"]), "n_masked": int(out["n_masked"])}


# ---------------------------------------------------------------- data


class TextCorpusDataset(torch.utils.data.Dataset):
    """Texts tokenized once: item i = {"texts_tokens": (L_i,), "texts_lengths": L_i}."""

    def __init__(self, texts: Sequence[str], tokenizer: Tokenizer, chunk: int = 2048):
        self.tokens: list[torch.Tensor] = []
        for start in range(0, len(texts), chunk):
            tokens, lengths = tokenizer.batch(list(texts[start : start + chunk]))
            self.tokens.extend(row[:n].clone() for row, n in zip(tokens, lengths.tolist(), strict=True))
        self.pad_token_id = tokenizer.pad_token_id

    def __len__(self) -> int:
        return len(self.tokens)

    def __getitem__(self, index: int) -> dict:
        return {"texts_tokens": self.tokens[index], "texts_lengths": len(self.tokens[index])}


def length_bucketed_batches(
    lengths: Sequence[int], batch_size: int, generator: torch.Generator, bucket_batches: int = 50
) -> list[list[int]]:
    """One epoch of batches of texts of similar lengths (less padding, same sampling in expectation).

    A random permutation is cut into groups of `bucket_batches` batches; each group is sorted by length
    and cut into batches; the batch order is shuffled. The last incomplete batch is dropped.
    """
    order = torch.randperm(len(lengths), generator=generator).tolist()
    batches = []
    group = batch_size * bucket_batches
    for start in range(0, len(order), group):
        chunk = sorted(order[start : start + group], key=lambda i: lengths[i])
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk) - batch_size + 1, batch_size)]
    return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]


def collate_texts(items: Sequence[dict], pad_token_id: int = 0) -> dict[str, torch.Tensor]:
    """{"texts_tokens": (B, L) padded with `pad_token_id`, "texts_lengths": (B,)}; L = longest text."""
    lengths = torch.tensor([int(item["texts_lengths"]) for item in items], dtype=torch.long)
    tokens = torch.full((len(items), int(lengths.max())), pad_token_id, dtype=torch.long)
    for row, item in enumerate(items):
        tokens[row, : lengths[row]] = item["texts_tokens"][: lengths[row]]
    return {"texts_tokens": tokens, "texts_lengths": lengths}


# ---------------------------------------------------------------- stand-alone pretraining


@contextlib.contextmanager
def torch_threads(num_threads: int | None) -> Iterator[None]:
    """Run with `num_threads` torch CPU threads (None: unchanged), restoring the previous number."""
    before = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass
class PretrainingReport:
    """What `pretrain_text_backbone` measured (also written to `pretraining_metrics.json`)."""

    steps: int
    batch_size: int
    n_train_texts: int
    n_val_texts: int
    vocab_size: int
    n_parameters: int  # MLM model (backbone + head), tied weights once
    n_backbone_parameters: int
    config: dict
    train_time_s: float
    train_texts_per_s: float
    initial_val_loss: float
    initial_val_accuracy: float
    val_loss: float
    val_accuracy: float
    chance_accuracy: float  # 1 / number of non-special tokens
    unigram_accuracy: float  # always predicting the most frequent masked token
    history: list[dict] = field(default_factory=list)


def _evaluate(model: MaskedLanguageModel, batches: list[dict], device: torch.device) -> dict[str, float]:
    model.eval()
    total_loss = total_correct = total = 0.0
    for batch in batches:
        out = model.validation_step({k: v.to(device) for k, v in batch.items()})
        total_loss += out["loss"] * out["n_masked"]
        total_correct += out["accuracy"] * out["n_masked"]
        total += out["n_masked"]
    model.train()
    return {"loss": total_loss / max(total, 1), "accuracy": total_correct / max(total, 1)}


def _unigram_accuracy(model: MaskedLanguageModel, batches: list[dict]) -> float:
    """Accuracy of always answering the most frequent token among the validation targets."""
    targets = []
    for batch in batches:
        generator = torch.Generator().manual_seed(model.validation_seed)
        tokens, lengths = model._batch(batch)
        _, labels = mask_tokens(
            tokens,
            lengths,
            model.mask_token_id,
            model.vocab_size,
            model.special_token_ids,
            model.mask_probability,
            generator,
        )
        targets.append(labels[labels != IGNORE_INDEX])
    flat = torch.cat(targets)
    return float(torch.bincount(flat).max()) / max(len(flat), 1)


def pretrain_text_backbone(
    corpus: Sequence[str],
    tokenizer: Tokenizer,
    out_dir: str | os.PathLike,
    steps: int = 2000,
    batch_size: int = 32,
    seed: int = 0,
    config: TextBackboneConfig | None = None,
    lr: float = 5e-4,
    weight_decay: float = 0.01,
    warmup_fraction: float = 0.05,
    val_fraction: float = 0.05,
    max_val_texts: int = 512,
    val_every: int | None = None,
    device: str | torch.device = "cpu",
    progress: bool = True,
    num_threads: int | None = None,
) -> PretrainingReport:
    """Pretrain our small DistilBERT by masked-language modelling on `corpus`; save it with its tokenizer.

    The corpus is shuffled (seeded) and split into train and held-out texts (`val_fraction`, at most
    `max_val_texts`). Batches group texts of similar lengths (`length_bucketed_batches`). AdamW with
    linear warm-up then linear decay to 0 (stepped every step), gradient clipping at 1. The held-out
    MLM loss and masked-token accuracy are measured before training, every `val_every` steps and at
    the end. `out_dir` receives config.json + model.safetensors (the
    `DistilBertForMaskedLM`), the tokenizer files and `pretraining_metrics.json`, written to a
    temporary folder first. Deterministic for a seed on one device (the global RNG is restored after).
    `num_threads` sets torch's CPU threads for the run (restored after): on a machine whose cores are
    shared with other jobs, 1 thread can be several times faster than a contended 2-thread team.
    """
    from tqdm.auto import tqdm

    config = config or TextBackboneConfig()
    if len(corpus) < 2:
        raise ValueError(f"the corpus has {len(corpus)} texts; pretraining needs at least 2")
    if tokenizer.max_length > config.max_position_embeddings:
        tokenizer = Tokenizer(tokenizer.hf, tokenizer.name, config.max_position_embeddings)
    out_dir = Path(out_dir)
    device = torch.device(device)
    with torch.random.fork_rng(devices=[]), torch_threads(num_threads):
        torch.manual_seed(seed)
        order = torch.randperm(len(corpus)).tolist()
        n_val = min(max_val_texts, max(1, int(round(val_fraction * len(corpus)))))
        val_texts = [corpus[i] for i in order[:n_val]]
        train_set = TextCorpusDataset([corpus[i] for i in order[n_val:]], tokenizer)
        val_set = TextCorpusDataset(val_texts, tokenizer)
        collate = lambda items: collate_texts(items, tokenizer.pad_token_id)  # noqa: E731
        val_batches = [
            collate([val_set[j] for j in range(i, min(i + 64, len(val_set)))]) for i in range(0, len(val_set), 64)
        ]

        model = MaskedLanguageModel.from_config(config, tokenizer, validation_seed=seed).to(device)
        model.train()
        decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
        no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
        optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=lr
        )
        warmup = max(1, int(warmup_fraction * steps))
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / max(1, steps - warmup)))
        )
        if len(train_set) < batch_size:
            raise ValueError(f"{len(train_set)} training texts are fewer than one batch of {batch_size}")
        loader_generator = torch.Generator().manual_seed(seed)
        train_lengths = [len(t) for t in train_set.tokens]

        initial = _evaluate(model, val_batches, device)
        history = [{"step": 0, **{f"val_{k}": v for k, v in initial.items()}}]
        bar = tqdm(total=steps, desc="MLM pretraining", disable=not progress, dynamic_ncols=True)
        step, seen, start = 0, 0, time.perf_counter()
        running = None
        while step < steps:
            for indices in length_bucketed_batches(train_lengths, batch_size, loader_generator):
                batch = {k: v.to(device) for k, v in collate([train_set[i] for i in indices]).items()}
                out = model.training_step(batch)
                optimizer.zero_grad(set_to_none=True)
                out["loss"].backward()
                nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                schedule.step()
                step += 1
                seen += batch["texts_tokens"].shape[0]
                loss = out["loss"].item()
                running = loss if running is None else 0.95 * running + 0.05 * loss
                bar.update(1)
                bar.set_postfix(loss=f"{running:.3f}", acc=f"{float(out['accuracy']):.2f}")
                if val_every and step % val_every == 0 and step < steps:
                    history.append(
                        {"step": step, **{f"val_{k}": v for k, v in _evaluate(model, val_batches, device).items()}}
                    )
                if step >= steps:
                    break
        bar.close()
        train_time = time.perf_counter() - start
        final = _evaluate(model, val_batches, device)
        history.append({"step": step, **{f"val_{k}": v for k, v in final.items()}})
        model.eval()

    n_regular = len(tokenizer) - len(tokenizer.special_token_ids)
    report = PretrainingReport(
        steps=steps,
        batch_size=batch_size,
        n_train_texts=len(train_set),
        n_val_texts=len(val_set),
        vocab_size=len(tokenizer),
        n_parameters=count_parameters(model),
        n_backbone_parameters=count_parameters(model.distilbert),
        config=asdict(config),
        train_time_s=round(train_time, 2),
        train_texts_per_s=round(seen / max(train_time, 1e-9), 1),
        initial_val_loss=initial["loss"],
        initial_val_accuracy=initial["accuracy"],
        val_loss=final["loss"],
        val_accuracy=final["accuracy"],
        chance_accuracy=1.0 / max(n_regular, 1),
        unigram_accuracy=_unigram_accuracy(model, val_batches),
        history=history,
    )
    with atomic_files_into(out_dir) as tmp:
        model.to("cpu").save_pretrained(tmp)  # weights and tokenizer
        write_json_atomic(tmp / "pretraining_metrics.json", asdict(report))
    if not math.isfinite(report.val_loss):
        raise RuntimeError(f"MLM pretraining diverged (held-out loss {report.val_loss}); model left in {out_dir}")
    return report
