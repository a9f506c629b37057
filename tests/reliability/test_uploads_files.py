"""Uploads in the demos, at the functions a `file_uploader` result goes to: `prepare_uploaded_image` (the
retrieval and mesh-recovery demos, with and without a person box) and `uploaded_pair` (instruction generation,
the bad file on either side). Every file of `reliability_uploads.BAD_UPLOADS` (not pictures, other formats,
decompression bombs, huge, tiny, truncated) gets an `UploadError` that names the file and says what is wrong;
every picture of `GOOD_UPLOADS` (any PNG/JPG mode, animated, phone-sized, odd EXIF) gives a 256x192 crop in
[0, 1]; pictures with each of the 8 EXIF orientations come out upright; megabytes of text are refused by the
servers' own check (the browser's box cuts at `MAX_TEXT_CHARS`, a request can carry more). The slow test
reads a real 20000 x 20000 PNG bomb and a 50-megapixel strip under a 3 GB address-space cap.
"""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps
from reliability_uploads import (
    BAD_UPLOADS,
    GOOD_UPLOADS,
    MEGABYTE_TEXT,
    extreme_strip,
    real_png_bomb,
    reference_picture,
    with_orientation,
)

from poseembroider.demo_core_helpers import (
    MAX_TEXT_CHARS,
    UploadError,
    check_text,
    prepare_uploaded_image,
    read_uploaded_image,
)
from poseembroider.downstream.instruction_generation.demo_helpers import uploaded_pair

pytestmark = pytest.mark.usefixtures("one_torch_thread")

GOOD = GOOD_UPLOADS["RGB PNG"]
BOX = np.array([10.0, 10.0, 80.0, 110.0])


def _refusals(name: str, data: bytes):
    """Each demo's way to the decoder: name -> a call that must raise UploadError naming `name`."""
    return {
        "retrieval demo": lambda: prepare_uploaded_image(data, name),
        "mesh-recovery demo with a person box": lambda: prepare_uploaded_image(data, name, BOX),
        "instruction generation, picture A": lambda: uploaded_pair((data, name), (GOOD[1], GOOD[0])),
        "instruction generation, picture B": lambda: uploaded_pair((GOOD[1], GOOD[0]), (data, name)),
    }


@pytest.mark.reliability(area="uploads", subject="bad uploads at every demo's upload function")
def test_every_bad_upload_is_refused_with_a_message_naming_the_file(cases):
    for what, (name, data, phrase) in BAD_UPLOADS.items():
        for demo, call in _refusals(name, data).items():
            cases.tried()
            with pytest.raises(UploadError) as err:
                call()
            message = str(err.value)
            assert message.startswith(f"{name}: ") and phrase in message, f"{what}, {demo}: {message}"


@pytest.mark.reliability(area="uploads", subject="pictures of every PNG/JPG mode at every demo's upload function")
def test_every_picture_mode_gives_a_crop(cases):
    for what, (name, data) in GOOD_UPLOADS.items():
        cases.tried(3)
        with Image.open(io.BytesIO(data)) as shown:
            width, height = ImageOps.exif_transpose(shown).size
        box = np.array([0.0, 0.0, width, height])  # a person box as large as the picture (32 x 32 is the least)
        for crop in (prepare_uploaded_image(data, name), prepare_uploaded_image(data, name, box)):
            assert crop.shape == (3, 256, 192) and crop.dtype == torch.float32, what
            assert 0.0 <= float(crop.min()) and float(crop.max()) <= 1.0, what
        pair = uploaded_pair((data, name), (GOOD[1], GOOD[0]))
        assert pair.A.image is not None and tuple(pair.A.image.shape) == (3, 256, 192), what


