"""BEDLAM-Script and BEDLAM-Fix from a BEDLAM release: the original's seven steps, parallel and resumable.

Steps (`--steps`, in order; each reads the outputs of the ones before it from the work folder
`<work_dir>/bedlamscript-<version>/<split>/`):

- `people` (original steps 1-3): per unit (a scene's sequence groups, `groups_per_unit` at a time) the poses,
  boxes and joints of every sampled person-frame and the selection criteria per image (`person_frames.py`)
  -> `people/<scene folder>/part_<k>.pt`;
- `fps` (4): the kept person-frames of every scene sorted by (image path, body), data id = rank in that order;
  the farthest-point subset of `fps_size` on the canonical 22 joints (MPJPE, first index 0) -> `fps/subset.pt`;
- `captions` (5): three captions per pose (default, simplified, ripple) -> `captions/block_<k>.pt`;
- `pairs` (6): posecode categories, in- and out-of-sequence pairs (`synthetic.pair_mining`) -> `pairs/pairs.pt`;
- `instructions` (7): three instructions per pair -> `instructions/block_<k>.pt`;
- `caches`: the processed caches `bedlamscript-...` and `bedlamfix-...` (`cache_writers`) in `cache_dir`.

Asking for a later step loads the outputs of the steps before it, or makes them (all but `people`, which
must be complete).

Parallel: the `people` units run in `workers` processes (spawned, one torch thread each, the body model
loaded once per process). Under `torchrun` each rank takes the units whose index modulo the world size is
its rank, waits at a barrier, and rank 0 runs the other steps (they cost minutes, not hours).

Resumable: every output is written atomically when complete and a step (or a unit, or a text block) whose
output exists is not redone, so a killed run continues where it stopped. Every random draw is seeded by
(seed, split, step, block), the merge sorts by image path, and every process uses one torch thread, so a
resumed run (with any worker count) ends with byte-identical files. Each step folder keeps the settings it
was made with (`settings.json`, those of the steps before it included): a rerun with other settings stops
with a message naming the step and the settings that changed.

Memory stays bounded: the units are read back memory-mapped, farthest-point sampling keeps one distance per
candidate (O(N), not N x N), pair mining compares `chunk` rows with all poses at a time, and the text
pipelines run on blocks of fixed size.
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing as mp
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from poseembroider import config
from poseembroider.atomic_io import exclusive_lock, write_json_atomic
from poseembroider.datasets.cache_format import CacheError, load_cache, save_cache
from poseembroider.datasets.cache_writers import (
    CacheDestination,
    images_cache,
    pairs_cache,
    poses_cache,
    rawtexts_cache,
    write_caches,
)
from poseembroider.datasets.process_bedlam.layout import (
    BedlamInputError,
    BedlamLayout,
    SceneEntry,
    SequenceGroup,
    read_be_seq,
    read_scene_table,
)
from poseembroider.datasets.process_bedlam.person_frames import (
    COLUMNS,
    CRITERIA,
    EARLY_REJECTIONS,
    FRAME_STEP,
    STRING_COLUMNS,
    GroupResult,
    PersonFrameModels,
    process_group,
    relative_heading_deg,
)
from poseembroider.datasets.synthetic.crops import SelectionCriteria
from poseembroider.datasets.synthetic.generate import TEXT_BLOCK, pose_features
from poseembroider.datasets.synthetic.metrics import farthest_point_sampling
from poseembroider.datasets.synthetic.pair_mining import (
    MiningParams,
    mine_in_sequence_pairs,
    mine_out_of_sequence_pairs,
)
from poseembroider.devices import barrier, get_rank, get_world_size, torch_threads
from poseembroider.text.captioning.captions import caption_variants
from poseembroider.text.correcting.instructions import instruction_variants
from poseembroider.text.correcting.pair_statistics import posecode_categories

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_FPS_SIZES",
    "STEPS",
    "BedlamConfig",
    "process_bedlam",
    "unit_plan",
]

STEPS: tuple[str, ...] = ("people", "fps", "captions", "pairs", "instructions", "caches")
DEFAULT_FPS_SIZES = {"train": 50_000, "val": 10_000}
"""Farthest-point subset sizes of the paper (the original sampled 20,000 val poses and used the first 10,000)."""
_SPLIT_SEED_OFFSET = {"train": 0, "val": 1}
SEQUENCE_FPS = 30.0
"""Frame rate of the frame numbers (time = frame / 30 s for the in-sequence time window)."""


@dataclass(frozen=True)
class BedlamConfig:
    """What `poseembroider data process-bedlam` makes (paths None: BEDLAM's layout under `bedlam_root` and
    the configured folders)."""

    bedlam_root: Path
    split: str
    workers: int = 1
    fps_size: int | None = None  # None: DEFAULT_FPS_SIZES[split]
    sample_fps: int = 6  # 6: every 5th frame, as the original; 30: every frame
    seed: int = 0
    criteria: SelectionCriteria = field(default_factory=SelectionCriteria)
    mining: MiningParams = field(default_factory=MiningParams)
    groups_per_unit: int = 16  # sequence groups per `people` unit (the grain of parallelism and resume)
    images_dir: Path | None = None
    motion_dir: Path | None = None
    scene_table: Path | None = None
    cache_dir: Path | None = None
    work_dir: Path | None = None
    body_model_file: Path | None = None
    fps_device: str = "cpu"  # farthest-point sampling on 'cuda' when the candidates are many
    # what the out-of-sequence similarity window is measured on: None, mean-removed canonical joints (the
    # synthetic world's stand-in); else the name of the pose-feature model the caller passes to
    # `process_bedlam` as `similarity_features` (the original: a PoseText's pose embeddings)
    similarity_model: str | None = None

    def __post_init__(self) -> None:
        if self.split not in DEFAULT_FPS_SIZES:
            raise ValueError(f"--split: expected train or val, got {self.split!r}")
        if self.sample_fps not in FRAME_STEP:
            raise ValueError(f"--sample-fps: expected one of {sorted(FRAME_STEP)}, got {self.sample_fps}")
        if self.workers < 1:
            raise ValueError(f"--workers must be >= 1, got {self.workers}")
        if self.fps_size is not None and self.fps_size < 1:
            raise ValueError(f"--fps-size must be >= 1, got {self.fps_size}")
        if self.groups_per_unit < 1:
            raise ValueError(f"--groups-per-unit must be >= 1, got {self.groups_per_unit}")
        if self.cache_dir is None:
            object.__setattr__(self, "cache_dir", Path(config.DATA_CACHE_DIR))
        if self.work_dir is None:
            object.__setattr__(self, "work_dir", Path(config.BEDLAM_PROCESSED_DIR) / "work")

    @property
    def layout(self) -> BedlamLayout:
        return BedlamLayout(Path(self.bedlam_root), self.images_dir, self.motion_dir)

    @property
    def script_version(self) -> str:
        return self.criteria.name

    @property
    def fix_version(self) -> str:
        return f"{self.script_version}-{self.mining.version_string}"

    @property
    def script_name(self) -> str:
        return f"bedlamscript-{self.script_version}"

    @property
    def fix_name(self) -> str:
        return f"bedlamfix-{self.fix_version}"

    @property
    def requested_size(self) -> int:
        return self.fps_size if self.fps_size is not None else DEFAULT_FPS_SIZES[self.split]

    @property
    def split_dir(self) -> Path:
        assert self.work_dir is not None
        return Path(self.work_dir) / self.script_name / self.split

    def seed_of(self, *parts: int) -> int:
        """A seed for (seed, split, *parts), independent of every other combination."""
        sequence = np.random.SeedSequence([self.seed, _SPLIT_SEED_OFFSET[self.split], *parts])
        return int(sequence.generate_state(1)[0])


# ---------------------------------------------------------------------------------------------- settings


def _settings(cfg: BedlamConfig, step: str) -> dict[str, Any]:
    """The settings the outputs of `step` depend on (those of the steps before it included)."""
    layout = cfg.layout
    settings: dict[str, Any] = {
        "split": cfg.split,
        "images_dir": str(Path(layout.images_dir).resolve()),
        "motion_dir": str(Path(layout.motion_dir).resolve()),
        "scenes": [asdict(s) for s in _scenes(cfg)],
        "sample_fps": cfg.sample_fps,
        "criteria": asdict(cfg.criteria),
        "groups_per_unit": cfg.groups_per_unit,
        "body_model_file": None if cfg.body_model_file is None else str(cfg.body_model_file),
    }
    if STEPS.index(step) >= STEPS.index("fps"):
        settings["fps_size"] = cfg.requested_size
    if STEPS.index(step) >= STEPS.index("captions"):
        settings["seed"] = cfg.seed
    if STEPS.index(step) >= STEPS.index("pairs"):
        settings["mining"] = asdict(cfg.mining)
        settings["similarity_model"] = cfg.similarity_model
    return json.loads(json.dumps(settings, default=str))


def _check_settings(cfg: BedlamConfig, step: str) -> Path:
    """The step's folder, after checking it was made with today's settings (recording them when new)."""
    folder = cfg.split_dir / step
    settings = _settings(cfg, step)
    path = folder / "settings.json"
    if path.exists():
        previous = json.loads(path.read_text())
        if previous != settings:
            changed = sorted(k for k in settings.keys() | previous.keys() if settings.get(k) != previous.get(k))
            raise ValueError(
                f"{folder} was made with other settings ({', '.join(changed)}): delete that folder (and those of "
                f"the steps after it) to redo step '{step}' with the new ones, or pass --work-dir elsewhere"
            )
    else:
        write_json_atomic(path, settings)
    return folder


def _load(path: Path, mmap: bool = False) -> Any:
    """A work table (`load_cache`: never unpickles code, errors name the file)."""
    return load_cache(path, mmap=mmap)


def _cached(path: Path, compute: Callable[[], Any]) -> Any:
    """Load a work table, or compute and save it (atomically) first."""
    if path.exists():
        table = _load(path)
        if "value" not in table:
            found = sorted(map(str, table))
            raise CacheError(f"{path}: not a work table of BEDLAM processing (no 'value'; has {found})")
        return table["value"]
    value = compute()
    save_cache({"value": value}, path)
    return value


# ---------------------------------------------------------------------------------------------- people


def _scenes(cfg: BedlamConfig) -> list[SceneEntry]:
    return [s for s in read_scene_table(cfg.scene_table) if s.split == cfg.split]


@dataclass(frozen=True)
class Unit:
    """A slice of a scene's sequence groups, processed by one worker and saved as one file."""

    scene: SceneEntry
    part: int
    groups: tuple[SequenceGroup, ...]

    def path(self, cfg: BedlamConfig) -> Path:
        return cfg.split_dir / "people" / self.scene.folder / f"part_{self.part:05d}.pt"


