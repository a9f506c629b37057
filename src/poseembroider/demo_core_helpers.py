"""What the any-to-any retrieval demo (`demo_core.py`) computes, without streamlit, so it can be tested.

- `occlude_patches`: black out a square of 16-px patches of the query crop (the ViT's patch grid).
- `prepare_uploaded_image`: a user's PNG/JPG turned into a crop like the datasets' (padded to 4:3,
  resized to 256x192, in [0, 1]).
- `query_batch`: one query (any of image, pose, text tokens) as a raw batch of one.

The gallery of a split and the ranking of a query are library code (`representation.split_gallery`,
`representation.retrieve_from_batch`): the demo ranks exactly as the evaluation does.
"""

from __future__ import annotations

import io

import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from poseembroider.datasets.image_processing import IMAGE_HW, to_uint8_tensor
from poseembroider.representation import crop_person

PATCH_SIZE = 16
"""Side of the image encoder's patches in pixels: the occlusion moves and grows by whole patches."""

PATCH_GRID: tuple[int, int] = (IMAGE_HW[0] // PATCH_SIZE, IMAGE_HW[1] // PATCH_SIZE)
"""(rows, columns) of patches of a 256x192 crop: (16, 12)."""


def occlude_patches(image: torch.Tensor, x: int, y: int, size: int, patch_size: int = PATCH_SIZE) -> torch.Tensor:
    """A copy of a (3, H, W) image whose `size` x `size` patches starting at patch column `x`, patch row `y`
    are set to 0 (black, as the original demo), clipped to the image. `size` 0 occludes nothing."""
    if image.dim() != 3:
        raise ValueError(f"image: expected (3, H, W), got shape {tuple(image.shape)}")
    if min(x, y, size) < 0:
        raise ValueError(f"occlusion x={x}, y={y}, size={size}: patch coordinates and size must be >= 0")
    out = image.clone()
    x1, y1 = x * patch_size, y * patch_size
    out[:, y1 : y1 + size * patch_size, x1 : x1 + size * patch_size] = 0
    return out


def prepare_uploaded_image(data: bytes, name: str = "uploaded image") -> torch.Tensor:
    """PNG/JPG bytes -> (3, 256, 192) float crop in [0, 1], processed like the dataset crops: the whole
    picture is taken as the person crop, zero-padded to 4:3 (H:W) and resized (`representation.crop_person`).
    EXIF orientation (phone pictures) is applied first."""
    try:
        with Image.open(io.BytesIO(data)) as picture:
            rgb = ImageOps.exif_transpose(picture).convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ValueError(f"{name}: not a readable PNG/JPG image ({err})") from None
    return crop_person(to_uint8_tensor(rgb))


def query_batch(
    image: torch.Tensor | None = None, pose: torch.Tensor | None = None, text_tokens: torch.Tensor | None = None
) -> dict[str, torch.Tensor]:
    """A raw batch of one query from what it has: image (3, 256, 192) in [0, 1], pose (J, 3) axis-angles
    (z-up model frame), text tokens (L,) -> `images` (1, 3, 256, 192), `poses` (1, J, 3),
    `texts_tokens` (1, L) + `texts_lengths` (1,)."""
    batch: dict[str, torch.Tensor] = {}
    if image is not None:
        batch["images"] = image.float()[None]
    if pose is not None:
        batch["poses"] = pose.float()[None]
    if text_tokens is not None:
        batch["texts_tokens"] = text_tokens.long()[None]
        batch["texts_lengths"] = torch.tensor([text_tokens.numel()])
    return batch
