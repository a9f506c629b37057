"""Tokenizers of the text encoders, by name, loaded from local folders only.

Two registered names (`list_tokenizers()`), each the tokenizer of the text backbone of the same name
(`poseembroider.assisting_models.textBackbone`), read from that backbone's folder (`text_model_folder(name)`):

- `distilbertUncased`, from `config.TRANSFORMER_CACHE_DIR`: the real distilbert-base-uncased WordPiece
  tokenizer (30,522 tokens), as the original;
- `distilbertSynth`, from `config.MODELS_ROOT / "distilbert-synth"` (offline world): our WordPiece
  tokenizer trained on the caption + instruction corpus (`train_wordpiece_tokenizer`).

Both are BERT-style: lower-casing `BertNormalizer`, `BertPreTokenizer`, WordPiece with `##` continuation,
[PAD] = 0, texts encoded as `[CLS] ... [SEP]` (the original's BOS = [CLS], EOS = [SEP]), right-truncated to
`max_length`. Any folder holding tokenizer files can also be loaded (`load_tokenizer(folder)`).

Nothing is downloaded: folders are read with `local_files_only=True`, and a missing folder is an error
naming it. Every load checks the vocabulary size: transformers 5 silently builds a 5-token vocabulary
from `BertTokenizer(vocab_file=...)` (the `vocab_file` pitfall of environment.md §3), which would turn
every word into [UNK].

The corpus builder and the tokenized-cache writer live in `datasets/synthetic/caption_corpus.py`: they use
the pose sampler and the dataset cache format, which sit above this module in the import order.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import torch

from poseembroider import config
from poseembroider.atomic_io import atomic_files_into, write_json_atomic
from poseembroider.registry import Registry
from poseembroider.text.wordpiece_vocab import learn_wordpiece_vocab

__all__ = [
    "SPECIAL_TOKENS",
    "TextModelNotFoundError",
    "Tokenizer",
    "get_tokenizer",
    "list_tokenizers",
    "load_tokenizer",
    "register_tokenizer",
    "text_model_folder",
    "train_wordpiece_tokenizer",
]

SPECIAL_TOKENS: tuple[str, ...] = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
"""Special tokens of our WordPiece vocabulary, ids 0..4 in this order ([PAD] = 0 as in BERT)."""

TOKENIZER_FILES: tuple[str, ...] = ("tokenizer.json", "tokenizer_config.json", "vocab.txt")
"""Files any one of which makes a folder a tokenizer folder."""

DEFAULT_MAX_LENGTH = 256
"""Truncation length of our tokenizer: our captions and instructions are 60-200 WordPiece tokens long."""

_BASIC_ALPHABET = list("abcdefghijklmnopqrstuvwxyz0123456789.,;:!?'\"()-/%&+*=<>[]°")
"""Characters always given a token, so held-out (e.g. human-written) ASCII text never becomes [UNK]."""


class TextModelNotFoundError(FileNotFoundError):
    """A text model (tokenizer or backbone) folder that is missing or lacks the needed files."""


# ---------------------------------------------------------------- folders of the named text models


def _distilbert_uncased_folder() -> Path:
    return Path(config.TRANSFORMER_CACHE_DIR)


def _distilbert_synth_folder() -> Path:
    return Path(config.MODELS_ROOT) / "distilbert-synth"


_TEXT_MODEL_FOLDERS: dict[str, tuple[Callable[[], Path], str]] = {
    "distilbertUncased": (
        _distilbert_uncased_folder,
        "put the distilbert-base-uncased files (config.json, model.safetensors, tokenizer.json or vocab.txt) "
        "there, or point POSEEMBROIDER_TRANSFORMER_CACHE_DIR at them",
    ),
    "distilbertSynth": (
        _distilbert_synth_folder,
        "make it with `poseembroider text train-tokenizer --out DIR` then "
        "`poseembroider text pretrain-backbone --tokenizer DIR --out <that folder>`",
    ),
}


def text_model_folder(name: str) -> Path:
    """The folder of a named text model (tokenizer + backbone), read from `config` at call time."""
    try:
        return _TEXT_MODEL_FOLDERS[name][0]()
    except KeyError:
        raise KeyError(f"unknown text model {name!r}; known: {sorted(_TEXT_MODEL_FOLDERS)}") from None


def _missing_folder_hint(name: str | None) -> str:
    return f" ({_TEXT_MODEL_FOLDERS[name][1]})" if name in _TEXT_MODEL_FOLDERS else ""


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' load reports and progress bars for the duration; restores the settings."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars_off = hf_logging.is_progress_bar_enabled() is False
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if not bars_off:
            hf_logging.enable_progress_bar()


# ---------------------------------------------------------------- the wrapper


class Tokenizer:
    """Text -> token ids, with the interface of the original `Tokenizer` (text2pose).

    Wraps a transformers fast tokenizer (`hf`). Encoded texts are `[CLS] tokens [SEP]`, right-truncated to
    `max_length` tokens (the [SEP] is kept). Padding uses `pad_token_id` (0 for both registered tokenizers).
    """

    def __init__(self, hf_tokenizer, name: str, max_length: int | None = None):
        self.hf = hf_tokenizer
        self.name = name
        model_max = int(getattr(hf_tokenizer, "model_max_length", 0) or 0)
        if not 0 < model_max <= 100_000:  # unset: transformers reports a huge number
            model_max = 512
        self.max_length = model_max if max_length is None else int(max_length)
        for role in ("pad", "cls", "sep", "mask", "unk"):
            if getattr(hf_tokenizer, f"{role}_token_id") is None:
                raise ValueError(f"tokenizer {name!r} has no [{role.upper()}] token")

    # ---- ids
    @property
    def pad_token_id(self) -> int:
        return int(self.hf.pad_token_id)

    @property
    def bos_token_id(self) -> int:
        """[CLS], the first token of every encoded text."""
        return int(self.hf.cls_token_id)

    @property
    def eos_token_id(self) -> int:
        """[SEP], the last token of every encoded text."""
        return int(self.hf.sep_token_id)

    @property
    def mask_token_id(self) -> int:
        return int(self.hf.mask_token_id)

    @property
    def unk_token_id(self) -> int:
        return int(self.hf.unk_token_id)

    @property
    def special_token_ids(self) -> list[int]:
        return sorted(set(int(i) for i in self.hf.all_special_ids))

    @property
    def vocab_size(self) -> int:
        """Number of token ids, added tokens included (`len(hf)`)."""
        return len(self.hf)

    def __len__(self) -> int:
        return self.vocab_size

    # ---- encoding
    def __call__(self, text: str) -> torch.Tensor:
        """(L,) int64 ids of `[CLS] text [SEP]`, L <= max_length."""
        ids = self.hf(text, truncation=True, max_length=self.max_length)["input_ids"]
        return torch.tensor(ids, dtype=torch.long)

    def batch(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokens (B, L) right-padded with `pad_token_id`, L = longest text, and lengths (B,) int64."""
        if isinstance(texts, str):
            raise TypeError("Tokenizer.batch takes a list of texts; call the tokenizer itself for one text")
        if len(texts) == 0:
            return torch.zeros(0, 0, dtype=torch.long), torch.zeros(0, dtype=torch.long)
        enc = self.hf(list(texts), truncation=True, max_length=self.max_length, padding="longest", return_tensors="pt")
        tokens = enc["input_ids"].long()
        lengths = enc["attention_mask"].sum(dim=1).long()
        return tokens, lengths

    def decode(self, tokens: torch.Tensor | Sequence[int], skip_special_tokens: bool = True) -> str:
        """Text of one (L,) id sequence; padding and special tokens dropped by default."""
        ids = tokens.tolist() if isinstance(tokens, torch.Tensor) else list(tokens)
        return self.hf.decode(ids, skip_special_tokens=skip_special_tokens)

    def decode_batch(self, tokens: torch.Tensor, lengths: torch.Tensor | None = None) -> list[str]:
        """Texts of (B, L) ids, each cut at its length when `lengths` (B,) is given."""
        rows = tokens.tolist()
        if lengths is not None:
            rows = [row[: int(n)] for row, n in zip(rows, lengths.tolist(), strict=True)]
        return [self.hf.decode(row, skip_special_tokens=True) for row in rows]

    def normalize(self, text: str) -> str:
        """The text as the tokenizer reads it back: normalised (lower case, accents as configured), split
        into words and punctuation, joined by the tokenizer's own decoder. For a text without [UNK] and
        shorter than `max_length`, `decode(tokenizer(text)) == normalize(text)`."""
        backend = self.hf.backend_tokenizer
        if backend.normalizer is not None:
            text = backend.normalizer.normalize_str(text)
        words = [w for w, _ in backend.pre_tokenizer.pre_tokenize_str(text)] if backend.pre_tokenizer else [text]
        return backend.decoder.decode(words) if backend.decoder is not None else " ".join(words)

    def tokenize(self, text: str) -> list[str]:
        """Token strings of `text` (no [CLS] / [SEP])."""
        return self.hf.tokenize(text)

    # ---- files
    def save(self, folder: str | os.PathLike) -> Path:
        """Write tokenizer.json, tokenizer_config.json and vocab.txt (ids in line order) into `folder`."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.hf.model_max_length = self.max_length
        self.hf.save_pretrained(str(folder))
        _write_vocab_txt(self.hf, folder / "vocab.txt")
        return folder

    def __repr__(self) -> str:
        return f"Tokenizer(name={self.name!r}, vocab_size={self.vocab_size}, max_length={self.max_length})"


def _write_vocab_txt(hf_tokenizer, path: Path) -> None:
    vocab = hf_tokenizer.get_vocab()
    by_id = sorted(vocab.items(), key=lambda item: item[1])
    if [i for _, i in by_id] != list(range(len(by_id))):
        raise ValueError(f"cannot write {path}: token ids are not contiguous from 0")
    path.write_text("".join(token + "\n" for token, _ in by_id), encoding="utf-8")


def _check_vocabulary(hf_tokenizer, folder: Path) -> None:
    """Refuse the 5-token vocabulary of the `vocab_file` pitfall, and a vocab.txt that disagrees."""
    size = len(hf_tokenizer)
    if size <= len(SPECIAL_TOKENS):
        raise ValueError(
            f"tokenizer in {folder} loaded with only {size} tokens (special tokens only): its vocabulary was "
            f"not read (the transformers `vocab_file=` pitfall); check tokenizer.json / vocab.txt there"
        )
    vocab_txt = folder / "vocab.txt"
    if vocab_txt.is_file():
        lines = sum(1 for line in vocab_txt.read_text(encoding="utf-8").splitlines() if line)
        if lines > size:
            raise ValueError(f"tokenizer in {folder} has {size} tokens but {vocab_txt} lists {lines}")


def _folder_name(folder: Path) -> str:
    """A cache-file-safe name for a tokenizer loaded from an arbitrary folder."""
    return re.sub(r"[^0-9A-Za-z]", "", folder.name) or "custom"


def load_tokenizer(folder: str | os.PathLike, name: str | None = None, max_length: int | None = None) -> Tokenizer:
    """A `Tokenizer` from a local folder (tokenizer.json / tokenizer_config.json, or only vocab.txt).

    Raises `TextModelNotFoundError` naming the folder when it or its tokenizer files are missing, and
    `ValueError` when the vocabulary was not read (see module docstring).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise TextModelNotFoundError(f"tokenizer folder not found: {folder}{_missing_folder_hint(name)}")
    present = [f for f in TOKENIZER_FILES if (folder / f).is_file()]
    if not present:
        raise TextModelNotFoundError(
            f"no tokenizer files ({', '.join(TOKENIZER_FILES)}) in {folder}{_missing_folder_hint(name)}"
        )
    with quiet_transformers():
        if "tokenizer.json" in present or "tokenizer_config.json" in present:
            from transformers import AutoTokenizer

            hf = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        else:
            from transformers import BertTokenizer

            # vocab=, not vocab_file= (the latter is silently ignored in transformers 5)
            hf = BertTokenizer(vocab=str(folder / "vocab.txt"), do_lower_case=True)
    if not getattr(hf, "is_fast", False):
        raise ValueError(f"tokenizer in {folder} has no `tokenizers` backend (slow tokenizers are not supported)")
    _check_vocabulary(hf, folder)
    return Tokenizer(hf, name or _folder_name(folder), max_length)


