"""Data of the instruction generator: pair datasets with their instructions, the original's finetuning mix, and
the input sets of the evaluation.

Training items come from the registry's pair datasets with item format 't' (`pair_ids`, `texts_tokens`,
`texts_lengths`, ...); the x̄ of each element is added by pair id from an x̄ cache
(`features.intermodality.WithIntermodalityFeatures`, keys `xbar_A`, `xbar_B`), and `text_collate_fn` pads the
instructions. The instruction is drawn at random among a pair's annotations at training ('rand') and fixed at
validation ('deterministic-mix'), as the original. No left/right flip: cached x̄ forbids augmentation.

The finetuning step trains on several datasets at once (`--datasets posefix-H bedlamfix-... --pair_kinds out
any`) with the original's `SuperDatasetWeightedRandomSampler`: an epoch holds min(sizes) x sum(weights)
samples, min size x w_k of them from dataset k, each drawn with replacement (`WeightedMix`).

Input sets (`INPUT_SETS`): which modalities x̄ of A and of B are made of, named as the paper's Table 2:
(P_A,P_B) poses only, (V_A,V_B) images only, the two mixed ones and (V_A+P_A,V_B+P_B) both.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import ConcatDataset, Dataset, Subset

from poseembroider.datasets.base_dataset import TriModalDatasetFix
from poseembroider.datasets.cache_format import image_file, load_cache
from poseembroider.datasets.registry import get_dataset, parse_dataset_name
from poseembroider.downstream.input_types import check_input_types, input_types_name
from poseembroider.text.tokenization import Tokenizer

__all__ = [
    "INPUT_SETS",
    "PAIR_KINDS",
    "InputSet",
    "PairDataError",
    "PairReferences",
    "WeightedMix",
    "available_input_sets",
    "check_pair_images",
    "get_input_set",
    "load_pair_references",
    "load_pair_texts",
    "pair_kinds_of",
    "xbar_cache_root",
]

PAIR_KINDS: dict[str, tuple[str, ...]] = {"in": ("in",), "out": ("out",), "any": ("in", "out")}
"""`--pair_kinds` values: in-sequence pairs, out-of-sequence pairs, or both."""


CACHE_MARK = re.compile(r"auto|e\d+|best|last")
"""`--cached_embeddings_file` values meaning "the x̄ caches beside the representation model": 'auto', or the
original's file mark `e<epoch>` (our caches are found by `features.intermodality.intermodality_cache_dir`)."""


def xbar_cache_root(spec: str | None) -> Path | None:
    """Root of the x̄ caches for `--cached_embeddings_file`: None (beside the representation model) for None,
    'auto' or a file mark, else the folder given (for a read-only model folder)."""
    return None if spec is None or CACHE_MARK.fullmatch(spec) else Path(spec)


@dataclass(frozen=True)
class InputSet:
    """What x̄ of element A and of element B are made of (input types: images, poses)."""

    name: str
    types_A: tuple[str, ...]
    types_B: tuple[str, ...]

    @property
    def needs_images(self) -> bool:
        return "images" in self.types_A + self.types_B

    def types(self, side: str) -> tuple[str, ...]:
        """The input types of side 'A' or 'B'."""
        if side not in ("A", "B"):
            raise ValueError(f"side must be 'A' or 'B', got {side!r}")
        return self.types_A if side == "A" else self.types_B


INPUT_SETS: dict[str, InputSet] = {
    s.name: s
    for s in (
        InputSet("P_A,P_B", ("poses",), ("poses",)),
        InputSet("V_A,V_B", ("images",), ("images",)),
        InputSet("P_A,V_B", ("poses",), ("images",)),
        InputSet("V_A,P_B", ("images",), ("poses",)),
        InputSet("V_A+P_A,V_B+P_B", ("images", "poses"), ("images", "poses")),
    )
}
"""The evaluation's input sets, in the order of the paper's Table 2 (V = image, P = pose)."""


def get_input_set(name: str) -> InputSet:
    """The input set named `name` ('P_A,P_B', ...); an unknown name lists the known ones."""
    if name not in INPUT_SETS:
        raise ValueError(f"unknown input set {name!r}; known: {list(INPUT_SETS)}")
    return INPUT_SETS[name]


