"""The 9-query-type metrics: names, targets, chunked ranks equal to a full argsort, mRecall summaries."""

from __future__ import annotations

import pytest
import torch

from poseembroider.evaluation.core_retrieval import (
    core_retrieval_metrics,
    dual_vs_single,
    is_dual,
    per_query_mean_recall,
    summarize,
    target_of,
)
from poseembroider.evaluation.retrieval import chunk_ranks, ground_truth_ranks, recall_at_k


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


def test_per_query_mean_recall_averages_the_recalls():
    ranks = torch.tensor([0, 3, 7, 40])
    # rank 0: in top 1, 5, 10 -> 100; rank 3: top 5 and 10 -> 66.7; rank 7: top 10 -> 33.3; rank 40: 0
    expected = torch.tensor([100.0, 200 / 3, 100 / 3, 0.0], dtype=torch.double)
    assert torch.allclose(per_query_mean_recall(ranks), expected)


def test_dual_vs_single_paired_difference_and_interval():
    g = torch.Generator().manual_seed(0)
    n = 400
    single = torch.randint(0, 30, (n,), generator=g)
    ranks = {
        "p2i": single,
        "t2i": single + 20,  # always worse than p2i, hence than the dual
        "pt2i": torch.clamp(single - 3, min=0),  # a bit better than p2i on every sample
        "p2t": single,
        "ip2t": single,  # identical to p2t: difference 0, not resolved
    }
    rows = {(r["dual"], r["single"]): r for r in dual_vs_single(ranks, resamples=500)}
    assert set(rows) == {("pt2i", "p2i"), ("pt2i", "t2i"), ("ip2t", "p2t")}
    for key, row in rows.items():  # the difference is that of the mean R@k values
        mean = {name: sum(recall_at_k(ranks[name]).values()) / 3 for name in key}
        assert row["difference"] == pytest.approx(mean[key[0]] - mean[key[1]], abs=1e-9)
        low, high = row["ci95"]
        assert low <= row["difference"] <= high
    assert rows[("pt2i", "p2i")]["dual_better"] and rows[("pt2i", "t2i")]["dual_better"]
    tie = rows[("ip2t", "p2t")]
    assert tie["difference"] == 0 and not tie["dual_better"] and not tie["single_better"]
    # worse dual: the interval lies below 0
    flipped = dual_vs_single({"t2i": ranks["pt2i"], "pt2i": ranks["t2i"]}, resamples=500)[0]
    assert flipped["single_better"] and flipped["ci95"][1] < 0
