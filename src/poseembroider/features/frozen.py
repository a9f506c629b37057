"""Frozen-encoder features of a dataset split, cached once and read by the core's training and evaluation.

One store per (dataset, split, modality, encoder version) (`features.store` layout, one row per sample
in the dataset's order), so changing the image mode or one encoder recomputes only that modality:

| modality | fields (per-sample shape, dtype) | content |
| --- | --- | --- |
| image, exact mode | `image` (T, D_i) float16 | the frozen patch tokens |
| image, compact mode | `image` (D_i,) float32 | their average |
| pose | `pose` (512,) float32 | PoseVAE encoder feature |
| text | `text` (C, D_t) float32, `text_count` (1,) | PoseText text feature of each caption (*) |

(*) C = most captions of a sample; rows past `text_count` repeat the last caption.

Exact mode keeps the whole token map, as the original's image projection acts on each token before the
average (192 x 768 fp16 = 295 KB per image with the SMPLer-X ViT-B); compact mode averages the frozen
tokens first (a departure from the original: the trainable projection then sees the mean token). A
compact store is derived from an existing exact one without running the encoder.

Store folders: `<root>/<dataset>_<split>/<modality>[_<image mode>]_<hash of the fingerprint>`; the
fingerprint (encoder name and weights hash, image mode) is stored in the store and checked when it is
opened, so features of another encoder version are never read. Caching is resumable and sharded across
ranks under torchrun (`features.compute`).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from poseembroider import config
from poseembroider.datasets.collate import collate_texts
from poseembroider.datasets.registry import get_dataset
from poseembroider.devices import barrier, get_rank, get_world_size, is_main_process
from poseembroider.encoders import FrozenEncoders, FrozenModalityEncoder
from poseembroider.features.compute import cache_features
from poseembroider.features.store import FeatureCacheError, FeatureStore, FieldSpec
from poseembroider.modalities import check_modalities
from poseembroider.model import FEATURE_KEYS, POOL_BATCH_KEY

IMAGE_MODES = ("exact", "compact")
CAPTION_SELECTIONS = ("rand", "deterministic-mix")


def modality_fingerprint(encoder: FrozenModalityEncoder, image_mode: str | None = None) -> dict[str, str]:
    """What identifies one modality's features: the encoder's name and weights hash (and the image mode)."""
    out = {f"{encoder.modality}_encoder": f"{encoder.name}@{encoder.fingerprint}"}
    if encoder.modality == "image":
        out["image_mode"] = str(image_mode)
    return out


def store_directory(dataset_name: str, split: str, fingerprint: Mapping[str, str], root: Path | None = None) -> Path:
    """`<root>/<dataset>_<split>/<modality>[_<mode>]_<hash>`, root defaulting to DATA_CACHE_DIR/frozen_features."""
    digest = hashlib.sha256(repr(sorted(fingerprint.items())).encode()).hexdigest()[:12]
    (key,) = [k for k in fingerprint if k.endswith("_encoder")]
    name = key.removesuffix("_encoder") + (f"_{fingerprint['image_mode']}" if "image_mode" in fingerprint else "")
    root = Path(root) if root is not None else Path(config.DATA_CACHE_DIR) / "frozen_features"
    return root / f"{dataset_name}_{split}" / f"{name}_{digest}"


class AllCaptionsDataset(Dataset):
    """Items of a script dataset (item format 't') with every caption tokenized: `captions_tokens`."""

    def __init__(self, dataset: Any, tokenizer: Any) -> None:
        self.dataset = dataset
        self.tokenizer = tokenizer

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        data_id = self.dataset.data_ids[index]
        texts = self.dataset.captions_of(data_id)
        return {"data_ids": data_id, "captions_tokens": [self.tokenizer(t) for t in texts]}


def collate_all_captions(items: list[dict[str, Any]], max_captions: int, pad_token_id: int = 0) -> dict[str, Any]:
    """Batch of `AllCaptionsDataset` items: captions flattened to `texts_tokens` (B*C, L) and `texts_lengths`
    (B*C,), sample b's caption c at row b*C + c (missing captions repeat the last one); `text_count` (B, 1)."""
    flat: list[dict[str, Any]] = []
    counts = []
    for item in items:
        caps = list(item["captions_tokens"][:max_captions])
        if not caps:
            raise FeatureCacheError(f"data id {item['data_ids']} has no caption")
        counts.append(len(caps))
        caps += [caps[-1]] * (max_captions - len(caps))
        flat.extend({"texts_tokens": c, "texts_lengths": int(c.numel())} for c in caps)
    batch = collate_texts(flat, pad_token_id)
    batch["data_ids"] = torch.tensor([int(item["data_ids"]) for item in items])
    batch["text_count"] = torch.tensor(counts, dtype=torch.float32)[:, None]
    return batch


