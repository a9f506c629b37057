"""Decoding methods of the instruction generator: greedy (the original's), beam search, nucleus sampling, rerank.

Every method is a pure function over a *step function* and the special token ids; a registry maps the
names the scripts take (`--decoding greedy`) to them (`DECODINGS`, `get_decoding`, `decode`)::

    state = model.decoding_state(memory)           # (B, 1, D) memory, the fused x̄ of A and B
    out = decode("beam", state, bos=2, eos=3, pad=0, max_length=200, min_length=10, beam_size=4)
    out.tokens (B, L)   out.lengths (B,)   out.scores (B,)

The step function (`DecodingState`) takes the last token of each row, (N,), and `parents` (N,) int64: which
row of the previous step each row continues (None: the same rows as before). It returns the (N, V) logits
of the next token. Rows may be dropped (greedy stops computing finished rows) or reordered and repeated
(beam search): the state keeps its caches in step with `parents`. `state.expand(k)` gives a fresh state
whose rows are each memory row repeated k times (row b*k + j is beam j of sample b).

Shared conventions (`Generated`):

- the output starts after BOS; a row ends with its EOS, then PAD; `lengths` counts the tokens up to and
  including EOS (or `max_length` for a row cut there);
- EOS cannot be chosen before `min_length` tokens have been generated (the original forbids EOS until
  length 10, so that no instruction is empty);
- `scores` are the summed log-likelihoods of the generated tokens divided by `lengths` (the original's greedy
  score; beam search ranks its hypotheses by sum / length^`length_penalty`, the same for the default 1).

Greedy is the original's (`generate_greedy`); beam search, nucleus sampling and rerank are ours. Beam search
with `beam_size=1`, nucleus sampling with `top_p` -> 0 and rerank without samples give exactly the greedy output
(tests). Rerank also needs the state to judge finished texts (`ListeningState.listener_log_probs`: the
generator's own listener over the distractor pairs it keeps).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import torch
import torch.nn.functional as F

from poseembroider.registry import Registry

__all__ = [
    "DECODINGS",
    "DecodingState",
    "Generated",
    "SpecialTokens",
    "UnknownDecodingError",
    "beam_search",
    "decode",
    "decoding_options",
    "get_decoding",
    "greedy",
    "ListeningState",
    "nucleus",
    "rerank",
]

DEFAULT_MAX_LENGTH = 199
"""Most generated tokens (BOS excluded), as the original's greedy decoding: at most 199 steps after BOS."""
DEFAULT_MIN_LENGTH = 9
"""Generated tokens (BOS excluded) before EOS may come, as the original's greedy decoding: it forbids EOS while
the text with its BOS is shorter than 10 tokens, so EOS may be the 10th generated token."""


class DecodingState(Protocol):
    """What a decoding method needs from a model (see the module docstring)."""

    def __call__(self, tokens: torch.Tensor, parents: torch.Tensor | None) -> torch.Tensor:
        """Last tokens (N,) and the previous row of each row (N,) or None -> next-token logits (N, V)."""

    def expand(self, k: int) -> DecodingState:
        """A fresh state over the memory rows, each repeated `k` times (before any step)."""


@dataclass(frozen=True)
class SpecialTokens:
    """The tokenizer's ids the decoding needs."""

    bos: int
    eos: int
    pad: int


@dataclass(frozen=True)
class Generated:
    """Decoded sequences: `tokens` (B, L) int64 after BOS (EOS, then PAD, ends a row), `lengths` (B,) int64
    tokens up to and including EOS, `scores` (B,) float32 mean log-likelihood per generated token."""

    tokens: torch.Tensor
    lengths: torch.Tensor
    scores: torch.Tensor


class UnknownDecodingError(ValueError):
    """A decoding method name or option that does not exist; the message lists the known ones."""


def _check_limits(max_length: int, min_length: int) -> None:
    if int(max_length) < 1:
        raise ValueError(f"max_length={max_length}: must be >= 1")
    if not 0 <= int(min_length) < int(max_length):
        raise ValueError(f"min_length={min_length}: must be in [0, max_length={max_length})")


def _next_log_probs(
    state: DecodingState,
    tokens: torch.Tensor,
    parents: torch.Tensor | None,
    step: int,
    special: SpecialTokens,
    min_length: int,
) -> torch.Tensor:
    """(N, V) float32 log-probabilities of the next token: BOS and PAD never (they are not text), EOS not while
    `step` < `min_length`; the others renormalised."""
    logits = state(tokens, parents).float()
    logits[:, [special.bos, special.pad]] = -math.inf
    if step < min_length:
        logits[:, special.eos] = -math.inf
    return F.log_softmax(logits, dim=-1)


