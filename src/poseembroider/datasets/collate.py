"""Batching of tokenized texts: one padding rule for every loader of the toolkit.

Datasets give each text unpadded (`texts_tokens` (L_i,) int64, `texts_lengths` L_i, as the tokenized caches
store them); a batch pads them on the right to its longest text, not to the tokenizer's `max_length`, since
every padded position costs as much as a real one in each transformer layer while the attention mask
(`texts_lengths`) keeps it out of the result.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

__all__ = ["collate_texts"]


def collate_texts(items: Sequence[Mapping[str, Any]], pad_token_id: int = 0) -> dict[str, torch.Tensor]:
    """Items holding `texts_tokens` (L_i,) and `texts_lengths` L_i -> one batch.

    Returns `{"texts_tokens": (B, L) int64 right-padded with `pad_token_id`, "texts_lengths": (B,) int64}`,
    L = the longest `texts_lengths` of the batch (tokens past an item's length are left out).
    """
    if not items:
        raise ValueError("collate_texts: empty batch")
    lengths = torch.tensor([int(item["texts_lengths"]) for item in items], dtype=torch.long)
    tokens = torch.full((len(items), int(lengths.max())), pad_token_id, dtype=torch.long)
    for row, item in enumerate(items):
        tokens[row, : lengths[row]] = torch.as_tensor(item["texts_tokens"])[: lengths[row]]
    return {"texts_tokens": tokens, "texts_lengths": lengths}