def _quadrant_colors(image: torch.Tensor) -> list[tuple[int, ...]]:
    """Mean colour (rounded to tens) of the centre of each quadrant of a (3, H, W) uint8 picture."""
    _, height, width = image.shape
    centres = [(height // 4, width // 4), (height // 4, 3 * width // 4), (3 * height // 4, width // 4)]
    centres.append((3 * height // 4, 3 * width // 4))
    return [
        tuple(int(round(float(v) / 10)) for v in image[:, y - 3 : y + 3, x - 3 : x + 3].float().mean((1, 2)))
        for y, x in centres
    ]


@pytest.mark.reliability(area="uploads", subject="EXIF rotations (8 orientations, JPEG and PNG): the crop is upright")
def test_each_exif_orientation_is_shown_upright(cases):
    reference = reference_picture()  # 96 x 128: red, green / blue, yellow quadrants
    expected = _quadrant_colors(torch.from_numpy(np.array(reference)).permute(2, 0, 1))
    for fmt in ("JPEG", "PNG"):
        for orientation in range(1, 9):
            cases.tried()
            data = with_orientation(reference, orientation, fmt)
            shown = read_uploaded_image(data, f"turned_{orientation}.{fmt.lower()}")
            assert tuple(shown.shape) == (3, 128, 96), (fmt, orientation, tuple(shown.shape))
            assert _quadrant_colors(shown) == expected, (fmt, orientation)
            # a person box is in pixels of the picture as shown: the top-left quadrant crops the red one
            crop = prepare_uploaded_image(data, "turned.jpg", np.array([8.0, 8.0, 40.0, 56.0]))
            centre = crop[:, 118:138, 86:106].mean((1, 2))
            assert centre[0] > 0.8 and centre[1] < 0.2 and centre[2] < 0.2, (fmt, orientation, centre.tolist())


@pytest.mark.reliability(area="uploads", subject="texts of megabytes (the demos' description check)")
def test_megabytes_of_text_are_refused_with_a_message(cases):
    for text in (MEGABYTE_TEXT, "a" * (MAX_TEXT_CHARS + 1), "\u00e9" * 10**6, " " * 10**6 + "x" * (MAX_TEXT_CHARS + 1)):
        cases.tried()
        with pytest.raises(ValueError, match=f"at most {MAX_TEXT_CHARS:,} are read"):
            check_text(text)
    cases.tried()
    assert check_text(" " * 10**6) is None and check_text("x" * MAX_TEXT_CHARS) == "x" * MAX_TEXT_CHARS


@pytest.mark.reliability(area="uploads", subject="bad image files read by `embed --images` and datasets")
def test_bad_image_files_get_an_error_naming_the_file(tmp_path, cases):
    """The same files as image files on disk (`datasets.image_processing.load_image`, used by the datasets and
    `poseembroider embed --images`): each is read or refused with a ValueError naming it; a decompression bomb
    was a raw `DecompressionBombError`, a zTXt bomb a ValueError naming nothing."""
    from poseembroider.datasets.image_processing import load_image

    for what, (name, data, _) in BAD_UPLOADS.items():
        path = tmp_path / name
        path.write_bytes(data)
        cases.tried()
        try:
            load_image(path)
        except ValueError as err:
            assert str(path) in str(err), (what, str(err))


_CAPPED = textwrap.dedent(
    """
    import resource, sys, time
    sys.path.insert(0, {here!r})
    import torch
    torch.set_num_threads(1)
    from reliability_uploads import extreme_strip, real_png_bomb
    from poseembroider.demo_core_helpers import UploadError, prepare_uploaded_image
    files = {{"bomb.png": real_png_bomb(20000), "strip.png": extreme_strip(20000, 2500),
              "wide.png": extreme_strip(50000, 1000)}}
    used = int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (used + 3 * 2**30, resource.RLIM_INFINITY))
    for name, data in files.items():
        start = time.perf_counter()
        try:
            crop = prepare_uploaded_image(data, name)
            print(name, "crop", tuple(crop.shape), f"{{time.perf_counter() - start:.2f}}", flush=True)
        except UploadError as err:
            print(name, "refused", f"{{time.perf_counter() - start:.2f}}", str(err)[:120], flush=True)
    """
)


@pytest.mark.slow
@pytest.mark.reliability(area="uploads", subject="a real PNG bomb and 50-megapixel strips under a 3 GB memory cap")
def test_a_real_bomb_and_extreme_strips_stay_within_memory(cases):
    """A 20000 x 20000 PNG (1.2 GB of pixels, ~1 MB on disk) is refused from its header; strips of 50
    megapixels (20000 x 2500, 50000 x 1000), under the pixel limit, are reduced before the 4:3 padding, which at
    full size asked for 8 GB (20000 x 2500) and 40 GB (50000 x 1000)."""
    cases.tried(3)
    code = _CAPPED.format(here=str(Path(__file__).parent))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = dict(line.split(" ", 1) for line in done.stdout.strip().splitlines())
    assert lines["bomb.png"].startswith("refused") and "decompression bomb" in lines["bomb.png"], lines
    assert lines["strip.png"].startswith("crop (3, 256, 192)") and lines["wide.png"].startswith("crop (3, 256, 192)")
    assert all(float(v.split()[-1] if v.startswith("crop") else v.split()[1]) < 30 for v in lines.values()), lines
    assert extreme_strip and real_png_bomb  # built in the child
