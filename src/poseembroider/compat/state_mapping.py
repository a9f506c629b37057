"""Original state-dict keys -> ours, by name templates, with checked shapes.

A `KeyRule` maps one family of keys: `KeyRule("embroider_core.1.{rest}", "core.1.layers.0.{rest}")`.
Placeholders: `{n}` (an index: digits), `{p}` (one parameter or buffer name: letters, digits, `_`),
`{rest}` (anything, dots included). The same placeholder values fill the target template, and the
rules run backwards to name a missing key in the original's terms.

`map_state_dict` applies the rules to a release state dict against the model that will receive it, and
refuses, naming the file and the keys, what would make the model compute something else: an original key
that no rule or ignore pattern accounts for (unexpected), a key the model needs that the file lacks
(missing, in the original's and our names), or a shape that differs (both shapes).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from poseembroider.models.pretrained import CheckpointError

__all__ = ["KeyRule", "map_state_dict"]

_MAX_LISTED = 20
_PLACEHOLDERS = {"n": r"\d+", "p": r"[A-Za-z0-9_]+", "rest": r".+"}


def _regex(template: str) -> re.Pattern[str]:
    parts = re.split(r"\{(n|p|rest)\}", template)
    pattern = "".join(
        f"(?P<{part}>{_PLACEHOLDERS[part]})" if i % 2 else re.escape(part) for i, part in enumerate(parts)
    )
    return re.compile(pattern)


@dataclass(frozen=True)
class KeyRule:
    """Original key template -> our key template (see the module docstring).

    `squeeze`: the original stores the tensor with extra leading singleton dimensions (e.g. a token of shape
    (1, 1, D) where we keep (1, D) or (D,)); the values are the same, only the shape is flattened."""

    source: str
    target: str
    squeeze: bool = False

    def forward(self, key: str) -> str | None:
        match = _regex(self.source).fullmatch(key)
        return self.target.format(**match.groupdict()) if match else None

    def backward(self, key: str) -> str | None:
        match = _regex(self.target).fullmatch(key)
        return self.source.format(**match.groupdict()) if match else None


def _limited(items: Sequence[str]) -> str:
    items = list(items)
    shown = "; ".join(items[:_MAX_LISTED])
    return shown + (f"; ... and {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else "")


def _expected_source_shape(rule: KeyRule, value: torch.Tensor, target: tuple[int, ...]) -> tuple[int, ...]:
    if not rule.squeeze:
        return target
    extra = max(value.dim() - len(target), 0)
    return (1,) * extra + target


def map_state_dict(
    state: Mapping[str, torch.Tensor],
    rules: Iterable[KeyRule],
    expected: Mapping[str, torch.Tensor],
    source: str | Path,
    ignore: Iterable[str] = (),
    provided: Iterable[str] = (),
) -> dict[str, torch.Tensor]:
    """The release state dict `state` renamed by `rules` for a model whose state dict is `expected`.

    `ignore`: regular expressions (full match) of original keys consumed elsewhere (a frozen backbone written
    to its own folder, a recomputed sinusoid table); `provided`: prefixes of our keys that the model fills
    itself (frozen encoders rebuilt from their folders, fingerprints), not looked for in the file.
    Raises `CheckpointError` naming `source` with every unexpected, missing and misshaped key.
    """
    rules = tuple(rules)
    ignored = [re.compile(p) for p in ignore]
    provided = tuple(provided)
    out: dict[str, torch.Tensor] = {}
    origin: dict[str, str] = {}
    unexpected, mismatched = [], []
    for key, value in state.items():
        if any(p.fullmatch(key) for p in ignored):
            continue
        rule, target = next(((r, t) for r in rules if (t := r.forward(key)) is not None), (None, None))
        if rule is None or target is None or target not in expected:
            unexpected.append(key if target is None else f"{key} (-> {target}, which the model does not have)")
            continue
        want = tuple(expected[target].shape)
        source_shape = _expected_source_shape(rule, value, want)
        if tuple(value.shape) != source_shape or math.prod(value.shape) != math.prod(want):
            mismatched.append(f"{key}: file {tuple(value.shape)} vs expected {source_shape}")
            continue
        if target in out:
            unexpected.append(f"{key} (-> {target}, already filled by {origin[target]})")
            continue
        out[target], origin[target] = value.reshape(want), key
    missing = []
    for key, value in expected.items():
        if key in out or key.startswith(provided):
            continue
        original = next((o for r in rules if (o := r.backward(key)) is not None), None)
        missing.append(f"{original or '?'} (-> {key}) of shape {tuple(value.shape)}")
    problems = []
    if mismatched:
        problems.append(f"shape mismatch for {len(mismatched)} key(s): {_limited(mismatched)}")
    if missing:
        problems.append(f"missing key(s): {_limited(missing)}")
    if unexpected:
        problems.append(f"unexpected key(s): {_limited(unexpected)}")
    if problems:
        raise CheckpointError(f"{source}: " + " | ".join(problems))
    return out
