"""Negative log-likelihoods of the PoseVAE's reconstruction terms, elementwise (no reduction).

Both take the reconstruction `x_tilde`, the target `x` (any equal shapes) and one learned log-scale
parameter (a tensor broadcastable to them, e.g. the PoseVAE's `decsigma_*` of shape (1,)); they return
the per-coefficient NLL with the shape of `x`, to be summed by the caller.

Parametrisations (stated explicitly, since the original names both parameters "log sigma"):

- `laplacian_nll(x̃, x, log_b) = log 2 + log_b + |x̃ - x| / exp(log_b)`: the NLL of a Laplace
  distribution of scale b = exp(log_b). Here the parameter really is the log of the scale.
- `gaussian_nll(x̃, x, log_var) = 0.5 (log 2π + log_var) + 0.5 (x̃ - x)² / exp(log_var)`: the NLL of a
  Gaussian of **variance** σ² = exp(log_var). The original passes `decsigma_rot` ("log sigma") in this
  slot, so that parameter is a log-variance (log σ², i.e. 2 log σ), not a log standard deviation. We
  keep the original numerics (same values, same optimum) and name the argument for what it is.
"""

from __future__ import annotations

import math

import torch

__all__ = ["gaussian_nll", "kl_to_standard_normal", "laplacian_nll"]

_LOG_2 = math.log(2.0)
_LOG_2PI = math.log(2.0 * math.pi)


def laplacian_nll(x_tilde: torch.Tensor, x: torch.Tensor, log_b: torch.Tensor) -> torch.Tensor:
    """Elementwise Laplace NLL `log 2 + log_b + |x_tilde - x| / exp(log_b)`, shape of `x`."""
    return _LOG_2 + log_b + (x_tilde - x).abs() / log_b.exp()


def gaussian_nll(x_tilde: torch.Tensor, x: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """Elementwise Gaussian NLL `0.5 (log 2π + log_var) + 0.5 (x_tilde - x)² / exp(log_var)`, shape of `x`.

    `log_var` is the log of the variance (see the module docstring for why this matters).
    """
    return 0.5 * (_LOG_2PI + log_var) + 0.5 * (x_tilde - x).square() / log_var.exp()


def kl_to_standard_normal(q_z: torch.distributions.Normal) -> torch.Tensor:
    """(B,) KL(q(z|x) ‖ N(0, I)) summed over the latent dimensions, for a diagonal Gaussian q of (B, D).

    Closed form per dimension: `0.5 (σ² + μ² - 1) - log σ` (what `torch.distributions.kl_divergence`
    gives for two Normals, without building the prior).
    """
    mu, scale = q_z.loc, q_z.scale
    return (0.5 * (scale.square() + mu.square() - 1.0) - scale.log()).sum(-1)
