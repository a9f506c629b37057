"""Size of a model: `count_parameters`, each tensor counted once however many names it has.

Tied weights (a DistilBERT's token embeddings and its MLM output projection) are one tensor under two names;
`module.parameters()` yields it once, while a count over `state_dict()` would count it twice. The sizes the
toolkit reports (text-backbone presets, pretraining reports) go through here so they agree.
"""

from __future__ import annotations

from torch import nn

__all__ = ["count_parameters"]


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of values in the distinct parameters of `module` (only those requiring a gradient when
    `trainable_only`)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
