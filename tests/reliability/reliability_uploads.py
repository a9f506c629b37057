"""Uploads for the demo tests (`test_uploads_*.py`): files that are not pictures, decompression bombs, huge
and tiny pictures, pictures in every mode, EXIF rotations, megabytes of text.

`BAD_UPLOADS`: name -> (file name, bytes, a phrase the refusal must contain); `GOOD_UPLOADS`: name -> (file
name, bytes) of pictures every demo must read into a 256x192 crop. Bytes are built here, offline, in a few ms
each (the bombs are headers that claim their size, or compressed streams of zeros); `real_png_bomb` and
`extreme_strip` build the expensive ones for the slow tests.
"""

from __future__ import annotations

import io
import pickle
import struct
import zlib

import numpy as np
from PIL import Image

# ------------------------------------------------------------------------------------------- builders


def picture(width: int, height: int, fmt: str = "PNG", mode: str = "RGB", color: object = None, **save) -> bytes:
    """A plain picture of `mode` saved as `fmt`."""
    if color is None:
        color = {"L": 128, "I;16": 40000, "P": 3, "1": 1, "RGBA": (200, 30, 30, 128), "CMYK": (0, 200, 200, 0)}.get(
            mode, (200, 30, 30)
        )
    buffer = io.BytesIO()
    Image.new(mode, (width, height), color).save(buffer, format=fmt, **save)
    return buffer.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width: int, height: int, idat: bytes | None = None, extra: bytes = b"") -> bytes:
    """A PNG whose header says width x height (RGB, 8 bits) over `idat` (a few compressed zeros by default)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64) if idat is None else idat
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + extra + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def jpeg_claiming(width: int, height: int) -> bytes:
    """A small real JPEG whose SOF header is patched to say width x height."""
    data = bytearray(picture(16, 16, "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def ztxt_bomb() -> bytes:
    """A 64x64 PNG carrying a zTXt chunk of 64 MB of zeros compressed to ~64 KB."""
    text = b"Comment\0\0" + zlib.compress(b"\0" * (64 * 2**20), 9)
    rows = b"".join(b"\0" + b"\x80" * 64 * 3 for _ in range(64))
    return png_claiming(64, 64, zlib.compress(rows), extra=_chunk(b"zTXt", text))


def real_png_bomb(side: int = 20000) -> bytes:
    """A valid side x side RGB PNG of black pixels: ~1.2 GB decoded at 20000, about 1.2 MB on disk."""
    compressor = zlib.compressobj(9)
    row = b"\0" * (1 + 3 * side)
    idat = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    return png_claiming(side, side, idat)


def extreme_strip(width: int = 20000, height: int = 2500) -> bytes:
    """A 50-megapixel strip (under the pixel limit), ~0.7 MB as PNG: padded to 4:3 at full size it took 8 GB."""
    return picture(width, height, "PNG", compress_level=1)


def truncated(data: bytes, keep: float = 0.6) -> bytes:
    return data[: int(len(data) * keep)]


def _noise_jpeg(width: int, height: int) -> bytes:
    pixels = np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


# ------------------------------------------------------------------------------------------ EXIF rotations

# the transpose a viewer applies for each EXIF orientation, and its inverse (to store a picture so that it is
# seen as the reference once turned)
SHOWN_AS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
STORED_AS = {**SHOWN_AS, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}


def reference_picture(width: int = 96, height: int = 128) -> Image.Image:
    """An upright picture whose quadrants have four colours (any turn or mirror moves them)."""
    pixels = np.zeros((height, width, 3), np.uint8)
    h, w = height // 2, width // 2
    pixels[:h, :w] = (230, 20, 20)
    pixels[:h, w:] = (20, 230, 20)
    pixels[h:, :w] = (20, 20, 230)
    pixels[h:, w:] = (230, 230, 20)
    return Image.fromarray(pixels)


def with_orientation(reference: Image.Image, orientation: int, fmt: str = "JPEG") -> bytes:
    """`reference` stored turned, with the EXIF orientation that shows it upright again."""
    stored = reference if orientation == 1 else reference.transpose(STORED_AS[orientation])
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    stored.save(buffer, format=fmt, exif=exif.tobytes(), **({"quality": 95} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def with_raw_exif(exif: bytes) -> bytes:
    """A JPEG carrying `exif` (raw, possibly garbage) in its APP1 segment."""
    buffer = io.BytesIO()
    reference_picture().save(buffer, format="JPEG", exif=exif)
    return buffer.getvalue()


# ------------------------------------------------------------------------------------------- the corpus

MAX_BYTES_PLUS = 33 * 2**20

BAD_UPLOADS: dict[str, tuple[str, bytes, str]] = {
    "empty file": ("empty.png", b"", "the file is empty"),
    "plain text": ("notes.png", b"remember to buy milk\n" * 10, "not a readable PNG/JPG"),
    "a PDF": ("paper.jpg", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n", "not a readable PNG/JPG"),
    "a zip": ("archive.png", b"PK\x03\x04" + b"\0" * 200, "not a readable PNG/JPG"),
    "a pickle": ("model.png", pickle.dumps({"weights": list(range(50))}), "not a readable PNG/JPG"),
    "an ELF binary": ("run.png", b"\x7fELF\x02\x01\x01" + b"\0" * 120, "not a readable PNG/JPG"),
    "HTML with a script": ("page.png", b"<html><script>alert(1)</script></html>", "not a readable PNG/JPG"),
    "SVG with a script": (
        "logo.png",
        b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        "not a readable PNG/JPG",
    ),
    "random bytes": ("noise.jpg", np.random.default_rng(1).bytes(4096), "not a readable PNG/JPG"),
    "PNG signature only": ("stub.png", b"\x89PNG\r\n\x1a\n", "not a readable PNG/JPG"),
    "a GIF named .png": ("anim.png", picture(64, 64, "GIF", "P"), "a GIF image"),
    "a BMP": ("old.png", picture(64, 64, "BMP"), "a BMP image"),
    "a TIFF": ("scan.jpg", picture(64, 64, "TIFF"), "a TIFF image"),
    "a WebP": ("web.png", picture(64, 64, "WEBP"), "a WEBP image"),
    "decompression bomb PNG 100000 x 100000 (header)": (
        "bomb.png",
        png_claiming(100_000, 100_000),
        "decompression bomb",
    ),
    "PNG of 20000 x 20000 (header, 400 megapixels)": ("big.png", png_claiming(20_000, 20_000), "decompression bomb"),
    "PNG of 10000 x 6000 (60 megapixels)": ("huge.png", png_claiming(10_000, 6_000), "60 megapixels"),
    "JPEG claiming 60000 x 60000": ("bomb.jpg", jpeg_claiming(60_000, 60_000), "decompression bomb"),
    "JPEG claiming 9000 x 8000": ("huge.jpg", jpeg_claiming(9_000, 8_000), "72 megapixels"),
    "PNG with a 64 MB zTXt chunk": ("text_bomb.png", ztxt_bomb(), "not a readable PNG/JPG"),
    "file of 33 MB": ("heavy.png", picture(64, 64) + b"\0" * MAX_BYTES_PLUS, "at most 32 MB"),
    "1 x 1 PNG": ("dot.png", picture(1, 1), "too small"),
    "1 x 1 JPEG": ("dot.jpg", picture(1, 1, "JPEG"), "too small"),
    "31 x 400 PNG": ("thin.png", picture(31, 400), "too small"),
    "4000 x 8 strip": ("strip.png", picture(4000, 8), "too small"),
    "truncated PNG": ("cut.png", truncated(picture(300, 200, "PNG", "RGB", (1, 2, 3)), 0.5), ""),  # any message
    "truncated JPEG of noise": ("cut.jpg", truncated(_noise_jpeg(120, 160), 0.3), "not a readable PNG/JPG"),
    "PNG with a broken pixel stream": (
        "broken.png",
        png_claiming(64, 64, b"\x78\x9c" + b"\xff" * 40),
        "not a readable PNG/JPG",
    ),
}

GOOD_UPLOADS: dict[str, tuple[str, bytes]] = {
    "RGB PNG": ("rgb.png", picture(90, 120)),
    "RGBA PNG": ("rgba.png", picture(90, 120, mode="RGBA")),
    "grayscale PNG": ("gray.png", picture(90, 120, mode="L")),
    "16-bit grayscale PNG": ("gray16.png", picture(90, 120, mode="I;16")),
    "palette PNG": ("palette.png", picture(90, 120, mode="P")),
    "1-bit PNG": ("bits.png", picture(90, 120, mode="1")),
    "interlaced PNG": ("interlaced.png", picture(90, 120, optimize=False)),
    "CMYK JPEG": ("cmyk.jpg", picture(90, 120, "JPEG", "CMYK")),
    "progressive JPEG": ("progressive.jpg", picture(90, 120, "JPEG", progressive=True)),
    "grayscale JPEG": ("gray.jpg", picture(90, 120, "JPEG", "L")),
    "smallest accepted (32 x 32)": ("small.png", picture(32, 32)),
    "animated PNG (first frame)": (
        "anim.png",
        picture(64, 64, save_all=True, append_images=[Image.new("RGB", (64, 64))]),
    ),
    "phone-sized JPEG (4000 x 3000)": ("photo.jpg", picture(4000, 3000, "JPEG")),
    "garbage EXIF": ("garbage.jpg", with_raw_exif(b"Exif\0\0" + b"\xde\xad\xbe\xef" * 8)),
}


def _invalid_orientation() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 9  # orientations are 1 to 8
    buffer = io.BytesIO()
    reference_picture().save(buffer, format="JPEG", exif=exif.tobytes())
    return buffer.getvalue()


GOOD_UPLOADS["EXIF orientation 9 (invalid)"] = ("odd.jpg", _invalid_orientation())

MEGABYTE_TEXT = "the person raises the left arm " * (3 * 2**20 // 31)
"""About 3 MB of plausible text: what a pasted file would put in a text box."""
