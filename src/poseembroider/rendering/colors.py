"""Colour arguments of the rendering API: RGB(A) floats in [0, 1], checked once at the boundary.

Colours are floats because pyrender reads integer colours as 0-255 values (an integer white
`(1, 1, 1)` would render almost black); accepting ints in [0, 1] and rejecting anything above 1
catches the 0-255 habit with a clear message instead of a dark image.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

RGB = tuple[float, float, float]
RGBA = tuple[float, float, float, float]

WHITE: RGB = (1.0, 1.0, 1.0)
BLACK: RGB = (0.0, 0.0, 0.0)
DEFAULT_MESH_COLOR: RGB = (0.62, 0.7, 0.85)
"""Light blue-grey: bright enough that shading reads well on a white or black background."""


def as_rgba(value: Sequence[float] | np.ndarray, name: str = "color") -> RGBA:
    """One colour as 4 floats in [0, 1]; 3 components get alpha 1. uint8 arrays are divided by 255."""
    arr = np.asarray(value)
    if arr.shape not in ((3,), (4,)):
        raise ValueError(f"{name}: expected an RGB or RGBA colour of 3 or 4 values, got shape {arr.shape}")
    arr = _unit_floats(arr, name)
    if arr.shape == (3,):
        arr = np.append(arr, 1.0)
    return tuple(float(c) for c in arr)  # type: ignore[return-value]


def as_rgb(value: Sequence[float] | np.ndarray, name: str = "color") -> RGB:
    """One colour as 3 floats in [0, 1] (an RGBA value must have alpha 1)."""
    rgba = as_rgba(value, name)
    if rgba[3] != 1.0:
        raise ValueError(f"{name}: expected an opaque colour, got alpha {rgba[3]}")
    return rgba[:3]


def as_vertex_colors(value: np.ndarray, num_vertices: int, name: str = "color") -> np.ndarray:
    """Per-vertex colours (V, 3|4) as float32 RGBA in [0, 1]."""
    arr = np.asarray(value)
    if arr.ndim != 2 or arr.shape[0] != num_vertices or arr.shape[1] not in (3, 4):
        raise ValueError(
            f"{name}: expected per-vertex colours of shape ({num_vertices}, 3|4), got shape {arr.shape}"
        )
    arr = _unit_floats(arr, name).astype(np.float32)
    if arr.shape[1] == 3:
        arr = np.concatenate([arr, np.ones((num_vertices, 1), np.float32)], axis=1)
    return arr


def _unit_floats(arr: np.ndarray, name: str) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr.astype(np.float64) / 255.0
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"{name}: expected numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all() or arr.min() < 0.0 or arr.max() > 1.0:
        raise ValueError(
            f"{name}: colour values must be floats in [0, 1] (or a uint8 array), "
            f"got range [{arr.min()}, {arr.max()}]"
        )
    return arr
