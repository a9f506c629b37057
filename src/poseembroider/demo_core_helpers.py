"""What the any-to-any retrieval demo (`demo_core.py`) computes, without streamlit, so it can be tested.

- `occlude_patches`: black out a square of 16-px patches of the query crop (the ViT's patch grid).
- `prepare_uploaded_image`: a user's PNG/JPG turned into a crop like the datasets' (the whole picture or a
  person box, padded to 4:3, resized to 256x192, in [0, 1]), after checks that read only the header
  (`check_upload`: size in bytes, format, pixel count, smallest side), so a file that is not a picture, a
  decompression bomb, a huge or a tiny picture gets an `UploadError` naming it and the app stays up. Every
  demo that takes uploads goes through it.
- `query_batch`: one query (any of image, pose, text tokens) as a raw batch of one.

The gallery of a split and the ranking of a query are library code (`representation.split_gallery`,
`representation.retrieve_from_batch`): the demo ranks exactly as the evaluation does.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from poseembroider.datasets.image_processing import IMAGE_HW, scale_bbox, to_uint8_tensor
from poseembroider.representation import crop_person

MAX_TEXT_CHARS = 2000
"""Longest description a demo reads (the captions are a few hundred characters; the text encoder keeps its first
tokens anyway): a pasted megabyte is refused with a message, not tokenised."""


def check_text(text: str | None) -> str | None:
    """The description stripped, None when empty; `ValueError` past `MAX_TEXT_CHARS` characters. The text
    boxes cut at `MAX_TEXT_CHARS` in the browser; this is the server's own check (a request can carry more)."""
    text = (text or "").strip()
    if len(text) > MAX_TEXT_CHARS:
        raise ValueError(
            f"the description has {len(text):,} characters; at most {MAX_TEXT_CHARS:,} are read: shorten it"
        )
    return text or None


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


MAX_UPLOAD_BYTES = 32 * 2**20
"""Largest upload read (a 50-megapixel phone JPEG is ~20 MB)."""
MAX_UPLOAD_PIXELS = 50_000_000
"""Largest picture decoded, from the header's width x height (~150 MB of RGB pixels): a PNG of zeros of
20000 x 20000 weighs a few hundred KB; PIL itself only warns up to 89 M pixels."""
MIN_UPLOAD_SIDE = 32
"""Smallest side in pixels of a picture (and of a person box): blown up to 256x192, less shows no person."""
UPLOAD_FORMATS = ("PNG", "JPEG", "MPO")
"""Formats read, as PIL names them (MPO: the multi-picture JPEG of some phones)."""


class UploadError(ValueError):
    """An upload that is not a usable picture; the message names the file and says what is wrong."""


def check_upload(data: bytes, name: str = "uploaded image") -> tuple[int, int]:
    """(width, height) of PNG/JPG bytes, read from the header only; `UploadError` naming `name` for an empty
    or too large file (> `MAX_UPLOAD_BYTES`), an unreadable or other format, more than `MAX_UPLOAD_PIXELS`
    pixels (decompression bombs included) or a side under `MIN_UPLOAD_SIDE`."""
    if not data:
        raise UploadError(f"{name}: the file is empty")
    if len(data) > MAX_UPLOAD_BYTES:
        raise UploadError(
            f"{name}: {len(data) / 2**20:.1f} MB; upload a picture of at most {MAX_UPLOAD_BYTES >> 20} MB"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as picture:  # header only
                kind, (width, height) = picture.format, picture.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UploadError(f"{name}: refused, far too many pixels to decode (a decompression bomb?)") from None
    except UnidentifiedImageError:
        raise UploadError(
            f"{name}: not a readable PNG/JPG image (no known picture format; it starts {data[:8]!r})"
        ) from None
    except Exception as err:  # noqa: BLE001 - untrusted bytes: any failure of PIL's parsers is "not a picture"
        raise UploadError(f"{name}: not a readable PNG/JPG image ({type(err).__name__}: {err})") from None
    if kind not in UPLOAD_FORMATS:
        raise UploadError(f"{name}: a {kind} image; upload a PNG or a JPG")
    if width * height > MAX_UPLOAD_PIXELS:
        raise UploadError(
            f"{name}: {width} x {height} pixels ({width * height / 1e6:.0f} megapixels); the demos read at most "
            f"{MAX_UPLOAD_PIXELS / 1e6:.0f} megapixels: scale the picture down first"
        )
    if min(width, height) < MIN_UPLOAD_SIDE:
        raise UploadError(
            f"{name}: {width} x {height} pixels is too small to show a person; at least {MIN_UPLOAD_SIDE} pixels a side"
        )
    return width, height


def _decoded_picture(data: bytes, name: str) -> Image.Image:
    """The RGB picture of checked PNG/JPG bytes as shown (EXIF orientation of phone pictures applied)."""
    check_upload(data, name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as picture:
                return ImageOps.exif_transpose(picture).convert("RGB")
    except Exception as err:  # noqa: BLE001 - a truncated or corrupt file fails only when decoded
        raise UploadError(f"{name}: not a readable PNG/JPG image ({type(err).__name__}: {err})") from None


def read_uploaded_image(data: bytes, name: str = "uploaded image") -> torch.Tensor:
    """PNG/JPG bytes -> (3, H, W) uint8 picture as shown (EXIF orientation of phone pictures applied),
    after `check_upload`; `UploadError` naming `name` when it cannot be decoded."""
    return to_uint8_tensor(_decoded_picture(data, name))


BOX_SCALE = 1.1
"""Margin of a person box, as `representation.crop_person` (the `sf11` of the dataset names)."""


def prepare_uploaded_image(data: bytes, name: str = "uploaded image", box: np.ndarray | None = None) -> torch.Tensor:
    """PNG/JPG bytes -> (3, 256, 192) float crop in [0, 1], processed like the dataset crops
    (`representation.crop_person`): the whole picture, or `box` (4,) [x1, y1, x2, y2] a tight person box in
    pixels of the picture as shown (after its EXIF rotation) enlarged by the datasets' 1.1, zero-padded to 4:3
    (H:W) and resized; a region longer than `image_processing.MAX_CROP_SIDE` is reduced first. `UploadError`
    naming `name` for a bad file (`check_upload`) or a box that leaves less than `MIN_UPLOAD_SIDE` pixels a side
    inside the picture."""
    picture = _decoded_picture(data, name)
    if box is not None:
        width, height = picture.size
        x1, y1, x2, y2 = (float(v) for v in box)
        inside_w, inside_h = min(x2, width) - max(x1, 0.0), min(y2, height) - max(y1, 0.0)
        if min(inside_w, inside_h) < MIN_UPLOAD_SIDE:
            raise UploadError(
                f"{name}: the person box [{x1:g}, {y1:g}, {x2:g}, {y2:g}] leaves "
                f"{max(inside_w, 0):g} x {max(inside_h, 0):g} pixels inside the {width} x {height} picture; "
                f"at least {MIN_UPLOAD_SIDE} pixels a side"
            )
        left, top, right, bottom = (int(v) for v in scale_bbox([x1, y1, x2, y2], BOX_SCALE, (height, width)))
        picture = picture.crop((left, top, right, bottom))
    return crop_person(to_uint8_tensor(picture))


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
