"""Contact sheets (grid size, letterboxing, captions) and atomic image writing."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from poseembroider.rendering import make_contact_sheet, save_image


def _solid(height, width, color):
    return np.broadcast_to(np.array(color, np.uint8), (height, width, 3)).copy()


def _images():
    return [
        _solid(30, 40, (255, 0, 0)),
        _solid(20, 20, (0, 255, 0)),
        _solid(40, 30, (0, 0, 255)),
        np.zeros((25, 25), np.uint8),  # grey-scale
        np.ones((10, 40, 3), np.float32),  # float, white
    ]


def test_grid_size_without_labels():
    sheet = make_contact_sheet(_images(), ncols=3, pad=4)
    cell_h, cell_w = 40, 40  # the largest height and width
    assert sheet.shape == (2 * cell_h + 3 * 4, 3 * cell_w + 4 * 4, 3)
    assert sheet.dtype == np.uint8
    # the first image sits in the first cell, centred (letterboxed vertically: 30 of 40 rows)
    np.testing.assert_array_equal(sheet[4 + 20, 4 + 20], [255, 0, 0])
    np.testing.assert_array_equal(sheet[4 + 2, 4 + 20], [255, 255, 255])


def test_small_images_are_scaled_to_fit_the_cell():
    sheet = make_contact_sheet(_images(), ncols=3, pad=0, background=(0.0, 0.0, 0.0))
    green = (sheet[:40, 40:80] == [0, 255, 0]).all(axis=-1)
    assert green.sum() > 0.9 * 40 * 40  # the 20x20 image fills the 40x40 cell


def test_labels_add_a_caption_row_with_text():
    plain = make_contact_sheet(_images(), ncols=3, pad=4)
    labelled = make_contact_sheet(_images(), ncols=3, labels=["a", "bb", "ccc", "dddd", "eeeee"], pad=4)
    assert labelled.shape[1] == plain.shape[1]
    label_height = (labelled.shape[0] - plain.shape[0]) // 2
    assert label_height >= 8 and labelled.shape[0] == plain.shape[0] + 2 * label_height
    caption_band = labelled[4 + 40 : 4 + 40 + label_height, 4 : 4 + 40]
    assert (caption_band.sum(axis=-1) < 300).any()  # dark text on the white background
    with pytest.raises(ValueError, match="labels"):
        make_contact_sheet(_images(), labels=["only one"])


def test_save_image_writes_atomically(tmp_path):
    image = np.random.default_rng(0).integers(0, 256, (12, 16, 3), dtype=np.uint8)
    path = save_image(image, tmp_path / "sub" / "sheet.png")
    np.testing.assert_array_equal(np.asarray(Image.open(path)), image)
    save_image(image[::-1].copy(), path)  # overwrite in place
    np.testing.assert_array_equal(np.asarray(Image.open(path)), image[::-1])
    with pytest.raises(ValueError, match="array"):
        save_image(image.astype(np.float32), path)
    np.testing.assert_array_equal(np.asarray(Image.open(path)), image[::-1])  # untouched
    assert [p.name for p in path.parent.iterdir()] == ["sheet.png"]  # no temporary left behind


def test_save_image_passes_options_to_the_encoder_and_writes_whole_files(tmp_path):
    image = np.random.default_rng(0).integers(0, 256, (64, 48, 3), dtype=np.uint8)
    low = save_image(image, tmp_path / "low.jpg", quality=10)
    high = save_image(image, tmp_path / "high.jpg", quality=95)
    assert low.stat().st_size < high.stat().st_size
    for path in (low, high):
        with Image.open(path) as decoded:
            decoded.load()  # a truncated file raises here
            assert decoded.format == "JPEG" and decoded.size == (48, 64)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["high.jpg", "low.jpg"]  # no temporaries left
