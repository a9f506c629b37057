"""Decoding methods over a scripted step function: EOS ends a row, the minimum length holds EOS back, beam search
of one beam and nucleus sampling with p -> 0 are greedy, beam search finds what greedy misses, options and
names are checked."""

from __future__ import annotations

import math

import pytest
import torch

from poseembroider.downstream.instruction_generation.decoding import (
    DECODINGS,
    Generated,
    SpecialTokens,
    UnknownDecodingError,
    decode,
    decoding_options,
)

SPECIAL = SpecialTokens(bos=1, eos=2, pad=0)
VOCAB = 8


class TableState:
    """Next-token logits as a function of (sample, position, last token): `table` (B, T, V, V) indexed by the
    row's sample, the step and its last token; follows `parents` like a model's cache. Counts the rows it
    computed (to check that finished rows are dropped)."""

    def __init__(self, table: torch.Tensor, repeat: int = 1) -> None:
        self.table = table
        self.samples = torch.arange(table.shape[0]).repeat_interleave(repeat)
        self.step = 0
        self.rows_computed: list[int] = []

    def expand(self, k: int) -> TableState:
        expanded = TableState(self.table, k)
        expanded.rows_computed = self.rows_computed  # one record for the caller
        return expanded

    def __call__(self, tokens: torch.Tensor, parents: torch.Tensor | None) -> torch.Tensor:
        if parents is not None:
            self.samples = self.samples[parents]
        assert tokens.shape == self.samples.shape
        self.rows_computed.append(int(tokens.numel()))
        out = self.table[self.samples, min(self.step, self.table.shape[1] - 1), tokens]
        self.step += 1
        return out.clone()


def random_table(batch: int = 5, steps: int = 12, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, steps, VOCAB, VOCAB, generator=generator) * 2.0


def test_greedy_stops_each_row_at_its_eos_and_pads_after():
    table = torch.zeros(2, 6, VOCAB, VOCAB)
    table[..., 5] = 1.0  # always word 5 ...
    table[0, 2, :, SPECIAL.eos] = 10.0  # ... but sample 0 ends at its 3rd token
    table[1, 4, :, SPECIAL.eos] = 10.0  # and sample 1 at its 5th
    state = TableState(table)
    out = decode("greedy", state, 2, SPECIAL, max_length=50, min_length=0)
    assert out.lengths.tolist() == [3, 5]
    assert out.tokens.tolist() == [[5, 5, 2, 0, 0], [5, 5, 5, 5, 2]]
    assert state.rows_computed == [2, 2, 2, 1, 1]  # the finished row is no longer computed
    assert out.tokens.shape[1] == 5  # stopped when every row was done, not at max_length


def test_minimum_length_holds_eos_back_and_maximum_length_cuts():
    table = torch.zeros(1, 30, VOCAB, VOCAB)
    table[..., 4] = 1.0
    table[..., SPECIAL.eos] = 5.0  # EOS is always the most likely
    out = decode("greedy", TableState(table), 1, SPECIAL, max_length=20, min_length=6)
    assert out.lengths.tolist() == [7] and out.tokens[0].tolist() == [4] * 6 + [SPECIAL.eos]
    never = torch.zeros(1, 30, VOCAB, VOCAB)
    never[..., 3] = 5.0
    cut = decode("greedy", TableState(never), 1, SPECIAL, max_length=9, min_length=2)
    assert cut.lengths.tolist() == [9] and cut.tokens[0].tolist() == [3] * 9
    for method in ("beam", "nucleus"):
        held = decode(method, TableState(table), 1, SPECIAL, max_length=20, min_length=6)
        assert held.lengths.tolist() == [7]


def test_bos_and_pad_are_never_generated():
    table = torch.zeros(1, 10, VOCAB, VOCAB)
    table[..., SPECIAL.pad] = 9.0
    table[..., SPECIAL.bos] = 8.0
    table[..., 6] = 1.0
    for method in ("greedy", "beam"):
        out = decode(method, TableState(table), 1, SPECIAL, max_length=5, min_length=0)
        assert out.tokens[0].tolist() == [6] * 5, method
    sampled = decode("nucleus", TableState(table.expand(64, -1, -1, -1)), 64, SPECIAL, max_length=5, min_length=0)
    for row, length in zip(sampled.tokens.tolist(), sampled.lengths.tolist(), strict=True):
        assert not set(row[:length]) & {SPECIAL.bos, SPECIAL.pad} and set(row[length:]) <= {SPECIAL.pad}


