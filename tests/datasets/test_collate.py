"""`collate_texts`: unpadded texts -> one batch padded on the right to its longest text."""

from __future__ import annotations

import pytest
import torch

from poseembroider.datasets.collate import collate_texts


def test_texts_are_padded_to_the_longest_of_the_batch():
    items = [
        {"texts_tokens": torch.tensor([101, 7, 8, 102]), "texts_lengths": 4},
        {"texts_tokens": torch.tensor([101, 9, 102]), "texts_lengths": torch.tensor(3)},
    ]
    batch = collate_texts(items, pad_token_id=0)
    assert batch["texts_tokens"].tolist() == [[101, 7, 8, 102], [101, 9, 102, 0]]
    assert batch["texts_lengths"].tolist() == [4, 3]
    assert batch["texts_tokens"].dtype == batch["texts_lengths"].dtype == torch.long


def test_tokens_past_the_length_are_left_out_and_the_pad_id_is_used():
    items = [
        {"texts_tokens": torch.tensor([2, 5, 3, 9, 9]), "texts_lengths": 3},
        {"texts_tokens": [2, 3], "texts_lengths": 2},
    ]
    batch = collate_texts(items, pad_token_id=-1)
    assert batch["texts_tokens"].tolist() == [[2, 5, 3], [2, 3, -1]]  # L = longest length, not longest tensor


def test_an_empty_batch_is_refused():
    with pytest.raises(ValueError, match="empty batch"):
        collate_texts([])
