"""Seeded random streams of the text pipelines: one explicit generator per (seed, stream) so captions and
instructions are reproducible and independent of each other for the same user seed."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import TypeVar

import numpy as np
import torch

T = TypeVar("T")


def seeded_generator(seed: int, *stream: int) -> torch.Generator:
    """A torch generator determined by `seed` (any size) and the stream numbers (e.g. variant, salt)."""
    seed = int(seed)
    words = [seed & 0xFFFFFFFF, (seed >> 32) & 0xFFFFFFFF, *(int(s) for s in stream)]
    state = np.random.SeedSequence(words).generate_state(1, np.uint64)
    return torch.Generator().manual_seed(int(state[0]) >> 1)


def per_item_rngs(count: int, generator: torch.Generator | None) -> list[random.Random]:
    """One Python RNG per text, drawn from `generator`: each text's wording is independent of the others."""
    seeds = torch.randint(0, 2**62, (count,), generator=generator).tolist()
    return [random.Random(seed) for seed in seeds]


def resolve_variant(variant: str, options: T | None, variants: Mapping[str, T]) -> T:
    """Explicit `options`, else the preset named `variant` (error listing the known ones)."""
    if options is not None:
        return options
    if variant not in variants:
        raise ValueError(f"variant: expected one of {list(variants)}, got {variant!r}")
    return variants[variant]
