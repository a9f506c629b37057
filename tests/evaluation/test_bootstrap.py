import pytest
import torch

from poseembroider.evaluation.bootstrap import bootstrap_mean_interval, paired_bootstrap_difference


def _values(n: int, seed: int = 0) -> torch.Tensor:
    return 50.0 + 10.0 * torch.randn(n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_interval_contains_the_mean_and_shrinks_with_n():
    small = bootstrap_mean_interval(_values(50), n_resamples=1000)
    large = bootstrap_mean_interval(_values(5000), n_resamples=1000)
    for interval in (small, large):
        assert interval.low < interval.value < interval.high
        assert interval.confidence == 0.95
    width_small, width_large = small.high - small.low, large.high - large.low
    # the width of a mean's interval goes as 1 / sqrt(n): 10x from 50 to 5000 samples
    assert 6.0 < width_small / width_large < 15.0
    # and matches the normal approximation 2 * 1.96 * sigma / sqrt(n) (sigma = 10)
    assert width_large == pytest.approx(2 * 1.96 * 10 / 5000**0.5, rel=0.15)


def test_interval_is_seeded_and_exact_for_constant_values():
    v = _values(100)
    assert bootstrap_mean_interval(v, seed=3) == bootstrap_mean_interval(v, seed=3)
    assert bootstrap_mean_interval(v, seed=3) != bootstrap_mean_interval(v, seed=4)
    constant = bootstrap_mean_interval(torch.full((7,), 2.5))
    assert (constant.value, constant.low, constant.high) == (2.5, 2.5, 2.5)


def test_chunked_resampling_gives_all_resamples(monkeypatch):
    import poseembroider.evaluation.bootstrap as bootstrap

    v = _values(100)
    whole = bootstrap_mean_interval(v, n_resamples=300)
    monkeypatch.setattr(bootstrap, "_RESAMPLE_CHUNK_ELEMENTS", 100 * 7)  # 7 resamples per chunk
    chunked = bootstrap_mean_interval(v, n_resamples=300)
    assert chunked.value == whole.value
    assert chunked.low == pytest.approx(whole.low, abs=0.6) and chunked.high == pytest.approx(whole.high, abs=0.6)


def test_paired_difference_of_a_shifted_and_a_scaled_copy():
    b = _values(400)
    shifted = paired_bootstrap_difference(b - 1.0, b)
    assert shifted.difference.value == pytest.approx(-1.0)
    assert shifted.difference.low == pytest.approx(-1.0) and shifted.difference.high == pytest.approx(-1.0)
    scaled = paired_bootstrap_difference(0.89 * b, b)  # "+11% better": 11% lower errors
    assert scaled.relative.value == pytest.approx(-0.11)
    assert scaled.relative.low == pytest.approx(-0.11) and scaled.relative.high == pytest.approx(-0.11)
    assert scaled.mean_b == pytest.approx(float(b.mean())) and scaled.n == 400


def test_paired_interval_is_narrower_than_the_separate_ones():
    """Per-sample difficulty shared by both methods cancels in the paired difference."""
    difficulty = _values(300, seed=1)
    noise = 0.5 * torch.randn(300, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    a, b = difficulty - 1.0 + noise, difficulty
    paired = paired_bootstrap_difference(a, b)
    assert paired.difference.high < 0  # resolved: A is better
    separate = bootstrap_mean_interval(a), bootstrap_mean_interval(b)
    assert separate[0].high > separate[1].low  # the separate intervals overlap
    assert paired.difference.high - paired.difference.low < 0.3 * (separate[0].high - separate[0].low)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: bootstrap_mean_interval(torch.zeros(3, 2)), "values: expected a non-empty 1-D"),
        (lambda: bootstrap_mean_interval(torch.tensor([1.0, float("nan")])), "values: contains NaN"),
        (lambda: bootstrap_mean_interval(torch.ones(3), confidence=95), "confidence"),
        (lambda: paired_bootstrap_difference(torch.ones(3), torch.ones(4)), "values_a .* values_b"),
        (lambda: paired_bootstrap_difference(torch.ones(3), torch.ones(3, 1)), "values_b"),
    ],
)
def test_bad_input_names_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()
