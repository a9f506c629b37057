"""PoseFix / PoseScript release -> processed caches (`cache_writers`), with the original's normalisation.

For a split of `posefix-<version>` (pairs) or `posescript-<version>` (single poses):

1. the release's json files give the ids, kinds and texts (`release`);
2. the poses come from a `PoseSource` (the converted SMPL-X files by default); poses without a file are
   skipped and counted, and with them the PoseFix pairs that use them;
3. each pose's global orientation is normalised as the original does for AMASS-derived poses: decomposed
   as Rz(z) Ry(y) Rx(x) in the z-up frame, z set to 0; the normalising rotation N is kept
   (`heading_rotation`), so pose B of an in-sequence pair can be given A's normalisation at load time
   (`amass_frame.AmassFrameDatasetFix`): the A -> B rotation change survives;
4. the caches are written together (all or nothing): `posefix_version_<version>_split_<split>_{poses,
   rawtexts,pairs}.pt`, `posescript_version_<version>_split_<split>_{poses,rawtexts}.pt`.

Shapes are zero (the converted poses are neutral, zero-shape bodies). The `criteria` of every cache
say where the data came from and what was skipped.

`ensure_release_caches` is what the dataset classes call: it builds the caches of a split from the
configured folders (`POSEFIX_DIR`, `POSESCRIPT_DIR`, `POSEFIX_SMPLX_DIR` / `POSESCRIPT_SMPLX_DIR`) the
first time the split is loaded, as the original does; `poseembroider data process-posefix` builds them
explicitly (also from AMASS) and prints the counts.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from poseembroider import config
from poseembroider.datasets.base_dataset import DatasetSource
from poseembroider.datasets.cache_format import CacheError
from poseembroider.datasets.cache_writers import (
    CacheDestination,
    pairs_cache,
    poses_cache,
    rawtexts_cache,
    write_caches,
)
from poseembroider.datasets.process_posefix.pose_sources import LoadedPoses, PoseSource, SmplxPoseFiles
from poseembroider.datasets.process_posefix.release import (
    SPLITS,
    read_posefix_split,
    read_posescript_split,
    text_files,
)
from poseembroider.geometry import matrix_to_axis_angle, normalize_global_orient_amass

__all__ = ["FAMILIES", "build_release_split", "ensure_release_caches", "normalize_amass_poses"]

log = logging.getLogger(__name__)

FAMILIES = ("posefix", "posescript")
KINDS = {"posefix": ("poses", "rawtexts", "pairs"), "posescript": ("poses", "rawtexts")}
GENERATOR = "poseembroider data process-posefix"
NUM_SHAPE = 10


def normalize_amass_poses(poses: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, J, 3) z-up poses -> (normalised poses (N, J, 3), heading rotations N (N, 3) axis-angle) with the
    z Euler angle of each global orientation zeroed (`normalize_global_orient_amass`)."""
    out = poses.clone()
    out[:, 0], normalizing = normalize_global_orient_amass(poses[:, 0])
    return out, matrix_to_axis_angle(normalizing)


def _release_dir(family: str) -> Path:
    directory = config.POSEFIX_DIR if family == "posefix" else config.POSESCRIPT_DIR
    setting = "POSEFIX_DIR" if family == "posefix" else "POSESCRIPT_DIR"
    if directory is None:
        raise CacheError(
            f"{setting} is not set: point {config.ENV_PREFIX}{setting} at the folder of the {family} release"
        )
    return Path(directory)


def _default_pose_source(family: str) -> SmplxPoseFiles:
    setting = "POSEFIX_SMPLX_DIR" if family == "posefix" else "POSESCRIPT_SMPLX_DIR"
    return SmplxPoseFiles(Path(getattr(config, setting)), setting=setting)


def _criteria(family: str, version: str, split: str, source: PoseSource, counts: dict[str, int]) -> dict[str, Any]:
    return {
        "generator": GENERATOR,
        "release": family,
        "version": version,
        "split": split,
        "text_files": text_files(family, version),
        "pose_source": source.name,
        "pose_frame": "z-up AMASS frame, global orientation with its z Euler angle zeroed",
        "shapes": "zero (neutral, zero-shape conversions)",
        **counts,
    }


def _normalised_tables(loaded: LoadedPoses, ids: Sequence[int]) -> dict[str, dict[int, Any]]:
    if not ids:
        return {"poses": {}, "shapes": {}, "heading_rotation": {}}
    poses, headings = normalize_amass_poses(torch.stack([loaded.poses[i] for i in ids]))
    return {
        "poses": dict(zip(ids, poses, strict=True)),
        "shapes": {i: torch.zeros(NUM_SHAPE) for i in ids},
        "heading_rotation": dict(zip(ids, headings, strict=True)),
    }