# ---------------------------------------------------------------- registry

TOKENIZERS: Registry[Callable[..., Tokenizer]] = Registry("tokenizer")
"""Tokenizer factories `(folder: Path | None = None, max_length: int | None = None) -> Tokenizer` by name."""
register_tokenizer = TOKENIZERS.register


def list_tokenizers() -> list[str]:
    return TOKENIZERS.names()


def get_tokenizer(
    name_or_folder: str | os.PathLike, folder: str | os.PathLike | None = None, max_length: int | None = None
) -> Tokenizer:
    """A registered tokenizer by name (optionally from another `folder`), or one loaded from a folder path."""
    return TOKENIZERS.build(
        name_or_folder, lambda path: load_tokenizer(path, max_length=max_length), folder=folder, max_length=max_length
    )


@register_tokenizer("distilbertUncased")
def distilbert_uncased_tokenizer(folder: str | os.PathLike | None = None, max_length: int | None = None) -> Tokenizer:
    """The real distilbert-base-uncased tokenizer, from `config.TRANSFORMER_CACHE_DIR` (max 512 tokens)."""
    return load_tokenizer(folder or text_model_folder("distilbertUncased"), "distilbertUncased", max_length)


@register_tokenizer("distilbertSynth")
def distilbert_synth_tokenizer(folder: str | os.PathLike | None = None, max_length: int | None = None) -> Tokenizer:
    """Our WordPiece tokenizer trained on the synthetic caption corpus, from the distilbertSynth folder."""
    return load_tokenizer(folder or text_model_folder("distilbertSynth"), "distilbertSynth", max_length)


