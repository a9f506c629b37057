import numpy as np
import torch

from poseembroider.datasets.synthetic.pair_mining import (
    MiningParams,
    count_differing_codes,
    mine_in_sequence_pairs,
    mine_out_of_sequence_pairs,
)


def test_version_string_matches_the_original_naming():
    assert MiningParams().version_string == "in15_out20_t05_sim0709"


def test_in_sequence_constraints_and_role_unicity():
    params = MiningParams(min_diff_in=1, max_time_diff=0.5)
    seq = np.array([0, 0, 0, 0, 1, 1])
    times = np.array([0.0, 0.2, 0.4, 1.5, 0.0, 0.1])
    codes = torch.tensor([[0, 0], [1, 1], [0, 0], [1, 1], [0, 0], [0, 0]])
    pairs = mine_in_sequence_pairs(seq, times, codes, params)
    assert (0, 1) in pairs and (1, 2) in pairs  # 0.2 s apart and 2 codes differ
    assert all(seq[a] == seq[b] and 0 < times[b] - times[a] <= 0.5 for a, b in pairs)
    assert (4, 5) not in pairs  # no posecode differs
    assert (0, 3) not in pairs  # too far apart in time
    assert len({a for a, _ in pairs}) == len(pairs) and len({b for _, b in pairs}) == len(pairs)


def test_out_of_sequence_constraints():
    rng = np.random.default_rng(0)
    n = 200
    base = torch.nn.functional.normalize(torch.randn(5, 16), dim=-1)
    features = torch.nn.functional.normalize(base[torch.arange(n) % 5] + 0.35 * torch.randn(n, 16), dim=-1)
    codes = torch.randint(0, 4, (n, 40))
    seq = np.arange(n) // 4
    params = MiningParams(min_diff_out=20)
    pairs = mine_out_of_sequence_pairs(seq, features, codes, params, rng, chunk_size=37)
    assert pairs
    diff = count_differing_codes(codes, codes)
    sim = features @ features.T
    for a, b in pairs:
        assert seq[a] != seq[b]
        assert 0.7 < sim[a, b] < 0.9 and diff[a, b] > 20
    assert len(set(pairs)) == len(pairs)


def test_out_of_sequence_is_chunk_independent_and_seeded():
    n = 120
    features = torch.nn.functional.normalize(torch.randn(n, 8) + 2.0, dim=-1)
    codes = torch.randint(0, 5, (n, 30))
    seq = np.arange(n)
    params = MiningParams(min_diff_out=10, similarity_window=(0.5, 0.99))
    a = mine_out_of_sequence_pairs(seq, features, codes, params, np.random.default_rng(3), chunk_size=7)
    b = mine_out_of_sequence_pairs(seq, features, codes, params, np.random.default_rng(3), chunk_size=500)
    assert a == b and a
