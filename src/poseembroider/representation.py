"""The front door: embed images, poses and texts, represent any subset of them, retrieve.

    from poseembroider import Representation

    rep = Representation.from_pretrained("poseembroider_model_quickstart")   # shortname or model folder
    texts = rep.embed_texts(["a person kneeling", "someone sitting on the floor"])   # (2, 512) text tokens
    poses = rep.embed_poses(poses_array)                                     # (N, 22|52|55, 3) axis-angles
    xbar = rep.represent(images=crops, texts=captions)                       # (N, 512): x̄ of image + text
    scores, indices = rep.retrieve(rep.predict(xbar, "pose"), poses, k=5)    # best poses for each query

`Representation` wraps a PoseEmbroider or an Aligner (`model.RepresentationModel`) for users who hold raw
inputs rather than dataset batches, as open_clip's `encode_image` / `encode_text` do:

- `embed_images(images, boxes=None)`: PIL images, (H, W, 3) uint8 arrays or file paths. Without boxes the
  whole picture is the person crop; with tight person boxes [x1, y1, x2, y2] the crop is cut as the datasets
  cut it (box scaled by `box_scale`, 1.1 as `sf11`, clipped to the picture), then zero-padded to 4:3 and
  resized to 256x192 (`datasets.image_processing`), pixels in [0, 1].
- `embed_poses(poses, normalization="bedlam")`: (N, 22|52|55, 3) or flat axis-angles, or a dict of arrays
  (`global_orient` + `body_pose` as `smplx` takes them, or AMASS `root_orient` + `pose_body`); the 22 body
  joints are kept and normalised like the datasets' poses: 'bedlam' for poses in the y-up SMPL-X camera frame
  (BEDLAM, SMPLer-X / HMR outputs, our synthetic data), 'amass' for z-up AMASS / PoseScript poses, 'none' for
  poses already in the models' frame (a dataset item's `poses`).
- `embed_texts(texts)`: strings, tokenized with the tokenizer of the model's frozen text encoder.
- `represent(images=, poses=, texts=)`: x̄ (N, D) of any non-empty subset, row n from the n-th input of each.
- `predict(xbar, target)`: x̄ -> the embedding compared with the tokens of `target` (the Aligner: x̄ itself).
- `retrieve(queries, gallery, k)`: top-k rows of a gallery by dot product, chunked as the evaluation.

Every call is batched (`batch_size` inputs per frozen-encoder forward), runs without gradients in eval mode,
shows a progress bar when the input spans more than one batch, and refuses bad input before any work with an
error naming the argument, the item index and what was expected. The frozen encoder of a modality is built on
first use only, so a model whose image encoder is absent here still embeds poses and texts.

Lower level (also used by `evaluate_core` and the retrieval demo): `load_representation_model`,
`gallery_tokens` and `split_tokens` (modality tokens of a whole dataset split from its frozen-feature cache),
`retrieve_from_batch` (a dataset-style batch as the query).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from poseembroider.body.joints import NUM_BODY_JOINTS
from poseembroider.datasets.image_processing import (
    IMAGE_HW,
    crop_box,
    get_image_processing,
    load_image,
    pad_resize,
    scale_bbox,
    shrink_longest_side,
    to_uint8_tensor,
)
from poseembroider.datasets.pose_processing import POSE_NORMALIZERS, normalize_poses
from poseembroider.datasets.registry import dataset_modalities
from poseembroider.devices import resolve_device
from poseembroider.encoders import FrozenModalityEncoder, build_frozen_encoder
from poseembroider.evaluation.retrieval import DEFAULT_CHUNK_SIZE, top_k
from poseembroider.features.frozen import CachedFeatureDataset, compute_frozen_features
from poseembroider.modalities import check_modalities
from poseembroider.model import FEATURE_KEYS, RepresentationModel
from poseembroider.models.pretrained import load_pretrained, resolve_model_dir
from poseembroider.text.pose_files import poses_from_mapping

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "Gallery",
    "ImageLike",
    "Representation",
    "Retrieved",
    "gallery_tokens",
    "load_representation_model",
    "retrieve_from_batch",
    "split_gallery",
    "split_tokens",
]

ImageLike = Image.Image | np.ndarray | str | os.PathLike
"""One image: a PIL image, an (H, W, 3) uint8 array, or the path of an image file."""

DEFAULT_BATCH_SIZE = 64
EVAL_PROCESSING = get_image_processing("smplerx_eval")
"""The datasets' image processing at evaluation: uint8 crop -> float in [0, 1], no augmentation."""