def unit_plan(cfg: BedlamConfig) -> list[Unit]:
    """Every unit of the split, in scene-table order (reads each scene's `be_seq.csv`; a missing scene
    folder or csv stops here, naming it)."""
    layout = cfg.layout
    units = []
    scenes = _scenes(cfg)
    if not scenes:
        raise BedlamInputError(f"the scene table lists no scene of split {cfg.split!r}")
    for scene in scenes:
        files = layout.scene(scene)
        groups = read_be_seq(files.be_seq)
        for part, start in enumerate(range(0, len(groups), cfg.groups_per_unit)):
            units.append(Unit(scene, part, tuple(groups[start : start + cfg.groups_per_unit])))
    return units


_WORKER: dict[str, Any] = {}


def _models(cfg: BedlamConfig) -> PersonFrameModels:
    key = str(cfg.body_model_file)
    if _WORKER.get("key") != key:
        _WORKER["models"] = PersonFrameModels.load(cfg.body_model_file)
        _WORKER["key"] = key
    return _WORKER["models"]


def _worker_init(cfg: BedlamConfig) -> None:
    torch.set_num_threads(1)  # one process per core, and the same floats whatever the worker count
    _models(cfg)


def _concat(results: Sequence[GroupResult]) -> dict[str, Any]:
    columns: dict[str, Any] = {}
    for name in COLUMNS:
        columns[name] = torch.cat([r.columns[name] for r in results])
    for name in STRING_COLUMNS:
        columns[name] = [value for r in results for value in r.columns[name]]
    return columns