def input_set_of(types_A: Sequence[str], types_B: Sequence[str]) -> InputSet:
    """The input set of these input types (a name like 'poses/images' when it is none of `INPUT_SETS`)."""
    a, b = check_input_types(types_A), check_input_types(types_B)
    for candidate in INPUT_SETS.values():
        if (candidate.types_A, candidate.types_B) == (a, b):
            return candidate
    return InputSet(f"{input_types_name(a)}/{input_types_name(b)}", a, b)


def available_input_sets(dataset: str) -> list[str]:
    """The input sets the pair dataset `dataset` offers: all five with images, (P_A,P_B) for a pose-only one."""
    family, _ = parse_dataset_name(dataset)
    if not issubclass(family.dataset_class, TriModalDatasetFix):
        raise ValueError(f"{dataset} is not a pair dataset (use a synthfix- / bedlamfix- / synthpairs- one)")
    return [name for name, s in INPUT_SETS.items() if family.has_images or not s.needs_images]


def pair_kinds_of(values: Sequence[str] | None, count: int) -> list[tuple[str, ...]]:
    """`--pair_kinds` for `count` datasets: one value for all, or one per dataset (in / out / any)."""
    values = list(values) if values else ["any"]
    unknown = [v for v in values if v not in PAIR_KINDS]
    if unknown:
        raise ValueError(f"--pair_kinds {unknown[0]!r}: use one of {list(PAIR_KINDS)}")
    if len(values) not in (1, count):
        raise ValueError(f"--pair_kinds: give one value, or one per dataset ({count}); got {len(values)}: {values}")
    return [PAIR_KINDS[v] for v in (values * count if len(values) == 1 else values)]


def load_pair_texts(
    dataset: str,
    split: str,
    tokenizer: Tokenizer,
    pair_kinds: Sequence[str] = ("in", "out"),
    training: bool = False,
    seed: int | None = None,
    data_size: int | None = None,
) -> Dataset:
    """Pairs of `dataset` with one tokenized instruction each (item format 't'): drawn at random among the
    pair's instructions when `training`, else fixed per pair; the first `data_size` pairs when given."""
    items = get_dataset(
        dataset,
        split,
        item_format="t",
        caption_selection="rand" if training else "deterministic-mix",
        tokenizer=tokenizer,
        pair_kinds=tuple(pair_kinds),
        seed=seed,
    )
    if not isinstance(items, TriModalDatasetFix):
        raise ValueError(f"{dataset} is not a pair dataset: instructions need pairs (synthfix- / bedlamfix- ...)")
    if len(items) == 0:
        raise ValueError(f"{dataset} {split}: no pair of kinds {list(pair_kinds)} with an instruction")
    if data_size is not None:
        return Subset(items, range(min(int(data_size), len(items))))
    return items


class WeightedMix(Dataset):
    """Several datasets sampled as the original's `SuperDatasetWeightedRandomSampler`: an epoch of
    `min(sizes) x sum(weights)` items, the first `min x w_0` from dataset 0, the next `min x w_1` from dataset
    1, ...; each is an item of its dataset drawn uniformly with replacement.

    The draw of index i depends on (seed, i, epoch + how many times i was asked for before in this epoch and
    process): every epoch draws anew (the Trainer shuffles the indices), and the same run gives the same draws.
    The Trainer tells the epoch (`set_epoch`), so a run resumed at epoch e and DataLoader workers (which start
    each epoch from a copy of the dataset) draw what one uninterrupted process does; without `set_epoch` the
    count alone makes every request a new draw."""

    def __init__(self, datasets: Sequence[Dataset], weights: Sequence[float] | None = None, seed: int = 0) -> None:
        if not datasets:
            raise ValueError("WeightedMix: no dataset")
        weights = [1.0] * len(datasets) if weights is None else [float(w) for w in weights]
        if len(weights) != len(datasets) or not all(0 < w < float("inf") for w in weights):  # NaN fails too
            raise ValueError(f"WeightedMix: one finite positive weight per dataset, got {weights} for {len(datasets)}")
        self.datasets = list(datasets)
        self.sizes = [len(d) for d in self.datasets]  # type: ignore[arg-type]
        if min(self.sizes) == 0:
            raise ValueError(f"WeightedMix: an empty dataset among sizes {self.sizes}")
        counts = [max(1, round(min(self.sizes) * w)) for w in weights]
        self.ends = list(np.cumsum(counts))
        self.seed = int(seed)
        self._epoch = 0
        self._asked: dict[int, int] = {}

    def set_epoch(self, epoch: int) -> None:
        """Draws of epoch `epoch` from now on (called by the Trainer before each epoch)."""
        self._epoch, self._asked = int(epoch), {}

    def __len__(self) -> int:
        return int(self.ends[-1])

    def source_of(self, index: int) -> int:
        """Which dataset index `index` draws from."""
        if not 0 <= index < len(self):
            raise IndexError(f"WeightedMix index {index} out of range [0, {len(self)})")
        return bisect.bisect_right(self.ends, index)

    def __getitem__(self, index: int) -> Any:
        source = self.source_of(index)
        count = self._asked.get(index, 0)
        self._asked[index] = count + 1
        generator = np.random.default_rng([self.seed, index, self._epoch + count])
        return self.datasets[source][int(generator.integers(self.sizes[source]))]


