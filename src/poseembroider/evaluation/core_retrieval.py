"""Retrieval metrics of the representation models over the 9 query types (original_system.md §5.1).

For each query type (i2p, i2t, p2i, p2t, t2i, t2p, ip2t, it2p, pt2i) the queries of the N samples are
ranked against the N gallery tokens of the target modality; R@1/5/10 in percent;
`mRecall_single_query` = mean of the 18 single-query values, `mRecall_dual_query` = mean of the 9 dual
values, `mRecall` = their mean (the model-selection metric). Query type names are those of
`modalities.QueryType.name` (letters of the query modalities, '2', letter of the target).

Ranks are computed in chunks of queries (`retrieval.ground_truth_ranks`, or `retrieval.chunk_ranks` for
callers that compute the queries chunk by chunk), so memory is O(chunk x N) for any N.

The evaluation engine (`query_ranks`, `metrics_of_ranks`, `retrieval_metrics_from_tokens`) sees a model only
through `Representer` (its `represent` and `predict`), so it stays on this floor: it serves `evaluate_core`,
the benchmarks and `Representation` alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import torch
from tqdm.auto import tqdm

from poseembroider.evaluation.retrieval import (
    DEFAULT_CHUNK_SIZE,
    K_RECALL_VALUES,
    chunk_ranks,
    ground_truth_ranks,
    recall_at_k,
)
from poseembroider.modalities import QueryType, query_types


class Representer(Protocol):
    """What the engine needs of PoseEmbroider / the Aligner: x̄ of a bundle, and its prediction of a modality."""

    def represent(self, tokens: Mapping[str, torch.Tensor], modalities: Sequence[str]) -> torch.Tensor: ...

    def predict(self, representation: torch.Tensor, target: str) -> torch.Tensor: ...

    def eval(self) -> object: ...

LETTER_MODALITIES = {"i": "image", "p": "pose", "t": "text"}


def target_of(query_name: str) -> str:
    """'pt2i' -> 'image'."""
    try:
        return LETTER_MODALITIES[query_name.split("2")[1]]
    except (IndexError, KeyError):
        raise ValueError(
            f"query type {query_name!r}: expected '<query letters>2<target letter>' (e.g. 'pt2i')"
        ) from None


def is_dual(query_name: str) -> bool:
    return len(query_name.split("2")[0]) == 2


def summarize(metrics: Mapping[str, float]) -> dict[str, float]:
    """`mRecall_single_query`, `mRecall_dual_query` (when present) and `mRecall` of `<query>_R@k` entries."""
    single = [v for k, v in metrics.items() if "_R@" in k and not is_dual(k.split("_R@")[0])]
    dual = [v for k, v in metrics.items() if "_R@" in k and is_dual(k.split("_R@")[0])]
    out: dict[str, float] = {}
    if single:
        out["mRecall_single_query"] = sum(single) / len(single)
    if dual:
        out["mRecall_dual_query"] = sum(dual) / len(dual)
    if out:
        out["mRecall"] = sum(out.values()) / len(out)
    return out


def recalls_of_ranks(name: str, ranks: torch.Tensor, ks: Sequence[int] = K_RECALL_VALUES) -> dict[str, float]:
    return {f"{name}_R@{k}": v for k, v in recall_at_k(ranks, ks).items()}


def core_retrieval_metrics(
    queries: Mapping[str, torch.Tensor],
    galleries: Mapping[str, torch.Tensor],
    ks: Sequence[int] = K_RECALL_VALUES,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> dict[str, float]:
    """R@k of every query type in `queries` ({name: (N, D)}) against `galleries` ({modality: (N, D)}),
    plus the mRecall summaries."""
    metrics: dict[str, float] = {}
    for name, q in queries.items():
        target = target_of(name)
        if target not in galleries:
            raise KeyError(f"query type {name!r} needs the {target} gallery; have {sorted(galleries)}")
        metrics.update(recalls_of_ranks(name, ground_truth_ranks(q, galleries[target], chunk_size), ks))
    metrics.update(summarize(metrics))
    return metrics


def per_query_mean_recall(ranks: torch.Tensor, ks: Sequence[int] = K_RECALL_VALUES) -> torch.Tensor:
    """(N,) ranks (0 = ground truth first) -> (N,) mean over k of 100 * [rank < k]; its mean over the queries
    is the mean of the query type's R@k values."""
    return torch.stack([(ranks < k).double() for k in ks]).mean(0) * 100.0


