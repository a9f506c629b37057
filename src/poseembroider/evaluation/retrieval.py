"""Retrieval recall at k, computed in chunks so memory stays bounded for any gallery size.

Query i's ground truth is gallery item i (one query per gallery item, as in every retrieval evaluation of
the original). Instead of sorting each score row (the original's full `argsort`, O(N² log N) time and an
(N, N) index matrix), the rank of the ground truth is the number of gallery items scored strictly higher
than it: one matmul per chunk of queries, then a comparison. Memory: O(chunk × N); time: the matmul bound.
Ties are resolved in favour of the ground truth (an item scored exactly as high does not push it down).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import torch

K_RECALL_VALUES: tuple[int, ...] = (1, 5, 10)
"""The original's `k_recall_values`."""

DEFAULT_CHUNK_SIZE = 1024


_EXACT_FLOAT_COUNT = 2**24  # float32 holds every integer up to 2^24 exactly


def _count_above(scores: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
    """(n, N) scores, (n, 1) thresholds -> (n,) int64 count of scores strictly above the row's threshold.

    Overwrites `scores`. The comparison is written in place as 0/1 floats and summed as floats (exact for
    float32 / float64 below 2^24 items): an order of magnitude faster on CPU than summing the boolean mask
    `scores > thresholds`, which took about half as long as the score matmul itself (benchmarks/bench_core.py)."""
    if scores.dtype not in (torch.float32, torch.float64) or scores.shape[1] >= _EXACT_FLOAT_COUNT:
        return (scores > thresholds).sum(dim=1)
    return scores.gt_(thresholds).sum(dim=1).long()


def chunk_ranks(queries: torch.Tensor, gallery: torch.Tensor, start: int) -> torch.Tensor:
    """Ranks (n,) of the ground truth for queries (n, D) whose ground truths are gallery items
    `start .. start + n` of gallery (N, D): the number of gallery items scored strictly above it."""
    stop = start + queries.shape[0]
    if stop > gallery.shape[0]:
        raise ValueError(f"chunk_ranks: queries {start}..{stop} past the {gallery.shape[0]} gallery items")
    with torch.no_grad():
        scores = queries @ gallery.t()  # (n, N)
        positives = (queries * gallery[start:stop]).sum(dim=1)
        rows = torch.arange(stop - start)
        scores[rows, rows + start] = positives  # the matmul's diagonal may differ in the last bits
        return _count_above(scores, positives[:, None])


def ground_truth_ranks(
    queries: torch.Tensor, gallery: torch.Tensor, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> torch.Tensor:
    """0-based rank of gallery item i among all gallery items for query i.

    queries: (N, D); gallery: (N, D) (same N: item i answers query i). Scores are dot products (pass
    L2-normalised embeddings for cosine). Returns (N,) int64 ranks; rank 0 means retrieved first.
    """
    if queries.dim() != 2 or gallery.dim() != 2:
        raise ValueError(f"queries and gallery must be (N, D); got {tuple(queries.shape)} and {tuple(gallery.shape)}")
    if queries.shape != gallery.shape:
        raise ValueError(
            f"queries {tuple(queries.shape)} and gallery {tuple(gallery.shape)} must have the same shape "
            "(query i is answered by gallery item i)"
        )
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    n = queries.shape[0]
    ranks = torch.empty(n, dtype=torch.long)
    for start in range(0, n, chunk_size):
        ranks[start : start + chunk_size] = chunk_ranks(queries[start : start + chunk_size], gallery, start).cpu()
    return ranks


def recall_at_k(ranks: torch.Tensor, ks: Iterable[int] = K_RECALL_VALUES) -> dict[int, float]:
    """Percentage of queries whose ground truth ranks within the top k, for each k. ranks: (N,)."""
    if ranks.numel() == 0:
        raise ValueError("recall_at_k: no queries")
    return {int(k): float((ranks < k).double().mean() * 100.0) for k in ks}


def chance_recall_at_k(n: int, ks: Iterable[int] = K_RECALL_VALUES) -> dict[int, float]:
    """R@k (percent) of a random ranking of a gallery of n items: 100 * min(k, n) / n, for each k."""
    if n < 1:
        raise ValueError(f"chance_recall_at_k: gallery of {n} items")
    return {int(k): 100.0 * min(k, n) / n for k in ks}


def chance_mrecall(n: int, ks: Iterable[int] = K_RECALL_VALUES) -> float:
    """Mean over k of `chance_recall_at_k`: the mRecall of a random ranking of n items."""
    chance = chance_recall_at_k(n, ks)
    return sum(chance.values()) / len(chance)


def x2y_recalls(
    queries: torch.Tensor,
    gallery: torch.Tensor,
    name: str,
    ks: Sequence[int] = K_RECALL_VALUES,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> dict[str, float]:
    """`{f"{name}_R@{k}": recall}` for one query type, e.g. name 'p2t' gives 'p2t_R@1', ... (percent)."""
    recalls = recall_at_k(ground_truth_ranks(queries, gallery, chunk_size), ks)
    return {f"{name}_R@{k}": value for k, value in recalls.items()}


def mean_recall(metrics: Mapping[str, float], names: Iterable[str] | None = None) -> float:
    """Mean of the `*_R@k` entries of `metrics` (restricted to the query types in `names` if given)."""
    wanted = None if names is None else set(names)
    values = [v for key, v in metrics.items() if "_R@" in key and (wanted is None or key.split("_R@")[0] in wanted)]
    if not values:
        raise ValueError(f"mean_recall: no '<query>_R@k' entries among {sorted(metrics)}")
    return sum(values) / len(values)


def pose_text_retrieval_metrics(
    poses: torch.Tensor, texts: torch.Tensor, ks: Sequence[int] = K_RECALL_VALUES
) -> dict[str, float]:
    """The PoseText / PairText validation metrics: p2t and t2p R@k (percent) and their mean `mRecall`.

    poses, texts: (N, D) L2-normalised embeddings, item i of each describing the same sample (for PairText,
    `poses` holds the pair embeddings).
    """
    metrics = x2y_recalls(poses, texts, "p2t", ks)
    metrics.update(x2y_recalls(texts, poses, "t2p", ks))
    metrics["mRecall"] = mean_recall(metrics)
    return metrics


def top_k(
    queries: torch.Tensor, gallery: torch.Tensor, k: int, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> tuple[torch.Tensor, torch.Tensor]:
    """(scores, indices), both (Q, min(k, N)), best first: the gallery rows (N, D) with the highest dot product
    with each query (Q, D), computed `chunk_size` queries at a time so memory stays O(chunk x N)."""
    if queries.dim() != 2 or gallery.dim() != 2 or queries.shape[1] != gallery.shape[1]:
        raise ValueError(
            f"queries {tuple(queries.shape)} and gallery {tuple(gallery.shape)}: expected (Q, D) and (N, D), same D"
        )
    if k < 1:
        raise ValueError(f"k={k}: retrieve at least one item")
    if gallery.shape[0] == 0:
        raise ValueError("the gallery is empty")
    k = min(k, gallery.shape[0])
    scores = torch.empty(queries.shape[0], k, dtype=torch.float32)
    indices = torch.empty(queries.shape[0], k, dtype=torch.long)
    gallery_t = gallery.float().T
    for start in range(0, queries.shape[0], chunk_size):
        chunk = queries[start : start + chunk_size].float().to(gallery.device)
        best, where = (chunk @ gallery_t).topk(k, dim=1)
        scores[start : start + chunk.shape[0]] = best.cpu()
        indices[start : start + chunk.shape[0]] = where.cpu()
    return scores, indices
