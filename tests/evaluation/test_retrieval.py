import pytest
import torch

from poseembroider.evaluation.retrieval import (
    chance_mrecall,
    chance_recall_at_k,
    ground_truth_ranks,
    mean_recall,
    pose_text_retrieval_metrics,
    recall_at_k,
    x2y_recalls,
)


def full_matrix_ranks(queries: torch.Tensor, gallery: torch.Tensor) -> torch.Tensor:
    """Reference: sort every score row and find the ground truth's position."""
    order = torch.argsort(queries @ gallery.t(), dim=1, descending=True, stable=True)
    return (order == torch.arange(len(queries))[:, None]).float().argmax(dim=1)


@pytest.mark.parametrize("chunk_size", [1, 7, 64, 1000])
def test_chunked_ranks_match_full_matrix_sort(chunk_size):
    g = torch.Generator().manual_seed(0)
    queries = torch.nn.functional.normalize(torch.randn(150, 16, generator=g), dim=1)
    gallery = torch.nn.functional.normalize(queries + 0.8 * torch.randn(150, 16, generator=g), dim=1)
    assert torch.equal(ground_truth_ranks(queries, gallery, chunk_size), full_matrix_ranks(queries, gallery))


def test_recall_values_on_a_known_case():
    ranks = torch.tensor([0, 0, 3, 9, 10, 50, 4, 1, 0, 2])
    assert recall_at_k(ranks) == {1: 30.0, 5: 70.0, 10: 80.0}


def test_identical_embeddings_give_perfect_recall_and_shuffled_ones_near_chance():
    g = torch.Generator().manual_seed(1)
    x = torch.nn.functional.normalize(torch.randn(500, 32, generator=g), dim=1)
    metrics = pose_text_retrieval_metrics(x, x)
    assert metrics["mRecall"] == 100.0 and set(metrics) >= {"p2t_R@1", "t2p_R@10"}
    shuffled = x[torch.randperm(500, generator=g)]
    assert x2y_recalls(x, shuffled, "p2t")["p2t_R@10"] < 6.0  # chance is 2 %


def test_mean_recall_restricted_to_names_and_errors():
    metrics = {"p2t_R@1": 10.0, "t2p_R@1": 30.0, "loss": 5.0}
    assert mean_recall(metrics) == 20.0
    assert mean_recall(metrics, ["t2p"]) == 30.0
    with pytest.raises(ValueError, match="no '<query>_R@k'"):
        mean_recall({"loss": 1.0})
    with pytest.raises(ValueError, match="same shape"):
        ground_truth_ranks(torch.zeros(3, 2), torch.zeros(4, 2))


def test_chance_levels_are_those_of_a_random_ranking():
    assert chance_recall_at_k(512) == {1: 100 / 512, 5: 500 / 512, 10: 1000 / 512}
    assert chance_recall_at_k(4) == {1: 25.0, 5: 100.0, 10: 100.0}  # k past the gallery: every item
    assert chance_mrecall(512) == pytest.approx(1.0417, abs=1e-4)
    # the mean R@k over many random rankings approaches it
    g = torch.Generator().manual_seed(0)
    ranks = torch.randint(0, 50, (20000,), generator=g)
    recalls = recall_at_k(ranks)
    assert sum(recalls.values()) / 3 == pytest.approx(chance_mrecall(50), abs=0.5)
    with pytest.raises(ValueError, match="gallery of 0 items"):
        chance_recall_at_k(0)