def run_unit(task: tuple[BedlamConfig, Unit]) -> tuple[str, int]:
    """Steps 1-3 on one unit; writes its file (columns of the kept person-frames and the counts)."""
    cfg, unit = task
    models = _models(cfg)
    start, cpu_start = time.perf_counter(), time.process_time()
    layout = cfg.layout
    scene = layout.scene(unit.scene)
    results = [process_group(models, layout, scene, g, cfg.criteria, cfg.sample_fps) for g in unit.groups]
    counts = {
        "seconds": time.perf_counter() - start,  # in the worker, model loading excluded (not in the caches)
        "cpu_seconds": time.process_time() - cpu_start,
        "person_frames": sum(r.person_frames for r in results),
        "rejected": dict(sum((r.rejected for r in results), Counter())),
        "failed": dict(sum((r.failed for r in results), Counter())),
    }
    save_cache({"columns": _concat(results), "counts": counts}, unit.path(cfg))
    return unit.scene.folder, unit.part


def run_people(cfg: BedlamConfig, stop_after_units: int | None = None) -> dict[str, Any]:
    """Step `people` on this rank's units (all units in a single process), then a barrier; returns the
    number of units done by this call."""
    _check_settings(cfg, "people")
    units = unit_plan(cfg)
    rank, world = get_rank(), get_world_size()
    mine = [u for k, u in enumerate(units) if k % world == rank]
    todo = [u for u in mine if not u.path(cfg).exists()]
    if stop_after_units is not None:
        todo = todo[:stop_after_units]
    start = time.perf_counter()
    with tqdm(total=len(mine), initial=len(mine) - len(todo), desc=f"people {cfg.split}", unit="unit") as bar:
        if cfg.workers <= 1 or len(todo) <= 1:
            with torch_threads(1):
                for unit in todo:
                    run_unit((cfg, unit))
                    bar.update()
        else:
            context = mp.get_context("spawn")
            with context.Pool(min(cfg.workers, len(todo)), initializer=_worker_init, initargs=(cfg,)) as pool:
                for _ in pool.imap_unordered(run_unit, [(cfg, u) for u in todo]):
                    bar.update()
    seconds = time.perf_counter() - start
    if stop_after_units is not None and any(not u.path(cfg).exists() for u in mine):
        raise InterruptedError(f"people step of {cfg.split} stopped after {len(todo)} units: run again to resume")
    barrier()
    return {"units": len(units), "units_done_now": len(todo), "seconds": round(seconds, 2)}


