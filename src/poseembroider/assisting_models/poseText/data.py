"""Data plumbing shared by the PoseText and PairText scripts: datasets of poses + texts, and batching.

Items come from the dataset registry with item format 'pt' (`poses` (J, 3) or `poses_A` / `poses_B`,
`texts_tokens` (L,) of varying L, `texts_lengths`, ...). `collate_text_items` pads the tokens to the
longest text of the batch (`collate_texts`) and stacks everything else with PyTorch's default collate.
Captions are drawn at random at train time ('rand') and fixed per sample at validation
('deterministic-mix': caption `id % number of captions`), as the original.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.data import ConcatDataset, Dataset, Subset, default_collate

from poseembroider.datasets.collate import collate_texts
from poseembroider.devices import resolve_device
from poseembroider.models.text_encoder import frozen_token_features
from poseembroider.text.tokenization import Tokenizer

__all__ = [
    "TEXT_KEYS",
    "collate_text_items",
    "load_text_datasets",
    "load_train_val_text_datasets",
    "loader_backbone",
    "text_collate_fn",
]

TEXT_KEYS = ("texts_tokens", "texts_lengths")


def collate_text_items(
    items: Sequence[dict[str, Any]], pad_token_id: int = 0, backbone: nn.Module | None = None
) -> dict[str, Any]:
    """A batch of dataset items: `texts_tokens` (B, L) right-padded with `pad_token_id` (L = longest text),
    `texts_lengths` (B,), the other keys as `default_collate` stacks them (strings become lists); with a
    frozen text `backbone`, also its token features `texts_features` (B, L, H) (`frozen_token_features`),
    which the text encoder then uses instead of running the backbone itself."""
    missing = [key for key in TEXT_KEYS if key not in items[0]]
    if missing:
        raise KeyError(
            f"dataset items lack {missing} (keys: {sorted(items[0])}): build the dataset with item_format 't' "
            "and a tokenizer"
        )
    rest = [{k: v for k, v in item.items() if k not in TEXT_KEYS} for item in items]
    batch = default_collate(rest)
    batch.update(collate_texts(items, pad_token_id))
    if backbone is not None:
        batch["texts_features"] = frozen_token_features(backbone, batch["texts_tokens"], batch["texts_lengths"])
    return batch


def text_collate_fn(
    tokenizer: Tokenizer, backbone: nn.Module | None = None
) -> Callable[[Sequence[dict[str, Any]]], dict[str, Any]]:
    """`collate_text_items` padding with the tokenizer's [PAD] id (picklable, for DataLoader workers), and
    computing the frozen `backbone`'s token features when one is given (see `loader_backbone`)."""
    return functools.partial(collate_text_items, pad_token_id=tokenizer.pad_token_id, backbone=backbone)


def load_text_datasets(
    names: Sequence[str],
    split: str,
    tokenizer: Tokenizer,
    num_body_joints: int = 22,
    training: bool = False,
    lr_flip_probability: float = 0.0,
    seed: int | None = None,
    data_size: int | None = None,
    caption_selection: str | int | None = None,
) -> Dataset:
    """The `split` of each registry dataset in `names` (item format 'pt'), concatenated in that order.

    `training` picks the caption selection ('rand', else 'deterministic-mix') unless `caption_selection`
    is given; the left/right flip applies at training only. `data_size` keeps the first N items.
    """
    from poseembroider.datasets.registry import get_dataset

    if not names:
        raise ValueError("no dataset name given (--dataset / --datasets)")
    selection = caption_selection if caption_selection is not None else ("rand" if training else "deterministic-mix")
    parts = [
        get_dataset(
            name,
            split,
            item_format="pt",
            caption_selection=selection,
            tokenizer=tokenizer,
            num_body_joints=num_body_joints,
            lr_flip_probability=lr_flip_probability if training else 0.0,
            seed=seed,
        )
        for name in names
    ]
    dataset: Dataset = parts[0] if len(parts) == 1 else ConcatDataset(parts)
    if data_size is not None:
        dataset = Subset(dataset, range(min(data_size, len(dataset))))  # type: ignore[arg-type]
    return dataset


def load_train_val_text_datasets(
    names: Sequence[str],
    tokenizer: Tokenizer,
    num_body_joints: int = 22,
    lr_flip: bool = False,
    seed: int | None = None,
    data_size: int | None = None,
) -> tuple[Dataset, Dataset]:
    """(train, val) of a PoseText / PairText run: captions drawn at random for training ('rand'), with the
    left/right flip at probability 0.5 when `lr_flip`, the first `data_size` training items; fixed captions
    ('deterministic-mix') for validation, over the whole split."""
    train = load_text_datasets(
        names,
        "train",
        tokenizer,
        num_body_joints,
        training=True,
        lr_flip_probability=0.5 if lr_flip else 0.0,
        seed=seed,
        data_size=data_size,
    )
    return train, load_text_datasets(names, "val", tokenizer, num_body_joints)


def loader_backbone(model: nn.Module, num_workers: int, device: str | torch.device = "auto") -> nn.Module | None:
    """The frozen text backbone of `model` (a PoseText / PairText) when the DataLoader workers should run it,
    else None (the model runs it in its forward).

    With `num_workers` > 0 and training on the CPU (`device`, as the Trainer resolves it), the workers
    tokenize and run the frozen backbone on the next batches while the main process trains the rest: one
    worker takes the backbone's ~30 % of a PoseText step off the training process
    (`benchmarks/bench_text_retrieval_training.py`). On a GPU the backbone runs faster there, in the model."""
    backbone = getattr(getattr(model, "text_encoder", None), "backbone", None)
    if num_workers > 0 and resolve_device(device).type == "cpu" and getattr(backbone, "frozen", False):
        return backbone
    return None
