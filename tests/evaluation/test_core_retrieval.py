"""The 9-query-type metrics: names, targets, chunked ranks equal to a full argsort, mRecall summaries."""

from __future__ import annotations

import pytest
import torch

from poseembroider.evaluation.core_retrieval import core_retrieval_metrics, is_dual, summarize, target_of
from poseembroider.evaluation.retrieval import chunk_ranks, ground_truth_ranks


def _argsort_ranks(queries: torch.Tensor, gallery: torch.Tensor) -> torch.Tensor:
    order = torch.argsort(queries @ gallery.t(), dim=1, descending=True)
    return (order == torch.arange(len(queries))[:, None]).nonzero()[:, 1]


def test_names_targets_and_kinds():
    assert target_of("pt2i") == "image" and target_of("i2t") == "text"
    assert is_dual("it2p") and not is_dual("t2p")
    with pytest.raises(ValueError, match="'x2'"):
        target_of("x2")


def test_chunked_ranks_equal_a_full_argsort():
    g = torch.Generator().manual_seed(0)
    queries, gallery = torch.randn(50, 8, generator=g), torch.randn(50, 8, generator=g)
    expected = _argsort_ranks(queries, gallery)
    assert torch.equal(torch.cat([chunk_ranks(queries[i : i + 7], gallery, i) for i in range(0, 50, 7)]), expected)
    assert torch.equal(ground_truth_ranks(queries, gallery, chunk_size=7), expected)
    assert torch.equal(chunk_ranks(queries[14:21], gallery, 14), expected[14:21])
    # float64 and a boolean-sum fallback agree
    assert torch.equal(chunk_ranks(queries.double(), gallery.double(), 0), expected)


def test_chunk_ranks_refuses_queries_past_the_gallery():
    gallery = torch.randn(10, 4)
    with pytest.raises(ValueError, match="past the 10 gallery items"):
        chunk_ranks(torch.randn(6, 4), gallery, 6)


def test_metrics_and_summaries():
    g = torch.Generator().manual_seed(1)
    galleries = {m: torch.nn.functional.normalize(torch.randn(30, 6, generator=g), dim=-1) for m in ("image", "pose")}
    queries = {"i2p": galleries["image"], "p2i": galleries["image"].clone()}
    queries["p2i"][:5] = galleries["image"][:5] * 0 + galleries["image"][5]  # 5 wrong queries
    metrics = core_retrieval_metrics(queries, galleries)
    ranks = _argsort_ranks(queries["i2p"], galleries["pose"])
    assert metrics["i2p_R@5"] == pytest.approx(100 * float((ranks < 5).float().mean()))
    assert metrics["p2i_R@1"] == pytest.approx(100 * 25 / 30)  # p2i queries are the image tokens themselves
    assert metrics["mRecall"] == pytest.approx(metrics["mRecall_single_query"])
    summary = summarize({"i2p_R@1": 10.0, "ip2t_R@1": 30.0, "pt2i_R@1": 50.0})
    assert summary == {"mRecall_single_query": 10.0, "mRecall_dual_query": 40.0, "mRecall": 25.0}