# ---------------------------------------------------------------------------------------------- fps


def _unit_files(cfg: BedlamConfig) -> list[Path]:
    units = unit_plan(cfg)
    missing = [u.path(cfg) for u in units if not u.path(cfg).exists()]
    if missing:
        raise FileNotFoundError(
            f"step 'people' is not complete: {len(missing)} of {len(units)} units missing (e.g. {missing[0]}); "
            "run --steps people first (under torchrun, every rank must finish it)"
        )
    return [u.path(cfg) for u in units]


def merged_counts(cfg: BedlamConfig) -> dict[str, Any]:
    """What step `people` saw and rejected, summed over the units."""
    total = {"person_frames": 0, "rejected": Counter(), "failed": Counter(), "seconds": 0.0, "cpu_seconds": 0.0}
    for path in _unit_files(cfg):
        counts = _load(path, mmap=True)["counts"]
        total["person_frames"] += counts["person_frames"]
        total["seconds"] += counts.get("seconds", 0.0)
        total["cpu_seconds"] += counts.get("cpu_seconds", 0.0)
        total["rejected"].update(counts["rejected"])
        total["failed"].update(counts["failed"])
    rejected = {reason: int(total["rejected"].get(reason, 0)) for reason in (*EARLY_REJECTIONS, *CRITERIA)}
    kept = total["person_frames"] - sum(rejected.values())
    return {
        "person_frames": total["person_frames"],
        "rejected": rejected,
        "failed_criterion": {name: int(total["failed"].get(name, 0)) for name in CRITERIA},
        "kept": kept,
        # the rate of one worker (its time on its units, summed over units; model loading excluded)
        "person_frames_per_s_per_worker": round(total["person_frames"] / max(total["seconds"], 1e-9), 1),
        # the same per CPU second: what a worker with a core of its own reaches
        "person_frames_per_cpu_s": round(total["person_frames"] / max(total["cpu_seconds"], 1e-9), 1),
    }


