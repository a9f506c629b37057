"""Dataset names -> dataset classes and sources.

Names follow the original scheme `<family>-<version>`:

| name | class |
| --- | --- |
| `bedlamscript-overlap30_res224_j16_sf11` | single elements of processed BEDLAM-Script (train 50k / val 10k FPS subsets) |
| `bedlamfix-overlap30_res224_j16_sf11-in15_out20_t05_sim0709` | pairs of BEDLAM-Fix |
| `synthscript-<name>_overlap30_res224_j16_sf11` | single elements of a synthetic dataset (`poseembroider data synth`) |
| `synthfix-<name>_overlap30_res224_j16_sf11-in15_out20_t05_sim0709` | its pairs |
| `synthposes-<script version>` | pose-only pool: many sampled poses + captions (train), the script val split (val) |
| `synthpairs-<fix version>` | pose-only pairs mined in that pool + instructions (train), the fix val split (val) |
| `posefix-H` (`-PP`, `-HPP`) | PoseFix pairs with human modifiers (+ paraphrases), SMPL-X poses; caches built on first load |
| `posescript-H2` | PoseScript poses with human captions, SMPL-X poses; caches built on first load |
| `threedpw-sf13` | 3DPW crops and poses (`poseembroider data process-3dpw`; no texts) |
| `amassposes-<name>` / `amasspairs-<name>-<pair version>` | imported AMASS-style motions (`poseembroider data import-amass`) |

The pose-only pools (`poseembroider data pools`, `datasets/synthetic/pose_pools.py`) have no images: their
datasets serve item formats 'p' and 'pt' only.

Fix names hold the version of their single-element dataset before the last '-'.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from poseembroider import config
from poseembroider.datasets.amass import AmassPairsDataset, AmassPosesDataset
from poseembroider.datasets.base_dataset import DatasetSource, TriModalDatasetFix, TriModalDatasetScript
from poseembroider.datasets.cache_format import cache_file_name
from poseembroider.datasets.posefix import PoseFixDataset
from poseembroider.datasets.posescript import PoseScriptDataset
from poseembroider.datasets.process_posefix.release import text_files
from poseembroider.datasets.threedpw import ThreeDPWDataset

BEDLAM_FS_SIZES = {"train": 50_000, "val": 10_000}


@dataclass(frozen=True)
class DatasetFamily:
    """How to build the source of a dataset family from the version part of its name."""

    dataset_class: type
    make_source: Callable[[str], DatasetSource]
    description: str
    has_images: bool = True  # False: pose-only pools (item formats 'p' / 'pt')
    has_texts: bool = True  # False: 3DPW (item formats 'i' / 'p' / 'ip')


def _split_fix_version(family: str, version: str) -> tuple[str, str]:
    script_version, sep, pair_version = version.rpartition("-")
    if not sep or not script_version or not pair_version:
        raise ValueError(f"{family}-{version}: a fix dataset name is {family}-<script version>-<pair version>")
    return script_version, pair_version


def _bedlam_sizes(script_version: str) -> dict[str, int]:
    """The paper's subset sizes where their caches exist; a split processed with another size (`poseembroider
    data process-bedlam --fps-size N`) finds its one `_reduced_<N>` cache."""
    return {
        split: n
        for split, n in BEDLAM_FS_SIZES.items()
        if (config.DATA_CACHE_DIR / cache_file_name("bedlamscript", script_version, split, "poses", n)).exists()
    }


def _bedlam_script(version: str) -> DatasetSource:
    return DatasetSource(
        "bedlamscript",
        version,
        config.DATA_CACHE_DIR,
        config.BEDLAM_IMG_DIR,
        "bedlam",
        reduced_sizes=_bedlam_sizes(version),
    )


def _bedlam_fix(version: str) -> DatasetSource:
    script_version, _ = _split_fix_version("bedlamfix", version)
    return DatasetSource(
        "bedlamfix",
        version,
        config.DATA_CACHE_DIR,
        config.BEDLAM_IMG_DIR,
        "bedlam",
        script_family="bedlamscript",
        script_version=script_version,
        reduced_sizes=_bedlam_sizes(script_version),
    )


def synth_image_root(script_version: str):
    """Folder of the image files of synthetic dataset `synthscript-<script_version>`."""
    return config.SYNTH_DATA_DIR / f"synthscript-{script_version}"


def _synth_script(version: str) -> DatasetSource:
    return DatasetSource("synthscript", version, config.DATA_CACHE_DIR, synth_image_root(version), "bedlam")


def _synth_fix(version: str) -> DatasetSource:
    script_version, _ = _split_fix_version("synthfix", version)
    return DatasetSource(
        "synthfix",
        version,
        config.DATA_CACHE_DIR,
        synth_image_root(script_version),
        "bedlam",
        script_family="synthscript",
        script_version=script_version,
    )


def _refuse_images(source: DatasetSource, item_format: str, keypoints_2d: bool) -> None:
    """Pose-only pools have no images: say so, naming the dataset, instead of a missing-cache error."""
    if "i" in item_format or keypoints_2d:
        what = f"item_format {item_format!r}" if "i" in item_format else "keypoints_2d=True"
        raise ValueError(
            f"{source.family}-{source.version} is a pose-only pool (no images): {what} asks for images; "
            "use item_format 'p' or 'pt', or the rendered dataset (synthscript- / synthfix-) for images"
        )


class PosePoolDatasetScript(TriModalDatasetScript):
    """`TriModalDatasetScript` over a pose-only pool (`synthposes-...`): item formats 'p' / 'pt' only."""

    def __init__(self, source: DatasetSource, split: str, item_format: str = "pt", **kwargs: Any):
        _refuse_images(source, item_format, kwargs.get("keypoints_2d", False))
        super().__init__(source, split, item_format=item_format, **kwargs)


class PosePoolDatasetFix(TriModalDatasetFix):
    """`TriModalDatasetFix` over pose-only pairs (`synthpairs-...`): item formats 'p' / 'pt' only."""

    def __init__(self, source: DatasetSource, split: str, item_format: str = "pt", **kwargs: Any):
        _refuse_images(source, item_format, kwargs.get("keypoints_2d", False))
        super().__init__(source, split, item_format=item_format, **kwargs)


def _synth_poses(version: str) -> DatasetSource:
    return DatasetSource("synthposes", version, config.DATA_CACHE_DIR, synth_image_root(version), "bedlam")


def _synth_pairs(version: str) -> DatasetSource:
    script_version, _ = _split_fix_version("synthpairs", version)
    return DatasetSource(
        "synthpairs",
        version,
        config.DATA_CACHE_DIR,
        synth_image_root(script_version),
        "bedlam",
        script_family="synthposes",
        script_version=script_version,
    )


def _release(family: str) -> Callable[[str], DatasetSource]:
    """PoseFix / PoseScript: z-up poses, caches named after the text sources (`posefix-H`: H = human)."""

    def make(version: str) -> DatasetSource:
        text_files(family, version)  # an unknown version fails here, naming the known ones
        image_root = config.POSEFIX_DIR if family == "posefix" else config.POSESCRIPT_DIR  # no images
        return DatasetSource(family, version, config.DATA_CACHE_DIR, image_root, "amass", family, version)

    return make


def _threedpw(version: str) -> DatasetSource:
    if not re.fullmatch(r"sf\d+", version):
        raise ValueError(f"threedpw-{version}: expected threedpw-sf<scale factor digits>, e.g. threedpw-sf13")
    return DatasetSource("threedpw", version, config.DATA_CACHE_DIR, config.THREEDPW_IMG_DIR, "amass")


def _amass_poses(version: str) -> DatasetSource:
    return DatasetSource("amassposes", version, config.DATA_CACHE_DIR, config.DATA_CACHE_DIR, "amass")


def _amass_pairs(version: str) -> DatasetSource:
    script_version, _ = _split_fix_version("amasspairs", version)
    return DatasetSource(
        "amasspairs", version, config.DATA_CACHE_DIR, config.DATA_CACHE_DIR, "amass", "amassposes", script_version
    )


DATASET_FAMILIES: dict[str, DatasetFamily] = {
    "bedlamscript": DatasetFamily(TriModalDatasetScript, _bedlam_script, "BEDLAM-Script (licensed, processed)"),
    "bedlamfix": DatasetFamily(TriModalDatasetFix, _bedlam_fix, "BEDLAM-Fix pairs (licensed, processed)"),
    "synthscript": DatasetFamily(TriModalDatasetScript, _synth_script, "synthetic single elements (offline world)"),
    "synthfix": DatasetFamily(TriModalDatasetFix, _synth_fix, "synthetic pairs (offline world)"),
    "synthposes": DatasetFamily(
        PosePoolDatasetScript, _synth_poses, "pose-only pool of sampled poses + captions", has_images=False
    ),
    "synthpairs": DatasetFamily(
        PosePoolDatasetFix, _synth_pairs, "pose-only pairs mined in a pose pool", has_images=False
    ),
    "posefix": DatasetFamily(
        PoseFixDataset, _release("posefix"), "PoseFix pairs, human modifiers (release + SMPL-X poses)", has_images=False
    ),
    "posescript": DatasetFamily(
        PoseScriptDataset,
        _release("posescript"),
        "PoseScript poses, human captions (release + SMPL-X poses)",
        has_images=False,
    ),
    "threedpw": DatasetFamily(ThreeDPWDataset, _threedpw, "3DPW crops and poses (processed release)", has_texts=False),
    "amassposes": DatasetFamily(
        AmassPosesDataset, _amass_poses, "imported AMASS-style motions: poses + captions", has_images=False
    ),
    "amasspairs": DatasetFamily(
        AmassPairsDataset, _amass_pairs, "pairs mined in imported motions + instructions", has_images=False
    ),
}


def parse_dataset_name(name: str) -> tuple[DatasetFamily, DatasetSource]:
    family, sep, version = name.partition("-")
    if family not in DATASET_FAMILIES:
        known = ", ".join(f"{k}-…" for k in DATASET_FAMILIES)
        raise ValueError(f"unknown dataset name {name!r}: known families are {known}")
    if not sep or not version:
        raise ValueError(f"dataset name {name!r} lacks its version: expected {family}-<version>")
    entry = DATASET_FAMILIES[family]
    return entry, entry.make_source(version)


def dataset_modalities(name: str) -> tuple[str, ...]:
    """The modalities the samples of dataset `name` have, among ('image', 'pose', 'text')."""
    family, _ = parse_dataset_name(name)
    return tuple(m for m, has in (("image", family.has_images), ("pose", True), ("text", family.has_texts)) if has)


def get_dataset(name: str, split: str, **kwargs: Any):
    """Build the dataset `name` for `split`; kwargs go to the dataset class (item_format, ...)."""
    entry, source = parse_dataset_name(name)
    return entry.dataset_class(source, split, **kwargs)
