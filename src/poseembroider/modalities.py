"""The three modalities, the input bundles the core is trained on and the 9 retrieval query types.

Modalities are kept in alphabetical order (image, pose, text), the order of the tokens in the core's
input sequence (original_system.md §2.6). A *bundle* is the set of modalities given as input; a *query
type* is a bundle and the target modality retrieved from it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import combinations

MODALITIES: tuple[str, ...] = ("image", "pose", "text")
LETTERS: dict[str, str] = {"image": "i", "pose": "p", "text": "t"}


class UnknownModalityError(ValueError):
    """A modality name other than 'image', 'pose', 'text'."""


def check_modalities(names: Iterable[str], where: str = "modalities") -> tuple[str, ...]:
    """`names` as a tuple in canonical order; an unknown or repeated name is an error naming it."""
    names = list(names)
    unknown = [n for n in names if n not in MODALITIES]
    if unknown:
        raise UnknownModalityError(f"{where}: unknown modality {unknown[0]!r}; known: {list(MODALITIES)}")
    if len(set(names)) != len(names):
        raise UnknownModalityError(f"{where}: repeated modality in {names}")
    if not names:
        raise UnknownModalityError(f"{where}: at least one modality is needed")
    return tuple(m for m in MODALITIES if m in names)


def bundle_name(bundle: Iterable[str]) -> str:
    """'i', 'pt', 'ipt', ... (letters in canonical order)."""
    return "".join(LETTERS[m] for m in check_modalities(bundle))


def training_bundles(single: bool, dual: bool, triplet: bool) -> tuple[tuple[str, ...], ...]:
    """The input bundles of the `--single_partials` / `--dual_partials` / `--triplet_partial` flags:
    singles (only_image, only_pose, only_text), duals (image+pose, image+text, pose+text), the triplet."""
    bundles: list[tuple[str, ...]] = []
    for size, wanted in ((1, single), (2, dual), (3, triplet)):
        if wanted:
            bundles.extend(combinations(MODALITIES, size))
    if not bundles:
        raise ValueError(
            "no training bundle: set at least one of --single_partials, --dual_partials, --triplet_partial"
        )
    return tuple(bundles)


@dataclass(frozen=True)
class QueryType:
    """Retrieve `target` items from a query made of the `query` modalities (never containing `target`)."""

    query: tuple[str, ...]
    target: str

    @property
    def name(self) -> str:
        """'i2p', 'pt2i', ... (query letters, '2', target letter)."""
        return f"{bundle_name(self.query)}2{LETTERS[self.target]}"

    @property
    def is_dual(self) -> bool:
        return len(self.query) == 2


def query_types(available: Iterable[str] = MODALITIES) -> tuple[QueryType, ...]:
    """The query types among `available` modalities: with all three, the paper's 9 (6 single, 3 dual),
    singles first, in the order i2p, i2t, p2i, p2t, t2i, t2p, ip2t, it2p, pt2i."""
    available = check_modalities(available, "available modalities")
    singles = [QueryType((q,), t) for q in available for t in available if t != q]
    duals = [QueryType(pair, t) for pair in combinations(available, 2) for t in available if t not in pair]
    return tuple(singles + duals)


QUERY_TYPES: tuple[QueryType, ...] = query_types()