def build_subset(cfg: BedlamConfig) -> dict[str, Any]:
    """Step 4: the kept person-frames of every unit sorted by (image path, body) -> data id = rank in that
    order (the original's running index); the farthest-point subset (`fps_size`, in FPS order) with every
    column. Units are read memory-mapped: only the canonical joints of all candidates are held at once."""
    files = _unit_files(cfg)
    units = [_load(p, mmap=True)["columns"] for p in files]
    sizes = [len(cols["image"]) for cols in units]
    unit_of = np.repeat(np.arange(len(units)), sizes)
    row_of = np.concatenate([np.arange(k) for k in sizes]) if sizes else np.zeros(0, np.int64)
    images = [image for cols in units for image in cols["image"]]
    persons = np.concatenate([cols["person"].numpy() for cols in units]) if units else np.zeros(0, np.int64)
    if not images:
        raise ValueError(f"no person-frame of split {cfg.split} passed the selection criteria: nothing to sample")
    order = np.array(sorted(range(len(images)), key=lambda i: (images[i], persons[i])), dtype=np.int64)
    canonical = torch.cat([cols["canonical_joints"] for cols in units])[torch.from_numpy(order)]
    n = min(cfg.requested_size, len(order))
    if n < cfg.requested_size:
        logger.warning("%s: %d candidates, fewer than the %d asked: all are kept", cfg.split, len(order), n)
    device = torch.device(cfg.fps_device)
    logger.info("farthest-point sampling %d -> %d on %s", len(order), n, device)
    selected = farthest_point_sampling(canonical.reshape(len(order), -1).to(device), n).cpu()
    flat = order[selected.numpy()]
    units_sel, rows_sel = unit_of[flat], row_of[flat]
    subset: dict[str, Any] = {"data_ids": selected.clone(), "num_candidates": len(order)}
    for name, (shape, dtype) in COLUMNS.items():
        column = torch.empty(n, *shape, dtype=dtype)
        for u in np.unique(units_sel):
            at = np.flatnonzero(units_sel == u)
            column[torch.from_numpy(at)] = units[u][name][torch.from_numpy(rows_sel[at])]
        subset[name] = column
    for name in STRING_COLUMNS:
        subset[name] = [units[u][name][r] for u, r in zip(units_sel.tolist(), rows_sel.tolist(), strict=True)]
    subset["scene"] = [files[u].parent.name for u in units_sel.tolist()]
    return subset


# ---------------------------------------------------------------------------------------------- texts


def _blocks(
    cfg: BedlamConfig, folder: Path, count: int, stage: int, make: Callable[[slice, int], list], desc: str
) -> list:
    """`make(rows, seed)` over consecutive `TEXT_BLOCK` row slices, each block saved as done (resumable)."""
    out: list = []
    starts = range(0, count, TEXT_BLOCK)
    for block, start in enumerate(tqdm(starts, desc=desc, unit="block", disable=len(starts) <= 1)):
        path = folder / f"block_{block:05d}.pt"
        rows = slice(start, min(count, start + TEXT_BLOCK))
        out += _cached(path, lambda rows=rows, block=block: make(rows, cfg.seed_of(stage, block)))
    return out


def make_captions(cfg: BedlamConfig, subset: dict[str, Any], body_model) -> list[list[str]]:
    """Step 5: three captions per pose of the subset (FPS order)."""
    folder = _check_settings(cfg, "captions")
    poses = subset["poses"]
    return _blocks(
        cfg, folder, len(poses), 5, lambda rows, seed: caption_variants(poses[rows], body_model, seed=seed), "captions"
    )


def sequence_ids(subset: dict[str, Any]) -> np.ndarray:
    """(N,) int: one id per (scene, sequence folder, body), the unit of in-sequence pairs."""
    keys = list(zip(subset["scene"], subset["sequence"], subset["body"], strict=True))
    index = {key: i for i, key in enumerate(sorted(set(keys)))}
    return np.array([index[k] for k in keys], dtype=np.int64)