class InputError(ValueError):
    """Bad input to a `Representation` method; the message names the argument, item and expectation."""


# ---------------------------------------------------------------------------------------------- loading


def load_representation_model(
    path: str | os.PathLike, checkpoint: str = "best", device: str | torch.device = "auto"
) -> tuple[RepresentationModel, Path]:
    """(model, its folder): a PoseEmbroider or Aligner, in eval mode, from a model folder, a training folder
    (`checkpoint` 'best' / 'last') or a shortname; anything else is refused with the folder named."""
    model_dir = resolve_model_dir(path, checkpoint)
    model = load_pretrained(model_dir, map_location=resolve_device(device))
    if not isinstance(model, RepresentationModel):
        raise ValueError(f"{model_dir} holds a {type(model).__name__}, not PoseEmbroider or Aligner")
    return model.eval(), model_dir


# ---------------------------------------------------------------------------------------------- input checks


def _check_sequence(values: Any, argument: str) -> list[Any]:
    """A non-empty list of the items of `values` (a list, tuple or other sequence; not a lone string)."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise InputError(f"{argument}: expected a list, got {type(values).__name__}")
    if len(values) == 0:
        raise InputError(f"{argument}: the list is empty; give at least one item")
    return list(values)


def _image_tensor(image: ImageLike, index: int) -> torch.Tensor:
    """(3, H, W) uint8 tensor of one image; errors name the item."""
    where = f"images[{index}]"
    if isinstance(image, (str, os.PathLike)):
        try:
            return to_uint8_tensor(load_image(Path(image)))
        except (FileNotFoundError, ValueError) as err:
            raise InputError(f"{where}: {err}") from None
    if isinstance(image, Image.Image):
        return to_uint8_tensor(image.convert("RGB"))
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise InputError(f"{where}: array of dtype {image.dtype}; expected uint8 RGB values in [0, 255]")
        if image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) < 1:
            raise InputError(f"{where}: array of shape {image.shape}; expected (H, W, 3) RGB")
        return to_uint8_tensor(image)
    raise InputError(f"{where}: a {type(image).__name__}; expected a PIL image, an (H, W, 3) uint8 array or a path")


def _person_boxes(boxes: Any, count: int) -> np.ndarray:
    """(N, 4) float64 boxes [x1, y1, x2, y2], one per image, finite and non-degenerate."""
    try:
        array = np.asarray(boxes.detach().cpu() if isinstance(boxes, torch.Tensor) else boxes, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise InputError(f"boxes: not numbers ({err}); expected (N, 4) [x1, y1, x2, y2] pixels") from None
    if array.shape != (count, 4):
        raise InputError(f"boxes: shape {array.shape}; expected ({count}, 4) [x1, y1, x2, y2], one per image")
    if not np.isfinite(array).all():
        raise InputError(f"boxes: row {int(np.argwhere(~np.isfinite(array))[0, 0])} has NaN or inf values")
    empty = np.flatnonzero((array[:, 2] <= array[:, 0]) | (array[:, 3] <= array[:, 1]))
    if empty.size:
        raise InputError(f"boxes[{int(empty[0])}] = {array[empty[0]].tolist()}: x2 <= x1 or y2 <= y1")
    return array


def crop_person(image: torch.Tensor, box: np.ndarray | None = None, box_scale: float = 1.1) -> torch.Tensor:
    """(3, 256, 192) float crop in [0, 1] of a (3, H, W) uint8 image: the whole picture (`box` None) or the
    tight person box scaled by `box_scale` and clipped, then (reduced to a longest side of `MAX_CROP_SIDE` when
    longer: `shrink_longest_side`) zero-padded to 4:3, resized and scaled by the datasets' evaluation processing."""
    if box is not None:
        image = crop_box(image, scale_bbox(box, box_scale, image.shape[1:]))
    return EVAL_PROCESSING(pad_resize(shrink_longest_side(image), IMAGE_HW))


def body_poses(poses: Any, normalization: str) -> torch.Tensor:
    """(N, 22, 3) float32 body poses in the models' frame from the inputs `embed_poses` takes."""
    if normalization not in POSE_NORMALIZERS:
        raise InputError(f"normalization {normalization!r}: expected one of {sorted(POSE_NORMALIZERS)}")
    if not isinstance(poses, (Mapping, np.ndarray, torch.Tensor, list, tuple)):
        raise InputError(
            f"poses: a {type(poses).__name__}; expected an (N, 22|52|55, 3) or flat axis-angle array or tensor, "
            "or a dict with 'global_orient' + 'body_pose'"
        )
    mapping = poses if isinstance(poses, Mapping) else {"poses": poses}
    if "poses" in mapping and isinstance(mapping["poses"], (list, tuple)):
        try:
            mapping = {"poses": np.asarray(mapping["poses"], dtype=np.float32)}
        except (TypeError, ValueError) as err:
            raise InputError(f"poses: not an array of numbers ({err})") from None
    try:
        array = poses_from_mapping(mapping, "poses")
    except ValueError as err:
        raise InputError(str(err)) from None
    return normalize_poses(torch.from_numpy(array[:, :NUM_BODY_JOINTS]), normalization)


