"""Seeded random streams of the text pipelines: one explicit generator per (seed, stream) so captions and
instructions are reproducible and independent of each other for the same user seed."""

from __future__ import annotations

import numpy as np
import torch


def seeded_generator(seed: int, *stream: int) -> torch.Generator:
    """A torch generator determined by `seed` (any size) and the stream numbers (e.g. variant, salt)."""
    seed = int(seed)
    words = [seed & 0xFFFFFFFF, (seed >> 32) & 0xFFFFFFFF, *(int(s) for s in stream)]
    state = np.random.SeedSequence(words).generate_state(1, np.uint64)
    return torch.Generator().manual_seed(int(state[0]) >> 1)