def dual_vs_single(
    ranks: Mapping[str, torch.Tensor],
    ks: Sequence[int] = K_RECALL_VALUES,
    resamples: int = 2000,
    seed: int = 0,
) -> list[dict[str, float | str | list[float] | bool]]:
    """Each dual query type against each single query type of the same target (pt2i vs p2i and vs t2i, ...).

    `difference`: mean R@k (over `ks`) of the dual type minus that of the single type, in percentage points;
    both rank the same N ground-truth samples, so the difference is paired per sample, and `ci95` is its
    95% percentile bootstrap interval (the N samples resampled with replacement `resamples` times, seeded).
    `dual_better` / `single_better`: the interval excludes 0 on that side; neither: not resolved at this N.
    ranks: {query type name: (N,) ranks}."""
    names = list(ranks)
    if not names:
        return []
    n = ranks[names[0]].shape[0]
    resampled = torch.randint(n, (resamples, n), generator=torch.Generator().manual_seed(seed))
    scores = {name: per_query_mean_recall(r, ks) for name, r in ranks.items()}
    rows: list[dict[str, float | str | list[float] | bool]] = []
    for dual in (d for d in names if is_dual(d)):
        for single in (s for s in names if not is_dual(s) and target_of(s) == target_of(dual)):
            difference = scores[dual] - scores[single]
            low, high = torch.quantile(difference[resampled].mean(1), torch.tensor([0.025, 0.975], dtype=torch.double))
            rows.append(
                {
                    "dual": dual,
                    "single": single,
                    "difference": float(difference.mean()),
                    "ci95": [float(low), float(high)],
                    "dual_better": bool(low > 0),
                    "single_better": bool(high < 0),
                }
            )
    return rows


@torch.no_grad()
def query_ranks(
    model: Representer,
    tokens: Mapping[str, torch.Tensor],
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    progress: bool = True,
    max_queries: int | None = None,
    device: torch.device | str | None = None,
) -> dict[str, torch.Tensor]:
    """{query type: (N,) rank of each query's ground truth} for every query type possible with the modalities
    of `tokens` ({m: (N, D)} gallery tokens, row n of every modality is sample n).

    Queries are computed `chunk_size` at a time on `device` (default: where the tokens are) and never stored
    whole; the representation of a query bundle is computed once per chunk for all its target modalities.
    `max_queries`: rank only the first queries of each type (against the whole gallery), e.g. to measure
    memory at a large N without the full N x N work.
    """
    model.eval()
    n = next(iter(tokens.values())).shape[0]
    if max_queries is not None:
        n = min(n, max_queries)
    queries = query_types(tokens.keys())
    ranks = {q.name: torch.empty(n, dtype=torch.long) for q in queries}
    bundles: dict[tuple[str, ...], list[QueryType]] = {}
    for q in queries:
        bundles.setdefault(q.query, []).append(q)
    steps = [(bundle, start) for bundle in bundles for start in range(0, n, chunk_size)]
    for bundle, start in tqdm(steps, desc="query chunks", leave=False, disable=not progress):
        chunk = {m: tokens[m][start : min(start + chunk_size, n)] for m in bundle}
        if device is not None:
            chunk = {m: t.to(device) for m, t in chunk.items()}
        representation = model.represent(chunk, bundle)
        for q in bundles[bundle]:
            predicted = model.predict(representation, q.target).float().to(tokens[q.target].device)
            ranks[q.name][start : start + predicted.shape[0]] = chunk_ranks(predicted, tokens[q.target], start)
    return ranks


def metrics_of_ranks(ranks: Mapping[str, torch.Tensor], ks: Sequence[int] = K_RECALL_VALUES) -> dict[str, float]:
    """R@k of each query type and the mRecall summaries."""
    metrics: dict[str, float] = {}
    for name, r in ranks.items():
        metrics.update(recalls_of_ranks(name, r, ks))
    metrics.update(summarize(metrics))
    return metrics


def retrieval_metrics_from_tokens(
    model: Representer,
    tokens: Mapping[str, torch.Tensor],
    ks: Sequence[int] = K_RECALL_VALUES,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    progress: bool = True,
    max_queries: int | None = None,
    device: torch.device | str | None = None,
) -> dict[str, float]:
    """R@k of every query type possible with the modalities of `tokens` and the mRecall summaries
    (`query_ranks`, then `metrics_of_ranks`)."""
    return metrics_of_ranks(query_ranks(model, tokens, chunk_size, progress, max_queries, device), ks)