PoseFeatures = Callable[[torch.Tensor], torch.Tensor]
"""poses (N, 22, 3) axis-angles (normalised, the models' frame) -> (N, D) features whose cosine similarity
the out-of-sequence window reads (`BedlamConfig.similarity_model`)."""


def _check_similarity_features(cfg: BedlamConfig, features: PoseFeatures | None) -> None:
    """Features given exactly when `cfg.similarity_model` names their model."""
    if cfg.similarity_model is None and features is not None:
        raise ValueError("similarity_features given without BedlamConfig.similarity_model naming its model")
    if cfg.similarity_model is not None and features is None:
        raise ValueError(
            f"--similarity-model {cfg.similarity_model}: pass its pose features to process_bedlam "
            "(similarity_features), as process_bedlam.py does"
        )


def similarity_features_of(cfg: BedlamConfig, subset: dict[str, Any], features: PoseFeatures | None) -> torch.Tensor:
    """(N, D) L2-normalised features of the subset's poses for the similarity window: `features` of the
    poses when `cfg.similarity_model` names a model, the mean-removed canonical joints otherwise."""
    _check_similarity_features(cfg, features)
    if features is None:
        return pose_features(subset["canonical_joints"])
    poses = subset["poses"]
    out = torch.cat([features(poses[s : s + TEXT_BLOCK]) for s in range(0, len(poses), TEXT_BLOCK)])
    if out.shape[0] != len(poses) or out.dim() != 2:
        raise ValueError(f"similarity features: expected ({len(poses)}, D), got {tuple(out.shape)}")
    return torch.nn.functional.normalize(out.float(), dim=-1)


def mine_pairs(
    cfg: BedlamConfig, subset: dict[str, Any], body_model, similarity_features: PoseFeatures | None = None
) -> dict[str, Any]:
    """Step 6: {pair_2_dataid, sequence_info, local: (M, 2) local indices}; in-sequence pairs first."""
    folder = _check_settings(cfg, "pairs")

    def compute() -> dict[str, Any]:
        poses = subset["poses"]
        codes = torch.cat(
            [posecode_categories(poses[s : s + TEXT_BLOCK], body_model) for s in range(0, len(poses), TEXT_BLOCK)]
        )
        seq = sequence_ids(subset)
        times = subset["frame"].numpy() / SEQUENCE_FPS
        in_pairs = mine_in_sequence_pairs(seq, times, codes, cfg.mining)
        rng = np.random.default_rng(cfg.seed_of(6))
        features = similarity_features_of(cfg, subset, similarity_features)
        out_pairs = mine_out_of_sequence_pairs(seq, features, codes, cfg.mining, rng)
        ids = subset["data_ids"].tolist()
        pair_2_dataid, sequence_info, local = {}, {}, []
        for kind, pairs in (("in", in_pairs), ("out", out_pairs)):
            for a, b in pairs:
                pair_id = len(pair_2_dataid)
                pair_2_dataid[pair_id] = [ids[a], ids[b]]
                sequence_info[pair_id] = kind
                local.append([a, b])
        return {
            "pair_2_dataid": pair_2_dataid,
            "sequence_info": sequence_info,
            "local": torch.tensor(local, dtype=torch.long).reshape(-1, 2),
        }

    return _cached(folder / "pairs.pt", compute)


def make_instructions(cfg: BedlamConfig, subset: dict[str, Any], pairs: dict[str, Any], body_model) -> list:
    """Step 7: three instructions per pair; in-sequence pairs say the whole-body turn between A and B."""
    folder = _check_settings(cfg, "instructions")
    local = pairs["local"]
    if len(local) == 0:
        return []
    a, b = local[:, 0], local[:, 1]
    in_sequence = torch.tensor([pairs["sequence_info"][p] == "in" for p in range(len(local))])
    heading = subset["heading_rotation"]
    yaw = torch.where(
        in_sequence, relative_heading_deg(heading[a], heading[b]), torch.full((len(local),), float("nan"))
    )
    poses = subset["poses"]
    return _blocks(
        cfg,
        folder,
        len(local),
        7,
        lambda rows, seed: instruction_variants(
            poses[a[rows]], poses[b[rows]], body_model, seed=seed, rotation_change_deg=yaw[rows]
        ),
        "instructions",
    )


# ---------------------------------------------------------------------------------------------- caches


