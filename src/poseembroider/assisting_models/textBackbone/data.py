"""Data of the masked-language-model pretraining: a text corpus split, tokenized, and batched by length.

Texts of a random batch differ a lot in length (our captions run from ~20 to ~240 tokens), and every padded
position costs as much as a real one in each layer: batches of texts of similar lengths
(`length_bucketed_batches`) make a pretraining step 2-3x faster than random batches of the same texts.

The Trainer draws the items of an epoch by index in a shuffled order and collates `batch_size` of them. Here
an item is a whole batch, already padded (Trainer `batch_size=1`, `collate_fn=first_item`):

- `BucketedTextStream` (training): the batches of an endless stream of passes over the corpus, each pass a
  fresh `length_bucketed_batches` (seeded by `(seed, pass)`); epoch e is the window of the stream's batches
  e * E ... (e + 1) * E - 1 (E = `batches_per_epoch`, which need not be a whole pass). An item depends only on
  (seed, epoch, index), so resuming at an epoch gives the batches an uninterrupted run would see, and
  several processes sharing the indices of an epoch see the batches one process would. The stream reads the
  current epoch from `epoch_of` (the training script points it at the Trainer's epoch counter);
- `TextBatches` (validation): fixed batches, in order.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.utils.data import Dataset

from poseembroider.datasets.collate import collate_texts
from poseembroider.text.tokenization import Tokenizer

__all__ = [
    "BucketedTextStream",
    "TextBatches",
    "epoch_plan",
    "first_item",
    "length_bucketed_batches",
    "split_corpus",
    "tokenize_corpus",
]


def split_corpus(
    corpus: Sequence[str], val_fraction: float, max_val_texts: int, seed: int
) -> tuple[list[str], list[str]]:
    """(train texts, held-out texts): a seeded shuffle, then `val_fraction` of the texts (at least 1, at most
    `max_val_texts`) held out. The global RNG is left untouched."""
    if len(corpus) < 2:
        raise ValueError(f"the corpus has {len(corpus)} texts; pretraining needs at least 2")
    order = torch.randperm(len(corpus), generator=torch.Generator().manual_seed(seed)).tolist()
    n_val = min(max_val_texts, max(1, int(round(val_fraction * len(corpus)))))
    n_val = min(n_val, len(corpus) - 1)
    return [corpus[i] for i in order[n_val:]], [corpus[i] for i in order[:n_val]]


def tokenize_corpus(texts: Sequence[str], tokenizer: Tokenizer, chunk: int = 2048) -> list[torch.Tensor]:
    """Each text tokenized once: unpadded (L_i,) int64 `[CLS] ... [SEP]`, truncated at `tokenizer.max_length`."""
    tokens: list[torch.Tensor] = []
    for start in range(0, len(texts), chunk):
        padded, lengths = tokenizer.batch(list(texts[start : start + chunk]))
        tokens.extend(row[:n].clone() for row, n in zip(padded, lengths.tolist(), strict=True))
    return tokens


def length_bucketed_batches(
    lengths: Sequence[int], batch_size: int, generator: torch.Generator, bucket_batches: int = 50
) -> list[list[int]]:
    """One pass of batches of texts of similar lengths (less padding, same sampling in expectation).

    A random permutation is cut into groups of `bucket_batches` batches; each group is sorted by length
    and cut into batches; the batch order is shuffled. The last incomplete batch of each group is dropped.
    """
    order = torch.randperm(len(lengths), generator=generator).tolist()
    batches = []
    group = batch_size * bucket_batches
    for start in range(0, len(order), group):
        chunk = sorted(order[start : start + group], key=lambda i: lengths[i])
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk) - batch_size + 1, batch_size)]
    return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]


def epoch_plan(
    steps: int, batches_per_pass: int, val_every: int | None = None, max_epochs: int = 10
) -> tuple[int, int]:
    """(epochs, batches per epoch) for about `steps` optimisation steps.

    An epoch (validation with `val_every`, and a checkpoint to resume from) is `val_every` steps when given,
    else one pass over the corpus, or `steps / max_epochs` when passes are shorter (a tiny corpus would
    otherwise save a checkpoint every few steps). `steps` is spread evenly over the epochs, so the run
    takes `epochs * batches per epoch` steps: exactly `steps` when the epochs divide it, at most
    `epochs - 1` more otherwise."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    period = val_every if val_every else max(batches_per_pass, math.ceil(steps / max_epochs))
    epochs = math.ceil(steps / max(1, min(period, steps)))
    return epochs, math.ceil(steps / epochs)