# ---------------------------------------------------------------- training our own


def build_wordpiece_tokenizer(
    texts: Iterable[str], vocab_size: int = 3000, min_frequency: int = 2, max_length: int = DEFAULT_MAX_LENGTH
):
    """Train a BERT-style WordPiece tokenizer on `texts`; returns the transformers fast tokenizer.

    The vocabulary has the special tokens at ids 0..4 (`SPECIAL_TOKENS`), every character of the corpus
    and of a basic ASCII alphabet, and every alphanumeric character as a `##` continuation too (so unseen
    words split into pieces instead of becoming [UNK]), then the most frequent merged word pieces up to
    `vocab_size` (fewer when no more pair occurs `min_frequency` times).

    The vocabulary is learnt by `wordpiece_vocab.learn_wordpiece_vocab`, not by `tokenizers`'
    WordPieceTrainer, which gives another vocabulary in every process (see that module): here it is a
    function of (texts, vocab_size, min_frequency) only. The words it counts are those of the tokenizer's
    own normalizer and pre-tokenizer, so they are the words the tokenizer later splits.
    """
    from tokenizers import Tokenizer as BackendTokenizer
    from tokenizers import decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    normalizer = normalizers.BertNormalizer(lowercase=True, clean_text=True, handle_chinese_chars=True)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    word_counts: Counter[str] = Counter()
    for text in texts:
        word_counts.update(w for w, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))
    # special tokens first: ids 0..4, as SPECIAL_TOKENS lists them (learn_wordpiece_vocab keeps their order)
    vocab = learn_wordpiece_vocab(word_counts, vocab_size, min_frequency, SPECIAL_TOKENS, _BASIC_ALPHABET, "##")
    ids = {tok: i for i, tok in enumerate(vocab)}
    backend = BackendTokenizer(models.WordPiece(vocab=ids, unk_token="[UNK]", continuing_subword_prefix="##"))
    backend.normalizer = normalizer
    backend.pre_tokenizer = pre_tokenizer
    backend.decoder = decoders.WordPiece(prefix="##")
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", ids["[CLS]"]), ("[SEP]", ids["[SEP]"])],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=max_length,
        padding_side="right",
        truncation_side="right",
    )


