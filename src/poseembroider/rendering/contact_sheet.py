"""Grids of images with captions, and atomic image writing.

Sheets are for looking at many renders at once (views of a pose, a batch of samples, retrieval
results): every image is letterboxed into a common cell (scaled to fit, aspect ratio kept, centred),
and an optional label is written under it with PIL's default font.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from poseembroider.atomic_io import write_bytes_atomic
from poseembroider.rendering.colors import BLACK, RGB, WHITE, as_rgb


def _to_rgb_uint8(image: np.ndarray, background: np.ndarray, index: int) -> np.ndarray:
    """(H, W), (H, W, 3) or (H, W, 4) uint8 / float [0, 1] -> (H, W, 3) uint8 (RGBA over background)."""
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = arr[..., None].repeat(3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4) or 0 in arr.shape:
        raise ValueError(f"images[{index}]: expected (H, W), (H, W, 3) or (H, W, 4), got shape {arr.shape}")
    if np.issubdtype(arr.dtype, np.floating):
        arr = np.clip(arr, 0.0, 1.0) * 255.0
    arr = arr.astype(np.float32)
    if arr.shape[2] == 4:
        alpha = arr[..., 3:] / 255.0
        arr = arr[..., :3] * alpha + background[None, None, :] * 255.0 * (1.0 - alpha)
    return np.clip(np.rint(arr), 0, 255).astype(np.uint8)


def _letterbox(image: np.ndarray, cell_height: int, cell_width: int, fill: tuple[int, int, int]) -> Image.Image:
    height, width = image.shape[:2]
    scale = min(cell_height / height, cell_width / width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    picture = Image.fromarray(image)
    if size != (width, height):
        picture = picture.resize(size, Image.LANCZOS if scale < 1 else Image.BILINEAR)
    cell = Image.new("RGB", (cell_width, cell_height), fill)
    cell.paste(picture, ((cell_width - size[0]) // 2, (cell_height - size[1]) // 2))
    return cell


def make_contact_sheet(
    images: Sequence[np.ndarray],
    ncols: int | None = None,
    labels: Sequence[str] | None = None,
    pad: int = 4,
    background: RGB = WHITE,
    *,
    cell_size: tuple[int, int] | None = None,
    label_color: RGB = BLACK,
) -> np.ndarray:
    """Images in a grid, row by row -> (H, W, 3) uint8.

    Args:
        images: (H, W), (H, W, 3) or (H, W, 4) arrays, uint8 or floats in [0, 1]; sizes may differ.
        ncols: columns; None = ceil(sqrt(n)).
        labels: one caption per image (None = no caption row).
        pad: pixels between cells and around the sheet.
        background: RGB floats in [0, 1].
        cell_size: (height, width) of a cell; None = the largest image height and width.
        label_color: RGB floats of the captions.

    The sheet is ncols * cell_w + (ncols + 1) * pad wide and nrows * (cell_h + label_h) +
    (nrows + 1) * pad high, label_h being 0 without labels.
    """
    if len(images) == 0:
        raise ValueError("images: expected at least one image, got none")
    if labels is not None and len(labels) != len(images):
        raise ValueError(f"labels: expected {len(images)} labels (one per image), got {len(labels)}")
    ncols = math.ceil(math.sqrt(len(images))) if ncols is None else int(ncols)
    if ncols <= 0 or pad < 0:
        raise ValueError(f"ncols must be positive and pad non-negative, got ncols={ncols}, pad={pad}")
    ncols = min(ncols, len(images))
    nrows = math.ceil(len(images) / ncols)
    back = np.asarray(as_rgb(background, "background"), np.float32)
    fill = tuple(int(round(c * 255)) for c in back)
    pictures = [_to_rgb_uint8(image, back, i) for i, image in enumerate(images)]
    if cell_size is None:
        cell_height = max(p.shape[0] for p in pictures)
        cell_width = max(p.shape[1] for p in pictures)
    else:
        cell_height, cell_width = (int(s) for s in cell_size)

    font = ImageFont.load_default()
    label_height = 0
    if labels is not None:
        left, top, right, bottom = font.getbbox("Ag|")
        label_height = (bottom - top) + 2 * max(pad, 2)

    sheet_width = ncols * cell_width + (ncols + 1) * pad
    sheet_height = nrows * (cell_height + label_height) + (nrows + 1) * pad
    sheet = Image.new("RGB", (sheet_width, sheet_height), fill)
    draw = ImageDraw.Draw(sheet)
    text_fill = tuple(int(round(c * 255)) for c in as_rgb(label_color, "label_color"))
    for i, picture in enumerate(pictures):
        row, col = divmod(i, ncols)
        x = pad + col * (cell_width + pad)
        y = pad + row * (cell_height + label_height + pad)
        sheet.paste(_letterbox(picture, cell_height, cell_width, fill), (x, y))
        if labels is not None and labels[i]:
            text = str(labels[i])
            left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
            text_x = x + max(0, (cell_width - (right - left)) // 2) - left
            text_y = y + cell_height + (label_height - (bottom - top)) // 2 - top
            draw.text((text_x, text_y), text, fill=text_fill, font=font)
    return np.asarray(sheet)


def save_image(array: np.ndarray, path: str | os.PathLike, **save_options: Any) -> Path:
    """Write an (H, W), (H, W, 3) or (H, W, 4) uint8 image atomically (temporary file, then rename); returns
    `path`. `save_options` go to PIL (e.g. `quality=95` for a JPEG, `compress_level=1` for a PNG).

    The format follows the file suffix (PNG when there is none); readers never see a half-written
    file, and a failed write leaves any previous file untouched. Creates missing parent folders.
    The image is encoded in memory first: given a file, PIL's C encoder writes to its descriptor and does not
    check for short writes, so a disk that filled during the last write published a truncated JPEG as if
    whole (tests/reliability, full disk); `atomic_io.write_bytes_atomic` raises instead.
    """
    arr = np.asarray(array)
    if arr.dtype != np.uint8 or not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))):
        raise ValueError(f"array: expected an (H, W), (H, W, 3) or (H, W, 4) uint8 image, got {arr.shape} {arr.dtype}")
    path = Path(path)
    suffix = path.suffix.lower().lstrip(".")
    image_format = {"jpg": "JPEG", "jpeg": "JPEG", "": "PNG"}.get(suffix, suffix.upper())
    encoded = io.BytesIO()
    Image.fromarray(arr).save(encoded, format=image_format, **save_options)
    return write_bytes_atomic(path, encoded.getvalue())