def first_item(items: list[Any]) -> Any:
    """Collate function of datasets whose items are already batches (Trainer `batch_size=1`)."""
    return items[0]


def _padded_batch(tokens: Sequence[torch.Tensor], indices: Sequence[int], pad_token_id: int) -> dict[str, torch.Tensor]:
    return collate_texts([{"texts_tokens": tokens[i], "texts_lengths": len(tokens[i])} for i in indices], pad_token_id)


class TextBatches(Dataset):
    """Fixed batches of tokenized texts: item k = `collate_texts` of the texts of `batches[k]`, i.e.
    {"texts_tokens": (B, L) padded to the batch's longest text, "texts_lengths": (B,)}."""

    def __init__(self, tokens: Sequence[torch.Tensor], batches: Sequence[Sequence[int]], pad_token_id: int = 0):
        self.tokens = list(tokens)
        self.batches = [list(b) for b in batches]
        self.pad_token_id = pad_token_id

    @classmethod
    def in_order(cls, tokens: Sequence[torch.Tensor], batch_size: int, pad_token_id: int = 0) -> TextBatches:
        """Consecutive texts, `batch_size` at a time (the last batch may be smaller)."""
        starts = range(0, len(tokens), batch_size)
        return cls(tokens, [range(i, min(i + batch_size, len(tokens))) for i in starts], pad_token_id)

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return _padded_batch(self.tokens, self.batches[index], self.pad_token_id)


class BucketedTextStream(Dataset):
    """Training batches: epoch windows over a seeded stream of length-bucketed passes (module docstring).

    Item k of epoch e = batch e * `batches_per_epoch` (default: one pass) + k of the stream, padded like
    `TextBatches`; the epoch is read from `epoch_of()` (None: epoch 0)."""

    def __init__(
        self,
        tokens: Sequence[torch.Tensor],
        batch_size: int,
        batches_per_epoch: int | None = None,
        seed: int = 0,
        pad_token_id: int = 0,
        bucket_batches: int = 50,
    ):
        if len(tokens) < batch_size:
            raise ValueError(f"{len(tokens)} training texts are fewer than one batch of {batch_size}")
        self.tokens = list(tokens)
        self.lengths = [len(t) for t in self.tokens]
        self.batch_size, self.bucket_batches = batch_size, bucket_batches
        self.seed, self.pad_token_id = seed, pad_token_id
        self.batches_per_epoch = batches_per_epoch or self.batches_per_pass
        self.epoch_of: Callable[[], int] | None = None
        self._passes: dict[int, list[list[int]]] = {}

    @property
    def batches_per_pass(self) -> int:
        """Batches in one pass over the corpus (the same for every pass)."""
        group = self.batch_size * self.bucket_batches
        full, rest = divmod(len(self.lengths), group)
        return full * self.bucket_batches + rest // self.batch_size

    def pass_batches(self, index: int) -> list[list[int]]:
        """The batches (text indices) of pass `index` of the stream, drawn with the generator (seed, index)."""
        if index not in self._passes:
            # the shuffled items of an epoch fall in the few passes its window overlaps: keep those
            keep = math.ceil(self.batches_per_epoch / self.batches_per_pass) + 1
            while len(self._passes) >= keep:
                del self._passes[next(iter(self._passes))]
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
            self._passes[index] = length_bucketed_batches(self.lengths, self.batch_size, generator, self.bucket_batches)
        return self._passes[index]

    def __len__(self) -> int:
        return self.batches_per_epoch

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= index < self.batches_per_epoch:
            raise IndexError(f"batch {index} of an epoch of {self.batches_per_epoch}")
        epoch = self.epoch_of() if self.epoch_of is not None else 0
        pass_index, offset = divmod(epoch * self.batches_per_epoch + index, self.batches_per_pass)
        return _padded_batch(self.tokens, self.pass_batches(pass_index)[offset], self.pad_token_id)
