"""`poseembroider data pools`: pose-only training pools (no images) for the pose-only models.

Poses and captions are cheap (the sampler draws thousands of poses per second, the captioner writes
thousands of captions per second), rendered images are not: PoseVAE, PoseText and PairText never look at
an image, so they can train on many more poses and pairs than a script dataset renders. Two dataset
families hold such pools, in the processed cache format (`cache_writers`), next to the script dataset
whose validation split they share:

| name | train split | val split |
| --- | --- | --- |
| `synthposes-<script version>` | N sampled poses, K captions each | the script val split, byte for byte |
| `synthpairs-<fix version>` | pairs mined among those poses, 3 instructions each | the fix val split, same bytes |

So metrics on the pools' val split are those of the script / fix dataset's val split.

The train poses are made like a script dataset's train split (`generate.build_pool`), one chunk of
`chunk_size` poses at a time: `pool_factor` x `chunk_size` candidates (smooth sequences and independent
poses, random shapes, heading-normalised), farthest-point sampled down to `chunk_size`. Each chunk is
therefore distributed like a script train split of that size (same postures: sitting, kneeling, lying,
upside-down ...), and the FPS costs O(chunk^2) instead of O(N^2). Chunk c draws from its own seed (derived
from (`seed`, c) through a `SeedSequence`, never equal to a script dataset's split seed), so the pool of N
poses is the first N poses of any larger pool with the same settings, and a run stopped midway resumes
from its saved chunks. Pairs are mined over the whole pool with the script dataset's constraints
(`pair_mining`, row-chunked: no N x N matrix).

Files: the caches under `cache_dir` (one train size per name and folder: writing N poses removes the caches
of another N), the chunks under `cache_dir / "pose_pools_work" / <name> / <settings hash>`. A second call
with the same settings reuses the caches (checked through their `criteria`).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from poseembroider import config
from poseembroider.atomic_io import atomic_files_into, exclusive_lock
from poseembroider.body.body_model import BodyModel
from poseembroider.datasets.cache_format import CacheError, cache_file_name, load_cache
from poseembroider.datasets.cache_writers import (
    CacheDestination,
    pairs_cache,
    poses_cache,
    rawtexts_cache,
    write_caches,
)
from poseembroider.datasets.synthetic.generate import (
    SynthConfig,
    _cached,
    _yaw_change_deg,
    build_pool,
    pose_features,
)
from poseembroider.datasets.synthetic.pair_mining import (
    MiningParams,
    mine_in_sequence_pairs,
    mine_out_of_sequence_pairs,
)
from poseembroider.devices import torch_threads
from poseembroider.text.captioning.captions import caption_variants
from poseembroider.text.correcting.instructions import instruction_variants
from poseembroider.text.correcting.pair_statistics import posecode_categories

__all__ = [
    "POSES_FAMILY",
    "PAIRS_FAMILY",
    "PosePoolConfig",
    "generate_pools",
    "pairs_dataset_name",
    "poses_dataset_name",
]

POSES_FAMILY = "synthposes"
PAIRS_FAMILY = "synthpairs"
GENERATOR = "poseembroider data pools"
POOL_VERSION = 1  # bump when the drawing of the poses changes: the work chunks of older versions are not reused
TEXT_BLOCK = 512  # poses (pairs) per call of the captioner (instruction writer): flat working memory
_SEED_TAG = 0x5E0F_9005  # mixed into every chunk seed: pool streams are apart from script dataset seeds
CAPTIONS_PER_CALL = 3  # `caption_variants` writes 3 captions (default, simplified, ripple) per pose


def poses_dataset_name(script_version: str) -> str:
    return f"{POSES_FAMILY}-{script_version}"


def pairs_dataset_name(script_version: str, mining: MiningParams | None = None) -> str:
    return f"{PAIRS_FAMILY}-{script_version}-{(mining or MiningParams()).version_string}"


def script_version_of(script_dataset: str) -> str:
    """'synthscript-<v>' or '<v>' -> '<v>' (the version part the pools are named after)."""
    version = script_dataset.removeprefix("synthscript-")
    if not version or "-" in version or not re.fullmatch(r"[a-z0-9_]+", version):
        raise ValueError(
            f"--script-dataset {script_dataset!r}: expected synthscript-<version> (lower-case letters, digits, '_'), "
            "e.g. synthscript-quickstart_overlap30_res224_j16_sf11"
        )
    return version


@dataclass(frozen=True)
class PosePoolConfig:
    """What `generate_pools` makes.

    Args:
        script_version: version of the script dataset whose val split the pools share, e.g.
            'quickstart_overlap30_res224_j16_sf11' (its caches must be in `cache_dir`).
        n_train: poses in the train split of `synthposes-<script_version>`.
        captions_per_pose: K captions per pose (3 as the script dataset; more: further noise draws).
        pairs: also make `synthpairs-...` (pairs mined among the train poses, 3 instructions each).
        seed: seed of the pool (chunk c draws from SeedSequence([tag, seed, c])).
        pool_factor, sequence_share, frames_per_sequence, fps: as `SynthConfig` (candidates per kept
            pose, share of them from sequences, sequence length and frame rate).
        chunk_size: poses kept per chunk (each chunk: pool_factor x chunk_size candidates, FPS).
        mining: pair-mining constraints (their version string names the pairs dataset).
    """

    script_version: str
    n_train: int
    captions_per_pose: int = 3
    pairs: bool = True
    seed: int = 0
    pool_factor: float = 3.0
    sequence_share: float = 0.5
    frames_per_sequence: int = 30
    fps: float = 30.0
    chunk_size: int = 2048
    mining: MiningParams = field(default_factory=MiningParams)
    cache_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.cache_dir is None:
            object.__setattr__(self, "cache_dir", Path(config.DATA_CACHE_DIR))
        script_version_of(self.script_version)
        if self.n_train < 1:
            raise ValueError(f"--n-train must be >= 1, got {self.n_train}")
        if self.captions_per_pose < 1:
            raise ValueError(f"--captions-per-pose must be >= 1, got {self.captions_per_pose}")
        if self.pool_factor < 1:
            raise ValueError(f"--pool-factor must be >= 1, got {self.pool_factor}")
        if self.chunk_size < 2:
            raise ValueError(f"--chunk-size must be >= 2, got {self.chunk_size}")

    @property
    def poses_name(self) -> str:
        return poses_dataset_name(self.script_version)

    @property
    def pairs_name(self) -> str:
        return pairs_dataset_name(self.script_version, self.mining)

    @property
    def fix_version(self) -> str:
        return f"{self.script_version}-{self.mining.version_string}"

    def chunk_settings(self) -> dict[str, Any]:
        """What the poses and captions of a chunk depend on (not `n_train`: pools are prefixes of each other)."""
        return {
            "pool_version": POOL_VERSION,
            "seed": self.seed,
            "pool_factor": self.pool_factor,
            "sequence_share": self.sequence_share,
            "frames_per_sequence": self.frames_per_sequence,
            "fps": self.fps,
            "chunk_size": self.chunk_size,
            "captions_per_pose": self.captions_per_pose,
        }

    def settings_hash(self) -> str:
        text = json.dumps(self.chunk_settings(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def work_dir(self) -> Path:
        assert self.cache_dir is not None
        return Path(self.cache_dir) / "pose_pools_work" / self.poses_name / self.settings_hash()

    def chunk_seed(self, chunk: int) -> int:
        """The `SynthConfig.seed` of chunk `chunk` (its split seeds are this times 1000, + 500 for singles)."""
        return int(np.random.SeedSequence([_SEED_TAG, self.seed, chunk]).generate_state(1)[0])


# ---------------------------------------------------------------------------------------------- chunks


def _captions(poses: torch.Tensor, body_model: BodyModel, k: int, seed: int) -> list[list[str]]:
    """K captions for each of (n, 22, 3) poses: rounds of `caption_variants` (3 each) with their own seeds."""
    out: list[list[str]] = [[] for _ in range(len(poses))]
    for round_ in range(math.ceil(k / CAPTIONS_PER_CALL)):
        round_seed = int(np.random.SeedSequence([seed, round_]).generate_state(1)[0])
        for texts, new in zip(out, caption_variants(poses, body_model, seed=round_seed), strict=True):
            texts.extend(new)
    return [texts[:k] for texts in out]


def make_chunk(cfg: PosePoolConfig, chunk: int, body_model: BodyModel) -> dict[str, Any]:
    """Chunk `chunk` of the pool: `chunk_size` poses in farthest-point order.

    Keys: poses (C, 22, 3) heading-normalised y-up axis-angles; betas (C, 10); heading_rotation (C, 3);
    sequence_id (C,) (globally unique: chunk * 1_000_000 + the chunk's own id; -1 outside sequences),
    frame_index, subject_id (C,); canonical_joints (C, 22, 3); captions [C lists of K str].
    """
    synth = SynthConfig(
        name="pool",
        n_train=cfg.chunk_size,
        n_val=0,
        seed=cfg.chunk_seed(chunk),
        pool_factor=cfg.pool_factor,
        sequence_share=cfg.sequence_share,
        frames_per_sequence=cfg.frames_per_sequence,
        fps=cfg.fps,
        cache_dir=cfg.cache_dir,
        synth_root=cfg.cache_dir,
    )
    pool = build_pool(synth, "train", body_model)
    keep = pool["selected"]
    out: dict[str, Any] = {
        key: pool[key][keep].clone()
        for key in ("poses", "betas", "heading_rotation", "frame_index", "canonical_joints")
    }
    offset = chunk * 1_000_000
    sequence_id = pool["sequence_id"][keep]
    out["sequence_id"] = torch.where(sequence_id >= 0, sequence_id + offset, sequence_id)
    out["subject_id"] = pool["subject_id"][keep] + offset
    captions: list[list[str]] = []
    for block, start in enumerate(range(0, len(keep), TEXT_BLOCK)):
        seed = int(np.random.SeedSequence([_SEED_TAG, cfg.seed, chunk, 4, block]).generate_state(1)[0])
        captions += _captions(out["poses"][start : start + TEXT_BLOCK], body_model, cfg.captions_per_pose, seed)
    out["captions"] = captions
    return out


def build_train_pool(cfg: PosePoolConfig, body_model: BodyModel, progress: bool = True) -> dict[str, Any]:
    """The first `n_train` poses of the pool (chunks made or loaded from the work folder), concatenated."""
    n_chunks = math.ceil(cfg.n_train / cfg.chunk_size)
    work = cfg.work_dir()
    work.mkdir(parents=True, exist_ok=True)
    settings = work / "settings.json"
    if not settings.exists():
        settings.write_text(json.dumps(cfg.chunk_settings(), indent=1, sort_keys=True))
    parts = []
    for chunk in tqdm(range(n_chunks), desc=f"pose pool ({cfg.n_train} poses)", unit="chunk", disable=not progress):
        parts.append(_cached(work / f"chunk_{chunk:05d}.pt", lambda chunk=chunk: make_chunk(cfg, chunk, body_model)))
    pool: dict[str, Any] = {
        key: torch.cat([p[key] for p in parts])[: cfg.n_train] for key in parts[0] if key != "captions"
    }
    pool["captions"] = [texts for p in parts for texts in p["captions"]][: cfg.n_train]
    return pool


# ---------------------------------------------------------------------------------------------- caches


def _criteria(cfg: PosePoolConfig) -> dict[str, Any]:
    return {
        **cfg.chunk_settings(),
        "generator": GENERATOR,
        "n_train": cfg.n_train,
        "script_version": cfg.script_version,
    }


def _pairs_criteria(cfg: PosePoolConfig) -> dict[str, Any]:
    return {
        **_criteria(cfg),
        **{k: list(v) if isinstance(v, tuple) else v for k, v in asdict(cfg.mining).items()},
        "pose_features": "mean-removed canonical joints (PoseText stand-in)",
    }


def _train_caches_current(destination: CacheDestination, kinds: tuple[str, ...], criteria: dict[str, Any]) -> bool:
    """Whether every cache of `kinds` exists at `destination` and was made with `criteria`."""
    for kind in kinds:
        path = destination.path(kind)
        if not path.is_file():
            return False
        try:
            if load_cache(path, kind)["criteria"] != criteria:
                return False
        except CacheError:
            return False
    return True


def _remove_other_sizes(cache_dir: Path, family: str, version: str, split: str, keep: int | None) -> None:
    """Delete the caches of (family, version, split) of another size than `keep` (None: of every size): one
    pool size per name and folder, so the registry finds exactly one."""
    stem = cache_file_name(family, version, split, "").removesuffix(".pt")
    for path in Path(cache_dir).glob(f"{stem}*_reduced_*.pt"):
        if keep is None or not path.name.endswith(f"_reduced_{keep}.pt"):
            path.unlink(missing_ok=True)


def mine_pool_pairs(cfg: PosePoolConfig, pool: dict[str, Any], codes: torch.Tensor) -> dict[str, Any]:
    """Pairs among the pool's poses (ids 0..N-1): {pair_2_dataid, sequence_info}, as `generate.mine_pairs`."""
    seq = pool["sequence_id"].numpy()
    times = pool["frame_index"].numpy() / cfg.fps
    rng = np.random.default_rng([_SEED_TAG, cfg.seed, 6])
    in_pairs = mine_in_sequence_pairs(seq, times, codes, cfg.mining)
    out_pairs = mine_out_of_sequence_pairs(seq, pose_features(pool["canonical_joints"]), codes, cfg.mining, rng)
    pair_2_dataid, sequence_info = {}, {}
    for kind, pairs in (("in", in_pairs), ("out", out_pairs)):
        for a, b in pairs:
            pair_2_dataid[len(pair_2_dataid)] = [int(a), int(b)]
            sequence_info[len(sequence_info)] = kind
    return {"pair_2_dataid": pair_2_dataid, "sequence_info": sequence_info}


def _instructions(cfg: PosePoolConfig, pool: dict[str, Any], pairs: dict[str, Any], body_model) -> dict[int, list]:
    pair_ids = list(pairs["pair_2_dataid"])
    if not pair_ids:
        return {}
    a = torch.tensor([pairs["pair_2_dataid"][p][0] for p in pair_ids])
    b = torch.tensor([pairs["pair_2_dataid"][p][1] for p in pair_ids])
    in_sequence = torch.tensor([pairs["sequence_info"][p] == "in" for p in pair_ids])
    yaw = torch.where(
        in_sequence,
        _yaw_change_deg(pool["heading_rotation"][a], pool["heading_rotation"][b]),
        torch.full((len(pair_ids),), float("nan")),
    )
    texts: list[list[str]] = []
    for block, start in enumerate(range(0, len(pair_ids), TEXT_BLOCK)):
        rows = slice(start, start + TEXT_BLOCK)
        seed = int(np.random.SeedSequence([_SEED_TAG, cfg.seed, 7, block]).generate_state(1)[0])
        texts += instruction_variants(
            pool["poses"][a[rows]], pool["poses"][b[rows]], body_model, seed=seed, rotation_change_deg=yaw[rows]
        )
    return dict(zip(pair_ids, texts, strict=True))


def _copy_val_split(cfg: PosePoolConfig, source_family: str, source_version: str, family: str, version: str,
                    kinds: tuple[str, ...]) -> list[Path]:  # fmt: skip
    """Copy the val caches of `kinds` of (source_family, source_version) byte for byte under (family, version),
    same reduced size; files already equal are left alone. Raises CacheError naming the missing dataset."""
    from poseembroider.datasets.base_dataset import DatasetSource

    source = DatasetSource(source_family, source_version, Path(cfg.cache_dir), Path(cfg.cache_dir))
    targets: list[tuple[Path, Path]] = []
    for kind in kinds:
        try:
            src = source.cache_path("val", kind)
        except CacheError as err:
            raise CacheError(
                f"{family}-{version}: its val split is the val split of {source_family}-{source_version}, "
                f"which is not in {cfg.cache_dir} ({err}); generate it first (poseembroider data synth)"
            ) from None
        dst = src.with_name(src.name.replace(f"{source_family}_version_{source_version}_",
                                             f"{family}_version_{version}_", 1))  # fmt: skip
        targets.append((src, dst))
    stale = [(s, d) for s, d in targets if not d.is_file() or d.read_bytes() != s.read_bytes()]
    if stale:
        for _, dst in targets:  # another val size on disk would make the registry's choice ambiguous
            size = re.search(r"_reduced_(\d+)\.pt$", dst.name)
            if size:
                kind_stem = dst.name[: size.start()]
                for other in dst.parent.glob(f"{kind_stem}_reduced_*.pt"):
                    if other != dst:
                        other.unlink(missing_ok=True)
        with atomic_files_into(cfg.cache_dir) as staging:
            for src, dst in stale:
                shutil.copyfile(src, staging / dst.name)
    return [d for _, d in targets]


# ---------------------------------------------------------------------------------------------- driver


def generate_pools(cfg: PosePoolConfig, body_model: BodyModel | None = None, progress: bool = True) -> dict[str, Any]:
    """Make (or reuse) `synthposes-<script version>` and, with `cfg.pairs`, `synthpairs-<fix version>`.

    Returns {poses_dataset, pairs_dataset (or None), n_train, n_pairs, reused, seconds: {...}}.
    Deterministic: the same settings give the same files whatever was made before. One process makes a pool at
    a time (`exclusive_lock` on `DATA_CACHE_DIR/.synthposes-<version>.lock`): a second one waits, then reuses it.
    """
    with exclusive_lock(Path(cfg.cache_dir) / cfg.poses_name, "pose pool", wait=True):
        return _generate_pools(cfg, body_model, progress)


def _generate_pools(cfg: PosePoolConfig, body_model: BodyModel | None, progress: bool) -> dict[str, Any]:
    start = time.perf_counter()
    seconds: dict[str, float] = {}
    cache_dir = Path(cfg.cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    # the val splits first: a missing script / fix dataset fails before minutes of sampling
    _copy_val_split(cfg, "synthscript", cfg.script_version, POSES_FAMILY, cfg.script_version, ("poses", "rawtexts"))
    if cfg.pairs:
        _copy_val_split(cfg, "synthfix", cfg.fix_version, PAIRS_FAMILY, cfg.fix_version, ("pairs", "rawtexts"))
    seconds["val_copy"] = round(time.perf_counter() - start, 2)

    poses_dest = CacheDestination(cache_dir, POSES_FAMILY, cfg.script_version, "train", cfg.n_train)
    pairs_dest = CacheDestination(cache_dir, PAIRS_FAMILY, cfg.fix_version, "train", cfg.n_train)
    poses_current = _train_caches_current(poses_dest, ("poses", "rawtexts"), _criteria(cfg))
    pairs_current = not cfg.pairs or _train_caches_current(pairs_dest, ("pairs", "rawtexts"), _pairs_criteria(cfg))
    reused = poses_current and pairs_current
    n_pairs = None
    if not reused:
        with torch_threads(1):  # the same floats whatever the machine's thread count
            body_model = BodyModel().eval() if body_model is None else body_model
            t = time.perf_counter()
            pool = build_train_pool(cfg, body_model, progress)
            seconds["poses_and_captions"] = round(time.perf_counter() - t, 2)
            ids = list(range(cfg.n_train))
            if not poses_current:
                criteria = _criteria(cfg)
                caches = [
                    poses_cache(
                        criteria,
                        poses={i: pool["poses"][i] for i in ids},
                        shapes={i: pool["betas"][i] for i in ids},
                        heading_rotation={i: pool["heading_rotation"][i] for i in ids},
                        sequence_info={
                            i: {
                                "sequence_id": int(pool["sequence_id"][i]),
                                "frame_index": int(pool["frame_index"][i]),
                                "subject_id": int(pool["subject_id"][i]),
                                "fps": cfg.fps,
                            }
                            for i in ids
                        },
                    ),
                    rawtexts_cache(criteria, dict(zip(ids, pool["captions"], strict=True))),
                ]
                _remove_other_sizes(cache_dir, POSES_FAMILY, cfg.script_version, "train", cfg.n_train)
                # pairs mined in another pool would point at these new poses: gone unless remade below
                _remove_other_sizes(
                    cache_dir, PAIRS_FAMILY, cfg.fix_version, "train", cfg.n_train if cfg.pairs else None
                )
                write_caches(poses_dest, caches)
            if cfg.pairs and not pairs_current:
                t = time.perf_counter()
                codes = torch.cat(
                    [posecode_categories(pool["poses"][s : s + 4096], body_model) for s in range(0, cfg.n_train, 4096)]
                )
                pairs = mine_pool_pairs(cfg, pool, codes)
                seconds["pair_mining"] = round(time.perf_counter() - t, 2)
                t = time.perf_counter()
                instructions = _instructions(cfg, pool, pairs, body_model)
                seconds["instructions"] = round(time.perf_counter() - t, 2)
                criteria = _pairs_criteria(cfg)
                caches = [pairs_cache(criteria, pairs["pair_2_dataid"], pairs["sequence_info"])]
                caches.append(rawtexts_cache(criteria, instructions))
                _remove_other_sizes(cache_dir, PAIRS_FAMILY, cfg.fix_version, "train", cfg.n_train)
                write_caches(pairs_dest, caches)
    if cfg.pairs:
        n_pairs = len(load_cache(pairs_dest.path("pairs"), "pairs")["pair_2_dataid"])
    seconds["total"] = round(time.perf_counter() - start, 2)
    return {
        "poses_dataset": cfg.poses_name,
        "pairs_dataset": cfg.pairs_name if cfg.pairs else None,
        "n_train": cfg.n_train,
        "n_pairs": n_pairs,
        "reused": reused,
        "cache_dir": str(cache_dir),
        "seconds": seconds,
    }