def _row_by_row(
    state: DecodingState,
    batch_size: int,
    special: SpecialTokens,
    max_length: int,
    min_length: int,
    choose: Callable[[torch.Tensor], torch.Tensor],
    device: torch.device,
) -> Generated:
    """One hypothesis per row, the next token picked by `choose((N, V) log-probs) -> (N,)`; finished rows are
    dropped from the next steps (the state's caches follow `parents`), so long rows do not make the short
    ones pay for their length."""
    _check_limits(max_length, min_length)
    out = torch.full((batch_size, max_length), special.pad, dtype=torch.long, device=device)
    lengths = torch.full((batch_size,), max_length, dtype=torch.long, device=device)
    sums = torch.zeros(batch_size, device=device)
    active = torch.arange(batch_size, device=device)  # sample of each row of the state
    tokens = torch.full((batch_size,), special.bos, dtype=torch.long, device=device)
    parents: torch.Tensor | None = None
    last = 0
    for step in range(max_length):
        log_probs = _next_log_probs(state, tokens, parents, step, special, min_length)
        chosen = choose(log_probs)
        out[active, step] = chosen
        sums[active] += log_probs.gather(1, chosen[:, None])[:, 0]
        ended = chosen == special.eos
        lengths[active[ended]] = step + 1
        last = step
        if bool(ended.all()):
            break
        keep = (~ended).nonzero()[:, 0]
        parents = None if bool(keep.numel() == ended.numel()) else keep
        active, tokens = active[keep], chosen[keep]
    return Generated(out[:, : last + 1].contiguous(), lengths, sums / lengths)


def greedy(
    state: DecodingState,
    batch_size: int,
    special: SpecialTokens,
    max_length: int = DEFAULT_MAX_LENGTH,
    min_length: int = DEFAULT_MIN_LENGTH,
    device: torch.device | str = "cpu",
) -> Generated:
    """The most likely next token at every step (the original's decoding)."""
    return _row_by_row(
        state, batch_size, special, max_length, min_length, lambda lp: lp.argmax(dim=-1), torch.device(device)
    )


def nucleus(
    state: DecodingState,
    batch_size: int,
    special: SpecialTokens,
    max_length: int = DEFAULT_MAX_LENGTH,
    min_length: int = DEFAULT_MIN_LENGTH,
    device: torch.device | str = "cpu",
    top_p: float = 0.9,
    temperature: float = 1.0,
    seed: int = 0,
) -> Generated:
    """Nucleus (top-p) sampling (Holtzman et al., ICLR 2020): each token is drawn from the smallest set of most
    likely tokens whose probabilities (at `temperature`) sum to at least `top_p` (always at least the most
    likely one, so `top_p` -> 0 is greedy). Draws come from a generator seeded with `seed`: the same seed and
    inputs give the same texts. Scores are the model's log-likelihoods (temperature 1)."""
    if not 0.0 <= float(top_p) <= 1.0:
        raise ValueError(f"top_p={top_p}: must be in [0, 1]")
    if not float(temperature) > 0.0:
        raise ValueError(f"temperature={temperature}: must be > 0")
    device = torch.device(device)
    generator = torch.Generator(device=device).manual_seed(int(seed))

    def choose(log_probs: torch.Tensor) -> torch.Tensor:
        probs = torch.softmax(log_probs / temperature, dim=-1)
        sorted_probs, order = probs.sort(dim=-1, descending=True, stable=True)
        before = sorted_probs.cumsum(dim=-1) - sorted_probs  # mass of the more likely tokens
        sorted_probs = torch.where(before < top_p, sorted_probs, torch.zeros_like(sorted_probs))
        sorted_probs[:, 0] = torch.where(sorted_probs[:, 0] > 0, sorted_probs[:, 0], 1.0)  # keep the top token
        picked = torch.multinomial(sorted_probs, 1, generator=generator)
        return order.gather(1, picked)[:, 0]

    return _row_by_row(state, batch_size, special, max_length, min_length, choose, device)


