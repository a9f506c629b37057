import numpy as np
import pytest
import torch
from PIL import Image

from poseembroider.datasets.image_processing import (
    crop_box,
    get_image_processing,
    load_image,
    pad_resize,
    shrink_longest_side,
)


@pytest.mark.parametrize("hw", [(300, 100), (100, 300), (256, 192), (512, 384), (57, 91)])
def test_pad_resize_gives_256x192_with_the_content_centred(hw):
    image = torch.full((3, *hw), 200, dtype=torch.uint8)
    out = pad_resize(image)
    assert out.shape == (3, 256, 192) and out.dtype == torch.uint8
    content = (out[0] > 100).float()
    rows, cols = content.mean(dim=1), content.mean(dim=0)
    # symmetric padding: the content's centre is the image centre (within a couple of pixels)
    assert abs((rows * torch.arange(256)).sum() / rows.sum() - 127.5) < 2
    assert abs((cols * torch.arange(192)).sum() / cols.sum() - 95.5) < 2


def test_tall_image_is_padded_on_the_sides_only():
    out = pad_resize(torch.full((3, 400, 100), 255, dtype=torch.uint8))
    assert out[:, :, :60].max() == 0 and out[:, 0, 96].min() > 250  # black side bands, content to the top


def test_crop_box_clips_and_rejects_empty_boxes():
    image = torch.zeros(3, 50, 40, dtype=torch.uint8)
    assert crop_box(image, (-5, 10, 30, 100)).shape == (3, 40, 30)
    with pytest.raises(ValueError, match="empty"):
        crop_box(image, (45, 0, 60, 10))


def test_eval_processing_scales_to_unit_range():
    image = torch.tensor([0, 255], dtype=torch.uint8).repeat(3, 128, 96)
    out = get_image_processing("smplerx_eval")(image)
    assert out.dtype == torch.float32 and out.min() == 0.0 and out.max() == 1.0


def test_unknown_processing_is_named():
    with pytest.raises(ValueError, match="unknown image processing 'nope'"):
        get_image_processing("nope")


def test_missing_and_corrupt_images_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.png"):
        load_image(tmp_path / "missing.png")
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(ValueError, match="corrupt or unreadable image file: .*bad.jpg"):
        load_image(bad)
    good = tmp_path / "good.png"
    Image.fromarray(np.zeros((4, 5, 3), np.uint8)).save(good)
    assert load_image(good).size == (5, 4)


def test_shrink_longest_side_keeps_small_pictures_and_reduces_large_ones_with_their_aspect():
    small = torch.randint(0, 256, (3, 300, 200), dtype=torch.uint8)
    assert shrink_longest_side(small, 512) is small
    strip = torch.zeros(3, 500, 5000, dtype=torch.uint8)
    strip[:, :, 2500:] = 200  # right half bright: the reduction keeps where things are
    reduced = shrink_longest_side(strip, 512)
    assert reduced.dtype == torch.uint8 and reduced.shape == (3, 51, 512)  # stride 4, then 1250 -> 512
    assert reduced[:, :, :250].max() == 0 and reduced[:, :, 262:].min() == 200
    # the crop of a reduced picture is the crop of the picture, up to resampling
    photo = torch.from_numpy(np.kron(np.random.default_rng(0).integers(0, 256, (3, 12, 16)), np.ones((1, 200, 200))))
    photo = photo.to(torch.uint8)  # 2400 x 3200 of 200-pixel tiles
    full, shrunk = pad_resize(photo).float(), pad_resize(shrink_longest_side(photo, 1024)).float()
    assert (full - shrunk).abs().mean() < 3.0
