"""Cached representations x̄ of a dataset split, the inputs of the downstream heads (original_system.md §7.2).

x̄ (PoseEmbroider's intermodality token, the Aligner's mixed query) of every element of a split, made of the
chosen input types (`images`, `poses`, `texts`: any non-empty subset), computed once per representation
model and read back memory-mapped. A head then trains at the speed of reading (N, D) rows instead of
running the frozen encoders and the core on every step.

One function names the cache, for its writer and every reader (the original's writer and reader disagreed
on the name, quirk 5)::

    intermodality_cache_dir(model_dir, dataset, split, input_types)
        -> <model_dir>/intermodality_features/<dataset>_<split>_input-<images+texts>

(`root=` replaces `<model_dir>/intermodality_features`, e.g. for a read-only model folder). The cache is a
`features.store` folder (chunked, resumable, atomic rename when complete, sharded across torchrun ranks):

| dataset kind | rows (`data_ids`) | fields |
| --- | --- | --- |
| single elements (`synthscript-`, `bedlamscript-`) | data ids of the split | `xbar` (D,) |
| pairs (`synthfix-`, `bedlamfix-`, `synthpairs-`) | pair ids | `A` (D,), `B` (D,): x̄ of each element |

Its fingerprint holds the representation model's class and weights hash (and its frozen encoders'), the
dataset, split, input types, the caption used (`text_index`, the first caption as the original) and the
image processing; opening a cache made with any other value is an error naming each key that differs.

How x̄ is computed, reusing the frozen-feature caches of `features.frozen` (the ViT runs once per split and
is shared with core training): single elements read their frozen features (`compute_frozen_features`,
computed there on first use) and run the model's projections and core on them; pair elements read their
image features by data id from the single-element dataset's frozen store, and their poses as the pair
dataset gives them (pose B of an in-sequence pair is expressed in A's heading, so it differs from the single
element's pose), encoded live by the frozen pose encoder. Pairs have instructions, not per-element texts:
`texts` is refused for them.

Readers: `open_intermodality_features(model, dataset, split, input_types)` -> `IntermodalityFeatures`
(`data_ids`, `features(side)`, `rows(data_ids, side)`); `WithIntermodalityFeatures(dataset, features)` adds
`xbar` (pairs: `xbar_A`, `xbar_B`) to the items of a dataset, by data id (pairs: by pair id).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from poseembroider.datasets.base_dataset import TriModalDatasetFix
from poseembroider.datasets.registry import get_dataset, parse_dataset_name
from poseembroider.devices import barrier, get_rank, get_world_size, is_main_process, resolve_device
from poseembroider.downstream.input_types import check_input_types, input_types_name, modalities_of
from poseembroider.encoders import weights_fingerprint
from poseembroider.features.compute import cache_features
from poseembroider.features.frozen import CachedFeatureDataset, collate_batched, compute_frozen_features
from poseembroider.features.store import (
    META_NAME,
    FeatureCacheError,
    FeatureStore,
    FieldSpec,
    fingerprint_differences,
    partial_path,
)
from poseembroider.model import FEATURE_KEYS, RepresentationModel
from poseembroider.representation import load_representation_model

__all__ = [
    "CACHE_FOLDER",
    "PAIR_SIDES",
    "IntermodalityFeatures",
    "WithIntermodalityFeatures",
    "compute_intermodality_features",
    "intermodality_cache_dir",
    "intermodality_fingerprint",
    "is_pair_dataset",
    "open_intermodality_features",
]

CACHE_FOLDER = "intermodality_features"
"""Sub-folder of a model folder holding its x̄ caches."""
PAIR_SIDES: tuple[str, ...] = ("A", "B")
SINGLE_FIELD = "xbar"
IMAGE_PROCESSING = "smplerx_eval"  # the datasets' evaluation processing: no augmentation in a cache

ModelLike = str | os.PathLike | RepresentationModel


# ---------------------------------------------------------------------------------------------- naming


def intermodality_cache_dir(
    model_dir: str | os.PathLike,
    dataset: str,
    split: str,
    input_types: Sequence[str] | str,
    root: str | os.PathLike | None = None,
) -> Path:
    """The x̄ cache of a (model, dataset, split, input types): `<root>/<dataset>_<split>_input-<types>`, root
    defaulting to `<model_dir>/intermodality_features`. The one place the name is made (writer and readers)."""
    for what, value in (("dataset", dataset), ("split", split)):
        if not value or "/" in value or os.sep in value:
            raise ValueError(f"{what} {value!r}: a non-empty name without path separators is expected")
    base = Path(root) if root is not None else Path(model_dir) / CACHE_FOLDER
    return base / f"{dataset}_{split}_input-{input_types_name(input_types)}"


def is_pair_dataset(dataset: str) -> bool:
    """Whether the registry dataset `dataset` serves pairs (A, B) rather than single elements."""
    family, _ = parse_dataset_name(dataset)
    return issubclass(family.dataset_class, TriModalDatasetFix)


def intermodality_fingerprint(
    model: RepresentationModel, dataset: str, split: str, input_types: Sequence[str] | str, text_index: int = 0
) -> dict[str, str]:
    """What identifies a cache: the model (class @ weights hash, and the frozen encoders of the input types),
    the data (dataset, split, input types) and how inputs were read (caption index, image processing)."""
    types = check_input_types(input_types)
    modalities = modalities_of(types)
    encoders = model.config.fingerprints()
    out = {
        "representation_model": f"{type(model).__name__}@{weights_fingerprint(model)}",
        "frozen_encoders": ",".join(f"{m}={encoders[m] or 'unchecked'}" for m in modalities),
        "dataset": dataset,
        "split": split,
        "input_types": input_types_name(types),
    }
    if "texts" in types:
        out["text_index"] = str(int(text_index))
    if "images" in types:
        out["image_processing"] = f"{IMAGE_PROCESSING}/{model.config.image_feature_mode}"
    return out


# ---------------------------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class IntermodalityFeatures:
    """The x̄ of a split: row n is `data_ids[n]` (pair datasets: a pair id, with one x̄ per side 'A' / 'B')."""

    store: FeatureStore
    dataset: str
    split: str
    input_types: tuple[str, ...]

    def __post_init__(self) -> None:
        """A store of other fields (a hand-made or damaged cache with a matching fingerprint) is refused here,
        naming the folder, instead of failing later with a KeyError on 'xbar' or a shape error in a head."""
        fields = self.store.fields
        layouts = ({SINGLE_FIELD}, set(PAIR_SIDES))
        widths = {spec.shape for spec in fields.values()}
        if set(fields) not in layouts or len(widths) != 1 or len(next(iter(widths))) != 1:
            found = ", ".join(f"{s.name} {s.shape}" for s in fields.values())
            raise FeatureCacheError(
                f"{self.store.directory} is not an x̄ cache: it holds {found}; expected '{SINGLE_FIELD}' (D,) for "
                f"single elements or {' and '.join(repr(s) for s in PAIR_SIDES)} (D,) for pairs"
            )

    @property
    def data_ids(self) -> np.ndarray:
        """(N,) int64 data ids (pair ids for pair datasets), read-only."""
        return self.store.data_ids

    @property
    def sides(self) -> tuple[str, ...]:
        """('A', 'B') for a pair dataset, () for single elements."""
        return PAIR_SIDES if PAIR_SIDES[0] in self.store.fields else ()

    @property
    def dim(self) -> int:
        return self.store.fields[self._field(self.sides[0] if self.sides else None)].shape[0]

    def __len__(self) -> int:
        return len(self.store)

    def __repr__(self) -> str:
        sides = f", sides {self.sides}" if self.sides else ""
        return (
            f"IntermodalityFeatures({self.dataset} {self.split}, input {input_types_name(self.input_types)}, "
            f"{len(self)} x {self.dim}{sides}; {self.store.directory})"
        )

    def _field(self, side: str | None) -> str:
        if self.sides:
            if side not in self.sides:
                raise ValueError(f"{self.store.directory} holds pairs: side must be one of {self.sides}, got {side!r}")
            return side
        if side is not None:
            raise ValueError(f"{self.store.directory} holds single elements: side must be None, got {side!r}")
        return SINGLE_FIELD

    def features(self, side: str | None = None) -> torch.Tensor:
        """(N, D) float32 x̄ of every row (side 'A' / 'B' for pairs), in memory."""
        return self.store.get(self._field(side), slice(None))

    def rows(self, data_ids: Sequence[int] | np.ndarray | torch.Tensor, side: str | None = None) -> torch.Tensor:
        """(n, D) float32 x̄ of `data_ids` (pair ids for pairs); an id absent from the cache is an error naming it."""
        field = self._field(side)
        ids = np.asarray(data_ids.cpu() if isinstance(data_ids, torch.Tensor) else data_ids).reshape(-1)
        return self.store.get(field, self.store.positions_of(ids))


def _loaded(model: ModelLike, checkpoint: str = "best") -> tuple[RepresentationModel, Path | None]:
    if isinstance(model, RepresentationModel):
        return model, None
    return load_representation_model(model, checkpoint, "cpu")


def open_intermodality_features(
    model: ModelLike,
    dataset: str,
    split: str,
    input_types: Sequence[str] | str,
    *,
    model_dir: str | os.PathLike | None = None,
    root: str | os.PathLike | None = None,
    directory: str | os.PathLike | None = None,
    text_index: int = 0,
    checkpoint: str = "best",
) -> IntermodalityFeatures:
    """The complete x̄ cache of `model` (shortname, folder, or a loaded model with `model_dir`) for the split.

    The cache is found by `intermodality_cache_dir` (or is `directory` itself) and must carry the fingerprint
    `model` gives for these settings; a missing, unfinished or mismatched cache is a `FeatureCacheError`
    naming its folder (and each fingerprint key that differs: model version, dataset, input types, ...)."""
    types = check_input_types(input_types)
    loaded, found_dir = _loaded(model, checkpoint)
    if directory is None:
        where = model_dir if model_dir is not None else found_dir
        if where is None and root is None:
            raise ValueError("open_intermodality_features: a loaded model needs model_dir= (or root=, directory=)")
        directory = intermodality_cache_dir(where or "", dataset, split, types, root)
    directory = Path(directory)
    expected = intermodality_fingerprint(loaded, dataset, split, types, text_index)
    if not (directory / META_NAME).is_file():
        state = "unfinished (a .partial folder is there)" if partial_path(directory).is_dir() else "missing"
        raise FeatureCacheError(
            f"no x̄ cache at {directory} ({state}): compute it with `poseembroider cache-intermodality-features "
            f"--model_path <model> --dataset {dataset} --split {split} --input_types {' '.join(types)}`"
        )
    store = FeatureStore.open(directory)
    differences = fingerprint_differences(store.fingerprint, expected)
    if differences:
        raise FeatureCacheError(
            f"the x̄ cache {directory} was made for other settings: {'; '.join(differences)}; recompute it "
            "(cache-intermodality-features --overwrite) or point at the right cache"
        )
    features = IntermodalityFeatures(store, dataset, split, types)
    if features.dim != loaded.config.latentD:
        raise FeatureCacheError(
            f"the x̄ cache {directory} holds {features.dim}-d rows, the model's x̄ has {loaded.config.latentD}: "
            "recompute it (cache-intermodality-features --overwrite)"
        )
    return features


class WithIntermodalityFeatures(Dataset):
    """The items of `base_dataset` with their x̄ added under `key` (pairs: `<key>_A`, `<key>_B`), looked up
    by the item's `data_ids` (pairs: `pair_ids`), so any subset or order of the base dataset works.

    Items that are batches (a base dataset with `__getitems__`, e.g. `CachedFeatureDataset`) get (B, D) rows.
    """

    def __init__(self, base_dataset: Dataset, features: IntermodalityFeatures, key: str = "xbar") -> None:
        self.base = base_dataset
        self.features = features
        self.key = key
        self.id_key = "pair_ids" if features.sides else "data_ids"
        self._rows = {side: features.features(side) for side in features.sides or (None,)}  # (N, D) in memory

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def _add(self, item: dict[str, Any]) -> dict[str, Any]:
        if self.id_key not in item:
            raise KeyError(
                f"WithIntermodalityFeatures: the base dataset's items have no {self.id_key!r} to look x̄ up by "
                f"(keys: {sorted(item)})"
            )
        ids = torch.as_tensor(item[self.id_key])
        positions = torch.from_numpy(self.features.store.positions_of(ids.reshape(-1).numpy()))
        for side, rows in self._rows.items():
            value = rows[positions]
            item[self.key if side is None else f"{self.key}_{side}"] = value if ids.dim() else value[0]
        return item

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self._add(dict(self.base[index]))

    def __getitems__(self, indices: Sequence[int]) -> Any:
        getitems = getattr(self.base, "__getitems__", None)
        if getitems is None:
            return [self[i] for i in indices]
        got = getitems(list(indices))
        return self._add(dict(got)) if isinstance(got, Mapping) else [self._add(dict(item)) for item in got]


# ---------------------------------------------------------------------------------------------- computing


def _to_device(batch: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


class _PairElements(Dataset):
    """Items `{data_ids: pair id, A: {...}, B: {...}}` of a pair dataset: per element, its frozen image features
    (read by data id from the single-element dataset's store) and / or its pose as the pair dataset gives it."""

    def __init__(self, pairs: TriModalDatasetFix, image_store: FeatureStore | None, poses: bool) -> None:
        self.pairs, self.image_store, self.poses = pairs, image_store, poses

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.pairs[index]
        out: dict[str, Any] = {"data_ids": item["pair_ids"]}
        for side in PAIR_SIDES:
            element: dict[str, Any] = {}
            if self.poses:
                element["poses"] = item[f"poses_{side}"]
            if self.image_store is not None:
                position = self.image_store.positions_of([item[f"data_ids_{side}"]])
                element[FEATURE_KEYS["image"]] = self.image_store.get("image", position)[0]
            out[side] = element
        return out


def _single_plan(model, dataset, split, modalities, text_index, frozen_kwargs):
    """(items dataset, encoders, fields, data ids, collate) for a single-element dataset."""
    stores = compute_frozen_features(
        dataset, split, model.frozen_encoders, model.config.image_feature_mode, modalities=modalities, **frozen_kwargs
    )
    items = CachedFeatureDataset(stores, caption_selection=int(text_index))
    device = model.temperature.device

    def encode(batch: Mapping[str, Any]) -> torch.Tensor:
        return model.get_intermodality_token(_to_device(batch, device), modalities)

    fields = [FieldSpec(SINGLE_FIELD, (model.config.latentD,))]
    return items, {SINGLE_FIELD: encode}, fields, np.asarray(items.data_ids), collate_batched


def _pair_plan(model, dataset, split, modalities, frozen_kwargs):
    """(items dataset, encoders, fields, pair ids, collate) for a pair dataset."""
    if "text" in modalities:
        raise FeatureCacheError(
            f"--input_types texts: {dataset} is a pair dataset, whose texts are instructions about the pair, "
            "not descriptions of element A or B; cache its pairs with images and / or poses"
        )
    _, source = parse_dataset_name(dataset)
    pairs = get_dataset(dataset, split, item_format="p", img_processing=IMAGE_PROCESSING)
    image_store = None
    if "image" in modalities:
        script = f"{source.script_family}-{source.script_version}"
        image_store = compute_frozen_features(
            script,
            split,
            model.frozen_encoders,
            model.config.image_feature_mode,
            modalities=("image",),
            **frozen_kwargs,
        )["image"]
    items = _PairElements(pairs, image_store, "pose" in modalities)
    device = model.temperature.device

    def encoder(side: str):
        def encode(batch: Mapping[str, Any]) -> torch.Tensor:
            return model.get_intermodality_token(_to_device(batch[side], device), modalities)

        return encode

    fields = [FieldSpec(side, (model.config.latentD,)) for side in PAIR_SIDES]
    return items, {side: encoder(side) for side in PAIR_SIDES}, fields, np.asarray(pairs.pair_ids), None


@torch.no_grad()
def compute_intermodality_features(
    model: ModelLike,
    dataset: str,
    split: str,
    input_types: Sequence[str] | str,
    *,
    model_dir: str | os.PathLike | None = None,
    root: str | os.PathLike | None = None,
    checkpoint: str = "best",
    text_index: int = 0,
    batch_size: int = 32,
    num_workers: int = 0,
    chunk_size: int = 1024,
    overwrite: bool = False,
    device: str | torch.device = "cpu",
    frozen_root: str | os.PathLike | None = None,
    progress: bool = True,
) -> IntermodalityFeatures:
    """Compute (or resume, or reuse when complete and matching) the x̄ cache of `model` for the split.

    Every torchrun rank calls it with the same arguments: each computes its own chunks into the shared
    `.partial` folder, rank 0 renames it once all are done (`features.compute.cache_features`). A complete
    cache made with other settings is refused (names the keys that differ) unless `overwrite`.
    `frozen_root`: root of the frozen-feature caches (default DATA_CACHE_DIR/frozen_features)."""
    types = check_input_types(input_types)
    modalities = modalities_of(types)
    loaded, found_dir = _loaded(model, checkpoint)
    loaded = loaded.to(resolve_device(device)).eval()
    where = model_dir if model_dir is not None else found_dir
    if where is None and root is None:
        raise ValueError("compute_intermodality_features: a loaded model needs model_dir= (or root=)")
    directory = intermodality_cache_dir(where or "", dataset, split, types, root)
    fingerprint = intermodality_fingerprint(loaded, dataset, split, types, text_index)
    if (directory / META_NAME).is_file() and not overwrite:
        # complete: read it without building the frozen encoders or their feature stores (cache_features
        # would only get here after them); the fingerprint names the dataset and split, so the rows are its
        store = FeatureStore.open(directory)
        differences = fingerprint_differences(store.fingerprint, fingerprint)
        if differences:
            raise FeatureCacheError(
                f"the x̄ cache {directory} was made for other settings: {'; '.join(differences)}; recompute it "
                "with overwrite=True (--overwrite), or use another folder"
            )
        return IntermodalityFeatures(store, dataset, split, types)
    frozen_kwargs = {
        "batch_size": batch_size,
        "num_workers": num_workers,
        "root": Path(frozen_root) if frozen_root is not None else None,
        "progress": progress,
    }
    if is_pair_dataset(dataset):
        items, encoders, fields, ids, collate = _pair_plan(loaded, dataset, split, modalities, frozen_kwargs)
    else:
        items, encoders, fields, ids, collate = _single_plan(
            loaded, dataset, split, modalities, text_index, frozen_kwargs
        )
    store = cache_features(
        items,
        encoders,
        fields,
        directory,
        fingerprint,
        data_ids=ids,
        batch_size=batch_size,
        num_workers=num_workers,
        collate_fn=collate,
        chunk_size=chunk_size,
        rank=get_rank(),
        world_size=get_world_size(),
        barrier=barrier,
        progress=progress and is_main_process(),
        overwrite=overwrite,
    )
    return IntermodalityFeatures(store, dataset, split, types)