def concat(datasets: Sequence[Dataset]) -> Dataset:
    """One dataset, or their concatenation."""
    return datasets[0] if len(datasets) == 1 else ConcatDataset(list(datasets))


class PairDataError(ValueError):
    """A pair that cannot be read (its poses or images missing from the caches); the message names it."""


@dataclass(frozen=True)
class PairReferences:
    """The pairs of an evaluation split: `pair_ids` (N,), their poses `poses_A` / `poses_B` (N, J, 3) as the
    dataset gives them (PairText's input), and every annotated instruction of each pair (`texts`, N lists)."""

    dataset: str
    split: str
    pair_ids: np.ndarray
    poses_A: torch.Tensor
    poses_B: torch.Tensor
    texts: list[list[str]]

    def __len__(self) -> int:
        return len(self.pair_ids)


def load_pair_references(
    dataset: str,
    split: str,
    pair_kinds: Sequence[str] = ("in", "out"),
    data_size: int | None = None,
    num_body_joints: int = 22,
) -> PairReferences:
    """The pairs of `dataset` / `split` of kinds `pair_kinds` that have an instruction (the first `data_size`),
    with their poses and all their instructions. A pair whose poses are missing from the poses cache is an
    error naming it."""
    pairs = get_dataset(dataset, split, item_format="pt", pair_kinds=tuple(pair_kinds), num_body_joints=num_body_joints)
    if not isinstance(pairs, TriModalDatasetFix):
        raise ValueError(f"{dataset} is not a pair dataset: instructions need pairs (synthfix- / bedlamfix- ...)")
    count = len(pairs) if data_size is None else min(int(data_size), len(pairs))
    if count == 0:
        raise ValueError(f"{dataset} {split}: no pair of kinds {list(pair_kinds)} with an instruction")
    poses_A, poses_B, texts = [], [], []
    for index in range(count):
        pair_id = pairs.pair_ids[index]
        try:
            item = pairs[index]
        except (KeyError, ValueError, FileNotFoundError) as err:  # CacheError is a ValueError
            message = err.args[0] if isinstance(err, KeyError) and err.args else err
            raise PairDataError(f"{dataset} {split}, pair {pair_id}: {message}") from err
        poses_A.append(item["poses_A"])
        poses_B.append(item["poses_B"])
        texts.append(pairs.instructions_of(pair_id))
    return PairReferences(
        dataset,
        split,
        np.asarray(pairs.pair_ids[:count], dtype=np.int64),
        torch.stack(poses_A),
        torch.stack(poses_B),
        texts,
    )


def check_pair_images(dataset: str, split: str, pair_ids: Sequence[int] | np.ndarray) -> None:
    """Refuse, before any image is encoded, a pair of `pair_ids` whose element A or B has no image: no entry in
    the images cache, or a missing image file. The error names the pair, the element, its data id and the file."""
    _, source = parse_dataset_name(dataset)
    pairs = load_cache(source.cache_path(split, "pairs"), "pairs")["pair_2_dataid"]
    images_cache = source.cache_path(split, "images", source.script_family, source.script_version)
    images = load_cache(images_cache, "images")["images"]
    for pair_id in np.asarray(pair_ids).tolist():
        if pair_id not in pairs:
            raise PairDataError(f"{dataset} {split}: pair {pair_id} is not in the pairs cache")
        for side, data_id in zip(("A", "B"), pairs[pair_id], strict=True):
            where = f"{dataset} {split}, pair {pair_id}: element {side} (data id {int(data_id)})"
            if int(data_id) not in images:
                raise PairDataError(f"{where} has no image in the images cache of {source.script_family}")
            path = image_file(Path(source.image_root), images[int(data_id)], images_cache, int(data_id))
            if not path.is_file():
                raise PairDataError(f"{where}: image file {path} is missing")
