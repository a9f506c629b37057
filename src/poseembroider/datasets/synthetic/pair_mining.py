"""Mining pose pairs (A -> B) for fix datasets, with the constraints of the original step 6.

In-sequence pairs: A and B from the same sequence, B after A by at most `max_time_diff` seconds, more
than `min_diff_in` differing posecodes; each pose is used at most once as A and once as B (the pair
with the smallest time difference wins).

Out-of-sequence pairs: A and B from different sequences (and subjects), pose-feature cosine similarity
inside `similarity_window` among the `top_k` most similar A of each B, more than `min_diff_out`
differing posecodes; per B the `shortlist` most similar eligible A are kept and one is drawn, with a
probability inversely proportional to how often that A is already used; the reverse pair is added too
when it satisfies the same constraints and is not taken yet.

Everything is computed in row chunks of B so the N x N similarity is never materialised (bounded memory).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class MiningParams:
    """Pair-mining constraints; `version_string` gives the original-style name part."""

    min_diff_in: int = 15
    min_diff_out: int = 20
    max_time_diff: float = 0.5
    similarity_window: tuple[float, float] = (0.7, 0.9)
    top_k: int = 100
    shortlist: int = 3

    @property
    def version_string(self) -> str:
        t = f"{self.max_time_diff:.1f}".replace(".", "")
        lo, hi = (f"{v:.1f}".replace(".", "") for v in self.similarity_window)
        return f"in{self.min_diff_in}_out{self.min_diff_out}_t{t}_sim{lo}{hi}"


# counts differing posecodes between rows of A (n, P) and B (m, P) category codes -> (n, m)
PosecodeDifference = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def count_differing_codes(codes_a: torch.Tensor, codes_b: torch.Tensor) -> torch.Tensor:
    """(n, P) and (m, P) integer posecode categories -> (n, m) number of codes that differ."""
    return (codes_a[:, None, :] != codes_b[None, :, :]).sum(-1)


def mine_in_sequence_pairs(
    sequence_ids: np.ndarray, times: np.ndarray, codes: torch.Tensor, params: MiningParams
) -> list[tuple[int, int]]:
    """(A, B) local index pairs within sequences; inputs (N,), (N,) seconds, (N, P) posecodes."""
    candidates = []
    for seq in np.unique(sequence_ids[sequence_ids >= 0]):
        members = np.flatnonzero(sequence_ids == seq)
        if len(members) < 2:
            continue
        dt = times[members][None, :] - times[members][:, None]  # [a, b] = t_b - t_a
        ok = (dt > 0) & (dt <= params.max_time_diff + 1e-9)
        if not ok.any():
            continue
        member_codes = codes[torch.as_tensor(members)]
        diff = count_differing_codes(member_codes, member_codes).numpy()
        ok &= diff > params.min_diff_in
        for a, b in zip(*np.nonzero(ok), strict=True):
            candidates.append((float(dt[a, b]), int(members[a]), int(members[b])))
    used_as_a, used_as_b, pairs = set(), set(), []
    for _, a, b in sorted(candidates):  # smallest time difference first
        if a in used_as_a or b in used_as_b:
            continue
        used_as_a.add(a)
        used_as_b.add(b)
        pairs.append((a, b))
    return pairs


def mine_out_of_sequence_pairs(
    sequence_ids: np.ndarray,
    features: torch.Tensor,
    codes: torch.Tensor,
    params: MiningParams,
    generator: np.random.Generator,
    chunk_size: int = 128,
) -> list[tuple[int, int]]:
    """(A, B) local index pairs across sequences.

    Args:
        sequence_ids: (N,) sequence of each pose (-1 for poses outside sequences: each its own).
        features: (N, D) L2-normalised pose features (cosine similarity = dot product).
        codes: (N, P) posecode categories.
        chunk_size: B rows per step; the codes of their top-k A, (chunk_size, top_k, P), are the
            largest temporary, hence small chunks and 16-bit codes.
    """
    n = features.shape[0]
    codes = codes.to(torch.int16)  # categories are small integers
    seq = torch.as_tensor(np.where(sequence_ids >= 0, sequence_ids, -1 - np.arange(n)))
    lo, hi = params.similarity_window
    # B -> A satisfying every constraint, as one compact CSR table (sorted A of each B): Python sets of up
    # to top_k ints per pose were most of the memory at 50k poses (~390 MB, vs ~40 MB for this)
    eligible_rows: list[np.ndarray] = []
    eligible_counts = np.zeros(n, dtype=np.int64)
    shortlists: dict[int, list[int]] = {}
    # one (chunk, N) similarity buffer for every chunk: a fresh ~25 MB block per chunk (at N = 50k) is kept
    # by the allocator as fragments, and the process grew chunk after chunk
    buffer = torch.empty(min(chunk_size, n), n, dtype=features.dtype)
    for start in range(0, n, chunk_size):
        rows = torch.arange(start, min(n, start + chunk_size))
        sim = torch.matmul(features[rows], features.T, out=buffer[: len(rows)])  # (c, N): B rows, A columns
        sim[torch.arange(len(rows)), rows] = -2.0
        k = min(params.top_k, n - 1)
        top_sim, top_idx = sim.topk(k, dim=1)
        ok = (top_sim > lo) & (top_sim < hi) & (seq[top_idx] != seq[rows][:, None])
        # count_nonzero: `.sum` would first widen the (c, top_k, P) booleans to int64 (8x the memory)
        diff = torch.count_nonzero(codes[top_idx] != codes[rows][:, None, :], dim=-1)
        ok &= diff > params.min_diff_out
        counts = ok.sum(1)
        eligible_counts[start : start + len(rows)] = counts.numpy()
        kept = torch.where(ok, top_idx, n).sort(dim=1).values  # eligible A first, ascending
        eligible_rows += [kept[r, : int(c)].numpy().astype(np.int32) for r, c in enumerate(counts) if c]
        for r in torch.nonzero(counts).flatten().tolist():
            shortlists[start + r] = top_idx[r][ok[r]][: params.shortlist].tolist()  # by decreasing similarity
    offsets = np.concatenate([[0], np.cumsum(eligible_counts)])
    eligible = np.concatenate(eligible_rows) if eligible_rows else np.zeros(0, np.int32)

    def is_eligible(b: int, a: int) -> bool:
        """Whether A = `a` satisfies every constraint for B = `b`."""
        segment = eligible[offsets[b] : offsets[b + 1]]
        i = int(np.searchsorted(segment, a))
        return i < len(segment) and int(segment[i]) == a

    uses: dict[int, int] = {}
    taken: set[tuple[int, int]] = set()
    pairs: list[tuple[int, int]] = []
    for b in sorted(shortlists):
        options = shortlists[b]
        weights = np.array([1.0 / (1 + uses.get(a, 0)) for a in options])
        a = int(options[generator.choice(len(options), p=weights / weights.sum())])
        for pair in ((a, b), (b, a)):
            if pair in taken:
                continue
            if pair == (b, a) and not is_eligible(a, b):
                continue  # reverse pair only when it satisfies the constraints too
            taken.add(pair)
            pairs.append(pair)
            uses[pair[0]] = uses.get(pair[0], 0) + 1
    return pairs