def _image_plan(encoder: FrozenModalityEncoder, image_mode: str, exact: FeatureStore | None):
    """(fields, encode functions) of the image store; compact derives from an exact store when there is one."""
    tokens_shape = tuple(encoder.feature_shape)
    if image_mode == "exact":
        return [FieldSpec("image", tokens_shape, "float16")], {"image": lambda b: encoder(b).half()}
    if exact is not None:
        return [FieldSpec("image", tokens_shape[-1:], "float32")], {
            "image": lambda b: exact.get("image", exact.positions_of(b["data_ids"].tolist())).mean(dim=1)
        }
    return [FieldSpec("image", tokens_shape[-1:], "float32")], {"image": lambda b: encoder(b).mean(dim=1)}


def compute_modality_features(
    dataset_name: str,
    split: str,
    encoder: FrozenModalityEncoder,
    image_mode: str = "exact",
    batch_size: int = 32,
    num_workers: int = 0,
    root: Path | None = None,
    progress: bool = True,
) -> FeatureStore:
    """The frozen features of one modality for a split (computed on first call, then read back)."""

    if image_mode not in IMAGE_MODES:
        raise ValueError(f"image feature mode {image_mode!r} is not one of {list(IMAGE_MODES)}")
    modality = encoder.modality
    fingerprint = modality_fingerprint(encoder, image_mode)
    directory = store_directory(dataset_name, split, fingerprint, root)
    letter = {"image": "i", "pose": "p", "text": "t"}[modality]
    base = get_dataset(dataset_name, split, item_format=letter, img_processing="smplerx_eval")
    data_ids = [int(i) for i in base.data_ids]
    collate = None
    if modality == "image":
        exact_dir = store_directory(dataset_name, split, modality_fingerprint(encoder, "exact"), root)
        exact = None
        if image_mode == "compact" and (exact_dir / "meta.json").is_file():
            exact = FeatureStore.open(exact_dir, modality_fingerprint(encoder, "exact"))
            base = get_dataset(dataset_name, split, item_format="p")  # ids only: no image is decoded
        fields, encode = _image_plan(encoder, image_mode, exact)
        dataset: Dataset = base
    elif modality == "pose":
        fields, encode, dataset = [FieldSpec("pose", tuple(encoder.feature_shape))], {"pose": encoder}, base
    else:
        max_captions = max((len([t for t in texts if t]) for texts in base._texts.values()), default=1)
        fields = [FieldSpec("text", (max_captions, *encoder.feature_shape)), FieldSpec("text_count", (1,))]

        def encode_text(batch: Mapping[str, Any]) -> torch.Tensor:
            feats = encoder.encode_by_length(batch["texts_tokens"], batch["texts_lengths"])
            return feats.view(-1, max_captions, feats.shape[-1])

        encode = {"text": encode_text, "text_count": lambda batch: batch["text_count"]}
        dataset = AllCaptionsDataset(base, encoder.tokenizer)
        collate = functools.partial(
            collate_all_captions, max_captions=max_captions, pad_token_id=encoder.tokenizer.pad_token_id
        )
    return cache_features(
        dataset,
        encode,
        fields,
        directory,
        fingerprint,
        data_ids=data_ids,
        batch_size=batch_size,
        num_workers=num_workers,
        collate_fn=collate,
        rank=get_rank(),
        world_size=get_world_size(),
        barrier=barrier,
        progress=progress and is_main_process(),
    )


