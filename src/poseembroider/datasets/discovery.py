"""Which processed datasets exist in a cache folder (for dataset browsers and `poseembroider data list`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_CACHE_NAME = re.compile(
    r"^(?P<family>[a-z0-9]+)_version_(?P<version>.+)_split_(?P<split>[a-z]+)_(?P<kind>poses|pairs)"
    r"(_reduced_(?P<size>\d+))?\.pt$"
)


@dataclass(frozen=True)
class AvailableDataset:
    name: str  # e.g. 'synthscript-quick_overlap30_res224_j16_sf11'
    split: str
    size: int | None  # reduced (farthest-point-sampled) size in the file name
    kind: str  # 'poses' (single elements) or 'pairs' (fix dataset)
    path: Path  # that cache file

    @property
    def is_pairs(self) -> bool:
        return self.kind == "pairs"

    @property
    def has_images(self) -> bool:
        """False for the pose-only pools (and for names of no known family): image browsers skip them."""
        from poseembroider.datasets.registry import parse_dataset_name

        try:
            family, _ = parse_dataset_name(self.name)
        except ValueError:
            return False
        return family.has_images


def available_datasets(cache_dir: Path) -> list[AvailableDataset]:
    """Datasets with a poses cache (single elements) or a pairs cache (fix datasets), sorted by name."""
    found = []
    for path in sorted(Path(cache_dir).glob("*_version_*_split_*.pt")):
        match = _CACHE_NAME.match(path.name)
        if match is None:
            continue
        size = int(match["size"]) if match["size"] else None
        found.append(
            AvailableDataset(f"{match['family']}-{match['version']}", match["split"], size, match["kind"], path)
        )
    return found
