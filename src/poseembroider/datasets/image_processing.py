"""Image crops as the models see them: loading, bbox crop, pad to 4:3, resize to 256x192, augmentation.

Follows the original's SMPLer-X-style processing: the person crop is zero-padded symmetrically to the
4:3 (H:W) aspect ratio and bicubic-resized (antialiased) to 256x192; pixels are scaled to [0, 1]
without ImageNet normalisation. Training adds a random resized crop, colour jitter, blur and
solarisation per sample; no flips or rotations (they would break the agreement with the pose and text;
left/right flips are done jointly by the dataset). Schemes are registered in `IMAGE_PROCESSING`.
`crop_keypoints` / `flip_keypoints` move 2D joints with the crop, padding, resize and flip of the images;
`AffineJitter` draws a random similarity (rotation, scale, shift) that `warp_crop` / `warp_keypoints` apply to
a crop and its 2D joints together (the geometric augmentation of keypoint training).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

IMAGE_HW: tuple[int, int] = (256, 192)
"""(height, width) of the model input crops."""


CLOCKWISE_TURNS = {90: Image.Transpose.ROTATE_270, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_90}
"""Degrees clockwise -> PIL transpose (PIL's ROTATE_n turn counter-clockwise)."""


def load_image(path: Path, rotation_cw: int = 0) -> Image.Image:
    """Open an RGB image, turned `rotation_cw` degrees clockwise (0, 90, 180, 270: BEDLAM's close-up frames
    are stored turned and used turned back, 90); a missing or corrupt file raises an error naming it."""
    path = Path(path)
    if rotation_cw not in (0, *CLOCKWISE_TURNS):
        raise ValueError(f"{path}: rotation_cw must be 0, 90, 180 or 270, got {rotation_cw!r}")
    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            return image.transpose(CLOCKWISE_TURNS[rotation_cw]) if rotation_cw else image
    except FileNotFoundError:
        raise FileNotFoundError(f"image file not found: {path}") from None
    except Image.DecompressionBombError as err:  # more than 2 x PIL's MAX_IMAGE_PIXELS (~179 M pixels)
        raise ValueError(f"refused image file: {path} ({err})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:  # ValueError: a zTXt bomb, a bad mode
        raise ValueError(f"corrupt or unreadable image file: {path} ({err})") from None


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image file from its header (nothing decoded); a missing file or one that is not an
    image raises an error naming it, as `load_image` does (PIL's own names the file in an OSError)."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            return image.width, image.height
    except FileNotFoundError:
        raise FileNotFoundError(f"image file not found: {path}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise ValueError(f"corrupt or unreadable image file: {path} ({err})") from None


def to_uint8_tensor(image: Image.Image | np.ndarray) -> torch.Tensor:
    """PIL image or (H, W, 3) uint8 array -> (3, H, W) uint8 tensor."""
    array = np.array(image, dtype=np.uint8)  # a writable copy: torch refuses read-only buffers
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"image: expected (H, W, 3) RGB, got shape {array.shape}")
    return torch.from_numpy(array).permute(2, 0, 1)


def crop_box(image: torch.Tensor, bbox: tuple[float, float, float, float] | torch.Tensor) -> torch.Tensor:
    """(3, H, W) image cropped to [x1, y1, x2, y2] (pixels, clipped to the image)."""
    height, width = image.shape[1:]
    x1, y1, x2, y2 = (float(v) for v in bbox)
    x1, y1 = max(0, int(round(x1))), max(0, int(round(y1)))
    x2, y2 = min(width, int(round(x2))), min(height, int(round(y2)))
    if x2 <= x1 or y2 <= y1:
        raise ValueError(f"bbox {list(map(float, bbox))} is empty inside a {width}x{height} image")
    return image[:, y1:y2, x1:x2]


def scale_bbox(tight: Sequence[float], scale_factor: float, frame_hw: Sequence[int]) -> np.ndarray:
    """(4,) int64 crop box [x1, y1, x2, y2] (PIL convention) around a tight person box: every side moves out by
    (scale_factor - 1) * diagonal / 2, truncated to integers and clipped to the (height, width) frame; the
    original pipeline's `get_scaled_bbox` (the `sf11` of the dataset names is scale_factor 1.1)."""
    height, width = (int(v) for v in frame_hw)
    if height < 1 or width < 1:
        raise ValueError(f"frame_hw {tuple(frame_hw)}: height and width must be >= 1")
    x1, y1, x2, y2 = (float(v) for v in tight)
    offset = (scale_factor - 1.0) * math.hypot(x2 - x1, y2 - y1) / 2.0
    x1, y1, x2, y2 = int(x1 - offset), int(y1 - offset), int(x2 + offset), int(y2 + offset)
    x1, x2 = max(x1, 0), min(x2, width)
    y1, y2 = max(y1, 0), min(y2, height)
    return np.array([x1, y1, x2, y2], dtype=np.int64)


MAX_CROP_SIDE = 1024
"""Longest side, in pixels, of a picture region handed to `pad_resize` by `shrink_longest_side` (the crop ends
at 256x192): padding a 50-megapixel strip (20000 x 2500, a 0.7 MB PNG) to 4:3 at full size took 8 GB of
memory and 37 s, an 8000 x 6000 photo 1.9 GB."""


def shrink_longest_side(image: torch.Tensor, max_side: int = MAX_CROP_SIDE) -> torch.Tensor:
    """(3, H, W) uint8 -> itself when max(H, W) <= `max_side`, else reduced, aspect kept, to a longest side of
    `max_side` (3, h, w) uint8: an integer stride first (a view: the full picture is never converted to float)
    down to at most 2 * `max_side`, then an antialiased bilinear resize. Crops of user pictures go through it
    before `pad_resize`, which pads at the input's size (see `MAX_CROP_SIDE`); the dataset crops are smaller."""
    longest = max(image.shape[1:])
    if longest <= max_side:
        return image
    stride = longest // (2 * max_side)
    if stride >= 2:
        image = image[:, ::stride, ::stride]
    height, width = image.shape[1:]
    scale = max_side / max(height, width)
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    resized = F.interpolate(image[None].float(), size=size, mode="bilinear", antialias=True, align_corners=False)
    return resized[0].round().clamp(0, 255).to(torch.uint8)


def pad_resize(image: torch.Tensor, out_hw: tuple[int, int] = IMAGE_HW) -> torch.Tensor:
    """Zero-pad a (3, H, W) uint8 image symmetrically towards the aspect of `out_hw`, then bicubic-resize.

    Padding as the original: when the image is too wide (out_w / W < out_h / H) its top and bottom get
    int(|W * out_h / out_w - H| / 2) rows each, otherwise its sides get int(|H * out_w / out_h - W| / 2)
    columns each (the truncation leaves the aspect off by at most a pixel; the resize absorbs it).
    Returns (3, out_h, out_w) uint8.
    """
    _, height, width = image.shape
    out_h, out_w = out_hw
    if out_w / width < out_h / height:
        pad = int(abs(width / out_w * out_h - height) / 2)
        padded = F.pad(image, (0, 0, pad, pad))
    else:
        pad = int(abs(height / out_h * out_w - width) / 2)
        padded = F.pad(image, (pad, pad, 0, 0))
    if padded.shape[1:] == out_hw:
        return padded
    resized = F.interpolate(padded[None].float(), size=out_hw, mode="bicubic", antialias=True, align_corners=False)
    return resized[0].round().clamp(0, 255).to(torch.uint8)


def crop_keypoints(
    points: torch.Tensor,
    bbox: tuple[float, float, float, float] | torch.Tensor,
    image_hw: tuple[int, int],
    out_hw: tuple[int, int] = IMAGE_HW,
) -> torch.Tensor:
    """Points (..., 2) (x, y) in pixels of an (H, W) = `image_hw` image -> pixels of the crop that
    `pad_resize(crop_box(image, bbox), out_hw)` makes of it (pixel centres at integers throughout).

    Same rounding, clipping and padding as those two functions; the resize maps pixel centres as
    `F.interpolate(align_corners=False)`: x_out = (x_in + 0.5) * out_w / padded_w - 0.5. Points outside the
    crop keep their (outside) coordinates.
    """
    height, width = image_hw
    x1, y1, x2, y2 = (float(v) for v in bbox)
    x1, y1 = max(0, int(round(x1))), max(0, int(round(y1)))
    x2, y2 = min(width, int(round(x2))), min(height, int(round(y2)))
    if x2 <= x1 or y2 <= y1:
        raise ValueError(f"bbox {list(map(float, bbox))} is empty inside a {width}x{height} image")
    crop_w, crop_h = x2 - x1, y2 - y1
    out_h, out_w = out_hw
    pad_x = pad_y = 0
    if out_w / crop_w < out_h / crop_h:
        pad_y = int(abs(crop_w / out_w * out_h - crop_h) / 2)
    else:
        pad_x = int(abs(crop_h / out_h * out_w - crop_w) / 2)
    padded_w, padded_h = crop_w + 2 * pad_x, crop_h + 2 * pad_y
    offset = points.new_tensor([pad_x - x1 + 0.5, pad_y - y1 + 0.5])
    scale = points.new_tensor([out_w / padded_w, out_h / padded_h])
    return (points + offset) * scale - 0.5


def flip_keypoints(points: torch.Tensor, width: int, permutation: tuple[int, ...] | torch.Tensor) -> torch.Tensor:
    """Joints (..., J, 2) in pixels of a `width`-wide image -> the same joints in the image flipped left/right
    (`image.flip(-1)`): x -> width - 1 - x, and joint j takes the place of its mirror `permutation[j]`."""
    flipped = points[..., list(permutation), :].clone()
    flipped[..., 0] = (width - 1) - flipped[..., 0]
    return flipped


@dataclass(frozen=True)
class AffineJitter:
    """A random similarity of the crop about its centre: p_out = s R(theta) (p - c) + c + t, in pixels.

    Keypoint training cannot use the random resized crop (pixels leave their 2D joints), yet a few thousand
    crops seen twenty times are learnt by heart; a similarity applied to the image and its joints together
    makes every epoch's crops new ones. The pose stays valid: scale and shift do not change it, and an
    in-plane turn by theta is a roll of the camera about its optical axis (`camera_roll`).
    """

    rotation_deg: float = 30.0  # theta uniform in [-rotation_deg, rotation_deg]
    scale: tuple[float, float] = (0.75, 1.25)  # s log-uniform in this range
    translate: float = 0.1  # t uniform in +-translate * (W, H)
    probability: float = 1.0  # share of samples transformed (the others keep the identity)

    def __post_init__(self) -> None:
        low, high = self.scale
        if not 0 < low <= high:
            raise ValueError(f"AffineJitter.scale {self.scale}: need 0 < low <= high")
        if self.rotation_deg < 0 or self.translate < 0 or not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"AffineJitter {self}: rotation_deg and translate must be >= 0, probability in [0, 1]")

    def draw(self, rng: random.Random, out_hw: tuple[int, int] = IMAGE_HW) -> tuple[torch.Tensor, float]:
        """(matrix (2, 3) float32 mapping crop pixels to jittered crop pixels, theta in radians)."""
        if self.probability < 1.0 and rng.random() >= self.probability:
            return similarity_matrix(0.0, 1.0, (0.0, 0.0), out_hw), 0.0
        theta = math.radians(rng.uniform(-self.rotation_deg, self.rotation_deg))
        scale = math.exp(rng.uniform(math.log(self.scale[0]), math.log(self.scale[1])))
        height, width = out_hw
        shift = (rng.uniform(-1, 1) * self.translate * width, rng.uniform(-1, 1) * self.translate * height)
        return similarity_matrix(theta, scale, shift, out_hw), theta


def similarity_matrix(theta: float, scale: float, shift: tuple[float, float], hw: tuple[int, int]) -> torch.Tensor:
    """(2, 3) matrix of p -> scale * R(theta) (p - c) + c + shift on (x, y) pixel centres of an (H, W) image,
    c its centre; R turns +x towards +y (clockwise on screen, y pointing down)."""
    height, width = hw
    cos, sin = math.cos(theta) * scale, math.sin(theta) * scale
    centre_x, centre_y = (width - 1) / 2, (height - 1) / 2
    linear = torch.tensor([[cos, -sin], [sin, cos]], dtype=torch.float64)
    offset = torch.tensor([centre_x + shift[0], centre_y + shift[1]], dtype=torch.float64)
    offset = offset - linear @ torch.tensor([centre_x, centre_y], dtype=torch.float64)
    return torch.cat([linear, offset[:, None]], dim=1).float()


def warp_keypoints(points: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """Points (..., 2) (x, y) pixels -> where `matrix` (2, 3) puts them (points that leave the crop keep their
    outside coordinates: the keypoint losses mask them as they mask truncated joints)."""
    return points @ matrix[:, :2].T.to(points.dtype) + matrix[:, 2].to(points.dtype)


def warp_crop(image: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """(3, H, W) uint8 crop -> the same crop moved by `matrix` (2, 3) (bilinear, zeros where nothing maps:
    the zero padding of `pad_resize`), (3, H, W) uint8. Pixel (x, y) of the output samples the input at
    matrix^-1 (x, y); `F.affine_grid` takes that inverse map in [-1, 1] coordinates (align_corners=False:
    x_n = (2 x + 1) / W - 1), so it is conjugated by the pixel -> [-1, 1] map."""
    _, height, width = image.shape
    bottom = torch.tensor([[0.0, 0.0, 1.0]], dtype=torch.float64)
    inverse = torch.linalg.inv(torch.cat([matrix.double(), bottom]))
    to_unit = torch.tensor([[2 / width, 0.0, 1 / width - 1], [0.0, 2 / height, 1 / height - 1], [0.0, 0.0, 1.0]])
    theta = (to_unit.double() @ inverse @ torch.linalg.inv(to_unit.double()))[:2]
    grid = F.affine_grid(theta[None].float(), [1, 3, height, width], align_corners=False)
    warped = F.grid_sample(image[None].float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return warped[0].round().clamp(0, 255).to(torch.uint8)


def camera_roll(theta: float) -> torch.Tensor:
    """(3, 3) rotation of OpenCV camera coordinates (x right, y down, z forward) that turns the image by
    `theta` as `similarity_matrix` does: points rotated by it project to the turned image points."""
    cos, sin = math.cos(theta), math.sin(theta)
    return torch.tensor([[cos, -sin, 0.0], [sin, cos, 0.0], [0.0, 0.0, 1.0]])


def _train_transform(geometric: bool = True) -> Callable[[torch.Tensor], torch.Tensor]:
    import torchvision.transforms.v2 as T  # noqa: N812 - torchvision's own alias

    crop = [T.RandomResizedCrop(IMAGE_HW, scale=(0.5, 1.0), interpolation=T.InterpolationMode.BICUBIC, antialias=True)]
    return T.Compose(
        (crop if geometric else [])
        + [
            T.RandomApply([T.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.2, hue=0.1)], p=0.8),
            T.RandomApply([T.GaussianBlur(kernel_size=9, sigma=(0.1, 1.0))], p=0.9),
            T.RandomSolarize(threshold=128, p=0.2),
        ]
    )


def _scale(image: torch.Tensor) -> torch.Tensor:
    return image.float().div_(255.0).clamp_(0.0, 1.0)


class ImageProcessing:
    """uint8 (3, 256, 192) crop -> float (3, 256, 192) in [0, 1], with optional training augmentation.

    `geometric`: the augmentation includes the random resized crop, which moves the pixels (so 2D joints
    no longer match); False keeps the photometric part only (colour jitter, blur, solarisation).
    """

    def __init__(self, augment: bool, geometric: bool = True):
        self.augment = augment
        self.geometric = augment and geometric
        self._transform = _train_transform(geometric) if augment else None

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        if self._transform is not None:
            image = self._transform(image)
        return _scale(image)


IMAGE_PROCESSING: dict[str, Callable[[], ImageProcessing]] = {
    "smplerx_train": lambda: ImageProcessing(augment=True),
    "smplerx_eval": lambda: ImageProcessing(augment=False),
    # the training augmentation without its random resized crop: pixels stay where 2D joints say
    "smplerx_train_photometric": lambda: ImageProcessing(augment=True, geometric=False),
}
"""Processing schemes by name (the original's training / evaluation transforms)."""


def get_image_processing(name: str) -> ImageProcessing:
    if name not in IMAGE_PROCESSING:
        raise ValueError(f"unknown image processing {name!r}; known: {sorted(IMAGE_PROCESSING)}")
    return IMAGE_PROCESSING[name]()
