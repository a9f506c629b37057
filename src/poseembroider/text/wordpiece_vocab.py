"""A WordPiece vocabulary learnt by BPE merges, a deterministic function of the word counts.

Why not `tokenizers.trainers.WordPieceTrainer`: it learns the vocabulary the same way (BPE on the words,
continuation pieces prefixed with `##`), but gives the `##` pieces their ids while iterating a hash map,
in an order that changes from process to process, and those ids break the ties between equally frequent
merges; so the same corpus gives another vocabulary in every process, whatever PYTHONHASHSEED or
RAYON_NUM_THREADS (huggingface/tokenizers issue #1794, PR #2066). Here every choice follows a total order.

The algorithm (`learn_wordpiece_vocab`):

1. initial symbols: the special tokens, every character of the words and of `alphabet` (sorted), then
   every `##c` continuation that occurs (a character after the first of a word), plus `##c` for every
   alphanumeric character, so that a held-out word whose letters were only seen at word starts still
   splits into pieces instead of becoming [UNK];
2. each word is split into its first character and `##`-continuations (`knee` -> `k ##n ##e ##e`);
3. repeatedly merge the most frequent adjacent pair, counted over words weighted by their frequency,
   into a new piece (`k` + `##n` -> `kn`, `##e` + `##e` -> `##ee`), while its count is at least
   `min_frequency` and the vocabulary is smaller than `vocab_size`. Ties between equally frequent pairs
   go to the smallest merged piece (Python string order, i.e. by code point), then to the smallest
   (left, right) pair. A merge whose piece is already in the vocabulary applies without adding a token.

Pair counts are updated incrementally: a merge re-counts only the words holding the merged pair (an index
pair -> words), and a heap with lazy deletion (entries whose count is no longer the pair's are skipped)
gives the next pair, so training costs about the total length of the rewritten words, not one full
recount per merge.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterable, Mapping

__all__ = ["learn_wordpiece_vocab"]

Pair = tuple[str, str]


def _merged(pair: Pair, prefix: str) -> str:
    left, right = pair
    return left + right[len(prefix) :] if right.startswith(prefix) else left + right


def _merge_word(symbols: list[str], pair: Pair, piece: str) -> list[str]:
    """Leftmost non-overlapping occurrences of `pair` in `symbols` replaced by `piece`."""
    out: list[str] = []
    i, n = 0, len(symbols)
    while i < n:
        if i + 1 < n and symbols[i] == pair[0] and symbols[i + 1] == pair[1]:
            out.append(piece)
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return out


def learn_wordpiece_vocab(
    word_counts: Mapping[str, int],
    vocab_size: int,
    min_frequency: int,
    special_tokens: Iterable[str] = (),
    alphabet: Iterable[str] = (),
    prefix: str = "##",
) -> list[str]:
    """The WordPiece vocabulary of `word_counts` (word -> count), tokens in id order (see module docstring).

    Special tokens first (ids 0..), then the initial symbols, then the merged pieces in merge order; at most
    `vocab_size` tokens (fewer when no pair reaches `min_frequency`). Raises `ValueError` when the special
    tokens and initial symbols alone exceed `vocab_size`.
    """
    words = sorted(w for w, n in word_counts.items() if w and n > 0)
    freqs = [int(word_counts[w]) for w in words]
    chars = sorted(set(alphabet).union(*words))
    continuations = {prefix + c for w in words for c in w[1:]} | {prefix + c for c in chars if c.isalnum()}
    vocab = list(dict.fromkeys([*special_tokens, *chars, *sorted(continuations)]))
    if len(vocab) > vocab_size:
        raise ValueError(
            f"vocab_size={vocab_size} is too small: the special tokens, characters and {prefix}-continuations "
            f"of the corpus already make {len(vocab)} tokens"
        )
    known = set(vocab)

    symbols = [[w[0], *(prefix + c for c in w[1:])] for w in words]
    counts: dict[Pair, int] = defaultdict(int)
    where: dict[Pair, set[int]] = defaultdict(set)
    for i, (syms, freq) in enumerate(zip(symbols, freqs, strict=True)):
        for pair in zip(syms, syms[1:], strict=False):
            counts[pair] += freq
            where[pair].add(i)
    heap = [(-n, _merged(pair, prefix), pair) for pair, n in counts.items()]
    heapq.heapify(heap)

    while heap and len(vocab) < vocab_size:
        neg_count, piece, pair = heapq.heappop(heap)
        if counts.get(pair, 0) != -neg_count:
            continue  # stale entry: the pair's count changed since it was pushed
        if -neg_count < min_frequency:
            break
        if piece not in known:
            known.add(piece)
            vocab.append(piece)
        delta: dict[Pair, int] = defaultdict(int)
        for i in sorted(where.pop(pair, ())):
            old = symbols[i]
            new = _merge_word(old, pair, piece)
            if len(new) == len(old):
                continue  # the index is stale: an earlier merge removed the pair from this word
            freq = freqs[i]
            for p in zip(old, old[1:], strict=False):
                delta[p] -= freq
            for p in zip(new, new[1:], strict=False):
                delta[p] += freq
                where[p].add(i)
            symbols[i] = new
        for p, d in delta.items():
            if d == 0:
                continue
            n = counts[p] + d
            if n > 0:
                counts[p] = n
                heapq.heappush(heap, (-n, _merged(p, prefix), p))
            else:
                del counts[p]
    return vocab