def _script_criteria(cfg: BedlamConfig, subset: dict[str, Any]) -> dict[str, Any]:
    return {
        **cfg.criteria.as_dict(),
        "processor": "poseembroider data process-bedlam",
        "sample_fps": cfg.sample_fps,
        "fps_size": len(subset["data_ids"]),
        "num_candidates": int(subset["num_candidates"]),
        "tight_bbox_points": "every vertex of the body model",
    }


def write_bedlam_caches(
    cfg: BedlamConfig,
    subset: dict[str, Any],
    captions: list[list[str]],
    pairs: dict[str, Any],
    instructions: list[list[str]],
) -> list[Path]:
    """The bedlamscript caches (images, poses, rawtexts) and the bedlamfix caches (pairs, rawtexts) of the
    split, each set written together (`cache_writers`)."""
    ids = subset["data_ids"].tolist()
    n = len(ids)
    closeup = {s.folder: s.closeup for s in _scenes(cfg)}
    criteria = _script_criteria(cfg, subset)
    rows = range(n)
    caches = [
        images_cache(
            criteria,
            images={ids[r]: subset["image"][r] for r in rows},
            bboxes={ids[r]: subset["bbox"][r].tolist() for r in rows},
            full_human_visibility={ids[r]: bool(subset["in_frame"][r].all()) for r in rows},
            camera_transformation={ids[r]: (subset["cam_rot"][r], subset["transl"][r]) for r in rows},
            image_rotation={ids[r]: 90 if closeup[subset["scene"][r]] else 0 for r in rows},
            joints_2d={ids[r]: subset["joints_2d"][r] for r in rows},
            joints_in_frame={ids[r]: subset["in_frame"][r] for r in rows},
            tight_bboxes={ids[r]: subset["tight_bbox"][r].tolist() for r in rows},
            source={
                ids[r]: {
                    "scene": subset["scene"][r],
                    "sequence": subset["sequence"][r],
                    "body": subset["body"][r],
                    "frame": int(subset["frame"][r]),
                }
                for r in rows
            },
        ),
        poses_cache(
            criteria,
            poses={ids[r]: subset["poses"][r] for r in rows},
            shapes={ids[r]: subset["betas"][r] for r in rows},
            heading_rotation={ids[r]: subset["heading_rotation"][r] for r in rows},
        ),
        rawtexts_cache(criteria, {ids[r]: captions[r] for r in rows}),
    ]
    destination = CacheDestination(Path(cfg.cache_dir), "bedlamscript", cfg.script_version, cfg.split, n)
    paths = write_caches(destination, caches)
    similarity = cfg.similarity_model or "mean-removed canonical joints"
    fix_criteria = {**criteria, **asdict(cfg.mining), "pose_features": similarity}
    fix = [pairs_cache(fix_criteria, pairs["pair_2_dataid"], pairs["sequence_info"])]
    fix.append(rawtexts_cache(fix_criteria, dict(enumerate(instructions))))
    destination = CacheDestination(Path(cfg.cache_dir), "bedlamfix", cfg.fix_version, cfg.split, n)
    return paths + write_caches(destination, fix)


# ---------------------------------------------------------------------------------------------- driver


def _requested(steps: Sequence[str] | None) -> list[str]:
    steps = list(STEPS if steps is None else steps)
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        raise ValueError(f"--steps: unknown step(s) {unknown}; the steps are {list(STEPS)}")
    return steps


def _body_model(cfg: BedlamConfig):
    return PersonFrameModels.load(cfg.body_model_file).body


def process_bedlam(
    cfg: BedlamConfig,
    steps: Sequence[str] | None = None,
    stop_after_units: int | None = None,
    similarity_features: PoseFeatures | None = None,
) -> dict[str, Any]:
    """Run `steps` (all by default) of one split; returns the statistics (also in the work folder's
    `summary.json`). Ranks other than 0 return after step `people`. `similarity_features`: the pose features
    of `cfg.similarity_model` (see `PoseFeatures`). Rank 0 holds the split's lock (`exclusive_lock` on its work
    folder) throughout: another run of the same split waits for it, then finds its work done."""
    wanted = _requested(steps)
    if {"pairs", "instructions", "caches"} & set(wanted):
        _check_similarity_features(cfg, similarity_features)  # before any work
    lock = exclusive_lock(cfg.split_dir, "BEDLAM processing work folder", wait=True)
    with lock if get_rank() == 0 else contextlib.nullcontext():
        return _process_bedlam(cfg, wanted, stop_after_units, similarity_features)


