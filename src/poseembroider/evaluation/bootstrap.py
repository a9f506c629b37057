"""Percentile bootstrap intervals of a mean, and of the difference between two methods on the same samples.

Per-sample metric values (errors in mm, recall indicators, text scores) are resampled with replacement; the
interval is the (1 - confidence) / 2 and (1 + confidence) / 2 quantiles of the resampled means. Resampling
is seeded (a `torch.Generator`), so a report is reproducible, and runs in chunks of resamples so memory stays
O(chunk × N) for any N.

A *paired* comparison resamples the same sample indices for both methods: it answers "is method A better
than method B on these samples" with an interval much narrower than the two separate intervals suggest,
because the per-sample difficulty (a hard pose is hard for both) cancels.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

__all__ = ["Interval", "PairedComparison", "bootstrap_mean_interval", "paired_bootstrap_difference"]

DEFAULT_RESAMPLES = 2000
DEFAULT_CONFIDENCE = 0.95
_RESAMPLE_CHUNK_ELEMENTS = 2**24  # indices drawn per chunk (128 MiB of int64)


@dataclass(frozen=True)
class Interval:
    """A statistic (`value`, computed on all samples) and its bootstrap interval [`low`, `high`]."""

    value: float
    low: float
    high: float
    confidence: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.value:.4g} [{self.low:.4g}, {self.high:.4g}]"


@dataclass(frozen=True)
class PairedComparison:
    """Method A against method B on the same `n` samples.

    `difference`: mean(A) - mean(B), in the metric's unit; `relative`: (mean(A) - mean(B)) / mean(B), a
    fraction (-0.11 = A's mean is 11% below B's). For an error metric, A is better when `difference.high < 0`.
    """

    mean_a: float
    mean_b: float
    difference: Interval
    relative: Interval
    n: int

    def as_dict(self) -> dict[str, object]:
        return {
            "mean_a": self.mean_a,
            "mean_b": self.mean_b,
            "difference": self.difference.as_dict(),
            "relative": self.relative.as_dict(),
            "n": self.n,
        }


def _as_values(values: object, name: str) -> torch.Tensor:
    """(N,) finite float64 values on the CPU; ValueError naming `name` otherwise."""
    if not isinstance(values, torch.Tensor):
        values = torch.as_tensor(values)
    if values.dim() != 1 or values.shape[0] == 0:
        raise ValueError(f"{name}: expected a non-empty 1-D tensor of per-sample values, got {tuple(values.shape)}")
    values = values.detach().to("cpu", torch.float64)
    if not bool(torch.isfinite(values).all()):
        raise ValueError(f"{name}: contains NaN or infinite values")
    return values


def _check_settings(confidence: float, n_resamples: int) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence: expected a value in (0, 1), got {confidence}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples: expected at least 1, got {n_resamples}")


def _resampled_means(columns: torch.Tensor, n_resamples: int, seed: int) -> torch.Tensor:
    """columns (N, C) -> (n_resamples, C) means of the columns over resampled rows (same rows for every column)."""
    n = columns.shape[0]
    generator = torch.Generator().manual_seed(seed)
    per_chunk = max(1, _RESAMPLE_CHUNK_ELEMENTS // n)
    means = []
    for start in range(0, n_resamples, per_chunk):
        size = min(per_chunk, n_resamples - start)
        rows = torch.randint(n, (size, n), generator=generator)
        means.append(columns[rows].mean(1))  # (size, C)
    return torch.cat(means)


def _quantiles(samples: torch.Tensor, confidence: float) -> tuple[float, float]:
    tail = (1.0 - confidence) / 2.0
    low, high = torch.quantile(samples, torch.tensor([tail, 1.0 - tail], dtype=samples.dtype))
    return float(low), float(high)


def bootstrap_mean_interval(
    values: torch.Tensor,
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> Interval:
    """Mean of `values` (N,) and its percentile bootstrap interval (`confidence`, default 95%)."""
    _check_settings(confidence, n_resamples)
    v = _as_values(values, "values")
    means = _resampled_means(v[:, None], n_resamples, seed)[:, 0]
    low, high = _quantiles(means, confidence)
    return Interval(float(v.mean()), low, high, confidence)


def paired_bootstrap_difference(
    values_a: torch.Tensor,
    values_b: torch.Tensor,
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> PairedComparison:
    """Compare two methods measured on the same N samples: `values_a` (N,) and `values_b` (N,), sample i of
    both being the same input (e.g. PA-MPJPE of image+text vs image alone on the same validation poses).

    Each resample draws one set of sample indices used for both methods; the difference and the relative
    change of the means are computed per resample, and their percentile intervals reported. The relative
    interval needs mean(B) != 0 on every resample (errors in mm are positive).
    """
    _check_settings(confidence, n_resamples)
    a = _as_values(values_a, "values_a")
    b = _as_values(values_b, "values_b")
    if a.shape != b.shape:
        raise ValueError(
            f"values_a {tuple(a.shape)} and values_b {tuple(b.shape)}: a paired comparison needs the same samples"
        )
    mean_a, mean_b = float(a.mean()), float(b.mean())
    means = _resampled_means(torch.stack([a, b], 1), n_resamples, seed)  # (R, 2)
    difference = means[:, 0] - means[:, 1]
    with torch.no_grad():
        relative = difference / means[:, 1]
    d_low, d_high = _quantiles(difference, confidence)
    if mean_b == 0.0 or not bool(torch.isfinite(relative).all()):
        nan = float("nan")
        relative_interval = Interval(nan, nan, nan, confidence)
    else:
        r_low, r_high = _quantiles(relative, confidence)
        relative_interval = Interval((mean_a - mean_b) / mean_b, r_low, r_high, confidence)
    return PairedComparison(
        mean_a=mean_a,
        mean_b=mean_b,
        difference=Interval(mean_a - mean_b, d_low, d_high, confidence),
        relative=relative_interval,
        n=int(a.shape[0]),
    )