def compute_frozen_features(
    dataset_name: str,
    split: str,
    encoders: FrozenEncoders,
    image_mode: str = "exact",
    modalities: Sequence[str] | None = None,
    **kwargs: Any,
) -> dict[str, FeatureStore]:
    """{modality: store} for every modality of `encoders` (or of `modalities`); see `compute_modality_features`."""
    wanted = encoders.modalities if modalities is None else check_modalities(modalities)
    return {
        m: compute_modality_features(dataset_name, split, encoders.encoders[m], image_mode, **kwargs) for m in wanted
    }


class CachedFeatureDataset(Dataset):
    """Items from frozen-feature stores: `image_features`, `pose_features`, `text_features` (one caption:
    drawn at random ('rand'), `data_id % count` ('deterministic-mix') or a fixed index), `data_ids`, `indices`.

    `__getitems__` reads a whole batch with one fancy-index per field (the DataLoader calls it with the
    batch's indices); pass `collate_batched` as the DataLoader's collate_fn. The caption draws of the main
    process run on across epochs: `rng_state()` / `set_rng_state()` let the Trainer checkpoint them
    (`training.state`), so a resumed run draws the captions an uninterrupted one does.
    """

    def __init__(
        self, stores: Mapping[str, FeatureStore], caption_selection: str | int = "deterministic-mix", seed: int = 0
    ) -> None:
        if not (isinstance(caption_selection, int) or caption_selection in CAPTION_SELECTIONS):
            raise ValueError(f"caption_selection {caption_selection!r}: use one of {CAPTION_SELECTIONS} or an index")
        self.modalities = check_modalities(stores, "feature stores")
        self.stores = dict(stores)
        first = self.stores[self.modalities[0]]
        for m in self.modalities[1:]:
            if not np.array_equal(self.stores[m].data_ids, first.data_ids):
                raise FeatureCacheError(
                    f"feature stores {first.directory} and {self.stores[m].directory} hold different data ids"
                )
        self.data_ids = first.data_ids
        self.caption_selection = caption_selection
        self._rng = np.random.default_rng(seed)
        self._worker_seed: int | None = None

    def __len__(self) -> int:
        return len(self.data_ids)

    def rng_state(self) -> dict[str, Any]:
        """The main process's caption generator (worker generators are re-seeded every epoch)."""
        return {"captions": dict(self._rng.bit_generator.state)}

    def set_rng_state(self, state: Mapping[str, Any]) -> None:
        """Inverse of `rng_state`."""
        self._rng.bit_generator.state = state["captions"]  # numpy refuses another bit generator's state

    def _generator(self) -> np.random.Generator:
        info = torch.utils.data.get_worker_info()
        if info is not None and self._worker_seed != info.seed:
            self._worker_seed = info.seed
            self._rng = np.random.default_rng(info.seed)
        return self._rng

    def _caption_indices(self, positions: np.ndarray, data_ids: np.ndarray) -> np.ndarray:
        counts = self.stores["text"].get("text_count", positions).view(-1).long().numpy()
        if self.caption_selection == "rand":
            return np.floor(self._generator().random(len(positions)) * counts).astype(np.int64)
        if self.caption_selection == "deterministic-mix":
            return data_ids % counts
        return np.minimum(int(self.caption_selection), counts - 1)

    def __getitems__(self, indices: Sequence[int]) -> dict[str, Any]:
        positions = np.asarray(indices, dtype=np.int64)
        data_ids = self.data_ids[positions]
        batch: dict[str, Any] = {"data_ids": torch.from_numpy(data_ids.copy()), "indices": torch.from_numpy(positions)}
        for m in self.modalities:
            if m == "text":
                texts = self.stores["text"].get("text", positions)  # (B, C, D)
                chosen = torch.from_numpy(self._caption_indices(positions, data_ids))
                batch[FEATURE_KEYS[m]] = texts[torch.arange(len(positions)), chosen]
            else:
                batch[FEATURE_KEYS[m]] = self.stores[m].get(m, positions)
        return batch

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {k: v[0] for k, v in self.__getitems__([index]).items()}


