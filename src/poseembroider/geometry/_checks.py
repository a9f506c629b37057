"""Input validation shared by the geometry functions.

Every public geometry function checks its inputs up front so that a wrong shape fails with a message naming
the argument, the expected shape and the received one, instead of a broadcasting error deep inside the maths.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def format_shape(shape: Sequence[int]) -> str:
    """`(4, 21, 2)`-style text for a shape (one-element shapes keep their trailing comma)."""
    return str(tuple(int(d) for d in shape))


def _expected(trailing: Sequence[int | str]) -> str:
    return "(" + ", ".join(["..."] + [str(d) for d in trailing]) + ")"


def check_float_tensor(x: object, name: str) -> torch.Tensor:
    """Raise TypeError unless `x` is a floating-point tensor; return it unchanged."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    if not torch.is_floating_point(x):
        raise TypeError(f"{name}: expected a floating-point tensor, got dtype {x.dtype}")
    return x


def check_trailing_shape(x: object, name: str, trailing: Sequence[int], what: str) -> torch.Tensor:
    """Check that `x` is a float tensor of shape (..., *trailing).

    Raises ValueError like "poses: expected (..., 3) axis-angles, got (4, 21, 2)".
    """
    x = check_float_tensor(x, name)
    n = len(trailing)
    if x.ndim < n or tuple(x.shape[x.ndim - n :]) != tuple(trailing):
        raise ValueError(f"{name}: expected {_expected(trailing)} {what}, got {format_shape(x.shape)}")
    return x


def check_finite(x: torch.Tensor, name: str) -> None:
    """Raise ValueError if `x` holds NaN or infinite values."""
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name}: contains NaN or infinite values")


def check_same_shape(x: torch.Tensor, name: str, reference: torch.Tensor, reference_name: str) -> None:
    """Raise ValueError unless `x` has exactly the shape of `reference`."""
    if x.shape != reference.shape:
        raise ValueError(
            f"{name}: expected the shape of {reference_name} {format_shape(reference.shape)}, "
            f"got {format_shape(x.shape)}"
        )


def broadcast_batch_shapes(a: torch.Tensor, a_name: str, b: torch.Tensor, b_name: str, core: int) -> None:
    """Raise ValueError unless the batch dims (all but the last `core`) of `a` and `b` broadcast."""
    try:
        torch.broadcast_shapes(a.shape[: a.ndim - core], b.shape[: b.ndim - core])
    except RuntimeError as err:
        raise ValueError(
            f"{a_name} {format_shape(a.shape)} and {b_name} {format_shape(b.shape)}: "
            "batch dimensions do not broadcast"
        ) from err
