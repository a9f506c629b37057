"""Tri-modal datasets over processed caches: single elements (`TriModalDatasetScript`) and pairs
(`TriModalDatasetFix`), shared by BEDLAM and the synthetic world (same cache format, `cache_format`).

Items are dicts. Single elements: `data_ids` (int), `indices` (int), and by `item_format` letters:
'i' -> `images` (3, 256, 192) float in [0, 1]; 'p' -> `poses` (J, 3) float32 axis-angles in the models'
z-up frame (J = `num_body_joints`, 22 by default) and `shapes` (10,) betas; 't' -> `raw_texts` (str)
and, when a tokenizer is given, `texts_tokens` (L,) int64 and `texts_lengths` (int). Always `cam_rot`
(3,) (camera-view rotation of the normalised pose, read from the images cache whatever `item_format`; zeros,
the identity, for datasets without a camera such as the pose-only pools) and `flipped` (bool). With
`keypoints_2d=True` (single elements), also `joints_2d_crop` (22, 2) float32: the body joints' (x, y) in
pixels of the 256x192 crop (mirrored with the image when flipped; from the images cache's `joints_2d`).
`preload_crops()` decodes every crop of the split once into memory (training reads each crop every epoch;
decoding and resizing it again cost as much CPU as a small model's step). With an `affine_jitter`, each
element's crop, 2D joints and `cam_rot` are moved by one random similarity
(after the flip): the geometric augmentation that keeps image, joints and pose in agreement.
Pairs carry the same keys with `_A` / `_B` suffixes plus `pair_ids`, `sequence_kind` ('in' / 'out') and the
instruction as `raw_texts` / `texts_tokens` / `texts_lengths`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from poseembroider.body.joints import NUM_BODY_JOINTS, joint_names_for_count, left_right_permutation
from poseembroider.datasets.cache_format import CacheError, cache_file_name, image_file, load_cache
from poseembroider.datasets.image_processing import (
    IMAGE_HW,
    AffineJitter,
    camera_roll,
    crop_box,
    crop_keypoints,
    flip_keypoints,
    get_image_processing,
    image_size,
    load_image,
    pad_resize,
    to_uint8_tensor,
    warp_crop,
    warp_keypoints,
)
from poseembroider.datasets.pose_processing import flip_axis_angle, flip_poses, normalize_poses
from poseembroider.geometry import axis_angle_to_matrix, matrix_to_axis_angle, y_up_to_z_up
from poseembroider.text.text_flip import flip_text

CAPTION_SELECTIONS = ("rand", "deterministic-mix")
ITEM_LETTERS = {"i": "images", "p": "poses", "t": "texts"}
_BODY_MIRROR = left_right_permutation(joint_names_for_count(NUM_BODY_JOINTS))
Tokenizer = Callable[[str], torch.Tensor]


@dataclass(frozen=True)
class DatasetSource:
    """Where a processed dataset lives and how its poses are normalised.
    `family` e.g. 'bedlamscript' / 'synthscript' (single elements) or 'bedlamfix' / 'synthfix' (pairs);
    `version` the criteria string of the cache names; `script_version` the version of the single-element
    caches a fix dataset draws its images and poses from.
    """

    family: str
    version: str
    cache_dir: Path
    image_root: Path
    pose_normalization: str = "bedlam"
    script_family: str | None = None
    script_version: str | None = None
    reduced_sizes: dict[str, int] = field(default_factory=dict)

    def cache_path(self, split: str, kind: str, family: str | None = None, version: str | None = None) -> Path:
        """The cache file of `kind`; with several reduced sizes on disk, `reduced_sizes[split]` picks one."""
        family = family or self.family
        version = version or self.version
        size = self.reduced_sizes.get(split)
        if size is not None:
            return self.cache_dir / cache_file_name(family, version, split, kind, size)
        stem = cache_file_name(family, version, split, kind).removesuffix(".pt")
        found = sorted(self.cache_dir.glob(f"{stem}_reduced_*.pt")) + sorted(self.cache_dir.glob(f"{stem}.pt"))
        if not found:
            raise CacheError(
                f"no '{kind}' cache for {family}-{version} split '{split}' in {self.cache_dir} "
                f"(looked for {stem}_reduced_<N>.pt); generate or process the dataset first"
            )
        if len(found) > 1:
            raise CacheError(
                f"several '{kind}' caches match in {self.cache_dir}: {[p.name for p in found]}; "
                "pass reduced_sizes to choose one"
            )
        return found[0]


def _parse_item_format(item_format: str) -> frozenset[str]:
    letters = frozenset(item_format)
    unknown = letters - set(ITEM_LETTERS)
    if not letters or unknown:
        raise ValueError(f"item_format {item_format!r}: use letters among 'i' (image), 'p' (pose), 't' (text)")
    return letters


class _TriModalBase(Dataset):
    """Shared loading of images, poses and texts by data id from the single-element caches."""

    def __init__(
        self,
        source: DatasetSource,
        split: str,
        item_format: str = "ipt",
        caption_selection: str | int = "deterministic-mix",
        img_processing: str = "smplerx_eval",
        lr_flip_probability: float = 0.0,
        num_body_joints: int = 22,
        tokenizer: Tokenizer | None = None,
        seed: int | None = None,
        keypoints_2d: bool = False,
        affine_jitter: AffineJitter | None = None,
    ):
        self.source, self.split = source, split
        self.letters = _parse_item_format(item_format)
        if not (isinstance(caption_selection, int) or caption_selection in CAPTION_SELECTIONS):
            raise ValueError(f"caption_selection {caption_selection!r}: use 'rand', 'deterministic-mix' or an index")
        if num_body_joints not in (22, 52):
            raise ValueError(f"num_body_joints={num_body_joints}: use 22 (body) or 52 (body and hands)")
        # `not 0 <= p <= 1` also catches NaN, which would otherwise flip every item (`random() >= nan` is False).
        if not (isinstance(lr_flip_probability, (int, float)) and 0.0 <= lr_flip_probability <= 1.0):
            raise ValueError(f"lr_flip_probability={lr_flip_probability!r}: a probability must be finite in [0, 1]")
        self.caption_selection = caption_selection
        self.num_body_joints = num_body_joints
        self.lr_flip_probability = float(lr_flip_probability)
        self.tokenizer = tokenizer
        self.image_processing = get_image_processing(img_processing) if "i" in self.letters else None
        self.keypoints_2d = keypoints_2d
        self.affine_jitter = affine_jitter
        if keypoints_2d and self.image_processing is not None and self.image_processing.geometric:
            raise ValueError(
                f"keypoints_2d: img_processing {img_processing!r} moves pixels (random resized crop); "
                "use one without geometric augmentation (e.g. 'smplerx_eval', 'smplerx_train_photometric')"
            )
        self._rng = random.Random(seed)
        self._worker_rng: tuple[int, random.Random] | None = None  # (worker seed, its generator)
        family, version = source.script_family or source.family, source.script_version or source.version
        need_images_cache = "i" in self.letters or keypoints_2d
        # without images in the items, the images cache is still read where it exists: it holds the camera
        # of `cam_rot`; datasets without a camera (pose-only pools) have none and their `cam_rot` is zeros
        self._images_cache: Path | None = None  # the images cache file, named in errors about its entries
        if need_images_cache or self._has_cache(split, "images", family, version):
            self._images_cache = self.source.cache_path(split, "images", family, version)
            self._images = load_cache(self._images_cache, "images")
        else:
            self._images = None
        if keypoints_2d and "joints_2d" not in self._images:
            raise CacheError(f"keypoints_2d: the images cache of {family}-{version} has no 'joints_2d' table")
        self._image_hw: dict[int, tuple[int, int]] = {}  # image file sizes, read from the headers once
        self._camera_views: dict[int, torch.Tensor] = {}  # unflipped cam_rot by data id, computed once
        self._crop_rows: dict[int, int] = {}  # data id -> row of `_crop_store` (filled by `preload_crops`)
        self._crop_store: torch.Tensor | None = None  # (N, 3, 256, 192) uint8 crops before flip and processing
        # poses are also needed for cam_rot and the in-sequence pair re-normalisation
        self._poses = self._load(split, "poses", family, version)
        self._normalized_poses: dict[int, torch.Tensor] | None = None  # filled on first use
        if self._images is not None:  # every posed element has its image, box and camera (KeyError otherwise)
            missing = sorted(set(self._poses["poses"]) - set(self._images["images"]))
            if missing:
                raise CacheError(f"{self._images_cache}: data id(s) {missing[:5]} of the poses cache are missing")

    def _has_cache(self, split: str, kind: str, family: str, version: str) -> bool:
        try:
            return self.source.cache_path(split, kind, family, version).is_file()
        except CacheError:
            return False

    @property
    def _script(self) -> tuple[str, str]:
        """(family, version) of the single-element caches (images, poses) this dataset reads."""
        return self.source.script_family or self.source.family, self.source.script_version or self.source.version

    def _load(self, split: str, kind: str, family: str | None = None, version: str | None = None) -> dict[str, Any]:
        return load_cache(self.source.cache_path(split, kind, family, version), kind)

    # ---- per-modality loading -------------------------------------------------------------------

    def _crop(self, data_id: int) -> torch.Tensor:
        """(3, 256, 192) uint8 model crop of `data_id` (the image file cropped, padded, resized)."""
        assert self._images is not None
        if self._crop_store is not None and data_id in self._crop_rows:
            return self._crop_store[self._crop_rows[data_id]]
        image = load_image(self._image_file(data_id), self._rotation(data_id))
        self._image_hw.setdefault(data_id, (image.height, image.width))  # of the turned image, as `_joints_2d_crop`
        return pad_resize(crop_box(to_uint8_tensor(image), self._images["bboxes"][data_id]))

    def preload_crops(self, max_bytes: int = 2 << 30, progress: bool = True) -> bool:
        """Decode every element's crop once and keep them in memory, uint8 (N, 3, 256, 192), before flip,
        jitter and processing (which stay per item). Returns False, keeping nothing, when they would take more
        than `max_bytes` (BEDLAM's splits: read from disk as before). DataLoader workers forked afterwards
        share the store (copy-on-write)."""
        if "i" not in self.letters:
            raise ValueError("preload_crops: this dataset was built without images (item format has no 'i')")
        ids = sorted(int(i) for i in self._poses["poses"])
        height, width = IMAGE_HW
        if len(ids) * 3 * height * width > max_bytes:
            return False
        store = torch.empty((len(ids), 3, height, width), dtype=torch.uint8)
        for row, data_id in enumerate(tqdm(ids, desc=f"crops of {self.split}", disable=not progress, leave=False)):
            store[row] = self._crop(data_id)
        self._crop_store, self._crop_rows = store, {data_id: row for row, data_id in enumerate(ids)}
        return True

    def _image(self, data_id: int, flip: bool, jitter: torch.Tensor | None = None) -> torch.Tensor:
        """(3, 256, 192) processed crop, flipped, then moved by the (2, 3) `jitter` matrix when given."""
        assert self.image_processing is not None
        image = self._crop(data_id)
        if flip:
            image = image.flip(-1)
        if jitter is not None:
            image = warp_crop(image, jitter)
        return self.image_processing(image)

    def _image_file(self, data_id: int) -> Path:
        """The image file of `data_id`, refused (naming the cache file and the entry) outside the image root."""
        assert self._images is not None and self._images_cache is not None
        return image_file(self.source.image_root, self._images["images"][data_id], self._images_cache, data_id)

    def _rotation(self, data_id: int) -> int:
        """Degrees clockwise the stored image is turned before use (the optional `image_rotation` table:
        BEDLAM's close-up frames, 90); boxes and 2D joints refer to the turned image."""
        assert self._images is not None
        return int(self._images.get("image_rotation", {}).get(data_id, 0))

    def _joints_2d_crop(self, data_id: int, flip: bool) -> torch.Tensor:
        """(22, 2) body joints in pixels of the 256x192 model crop (`crop_keypoints` of the cached joints)."""
        assert self._images is not None
        if data_id not in self._image_hw:
            width, height = image_size(self._image_file(data_id))  # header only
            turned = self._rotation(data_id) in (90, 270)
            self._image_hw[data_id] = (width, height) if turned else (height, width)
        points = torch.as_tensor(self._images["joints_2d"][data_id], dtype=torch.float32)[:NUM_BODY_JOINTS]
        points = crop_keypoints(points, self._images["bboxes"][data_id], self._image_hw[data_id])
        if flip:
            points = flip_keypoints(points, IMAGE_HW[1], _BODY_MIRROR)
        return points

    def _raw_pose(self, data_id: int) -> torch.Tensor:
        """(52, 3) stored pose (y-up, heading-normalised)."""
        try:
            return torch.as_tensor(self._poses["poses"][data_id], dtype=torch.float32).reshape(-1, 3)
        except KeyError:
            raise CacheError(f"data id {data_id} is missing from the poses cache of {self.source.family}") from None

    def _pose(self, raw: torch.Tensor, flip: bool) -> torch.Tensor:
        pose = normalize_poses(raw[: self.num_body_joints], self.source.pose_normalization)
        return flip_poses(pose) if flip else pose

    def _normalized_pose(self, data_id: int) -> torch.Tensor:
        """(J, 3) normalised pose of `data_id`. Every pose of the cache is normalised in one batched call on
        first use (per item, the small-tensor overhead of the normalisation was ~4 ms: most of an epoch)."""
        if self._normalized_poses is None:
            ids = list(self._poses["poses"])
            raw = torch.stack([self._raw_pose(i)[: self.num_body_joints] for i in ids]) if ids else None
            normalized = normalize_poses(raw, self.source.pose_normalization) if raw is not None else []
            self._normalized_poses = {int(i): pose for i, pose in zip(ids, normalized, strict=True)}
        try:
            return self._normalized_poses[int(data_id)]
        except KeyError:
            raise CacheError(f"data id {data_id} is missing from the poses cache of {self.source.family}") from None

    def _shape(self, data_id: int) -> torch.Tensor:
        return torch.as_tensor(self._poses["shapes"][data_id], dtype=torch.float32)[:10]

    def _cam_rot(self, data_id: int, flip: bool) -> torch.Tensor:
        """Rotation from the z-up normalised global orientation to the camera view (axis-angle (3,))."""
        if self._images is None or "camera_transformation" not in self._images:
            return torch.zeros(3)
        if data_id not in self._camera_views:
            cam_rot = torch.as_tensor(self._images["camera_transformation"][data_id][0], dtype=torch.float32)
            # stored cam_rot acts on the y-up pose: compose with the z-up -> y-up frame change
            frame = axis_angle_to_matrix(cam_rot.new_tensor([-torch.pi / 2, 0.0, 0.0]))
            self._camera_views[data_id] = matrix_to_axis_angle(axis_angle_to_matrix(cam_rot) @ frame)
        cam_rot = self._camera_views[data_id]
        return flip_axis_angle(cam_rot) if flip else cam_rot.clone()

    def rng_state(self) -> dict[str, Any]:
        """The main process's caption and flip generator, for the Trainer's checkpoints (`training.state`): a
        resumed run then draws the captions and flips an uninterrupted run does."""
        return {"draws": self._rng.getstate()}  # a tuple of ints: loads with weights_only

    def set_rng_state(self, state: dict[str, Any]) -> None:
        """Inverse of `rng_state`."""
        self._rng.setstate(tuple(state["draws"]))

    def _random(self) -> random.Random:
        """The generator of caption and flip draws. In a DataLoader worker, one seeded by the worker's seed
        (base seed of the epoch + worker id): each worker starts from a copy of the dataset, and copies
        of one generator would make the same draws in every worker."""
        info = torch.utils.data.get_worker_info()
        if info is None:
            return self._rng
        if self._worker_rng is None or self._worker_rng[0] != info.seed:
            self._worker_rng = (info.seed, random.Random(info.seed))
        return self._worker_rng[1]

    def _select_text(self, texts: list[str], key: int) -> str:
        texts = [t for t in texts if t]
        if not texts:
            where = self.source.cache_path(self.split, "rawtexts")
            raise CacheError(f"{where}: no text for id {key} (its list of texts is empty)")
        if self.caption_selection == "rand":
            return self._random().choice(texts)
        if self.caption_selection == "deterministic-mix":
            return texts[key % len(texts)]
        return texts[min(int(self.caption_selection), len(texts) - 1)]

    def _text_fields(self, text: str) -> dict[str, Any]:
        fields: dict[str, Any] = {"raw_texts": text}
        if self.tokenizer is not None:
            tokens = self.tokenizer(text)
            fields["texts_tokens"], fields["texts_lengths"] = tokens, int(tokens.numel())
        return fields

    def _draw_flip(self, texts: list[str] | None) -> tuple[bool, list[str] | None]:
        """Decide the L/R flip; a sample whose text cannot be flipped is kept as is."""
        if self.lr_flip_probability <= 0 or self._random().random() >= self.lr_flip_probability:
            return False, texts
        if texts is None:
            return True, None

        flipped = [flip_text(t) for t in texts]
        if any(t is None for t in flipped):
            return False, texts
        return True, flipped  # type: ignore[return-value]

    def _element(self, data_id: int, flip: bool, suffix: str = "") -> dict[str, Any]:
        jitter, cam_rot = None, self._cam_rot(data_id, flip)
        if self.affine_jitter is not None and ("i" in self.letters or self.keypoints_2d):
            jitter, theta = self.affine_jitter.draw(self._random())
            cam_rot = matrix_to_axis_angle(camera_roll(theta) @ axis_angle_to_matrix(cam_rot))
        item: dict[str, Any] = {f"data_ids{suffix}": data_id, f"cam_rot{suffix}": cam_rot}
        if "i" in self.letters:
            item[f"images{suffix}"] = self._image(data_id, flip, jitter)
        if self.keypoints_2d:
            points = self._joints_2d_crop(data_id, flip)
            item[f"joints_2d_crop{suffix}"] = points if jitter is None else warp_keypoints(points, jitter)
        if "p" in self.letters:
            pose = self._normalized_pose(data_id)
            item[f"poses{suffix}"] = flip_poses(pose) if flip else pose.clone()
            item[f"shapes{suffix}"] = self._shape(data_id)
        return item


class TriModalDatasetScript(_TriModalBase):
    """Single elements (image, pose, captions) of a BEDLAM-Script-format dataset, in stored (FPS) order."""

    def __init__(self, source: DatasetSource, split: str, **kwargs: Any):
        super().__init__(source, split, **kwargs)
        self._texts = self._load(split, "rawtexts")["texts"] if "t" in self.letters else None
        self.data_ids: list[int] = [int(i) for i in self._poses["poses"]]
        if self._texts is not None:
            self.data_ids = [i for i in self.data_ids if i in self._texts]

    def __len__(self) -> int:
        return len(self.data_ids)

    def captions_of(self, data_id: int) -> list[str]:
        """Every non-empty caption of the sample `data_id`, in stored order (no flip, no selection)."""
        if self._texts is None:
            raise ValueError(
                f"{type(self).__name__} was loaded without texts (item format {''.join(sorted(self.letters))!r})"
            )
        return [t for t in self._texts[data_id] if t]

    def __getitem__(self, index: int) -> dict[str, Any]:
        data_id = self.data_ids[index]
        texts = list(self._texts[data_id]) if self._texts is not None else None
        flip, texts = self._draw_flip(texts)
        item = self._element(data_id, flip)
        item.update(indices=index, flipped=flip)
        if texts is not None:
            item.update(self._text_fields(self._select_text(texts, data_id)))
        return item


class TriModalDatasetFix(_TriModalBase):
    """Pairs (A, B) with instructions of a BEDLAM-Fix-format dataset.
    In-sequence pairs keep the global rotation between A and B: pose B is re-expressed with A's heading
    normalisation (from the optional `heading_rotation` table of the poses cache) when available.
    """

    def __init__(self, source: DatasetSource, split: str, pair_kinds: tuple[str, ...] = ("in", "out"), **kwargs: Any):
        if source.script_family is None or source.script_version is None:
            raise ValueError(f"{source.family}: a fix dataset needs script_family and script_version")
        super().__init__(source, split, **kwargs)
        pairs = self._load(split, "pairs")
        self._pairs = pairs["pair_2_dataid"]
        self._kinds = pairs["sequence_info"]
        missing = sorted({int(i) for ids in self._pairs.values() for i in ids} - set(self._poses["poses"]))
        if missing:  # a KeyError in the middle of an epoch otherwise
            users = sorted(p for p, ids in self._pairs.items() if set(map(int, ids)) & set(missing))
            raise CacheError(
                f"{self.source.cache_path(split, 'poses', *self._script)}: data id(s) {missing[:5]} are missing, "
                f"used by pair(s) {users[:5]} of {self.source.cache_path(split, 'pairs')}"
            )
        self._texts = self._load(split, "rawtexts")["texts"] if "t" in self.letters else None
        self.pair_ids = [int(p) for p in self._pairs if self._kinds[p] in pair_kinds]
        if self._texts is not None:  # pairs whose instructions are all empty are dropped, as the original
            self.pair_ids = [p for p in self.pair_ids if any(self._texts.get(p, []))]

    def __len__(self) -> int:
        return len(self.pair_ids)

    def instructions_of(self, pair_id: int) -> list[str]:
        """Every non-empty instruction of the pair `pair_id`, in stored order (no flip, no selection): the
        references of generated instructions."""
        if self._texts is None:
            raise ValueError(
                f"{type(self).__name__} was loaded without texts (item format {''.join(sorted(self.letters))!r})"
            )
        return [t for t in self._texts.get(pair_id, []) if t]

    def _pose_b_in_sequence(self, id_a: int, id_b: int, flip: bool) -> torch.Tensor:
        """Pose B normalised with A's heading rotation, so the A->B rotation change survives."""
        raw_b = self._raw_pose(id_b)
        headings = self._poses.get("heading_rotation")
        if headings is None:
            return self._pose(raw_b, flip)
        n_a = axis_angle_to_matrix(torch.as_tensor(headings[id_a], dtype=torch.float32))
        n_b = axis_angle_to_matrix(torch.as_tensor(headings[id_b], dtype=torch.float32))
        raw_b = raw_b.clone()
        raw_b[0] = matrix_to_axis_angle(n_a @ n_b.T @ axis_angle_to_matrix(raw_b[0]))
        pose = raw_b[: self.num_body_joints].clone()
        pose[0] = y_up_to_z_up(pose[0])  # A's heading already applied: only the frame change remains
        return flip_poses(pose) if flip else pose

    def __getitem__(self, index: int) -> dict[str, Any]:
        pair_id = self.pair_ids[index]
        id_a, id_b = (int(i) for i in self._pairs[pair_id])
        texts = list(self._texts[pair_id]) if self._texts is not None else None
        flip, texts = self._draw_flip(texts)
        item = {**self._element(id_a, flip, "_A"), **self._element(id_b, flip, "_B")}
        kind = self._kinds[pair_id]
        if "p" in self.letters and kind == "in":
            item["poses_B"] = self._pose_b_in_sequence(id_a, id_b, flip)
        item.update(pair_ids=pair_id, indices=index, sequence_kind=kind, flipped=flip)
        if texts is not None:
            item.update(self._text_fields(self._select_text(texts, pair_id)))
        return item