def test_scores_are_the_mean_log_likelihood_of_the_generated_tokens():
    table = random_table(3)
    out = decode("greedy", TableState(table), 3, SPECIAL, max_length=12, min_length=2)
    for b in range(3):
        last, total = SPECIAL.bos, 0.0
        for step in range(int(out.lengths[b])):
            logits = table[b, step, last].clone()
            logits[[SPECIAL.bos, SPECIAL.pad]] = -math.inf
            if step < 2:
                logits[SPECIAL.eos] = -math.inf
            token = int(out.tokens[b, step])
            assert token == int(logits.argmax())
            total += float(torch.log_softmax(logits, -1)[token])
            last = token
        assert float(out.scores[b]) == pytest.approx(total / int(out.lengths[b]), abs=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_beam_size_one_and_tiny_top_p_are_greedy(seed):
    table = random_table(6, seed=seed)
    greedy = decode("greedy", TableState(table), 6, SPECIAL, max_length=12, min_length=3)
    for method, options in (("beam", {"beam_size": 1}), ("nucleus", {"top_p": 1e-9, "seed": 5})):
        other = decode(method, TableState(table), 6, SPECIAL, max_length=12, min_length=3, **options)
        assert torch.equal(other.tokens, greedy.tokens), method
        assert torch.equal(other.lengths, greedy.lengths), method
        torch.testing.assert_close(other.scores, greedy.scores)


def test_beam_search_finds_the_better_sequence_that_greedy_misses():
    """Word 3 looks best at the first step, but only word 4 leads to a likely ending."""
    table = torch.full((1, 4, VOCAB, VOCAB), -5.0)
    table[0, 0, SPECIAL.bos, 3] = 1.0
    table[0, 0, SPECIAL.bos, 4] = 0.8
    table[0, 1, 3, :] = 0.0  # after 3: everything equally unlikely
    table[0, 1, 4, SPECIAL.eos] = 8.0  # after 4: a sure ending
    greedy = decode("greedy", TableState(table), 1, SPECIAL, max_length=3, min_length=0)
    beam = decode("beam", TableState(table), 1, SPECIAL, max_length=3, min_length=0, beam_size=2)
    assert greedy.tokens[0, 0] == 3
    assert beam.tokens[0].tolist()[:2] == [4, SPECIAL.eos] and beam.lengths.tolist() == [2]
    assert float(beam.scores[0]) > float(greedy.scores[0])


def test_beam_search_is_batched_row_independent():
    table = random_table(4, seed=3)
    together = decode("beam", TableState(table), 4, SPECIAL, max_length=12, min_length=2, beam_size=3)
    for b in range(4):
        alone = decode("beam", TableState(table[b : b + 1]), 1, SPECIAL, max_length=12, min_length=2, beam_size=3)
        length = int(alone.lengths[0])
        assert together.tokens[b, :length].tolist() == alone.tokens[0, :length].tolist()
        assert int(together.lengths[b]) == length


def test_nucleus_sampling_is_seeded_and_varies_with_the_seed():
    table = torch.zeros(8, 12, VOCAB, VOCAB)  # flat distributions: sampling has room to differ
    runs = [decode("nucleus", TableState(table), 8, SPECIAL, 12, 2, top_p=0.95, seed=s) for s in (7, 7, 8)]
    assert torch.equal(runs[0].tokens, runs[1].tokens)
    assert not torch.equal(runs[0].tokens, runs[2].tokens)


def test_unknown_method_and_option_are_clear_errors():
    state = TableState(random_table(1))
    with pytest.raises(
        UnknownDecodingError, match=r"unknown decoding method 'topk'; known: \['beam', 'greedy', 'nucleus', 'rerank'\]"
    ):
        decode("topk", state, 1, SPECIAL)
    with pytest.raises(UnknownDecodingError, match=r"'greedy' has no option 'beam_size'; its options: none"):
        decode("greedy", state, 1, SPECIAL, beam_size=3)
    with pytest.raises(
        UnknownDecodingError, match=r"no option 'top_k'; its options: \['seed', 'temperature', 'top_p'\]"
    ):
        decode("nucleus", state, 1, SPECIAL, top_k=3)
    with pytest.raises(ValueError, match="min_length=12"):
        decode("greedy", state, 1, SPECIAL, max_length=12, min_length=12)
    assert decoding_options("beam") == {"beam_size": 4, "length_penalty": 1.0}
    assert DECODINGS.names() == ["beam", "greedy", "nucleus", "rerank"]
    assert isinstance(decode("greedy", state, 1, SPECIAL, max_length=4, min_length=0), Generated)


def test_beam_search_drops_the_samples_it_has_settled():
    """Sample 0's search is settled at once (a sure ending); sample 1's runs on. Sample 0's rows leave the
    batch; a running hypothesis that cannot beat a finished one yet ends the search (no run to max_length)."""
    table = torch.full((2, 30, VOCAB, VOCAB), -4.0)
    table[0, :, :, SPECIAL.eos] = 6.0
    table[1, :, :, 5] = 3.0  # sample 1: word 5 likely for a while ...
    table[1, 6:, :, SPECIAL.eos] = 9.0  # ... then a sure ending
    state = TableState(table)
    out = decode("beam", state, 2, SPECIAL, max_length=30, min_length=0, beam_size=3)
    assert out.lengths.tolist() == [1, 7]
    assert state.rows_computed[0] == 6 and state.rows_computed[1] == 3  # sample 0 left after the first step
    assert len(state.rows_computed) < 12  # far from max_length


class ListeningTableState(TableState):
    """A `TableState` with a scripted listener: a text scores `weights[token]` summed over its tokens, so the
    test knows which candidate a listener prefers."""

    def __init__(self, table: torch.Tensor, weights: torch.Tensor, repeat: int = 1) -> None:
        super().__init__(table, repeat)
        self.weights = weights
        self.judged: list[int] = []

    def listener_log_probs(
        self, tokens: torch.Tensor, lengths: torch.Tensor, length_normalised: bool = False
    ) -> torch.Tensor:
        self.judged.append(int(tokens.shape[0]))
        summed = self.weights[tokens].sum(dim=1)
        return summed / lengths if length_normalised else summed


def test_rerank_without_samples_is_greedy_and_keeps_the_listeners_choice():
    table = random_table(4, seed=3)
    greedy = decode("greedy", TableState(table), 4, SPECIAL, max_length=10, min_length=2)
    none = decode("rerank", ListeningTableState(table, torch.zeros(VOCAB)), 4, SPECIAL, 10, 2, nucleus_samples=0)
    assert torch.equal(none.tokens, greedy.tokens) and torch.equal(none.lengths, greedy.lengths)
    # a listener that likes word 6: among the greedy text and 6 samples, each row keeps the one with most 6s
    weights = torch.zeros(VOCAB)
    weights[6] = 1.0
    state = ListeningTableState(table, weights)
    out = decode("rerank", state, 4, SPECIAL, 10, 2, nucleus_samples=6, top_p=1.0, seed=5)
    assert state.judged == [4] * 7  # every candidate judged once
    candidates = [greedy] + [
        decode("nucleus", TableState(table), 4, SPECIAL, 10, 2, top_p=1.0, seed=5 + i) for i in range(6)
    ]
    best = torch.stack([(c.tokens == 6).sum(dim=1).float() for c in candidates], dim=1).max(dim=1).values
    assert torch.equal((out.tokens == 6).sum(dim=1).float(), best)
    assert bool((best > (greedy.tokens == 6).sum(dim=1)).any())  # the listener changed some row's text
    for row in range(4):  # the kept text is one of the candidates, with its own length and speaker score
        length = int(out.lengths[row])
        assert any(
            int(c.lengths[row]) == length
            and torch.equal(c.tokens[row, :length], out.tokens[row, :length])
            and torch.isclose(c.scores[row], out.scores[row])
            for c in candidates
        )


def test_rerank_needs_a_listener_and_a_sample_count():
    table = random_table(1)
    with pytest.raises(ValueError, match="needs a state with a listener"):
        decode("rerank", TableState(table), 1, SPECIAL, 8, 2)
    with pytest.raises(ValueError, match="nucleus_samples=-1"):
        decode("rerank", ListeningTableState(table, torch.zeros(VOCAB)), 1, SPECIAL, 8, 2, nucleus_samples=-1)
    assert decoding_options("rerank") == {
        "nucleus_samples": 8,
        "top_p": 0.9,
        "speaker_weight": 0.0,
        "seed": 0,
        "length_normalised": False,
    }


def test_rerank_passes_the_listeners_length_normalisation_on():
    """A listener that likes word 6 per token (mean) keeps the candidate with the largest share of 6s, not the
    one with the most."""
    table = random_table(4, seed=3)
    weights = torch.zeros(VOCAB)
    weights[6] = 1.0
    options = dict(nucleus_samples=6, top_p=1.0, seed=5)
    out = decode("rerank", ListeningTableState(table, weights), 4, SPECIAL, 10, 2, length_normalised=True, **options)
    candidates = [decode("greedy", TableState(table), 4, SPECIAL, 10, 2)] + [
        decode("nucleus", TableState(table), 4, SPECIAL, 10, 2, top_p=1.0, seed=5 + i) for i in range(6)
    ]
    shares = torch.stack([(c.tokens == 6).sum(dim=1) / c.lengths for c in candidates], dim=1).max(dim=1).values
    torch.testing.assert_close((out.tokens == 6).sum(dim=1) / out.lengths, shares)