class WithPoolBatches(Dataset):
    """The items of `main`, each batch carrying a sub-batch of about `ratio` x its size drawn from `pool` under
    `POOL_BATCH_KEY`: samples with fewer modalities (a pose-text pool: captioned poses without images) that
    the model trains on with the loss terms their modalities allow.

    The pool is read in a seeded random order without replacement, reshuffled when used up (per DataLoader
    worker, as `CachedFeatureDataset`'s caption draws), so a pool larger than `main` is seen a part per epoch.
    Read through `__getitems__` (whole batches): pass `collate_batched` as the DataLoader's collate_fn.
    The main process's pool order (generator and rows left of the current permutation) is checkpointed by the
    Trainer through `rng_state()` / `set_rng_state()`, as are `main`'s and `pool`'s own caption draws.
    """

    def __init__(self, main: CachedFeatureDataset, pool: CachedFeatureDataset, ratio: float = 1.0, seed: int = 0):
        if not 0 < ratio < float("inf"):  # also refuses NaN, which `ratio <= 0` let through
            raise ValueError(f"pool batch ratio {ratio}: must be a finite number > 0")
        if len(pool) == 0:
            raise ValueError("the pool dataset is empty")
        self.main, self.pool, self.ratio = main, pool, ratio
        self.data_ids = main.data_ids
        self._seed = seed
        self._rng = np.random.default_rng(seed)
        self._worker_seed: int | None = None
        self._order = np.empty(0, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.main)

    def rng_state(self) -> dict[str, Any]:
        """The main process's pool order: `{"generator": state, "order": (R,) int64 rows left to take}`."""
        return {"generator": dict(self._rng.bit_generator.state), "order": torch.from_numpy(self._order.copy())}

    def set_rng_state(self, state: Mapping[str, Any]) -> None:
        """Inverse of `rng_state`; rows of the order beyond the pool are refused (another pool was saved)."""
        order = torch.as_tensor(state["order"], dtype=torch.int64).numpy().copy()
        if order.size and (order.min() < 0 or order.max() >= len(self.pool)):
            raise ValueError(f"the saved pool order holds rows outside the pool of {len(self.pool)} samples")
        self._rng.bit_generator.state = state["generator"]
        self._order = order

    def _next_pool_positions(self, count: int) -> np.ndarray:
        info = torch.utils.data.get_worker_info()
        if info is not None and self._worker_seed != info.seed:
            self._worker_seed = info.seed
            self._rng, self._order = np.random.default_rng([self._seed, info.seed]), np.empty(0, dtype=np.int64)
        while len(self._order) < count:
            self._order = np.concatenate([self._order, self._rng.permutation(len(self.pool))])
        taken, self._order = self._order[:count], self._order[count:]
        return taken

    def __getitems__(self, indices: Sequence[int]) -> dict[str, Any]:
        batch = self.main.__getitems__(indices)
        count = max(1, round(len(indices) * self.ratio))
        batch[POOL_BATCH_KEY] = self.pool.__getitems__(self._next_pool_positions(count).tolist())
        return batch

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.main[index]


def collate_batched(batch: Any) -> Any:
    """Collate for `CachedFeatureDataset`: batches read by `__getitems__` pass through; lists of items are
    stacked by `default_collate`."""
    return batch if isinstance(batch, dict) else default_collate(batch)


__all__ = [
    "CachedFeatureDataset",
    "WithPoolBatches",
    "collate_batched",
    "compute_frozen_features",
    "compute_modality_features",
]
