"""Pretraining data: length buckets, the corpus split, the epoch plan, and the training stream whose batches
depend only on (seed, epoch, index)."""

from __future__ import annotations

import pytest
import torch

from poseembroider.assisting_models.textBackbone.data import (
    BucketedTextStream,
    TextBatches,
    epoch_plan,
    length_bucketed_batches,
    split_corpus,
)


def _tokens(lengths: list[int]) -> list[torch.Tensor]:
    """Text i = `[i + 10] * length` (its id is readable from any token)."""
    return [torch.full((n,), i + 10, dtype=torch.long) for i, n in enumerate(lengths)]


def test_length_buckets_cover_each_text_once():
    lengths = [int(x) for x in torch.randint(3, 200, (1000,), generator=torch.Generator().manual_seed(0))]
    batches = length_bucketed_batches(lengths, 32, torch.Generator().manual_seed(0), bucket_batches=5)
    flat = [i for b in batches for i in b]
    assert len(flat) == len(set(flat)) and all(len(b) == 32 for b in batches) and len(flat) >= 1000 - 5 * 32
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) / len(batches)
    assert spread < 60  # texts of a batch have similar lengths (random batches: ~190)


def test_split_corpus_is_seeded_and_holds_out_a_capped_fraction():
    corpus = [f"text {i}" for i in range(100)]
    train, val = split_corpus(corpus, 0.2, 15, seed=3)
    assert len(val) == 15 and sorted(train + val) == sorted(corpus)
    assert (train, val) == split_corpus(corpus, 0.2, 15, seed=3)
    assert split_corpus(corpus, 0.2, 15, seed=4)[1] != val
    with pytest.raises(ValueError, match="at least 2"):
        split_corpus(["alone"], 0.5, 10, seed=0)


@pytest.mark.parametrize(
    ("steps", "per_pass", "val_every", "expected"),
    [(2, 4, None, (1, 2)), (600, 267, None, (3, 200)), (300, 9, None, (10, 30)), (100, 50, 30, (4, 25)),
     (7, 50, 2, (4, 2))],
)
def test_epoch_plan_spreads_the_steps_over_epochs(steps, per_pass, val_every, expected):
    epochs, per_epoch = epoch_plan(steps, per_pass, val_every)
    assert (epochs, per_epoch) == expected
    assert steps <= epochs * per_epoch < steps + epochs


def test_stream_epochs_are_windows_over_fresh_length_bucketed_passes():
    lengths = [int(x) for x in torch.randint(3, 40, (100,), generator=torch.Generator().manual_seed(0))]
    stream = BucketedTextStream(_tokens(lengths), batch_size=8, batches_per_epoch=5, seed=1, bucket_batches=4)
    assert stream.batches_per_pass == 12  # 3 groups of 32 texts give 4 batches each; the last 4 texts none

    def epoch(e: int) -> list[list[int]]:
        stream.epoch_of = lambda: e
        batches = [stream[k] for k in range(len(stream))]
        for b in batches:  # padded to the batch's longest text, with [PAD] = 0 after each length
            assert b["texts_tokens"].shape == (8, int(b["texts_lengths"].max()))
        return [sorted(int(row[0]) - 10 for row in b["texts_tokens"]) for b in batches]

    first_pass = [i for e in (0, 1) for b in epoch(e) for i in b] + [i for b in epoch(2)[:2] for i in b]
    assert len(first_pass) == len(set(first_pass)) == 12 * 8  # one pass: each text at most once
    # epoch 2 runs into the next pass, drawn afresh
    assert epoch(2)[2:] == [sorted(b) for b in stream.pass_batches(1)[:3]]
    assert stream.pass_batches(1) != stream.pass_batches(0)
    fresh = BucketedTextStream(_tokens(lengths), batch_size=8, batches_per_epoch=5, seed=1, bucket_batches=4)
    fresh.epoch_of = lambda: 3
    assert [sorted(int(r[0]) - 10 for r in fresh[k]["texts_tokens"]) for k in range(5)] == epoch(3)  # (seed, epoch)
    with pytest.raises(IndexError):
        stream[5]
    with pytest.raises(ValueError, match="fewer than one batch"):
        BucketedTextStream(_tokens([3, 4]), batch_size=8)


def test_text_batches_in_order_keep_every_text():
    batches = TextBatches.in_order(_tokens([3, 5, 2, 4, 6]), batch_size=2, pad_token_id=0)
    assert len(batches) == 3
    last = batches[2]
    assert last["texts_tokens"].tolist() == [[14] * 6] and last["texts_lengths"].tolist() == [6]
    first = batches[0]
    assert first["texts_tokens"].tolist() == [[10, 10, 10, 0, 0], [11] * 5]
