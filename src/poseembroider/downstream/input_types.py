"""The downstream scripts' input types: the original's plural names for the modalities x̄ is made of.

`--input_types images texts` (cache, evaluation) and `--representation_model_input_types images` (training)
take any non-empty subset of `images`, `poses`, `texts`; the models speak of modalities (`image`, `pose`,
`text`, `modalities.MODALITIES`). One canonical order (the modalities' alphabetical one) makes one name per
subset: `images+texts`, used in cache folder names, fingerprints and result keys.
"""

from __future__ import annotations

from collections.abc import Iterable

from poseembroider.modalities import MODALITIES

INPUT_TYPES: tuple[str, ...] = ("images", "poses", "texts")
"""The input type of each modality, in the modalities' order."""

MODALITY_OF: dict[str, str] = dict(zip(INPUT_TYPES, MODALITIES, strict=True))
"""'images' -> 'image', 'poses' -> 'pose', 'texts' -> 'text'."""


class InputTypesError(ValueError):
    """Input types that are empty, unknown or repeated; the message names the culprit."""


def check_input_types(input_types: Iterable[str] | str, where: str = "--input_types") -> tuple[str, ...]:
    """`input_types` in canonical order (images, poses, texts); a lone string may join them with '+'
    ('images+texts'). Empty, unknown or repeated names are refused, naming them and `where`."""
    names = input_types.split("+") if isinstance(input_types, str) else list(input_types)
    unknown = [n for n in names if n not in INPUT_TYPES]
    if unknown:
        raise InputTypesError(f"{where}: unknown input type {unknown[0]!r}; use any of {list(INPUT_TYPES)}")
    if len(set(names)) != len(names):
        raise InputTypesError(f"{where}: input type repeated in {names}")
    if not names:
        raise InputTypesError(f"{where}: give at least one of {list(INPUT_TYPES)}")
    return tuple(t for t in INPUT_TYPES if t in names)


def input_types_name(input_types: Iterable[str] | str) -> str:
    """'images+texts': the canonical name of a subset (folder names, fingerprints, result keys)."""
    return "+".join(check_input_types(input_types))


def modalities_of(input_types: Iterable[str] | str) -> tuple[str, ...]:
    """('images', 'texts') -> ('image', 'text')."""
    return tuple(MODALITY_OF[t] for t in check_input_types(input_types))


__all__ = ["INPUT_TYPES", "MODALITY_OF", "InputTypesError", "check_input_types", "input_types_name", "modalities_of"]