def beam_search(
    state: DecodingState,
    batch_size: int,
    special: SpecialTokens,
    max_length: int = DEFAULT_MAX_LENGTH,
    min_length: int = DEFAULT_MIN_LENGTH,
    device: torch.device | str = "cpu",
    beam_size: int = 4,
    length_penalty: float = 1.0,
) -> Generated:
    """Length-normalised beam search, batched: `beam_size` hypotheses per sample, ranked by summed
    log-likelihood / length^`length_penalty`.

    Every sample keeps `beam_size` slots. At each step the candidates are every token after every unfinished
    hypothesis, and every finished hypothesis as it is (its score frozen); the `beam_size` best candidates by
    normalised score fill the slots. A sample is done when all its slots hold finished hypotheses, or when its
    best finished hypothesis scores at least as well as every unfinished one does so far (the stopping rule
    of Hugging Face's beam search without early stopping: a hypothesis is assumed not to improve its
    normalised score by growing, else repetitive continuations of likely tokens would run every search to
    `max_length`). Done samples leave the batch (the state's caches follow `parents`); decoding stops when
    every sample is done or at `max_length`. The best slot is returned. With `beam_size=1` this is greedy
    decoding."""
    k = int(beam_size)
    if k < 1:
        raise ValueError(f"beam_size={beam_size}: must be >= 1")
    _check_limits(max_length, min_length)
    device = torch.device(device)
    state = state.expand(k)
    sums = torch.zeros(batch_size, k, device=device)
    sums[:, 1:] = -math.inf  # all beams start identical: only the first one expands at the first step
    finished = torch.zeros(batch_size, k, dtype=torch.bool, device=device)
    lengths = torch.full((batch_size, k), max_length, dtype=torch.long, device=device)
    sequences = torch.full((batch_size, k, max_length), special.pad, dtype=torch.long, device=device)
    alive = torch.arange(batch_size, device=device)  # samples still searched; state row a*k + j: beam j of alive[a]
    tokens = torch.full((batch_size * k,), special.bos, dtype=torch.long, device=device)
    parents: torch.Tensor | None = None
    last = 0
    for step in range(max_length):
        log_probs = _next_log_probs(state, tokens, parents, step, special, min_length)
        n, vocab = alive.numel(), log_probs.shape[-1]
        sums_a, finished_a, lengths_a = sums[alive], finished[alive], lengths[alive]
        candidates = sums_a[..., None] + log_probs.view(n, k, vocab)  # (n, k, V) summed log-likelihoods
        # a finished hypothesis has one continuation, PAD, that keeps its sum
        frozen = torch.full_like(candidates, -math.inf)
        frozen[..., special.pad] = sums_a
        candidates = torch.where(finished_a[..., None], frozen, candidates)
        norm_length = torch.where(finished_a, lengths_a, torch.full_like(lengths_a, step + 1)).float()
        normalised = candidates / norm_length[..., None].pow(length_penalty)
        top_scores, best = normalised.view(n, k * vocab).topk(k, dim=-1)  # (n, k)
        beam, token = best // vocab, best % vocab
        was_finished = finished_a.gather(1, beam)
        sums[alive] = candidates.view(n, k * vocab).gather(1, best)
        lengths[alive] = torch.where(was_finished, lengths_a.gather(1, beam), torch.full_like(lengths_a, step + 1))
        finished_a = was_finished | (token == special.eos)
        finished[alive] = finished_a
        sequences_a = sequences[alive].gather(1, beam[..., None].expand(-1, -1, max_length))
        sequences_a[:, :, step] = torch.where(was_finished, special.pad, token)
        sequences[alive] = sequences_a
        last = step
        best_finished = torch.where(finished_a, top_scores, -math.inf).max(dim=1).values
        best_running = torch.where(finished_a, -math.inf, top_scores).max(dim=1).values
        keep = (~finished_a.all(dim=1) & (best_finished < best_running)).nonzero()[:, 0]
        if keep.numel() == 0:
            break
        parents = (keep[:, None] * k + beam[keep]).view(-1)
        alive, tokens = alive[keep], token[keep].view(-1)
    normalised = sums / lengths.float().pow(length_penalty)
    top = normalised.argmax(dim=1)  # (B,)
    rows = torch.arange(batch_size, device=device)
    best_lengths = lengths[rows, top]
    return Generated(sequences[rows, top, : last + 1].contiguous(), best_lengths, sums[rows, top] / best_lengths)


class ListeningState(DecodingState, Protocol):
    """A decoding state that can also judge finished texts (`rerank`)."""

    def listener_log_probs(
        self, tokens: torch.Tensor, lengths: torch.Tensor, length_normalised: bool = False
    ) -> torch.Tensor:
        """Generated rows (N, L) after BOS (EOS, then PAD) and their `lengths` (N,), one per memory row of the
        state -> (N,) log-probability that a listener reading the text picks the row's own sample among it and
        the state's distractors (judging by the text's summed log-likelihoods, or by their per-token means when
        `length_normalised`)."""


