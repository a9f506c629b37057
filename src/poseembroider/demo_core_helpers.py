"""What the any-to-any retrieval demo (`demo_core.py`) computes, without streamlit, so it can be tested.

- `occlude_patches`: black out a square of 16-px patches of the query crop (the ViT's patch grid).
- `prepare_uploaded_image`: a user's PNG/JPG turned into a crop like the datasets' (padded to 4:3,
  resized to 256x192, in [0, 1]).
- `query_batch`: one query (any of image, pose, text tokens) as a raw batch of one.
- `split_gallery`: the modality tokens of every sample of a split, from the frozen-feature cache (the
  frozen encoders run once per split and encoder version, then the features are read back).
- `build_parser`: the demo's flags (`streamlit run demo_core.py -- <flags>`, `poseembroider demo-core <flags>`).
- `retrieve`: the top-k gallery items of each modality for a query. PoseEmbroider ranks the items of
  modality m with the m-reprojection of the query's x̄; the Aligner with the mixed query itself (its
  `predict` is the identity), exactly as the evaluation does.
"""

from __future__ import annotations

import argparse
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from poseembroider.datasets.image_processing import IMAGE_HW, pad_resize, to_uint8_tensor
from poseembroider.evaluation.retrieval import DEFAULT_CHUNK_SIZE
from poseembroider.model import RepresentationModel
from poseembroider.modalities import check_modalities

MODEL_ENV_VAR = "POSEEMBROIDER_CORE_DEMO_MODEL"
DEFAULT_MODEL = "poseembroider_model_bedlamscript"
DEFAULT_N_RETRIEVE = 8

PATCH_SIZE = 16
"""Side of the image encoder's patches in pixels: the occlusion moves and grows by whole patches."""

PATCH_GRID: tuple[int, int] = (IMAGE_HW[0] // PATCH_SIZE, IMAGE_HW[1] // PATCH_SIZE)
"""(rows, columns) of patches of a 256x192 crop: (16, 12)."""


def build_parser() -> argparse.ArgumentParser:
    """Flags of the demo; every one is also a field of the app (the flags only set their initial value)."""
    parser = argparse.ArgumentParser(
        prog="demo_core.py",
        description="any-to-any retrieval demo of PoseEmbroider / the Aligner (streamlit app)",
        epilog="launch: streamlit run src/poseembroider/demo_core.py -- --model_path <folder|shortname>, "
        "or poseembroider demo-core --model_path <folder|shortname> [--server.port 8501]",
    )
    parser.add_argument(
        "--model_path",
        default=None,
        help=f"model folder, training output folder or shortname (else ?model=..., ${MODEL_ENV_VAR}, {DEFAULT_MODEL})",
    )
    parser.add_argument("--checkpoint", default="best", choices=("best", "last"), help="(default: %(default)s)")
    parser.add_argument(
        "--n_retrieve", type=int, default=DEFAULT_N_RETRIEVE, help="items shown per modality (default: %(default)s)"
    )
    parser.add_argument("--dataset", default=None, help="dataset selected first (default: the first one found)")
    parser.add_argument("--split", default=None, help="split selected first (default: val, test, then train)")
    parser.add_argument("--device", default="auto", help="'auto', 'cpu', 'cuda' or 'cuda:<i>' (default: %(default)s)")
    return parser


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
    picture is taken as the person crop, zero-padded to 4:3 (H:W) and resized (`pad_resize`). EXIF
    orientation (phone pictures) is applied first."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as picture:
            rgb = ImageOps.exif_transpose(picture).convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ValueError(f"{name}: not a readable PNG/JPG image ({err})") from None
    return pad_resize(to_uint8_tensor(rgb)).float() / 255.0


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


@dataclass(frozen=True)
class Gallery:
    """The modality tokens of every sample of a split: `tokens` {m: (N, D)}, row n is `data_ids[n]`."""

    data_ids: np.ndarray
    tokens: dict[str, torch.Tensor]

    def __len__(self) -> int:
        return len(self.data_ids)


def split_gallery(
    model: RepresentationModel,
    dataset_name: str,
    split: str,
    caption_selection: int = 0,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    feature_batch_size: int = 32,
    root: Path | None = None,
    progress: bool = False,
) -> Gallery:
    """Tokens of the whole split for every modality, from its frozen-feature cache (`evaluate_core.split_tokens`:
    computed on first use, read back afterwards); each sample's text is its caption `caption_selection` (the
    first one by default, as the original demo and evaluation)."""
    from poseembroider.evaluate_core import split_tokens

    features, tokens = split_tokens(
        model, dataset_name, split, caption_selection, chunk_size, feature_batch_size, root, progress
    )
    return Gallery(np.asarray(features.data_ids).copy(), tokens)


@dataclass(frozen=True)
class Retrieved:
    """Top-k gallery rows of one modality for a batch of queries: `indices` and `scores`, both (B, k),
    best first."""

    indices: torch.Tensor
    scores: torch.Tensor


@torch.no_grad()
def retrieve(
    model: RepresentationModel,
    batch: Mapping[str, Any],
    modalities: Sequence[str],
    galleries: Mapping[str, torch.Tensor],
    k: int,
) -> dict[str, Retrieved]:
    """Rank the gallery of every modality of `galleries` ({m: (N, D)} tokens) for the queries of `batch`
    made of `modalities` (raw inputs or cached features, see `RepresentationModel.encode`).

    The query x̄ (B, D) = `represent(encode(batch))`; the items of modality m are scored by the dot
    product of `predict(x̄, m)` with their tokens (cosine similarities for an L2-normalised model).
    k is clipped to the gallery size.
    """
    if not modalities:
        raise ValueError("no query modality: use at least one of image, pose, text")
    modalities = check_modalities(modalities, "query modalities")
    if k < 1:
        raise ValueError(f"k={k}: retrieve at least one item")
    model.eval()
    xbar = model.represent(model.encode(batch, modalities), modalities)
    out = {}
    for target in check_modalities(galleries, "gallery modalities"):
        gallery = galleries[target]
        query = model.predict(xbar, target).float().to(gallery.device)
        scores, indices = (query @ gallery.T).topk(min(k, gallery.shape[0]), dim=1)
        out[target] = Retrieved(indices, scores)
    return out