def train_wordpiece_tokenizer(
    texts: Iterable[str],
    vocab_size: int,
    out_dir: str | os.PathLike,
    min_frequency: int = 2,
    max_length: int = DEFAULT_MAX_LENGTH,
    name: str = "distilbertSynth",
) -> Tokenizer:
    """Train our WordPiece tokenizer, save it into `out_dir` and return it *reloaded from that folder*.

    The folder is written atomically (a temporary sibling, renamed when complete; an existing `out_dir`
    keeps its other files, e.g. a backbone's weights). Reloading checks the vocabulary survived saving.
    """
    out_dir = Path(out_dir)
    hf = build_wordpiece_tokenizer(texts, vocab_size, min_frequency, max_length)
    trained_size = len(hf)
    with atomic_files_into(out_dir) as tmp:
        Tokenizer(hf, name, max_length).save(tmp)
        training = {
            "requested_vocab_size": vocab_size,
            "vocab_size": trained_size,
            "min_frequency": min_frequency,
            "max_length": max_length,
        }
        write_json_atomic(tmp / "wordpiece_training.json", training)
    tokenizer = load_tokenizer(out_dir, name, max_length)
    if len(tokenizer) != trained_size:
        raise RuntimeError(f"tokenizer saved in {out_dir} reloads with {len(tokenizer)} tokens, trained {trained_size}")
    return tokenizer