def rerank(
    state: ListeningState,
    batch_size: int,
    special: SpecialTokens,
    max_length: int = DEFAULT_MAX_LENGTH,
    min_length: int = DEFAULT_MIN_LENGTH,
    device: torch.device | str = "cpu",
    nucleus_samples: int = 8,
    top_p: float = 0.9,
    speaker_weight: float = 0.0,
    seed: int = 0,
    length_normalised: bool = False,
) -> Generated:
    """Pragmatic reranking (a "rational speaker", Andreas & Klein, EMNLP 2016; Fried et al., NAACL 2018 for
    instructions): the greedy text and `nucleus_samples` nucleus samples (`top_p`, seeds `seed`, `seed` + 1, ...) are
    the candidates of each row; the one kept maximises the listener's log-probability of the row's own sample
    (`state.listener_log_probs`) + `speaker_weight` x the text's mean log-likelihood per token.

    The listener judges by summed log-likelihoods, where a longer text carries more evidence (texts longer than
    greedy's), or with `length_normalised` by per-token means (texts of the annotations' length; README).

    Greedy decoding says what is most likely for any pair; the listener keeps the candidate that tells this
    pair from others. Ties keep the earlier candidate, so `nucleus_samples=0` is exactly greedy. The state must be
    fresh (no step taken): every candidate starts from `state.expand(1)`. Costs `nucleus_samples` + 1 decodings plus
    the listener's scoring."""
    if int(nucleus_samples) < 0:
        raise ValueError(f"nucleus_samples={nucleus_samples}: must be >= 0")
    if not callable(getattr(state, "listener_log_probs", None)):
        raise ValueError(
            f"decoding 'rerank' needs a state with a listener (listener_log_probs); {type(state).__name__} has none"
        )
    device = torch.device(device)
    runs = [greedy(state.expand(1), batch_size, special, max_length, min_length, device)]
    for index in range(int(nucleus_samples)):
        nucleus_run = nucleus(
            state.expand(1), batch_size, special, max_length, min_length, device, top_p=top_p, seed=seed + index
        )
        runs.append(nucleus_run)
    scores = torch.stack(
        [
            state.listener_log_probs(run.tokens, run.lengths, length_normalised) + speaker_weight * run.scores
            for run in runs
        ],
        dim=1,
    )  # (B, candidates)
    best = scores.argmax(dim=1)
    width = max(run.tokens.shape[1] for run in runs)
    tokens = torch.stack([F.pad(run.tokens, (0, width - run.tokens.shape[1]), value=special.pad) for run in runs], 1)
    rows = torch.arange(batch_size, device=device)
    lengths = torch.stack([run.lengths for run in runs], dim=1)[rows, best]
    speaker = torch.stack([run.scores for run in runs], dim=1)[rows, best]
    return Generated(tokens[rows, best, : int(lengths.max())].contiguous(), lengths, speaker)


DECODINGS: Registry[Callable[..., Generated]] = Registry("decoding method")
DECODINGS.register("greedy")(greedy)
DECODINGS.register("beam")(beam_search)
DECODINGS.register("nucleus")(nucleus)
DECODINGS.register("rerank")(rerank)

_COMMON = ("state", "batch_size", "special", "max_length", "min_length", "device")


def get_decoding(name: str) -> Callable[..., Generated]:
    """The decoding function registered as `name`; an unknown name is an error listing the known ones."""
    if name not in DECODINGS:
        raise UnknownDecodingError(f"unknown decoding method {name!r}; known: {DECODINGS.names()}")
    return DECODINGS.get(name)


def decoding_options(name: str) -> dict[str, Any]:
    """{option: default} of the decoding method `name` beyond the common arguments (e.g. beam: beam_size,
    length_penalty)."""
    parameters = inspect.signature(get_decoding(name)).parameters
    return {k: p.default for k, p in parameters.items() if k not in _COMMON}


def decode(
    name: str,
    state: DecodingState,
    batch_size: int,
    special: SpecialTokens,
    max_length: int = DEFAULT_MAX_LENGTH,
    min_length: int = DEFAULT_MIN_LENGTH,
    device: torch.device | str = "cpu",
    **options: Any,
) -> Generated:
    """Run the decoding method `name` with its `options`; an option it does not take is an error listing the
    ones it does."""
    function = get_decoding(name)
    known = decoding_options(name)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise UnknownDecodingError(
            f"decoding method {name!r} has no option {unknown[0]!r}; its options: {sorted(known) or 'none'}"
        )
    return function(state, batch_size, special, max_length, min_length, device, **options)