def build_release_split(
    family: str,
    version: str,
    split: str,
    *,
    release_dir: Path | None = None,
    pose_source: PoseSource | None = None,
    cache_dir: Path | None = None,
) -> dict[str, Any]:
    """Write the caches of `split` of `<family>-<version>` (module docstring); returns the counts.

    Defaults: the configured release folder and SMPL-X pose folder, `DATA_CACHE_DIR`.
    Raises ReleaseError / FileNotFoundError / PickleReadError / UnsafePickleError naming the file at fault,
    and ValueError when no pose of the split could be read.
    """
    if family not in FAMILIES:
        raise ValueError(f"unknown release family {family!r}; known: {FAMILIES}")
    release_dir = Path(release_dir) if release_dir is not None else _release_dir(family)
    pose_source = pose_source or _default_pose_source(family)
    cache_dir = Path(cache_dir) if cache_dir is not None else Path(config.DATA_CACHE_DIR)
    destination = CacheDestination(cache_dir, family, version, split)
    if family == "posefix":
        release = read_posefix_split(release_dir, split, version)
        loaded = pose_source.load(release.pose_ids)
        missing = set(loaded.missing)
        kept = [p for p, (a, b) in release.pairs.items() if a not in missing and b not in missing]
        counts = {
            "pairs": len(kept),
            "pairs_in_sequence": sum(release.kinds[p] == "in" for p in kept),
            "pairs_out_of_sequence": sum(release.kinds[p] == "out" for p in kept),
            "skipped_poses_without_file": len(missing),
            "skipped_pairs_without_pose": len(release.pairs) - len(kept),
            "unannotated_pairs": release.unannotated,
        }
        pose_ids = sorted({pose for p in kept for pose in release.pairs[p]})
        counts["poses"] = len(pose_ids)
        if release.pairs and not kept:
            raise ValueError(
                f"posefix-{version} {split}: none of the {len(release.pairs)} pairs has both poses in "
                f"{getattr(pose_source, 'directory', pose_source.name)} ({len(missing)} poses without a file)"
            )
        criteria = _criteria(family, version, split, pose_source, counts)
        tables = _normalised_tables(loaded, pose_ids)
        caches = [
            poses_cache(criteria, **tables),
            rawtexts_cache(criteria, {p: release.texts[p] for p in kept}),
            pairs_cache(
                criteria,
                {p: list(release.pairs[p]) for p in kept},
                {p: release.kinds[p] for p in kept},
            ),
        ]
    else:
        release = read_posescript_split(release_dir, split, version)
        loaded = pose_source.load(release.pose_ids)
        pose_ids = [p for p in release.pose_ids if p in loaded.poses]
        counts = {
            "poses": len(pose_ids),
            "skipped_poses_without_file": len(loaded.missing),
            "unannotated_poses": release.unannotated,
        }
        if release.pose_ids and not pose_ids:
            raise ValueError(
                f"posescript-{version} {split}: none of the {len(release.pose_ids)} annotated poses has a file in "
                f"{getattr(pose_source, 'directory', pose_source.name)}"
            )
        criteria = _criteria(family, version, split, pose_source, counts)
        caches = [
            poses_cache(criteria, **_normalised_tables(loaded, pose_ids)),
            rawtexts_cache(criteria, {p: release.texts[p] for p in pose_ids}),
        ]
    paths = write_caches(destination, caches)
    if counts["skipped_poses_without_file"]:
        log.warning(
            "%s-%s %s: %d poses have no file in %s and were skipped (%s)",
            family,
            version,
            split,
            counts["skipped_poses_without_file"],
            getattr(pose_source, "directory", pose_source.name),
            ", ".join(f"{k} {v}" for k, v in counts.items() if k.startswith("skipped")),
        )
    return {"dataset": f"{family}-{version}", "split": split, **counts, "caches": [str(p) for p in paths]}


def ensure_release_caches(source: DatasetSource, split: str) -> dict[str, Any] | None:
    """Build the caches of `split` of a PoseFix / PoseScript source from the configured release when they are
    not in the cache folder yet (the original's first-load caching); None when they are already there."""
    if split not in SPLITS:
        raise CacheError(f"{source.family}-{source.version}: unknown split {split!r}; the splits are {SPLITS}")
    try:
        for kind in KINDS[source.family]:
            source.cache_path(split, kind)
        return None
    except CacheError:
        pass
    return build_release_split(source.family, source.version, split, cache_dir=source.cache_dir)