def _check_vectors(value: Any, name: str, dim: int, source: str = "") -> torch.Tensor:
    """`value` itself when it is an (N, dim) tensor; else an error naming `name`, its shape and where such
    vectors come from."""
    if not isinstance(value, torch.Tensor) or value.dim() != 2 or value.shape[1] != dim:
        shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise InputError(f"{name}: {shape}; expected an (N, {dim}) tensor{source}")
    return value


def _check_same_count(counts: Mapping[str, int], where: str) -> int:
    """The common number of items of the modalities given; different numbers are refused, naming them."""
    if len(set(counts.values())) > 1:
        raise InputError(f"{where}: different lengths {dict(counts)}; give one of each modality per person")
    return next(iter(counts.values()))


def _check_texts(texts: Any) -> list[str]:
    items = _check_sequence(texts, "texts")
    for index, text in enumerate(items):
        if not isinstance(text, str):
            raise InputError(f"texts[{index}]: a {type(text).__name__}; expected a string")
        if not text.strip():
            raise InputError(f"texts[{index}]: the text is empty")
    return items


# ---------------------------------------------------------------------------------------------- the front door


class Representation:
    """Raw images, poses and texts -> modality tokens and the representation x̄ of PoseEmbroider / the Aligner.

    `model` is a loaded `RepresentationModel`; most users call `from_pretrained`. All outputs are float32 CPU
    tensors (N, D), D = `dim` (512 for the published models); computation runs on `device`.
    """

    def __init__(
        self,
        model: RepresentationModel,
        device: str | torch.device = "cpu",
        batch_size: int = DEFAULT_BATCH_SIZE,
        progress: bool | None = None,
    ) -> None:
        if not isinstance(model, RepresentationModel):
            raise TypeError(f"model: a {type(model).__name__}; expected PoseEmbroider or Aligner")
        if int(batch_size) < 1:
            raise ValueError(f"batch_size={batch_size}: must be >= 1")
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.batch_size = int(batch_size)
        self.progress = progress
        self._encoders: dict[str, FrozenModalityEncoder] = {}

    @classmethod
    def from_pretrained(
        cls,
        shortname_or_dir: str | os.PathLike,
        device: str | torch.device = "cpu",
        checkpoint: str = "best",
        batch_size: int = DEFAULT_BATCH_SIZE,
        progress: bool | None = None,
    ) -> Representation:
        """Load a registered shortname, a model folder, or a training folder (its `checkpoint` sub-folder)."""
        model, _ = load_representation_model(shortname_or_dir, checkpoint, device)
        return cls(model, device, batch_size, progress)

    @property
    def dim(self) -> int:
        return int(self.model.config.latentD)

    def __repr__(self) -> str:
        names = self.model.config.encoder_names()
        return f"Representation({type(self.model).__name__}, dim={self.dim}, encoders={names}, device={self.device})"

    # ------------------------------------------------------------------ helpers

    def _encoder(self, modality: str) -> FrozenModalityEncoder:
        """The frozen encoder of `modality`, built on first use and checked against the model's fingerprint."""
        if modality not in self._encoders:
            name = self.model.config.encoder_names()[modality]
            try:
                encoder = build_frozen_encoder(modality, name)
            except Exception as err:  # noqa: BLE001 - any load failure means: this model lacks the modality here
                raise InputError(
                    f"this model cannot embed {modality} inputs here: its {modality} encoder {name!r} does not "
                    f"load ({type(err).__name__}: {err})"
                ) from err
            self.model.check_encoder(modality, encoder)
            self._encoders[modality] = encoder.to(self.device)
        return self._encoders[modality]

    def _batches(self, count: int, what: str) -> Iterator[slice]:
        show = self.progress if self.progress is not None else count > self.batch_size
        for start in tqdm(range(0, count, self.batch_size), desc=f"embedding {what}", disable=not show, leave=False):
            yield slice(start, min(start + self.batch_size, count))

    def _tokens(self, modality: str, features: torch.Tensor) -> torch.Tensor:
        return self.model.embed_features({modality: features})[modality].float().cpu()

    # ------------------------------------------------------------------ modality tokens

    @torch.no_grad()
    def embed_images(self, images: Sequence[ImageLike], boxes: Any = None, box_scale: float = 1.1) -> torch.Tensor:
        """(N, D) image tokens of N images (PIL, (H, W, 3) uint8 arrays or paths); `boxes` (N, 4) tight person
        boxes [x1, y1, x2, y2] in pixels, cropped with the datasets' margin `box_scale`."""
        items = _check_sequence(images, "images")
        box_array = None if boxes is None else _person_boxes(boxes, len(items))
        if not box_scale >= 1.0:
            raise InputError(f"box_scale={box_scale}: must be >= 1 (1.1 is the datasets' sf11)")
        encoder = self._encoder("image")
        out = torch.empty(len(items), self.dim)
        for part in self._batches(len(items), "images"):
            crops = [
                crop_person(_image_tensor(items[i], i), None if box_array is None else box_array[i], box_scale)
                for i in range(part.start, part.stop)
            ]
            features = encoder({"images": torch.stack(crops).to(self.device)})
            out[part] = self._tokens("image", features)
        return out

    @torch.no_grad()
    def embed_poses(self, poses: Any, normalization: str = "bedlam") -> torch.Tensor:
        """(N, D) pose tokens of N poses (formats and `normalization` in the module doc)."""
        body = body_poses(poses, normalization)
        encoder = self._encoder("pose")
        out = torch.empty(body.shape[0], self.dim)
        for part in self._batches(body.shape[0], "poses"):
            out[part] = self._tokens("pose", encoder({"poses": body[part].to(self.device)}))
        return out

    @torch.no_grad()
    def embed_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """(N, D) text tokens of N strings. Texts are encoded in batches of similar length (less padding)."""
        items = _check_texts(texts)
        encoder = self._encoder("text")
        tokenizer = encoder.tokenizer
        order = sorted(range(len(items)), key=lambda i: len(items[i]))
        out = torch.empty(len(items), self.dim)
        for part in self._batches(len(items), "texts"):
            rows = order[part]
            tokens, lengths = tokenizer.batch([items[i] for i in rows])
            features = encoder({"texts_tokens": tokens.to(self.device), "texts_lengths": lengths.to(self.device)})
            out[rows] = self._tokens("text", features)
        return out

    def embed(self, modality: str, inputs: Any, boxes: Any = None, normalization: str = "bedlam") -> torch.Tensor:
        """`embed_images` / `embed_poses` / `embed_texts` chosen by modality name (`boxes` for images,
        `normalization` for poses), for callers that hold inputs by modality."""
        (modality,) = check_modalities([modality], "modality")
        if modality == "image":
            return self.embed_images(inputs, boxes)
        if modality == "pose":
            return self.embed_poses(inputs, normalization)
        return self.embed_texts(inputs)

    # ------------------------------------------------------------------ representation

    @torch.no_grad()
    def represent(
        self,
        images: Sequence[ImageLike] | None = None,
        poses: Any = None,
        texts: Sequence[str] | None = None,
        boxes: Any = None,
        normalization: str = "bedlam",
    ) -> torch.Tensor:
        """x̄ (N, D) of the given inputs (any non-empty subset; the n-th image, pose and text describe the same
        person). `boxes` and `normalization` as in `embed_images` / `embed_poses`."""
        given = {"image": images, "pose": poses, "text": texts}
        given = {m: v for m, v in given.items() if v is not None}
        if not given:
            raise InputError("represent: give at least one of images=, poses=, texts=")
        tokens = {m: self.embed(m, v, boxes, normalization) for m, v in given.items()}
        return self.represent_tokens(tokens)

    @torch.no_grad()
    def represent_tokens(self, tokens: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """x̄ (N, D) from modality tokens {m: (N, D)} (the outputs of the `embed_*` methods)."""
        modalities = check_modalities(tokens, "tokens")
        for m in modalities:
            _check_vectors(tokens[m], f"tokens[{m!r}]", self.dim, f" from embed_{m}s()")
        count = _check_same_count({m: tokens[m].shape[0] for m in modalities}, "tokens")
        out = torch.empty(count, self.dim)
        for part in self._batches(count, "representations"):
            chunk = {m: tokens[m][part].to(self.device) for m in modalities}
            out[part] = self.model.represent(chunk, modalities).float().cpu()
        return out

    @torch.no_grad()
    def predict(self, xbar: torch.Tensor, target: str) -> torch.Tensor:
        """(N, D) x̄ -> (N, D) prediction of the `target` modality's tokens (compare with `embed_<target>`)."""
        (target,) = check_modalities([target], "target")
        _check_vectors(xbar, "xbar", self.dim, " from represent()")
        return self.model.predict(xbar.to(self.device).float(), target).float().cpu()

    def retrieve(
        self,
        queries: torch.Tensor,
        gallery: torch.Tensor,
        k: int = 10,
        target: str | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(scores, indices), both (Q, min(k, N)), best first: the gallery rows (N, D) nearest each query (Q, D)
        by dot product (cosine for an L2-normalised model). With `target`, `queries` are x̄ and are first mapped
        by `predict(queries, target)`; the gallery then holds tokens of that modality."""
        _check_vectors(queries, "queries", self.dim)
        _check_vectors(gallery, "gallery", self.dim)
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise InputError(f"k={k!r}: expected an integer >= 1")
        if target is not None:
            queries = self.predict(queries, target)
        return top_k(queries, gallery, k, chunk_size)


# ---------------------------------------------------------------------------------------------- dataset splits


@torch.no_grad()
def gallery_tokens(
    model: RepresentationModel, features: Any, modalities: Sequence[str], chunk_size: int = DEFAULT_CHUNK_SIZE
) -> dict[str, torch.Tensor]:
    """{modality: (N, D) float32 tokens} from a `CachedFeatureDataset`-like source (`__getitems__`, `len`),
    read chunk by chunk (the exact image tokens of all N samples are never in memory at once)."""
    model.eval()
    n = len(features)
    out = {m: torch.empty(n, model.config.latentD) for m in modalities}
    device = model.temperature.device
    for start in tqdm(range(0, n, chunk_size), desc="gallery", leave=False, disable=n <= chunk_size):
        batch = features.__getitems__(list(range(start, min(start + chunk_size, n))))
        cached = {m: batch[FEATURE_KEYS[m]].to(device) for m in modalities}
        for m, t in model.embed_features(cached).items():
            out[m][start : start + t.shape[0]] = t.float().cpu()
    return out


def split_tokens(
    model: RepresentationModel,
    dataset: str,
    split: str,
    caption_selection: str | int = 0,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    feature_batch_size: int = 32,
    root: Path | None = None,
    progress: bool = False,
) -> tuple[CachedFeatureDataset, dict[str, torch.Tensor]]:
    """(features, tokens) of a whole split: its frozen features (`CachedFeatureDataset`, computed into the
    cache on first use, read back afterwards) and the model's gallery tokens {m: (N, D)} of every modality
    the split has; each sample's text is its caption `caption_selection`."""
    has = dataset_modalities(dataset)  # e.g. 3DPW: image and pose only
    stores = compute_frozen_features(
        dataset,
        split,
        model.frozen_encoders,
        model.config.image_feature_mode,
        modalities=[m for m in model.frozen_encoders.modalities if m in has],
        batch_size=feature_batch_size,
        root=root,
        progress=progress,
    )
    features = CachedFeatureDataset(stores, caption_selection)
    return features, gallery_tokens(model, features, features.modalities, chunk_size)


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
    """`split_tokens` as a `Gallery` (tokens with the data id of each row); each sample's text is its caption
    `caption_selection` (the first one by default, as the original demo and evaluation)."""
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
def retrieve_from_batch(
    model: RepresentationModel,
    batch: Mapping[str, Any],
    modalities: Sequence[str],
    galleries: Mapping[str, torch.Tensor],
    k: int,
) -> dict[str, Retrieved]:
    """Rank the gallery of every modality of `galleries` ({m: (N, D)} tokens) for the queries of a dataset-style
    `batch` made of `modalities` (raw inputs or cached features, see `RepresentationModel.encode`).

    The query x̄ (B, D) = `represent(encode(batch))`; the items of modality m are scored by the dot product of
    `predict(x̄, m)` with their tokens (PoseEmbroider: the m-reprojection; the Aligner: x̄ itself, its
    `predict` is the identity), exactly as the evaluation ranks them. k is clipped to the gallery size.
    """
    if not modalities:
        raise ValueError("no query modality: use at least one of image, pose, text")
    modalities = check_modalities(modalities, "query modalities")
    model.eval()
    xbar = model.represent(model.encode(batch, modalities), modalities)
    out = {}
    for target in check_modalities(galleries, "gallery modalities"):
        scores, indices = top_k(model.predict(xbar, target), galleries[target], k)
        out[target] = Retrieved(indices, scores)
    return out
