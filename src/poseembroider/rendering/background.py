"""What shows where no mesh is: a plain colour or an image, composited using the render's alpha."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from poseembroider.rendering.colors import RGB, WHITE, as_rgb


@dataclass(frozen=True, eq=False)
class Background:
    """A colour (RGB floats in [0, 1]) or an image ((H, W, 3) uint8, resized to the render if needed)."""

    color: RGB = WHITE
    image: np.ndarray | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "color", as_rgb(self.color, "background color"))
        if self.image is not None:
            image = np.asarray(self.image)
            if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8 or 0 in image.shape:
                raise ValueError(
                    f"background image: expected an (H, W, 3) uint8 array, "
                    f"got shape {image.shape} and dtype {image.dtype}"
                )
            object.__setattr__(self, "image", image)

    @classmethod
    def coerce(cls, value: BackgroundLike) -> Background:
        """None -> white; an RGB tuple -> that colour; an (H, W, 3) uint8 array -> that image."""
        if value is None:
            return cls()
        if isinstance(value, Background):
            return value
        arr = np.asarray(value)
        if arr.ndim == 3:
            return cls(image=arr)
        return cls(color=tuple(arr.tolist()))

    def as_array(self, height: int, width: int) -> np.ndarray:
        """(H, W, 3) float32 in [0, 1]."""
        if self.image is None:
            return np.broadcast_to(np.asarray(self.color, np.float32), (height, width, 3))
        image = self.image
        if image.shape[:2] != (height, width):
            image = np.asarray(Image.fromarray(image).resize((width, height), Image.BILINEAR))
        return image.astype(np.float32) / 255.0


BackgroundLike = Background | Sequence[float] | np.ndarray | None


def composite(color: np.ndarray, alpha: np.ndarray, background: BackgroundLike) -> np.ndarray:
    """Premultiplied colour (H, W, 3) in [0, 1] and alpha (H, W) over a background -> (H, W, 3) uint8."""
    height, width = alpha.shape
    back = Background.coerce(background).as_array(height, width)
    out = color + back * (1.0 - alpha[..., None])
    return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)