def _process_bedlam(
    cfg: BedlamConfig,
    wanted: list[str],
    stop_after_units: int | None,
    similarity_features: PoseFeatures | None,
) -> dict[str, Any]:
    stats: dict[str, Any] = {"split": cfg.split, "script_dataset": cfg.script_name, "fix_dataset": cfg.fix_name}
    seconds: dict[str, float] = {}
    if "people" in wanted:
        people = run_people(cfg, stop_after_units)
        seconds["people"] = people["seconds"]
        stats["units"] = people["units"]
    if get_rank() != 0:
        return stats
    counts = merged_counts(cfg)
    stats.update(counts)
    if "people" in seconds and seconds["people"] > 0:
        stats["person_frames_per_s"] = round(counts["person_frames"] / seconds["people"], 1)
    later = {s for s in wanted if s != "people"}
    if not later:
        stats["seconds"] = seconds
        write_json_atomic(cfg.split_dir / "summary.json", stats)
        return stats
    if "caches" in later:  # the texts and pairs are loaded when done, made when not
        later |= {"captions", "pairs", "instructions"}
    if "instructions" in later:
        later.add("pairs")
    # farthest-point sampling on the process's threads (or `fps_device`): same subset for any thread count
    start = time.perf_counter()
    folder = _check_settings(cfg, "fps")
    subset = _cached(folder / "subset.pt", lambda: build_subset(cfg))
    seconds["fps"] = round(time.perf_counter() - start, 2)
    stats["size"] = len(subset["data_ids"])
    with torch_threads(1):  # the text pipelines: same floats whatever the machine's thread count
        body_model = _body_model(cfg) if later - {"fps"} else None
        captions = pairs = instructions = None
        if "captions" in later:
            start = time.perf_counter()
            captions = make_captions(cfg, subset, body_model)
            seconds["captions"] = round(time.perf_counter() - start, 2)
        if "pairs" in later:
            start = time.perf_counter()
            pairs = mine_pairs(cfg, subset, body_model, similarity_features)
            seconds["pairs"] = round(time.perf_counter() - start, 2)
            kinds = list(pairs["sequence_info"].values())
            stats["pairs_in_sequence"], stats["pairs_out_of_sequence"] = kinds.count("in"), kinds.count("out")
        if "instructions" in later:
            start = time.perf_counter()
            instructions = make_instructions(cfg, subset, pairs, body_model)
            seconds["instructions"] = round(time.perf_counter() - start, 2)
        if "caches" in later:
            start = time.perf_counter()
            written = write_bedlam_caches(cfg, subset, captions, pairs, instructions)
            stats["cache_files"] = [p.name for p in written]
            seconds["caches"] = round(time.perf_counter() - start, 2)
    stats["seconds"] = seconds
    write_json_atomic(cfg.split_dir / "summary.json", stats)
    return stats


def format_summary(stats: dict[str, Any]) -> str:
    """A few lines for the terminal: what was seen, what each criterion rejected, what was kept."""
    lines = [f"{stats['split']}: {stats.get('person_frames', 0)} person-frames sampled"]
    for reason, count in stats.get("rejected", {}).items():
        lines.append(f"  rejected ({reason}): {count}")
    failed = stats.get("failed_criterion", {})
    if failed:
        lines.append(
            "  failing each criterion (a person-frame may fail several): "
            + ", ".join(f"{k} {v}" for k, v in failed.items())
        )
    lines.append(f"  kept: {stats.get('kept', 0)}")
    if "size" in stats:
        lines.append(f"  farthest-point subset: {stats['size']}")
    if "pairs_in_sequence" in stats:
        pairs_in, pairs_out = stats["pairs_in_sequence"], stats["pairs_out_of_sequence"]
        lines.append(f"  pairs: {pairs_in} in-sequence, {pairs_out} out-of-sequence")
    return "\n".join(lines)
