"""`poseembroider data synth`: the synthetic script + fix datasets, in the processed BEDLAM cache format.

Per split, mirroring the original processing steps:

1. candidate pool (`pool_factor` x the requested size): smooth sequences (in-sequence pairs need them)
   and independently sampled poses, with body shapes; heading normalised (the rotation N is kept);
2. farthest-point sampling of the pool down to the requested size, on the canonical 22 joints (mean
   shape, heading removed, pelvis at the origin), MPJPE distance, starting at index 0 (original step 4);
3. one rendered scene per kept pose, cropped like the real pipeline; scenes failing the selection
   criteria (overlap, resolution, visible joints) are redrawn (original step 3's filter, per pose);
4. three captions per pose when the captioner is available (step 5);
5. pair mining among the kept poses (step 6, `pair_mining`) and three instructions per pair (step 7);
6. the caches (`cache_writers`: checked, then the caches of a split written together, atomically).

Steps 4-5 need the pool only: this process makes them while the worker processes render (step 3).
Memory stays flat as the dataset grows: the workers write each chunk as it is done and hand back their
freed heap, and the text pipelines and the skeleton run on blocks of fixed size.

Every random draw is seeded by (seed, split), (seed, split, data id) or (seed, split, step, block of
`TEXT_BLOCK` poses or pairs), so the output does not depend on the number of workers or on
interruptions: a killed run continues where it stopped (the pool, each rendered chunk and each text
table are saved in a work folder as they are done) and ends with the same dataset as an uninterrupted
run. This process and the workers use one torch thread each, so floats agree whatever the worker count.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import json
import logging
import math
import multiprocessing as mp
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from poseembroider import config
from poseembroider.atomic_io import ensure_writable_dir, exclusive_lock, write_json_atomic
from poseembroider.body.body_model import BodyModel
from poseembroider.body.model_file import locate_model_file
from poseembroider.datasets.cache_format import CacheError, load_cache, save_cache
from poseembroider.datasets.cache_writers import (
    CacheDestination,
    images_cache,
    pairs_cache,
    poses_cache,
    rawtexts_cache,
    write_caches,
)
from poseembroider.datasets.synthetic.crops import SelectionCriteria
from poseembroider.datasets.synthetic.metrics import farthest_point_sampling
from poseembroider.datasets.synthetic.pair_mining import (
    MiningParams,
    mine_in_sequence_pairs,
    mine_out_of_sequence_pairs,
)
from poseembroider.datasets.synthetic.pose_sampler import PoseSampler
from poseembroider.datasets.synthetic.scene import (
    PosedBody,
    SceneConfig,
    SceneSampler,
    create_scene_renderer,
    frame_body,
    render_sample,
)
from poseembroider.datasets.synthetic.sequences import sample_sequences
from poseembroider.datasets.synthetic.skeleton import BodySkeleton
from poseembroider.datasets.synthetic.textures import BodySurfaceMap
from poseembroider.devices import torch_threads
from poseembroider.geometry import axis_angle_to_matrix, matrix_to_axis_angle, normalize_global_orient_bedlam
from poseembroider.rendering.contact_sheet import save_image
from poseembroider.text.captioning.captions import caption_variants
from poseembroider.text.correcting.instructions import instruction_variants
from poseembroider.text.correcting.pair_statistics import posecode_categories

logger = logging.getLogger(__name__)

SPLITS = ("train", "val")
_SPLIT_SEED_OFFSET = {"train": 0, "val": 1}


@dataclass(frozen=True)
class SynthConfig:
    """What `poseembroider data synth` generates."""

    name: str
    n_train: int
    n_val: int
    seed: int = 0
    workers: int = 2
    pool_factor: float = 3.0  # candidates per kept pose, before farthest-point sampling
    sequence_share: float = 0.5  # share of the candidates that come from sequences
    frames_per_sequence: int = 30
    fps: float = 30.0
    criteria: SelectionCriteria = field(default_factory=SelectionCriteria)
    mining: MiningParams = field(default_factory=MiningParams)
    max_scene_attempts: int = 6
    chunk_size: int = 32
    jpeg_quality: int = 95
    # resolved from `config` when None, in this process: spawned workers must not re-read the settings
    synth_root: Path | None = None
    cache_dir: Path | None = None
    body_model_file: Path | None = None

    def __post_init__(self) -> None:
        if self.synth_root is None:
            object.__setattr__(self, "synth_root", Path(config.SYNTH_DATA_DIR))
        if self.cache_dir is None:
            object.__setattr__(self, "cache_dir", Path(config.DATA_CACHE_DIR))
        if not self.name or not self.name.replace("_", "").isalnum() or self.name != self.name.lower():
            raise ValueError(f"--name {self.name!r}: use lower-case letters, digits and '_'")
        for flag, value in (("--n-train", self.n_train), ("--n-val", self.n_val)):
            if value < 0:
                raise ValueError(f"{flag} must be >= 0, got {value}")
        if self.n_train + self.n_val == 0:
            raise ValueError("nothing to generate: --n-train and --n-val are both 0")
        if self.pool_factor < 1:
            raise ValueError(f"--pool-factor must be >= 1, got {self.pool_factor}")

    @property
    def script_version(self) -> str:
        return f"{self.name}_{self.criteria.name}"

    @property
    def fix_version(self) -> str:
        return f"{self.script_version}-{self.mining.version_string}"

    @property
    def script_name(self) -> str:
        return f"synthscript-{self.script_version}"

    @property
    def fix_name(self) -> str:
        return f"synthfix-{self.fix_version}"

    def size(self, split: str) -> int:
        return {"train": self.n_train, "val": self.n_val}[split]

    def split_seed(self, split: str) -> int:
        return self.seed * 1000 + _SPLIT_SEED_OFFSET[split]


# ---------------------------------------------------------------------------------------------- step 1-2


def build_pool(cfg: SynthConfig, split: str, body_model) -> dict[str, torch.Tensor]:
    """Candidate poses of a split and their farthest-point order (tensors, saved as is in the work folder).
    Keys: poses (P, 22, 3) heading-normalised y-up axis-angles; heading_rotation (P, 3) axis-angle N with
    R_normalised = N R_original; orientation (P, 3) the original global orientation; betas (P, 10);
    sequence_id, frame_index, subject_id (P,) (-1 sequence for independent poses); canonical_joints
    (P, 22, 3); selected (n,) pool indices in farthest-point order.
    """
    n = cfg.size(split)
    n_pool = max(n, math.ceil(cfg.pool_factor * n))
    seed = cfg.split_seed(split)
    n_sequences = math.ceil(cfg.sequence_share * n_pool / cfg.frames_per_sequence) if cfg.sequence_share > 0 else 0
    parts = []
    if n_sequences:
        seqs = sample_sequences(n_sequences, cfg.frames_per_sequence, cfg.fps, seed, body_model=body_model)
        s, t = seqs.poses.shape[:2]
        parts.append(
            {
                "raw": seqs.poses.reshape(s * t, 22, 3),
                "betas": seqs.betas[:, None].expand(s, t, -1).reshape(s * t, -1),
                "sequence_id": seqs.sequence_id[:, None].expand(s, t).reshape(-1),
                "frame_index": seqs.frame_index.reshape(-1),
                "subject_id": seqs.subject_id[:, None].expand(s, t).reshape(-1),
            }
        )
    n_single = max(0, n_pool - (parts[0]["raw"].shape[0] if parts else 0))
    if n_single:
        singles = PoseSampler(seed=seed + 500, body_model=body_model).sample(n_single)
        first_subject = int(parts[0]["subject_id"].max()) + 1 if parts else 0
        parts.append(
            {
                "raw": singles.poses,
                "betas": singles.betas,
                "sequence_id": torch.full((n_single,), -1, dtype=torch.long),
                "frame_index": torch.zeros(n_single, dtype=torch.long),
                "subject_id": first_subject + torch.arange(n_single),
            }
        )
    pool = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
    raw = pool.pop("raw").float()
    poses = raw.clone()
    poses[:, 0], heading = normalize_global_orient_bedlam(raw[:, 0])

    pool.update(poses=poses, orientation=raw[:, 0].clone(), heading_rotation=matrix_to_axis_angle(heading))

    joints = BodySkeleton(body_model).joints(poses)  # mean shape, joints only: no skinning needed
    pool["canonical_joints"] = joints - joints[:, :1]
    pool["selected"] = farthest_point_sampling(pool["canonical_joints"].reshape(len(poses), -1), n)
    return pool


# ---------------------------------------------------------------------------------------------- step 3


@dataclass
class _RenderTask:
    cfg: SynthConfig
    split: str
    chunk: int
    data_ids: list[int]
    poses: torch.Tensor  # (c, 22, 3) original orientation (the body as the camera sees it)
    betas: torch.Tensor  # (c, 10)


_WORKER: dict[str, Any] = {}


def _worker_init(cfg: SynthConfig) -> None:
    """Load the body model, its clothing map and an OpenGL renderer once per rendering process."""
    _WORKER["body_model_file"] = cfg.body_model_file
    _WORKER["body"] = _body_model(cfg)
    _WORKER["surface"] = BodySurfaceMap.from_body_model(_WORKER["body"])
    _WORKER["renderer"] = create_scene_renderer()


def _spawned_worker_init(cfg: SynthConfig) -> None:
    # one process per core: no thread pools inside (torch, and Mesa's llvmpipe rasteriser of OSMesa/EGL)
    torch.set_num_threads(1)
    os.environ.setdefault("LP_NUM_THREADS", "1")
    _worker_init(cfg)


def _render_chunk(task: _RenderTask) -> tuple[str, int]:
    """Render one chunk of poses, write its images and its result table (atomically)."""
    cfg = task.cfg
    if _WORKER.get("body_model_file", "") != cfg.body_model_file:
        _worker_init(cfg)
    body, renderer, surface = _WORKER["body"], _WORKER["renderer"], _WORKER["surface"]
    image_dir = image_root(cfg) / "images" / task.split
    image_dir.mkdir(parents=True, exist_ok=True)
    sampler = SceneSampler(seed=cfg.split_seed(task.split), config=SceneConfig(criteria=cfg.criteria))
    with torch.no_grad():
        out = body(task.poses, betas=task.betas)
    samples = []
    attempts = []
    for k, data_id in enumerate(task.data_ids):
        posed = PosedBody(out.vertices[k], out.joints[k], body.faces, task.poses[k, 0])
        for attempt in range(cfg.max_scene_attempts):  # the criteria are known before rendering
            params = sampler.sample(posed.vertices, posed.joints, index=data_id * cfg.max_scene_attempts + attempt)
            framing = frame_body(posed, params, cfg.criteria)
            if framing.criteria["selected"]:
                break
        sample = render_sample(renderer, posed, params, surface, criteria=cfg.criteria, framing=framing)
        _save_jpeg(sample.image, image_root(cfg) / _image_path(task.split, data_id), cfg.jpeg_quality)
        samples.append(sample)
        attempts.append(attempt + 1)
    save_cache(_chunk_table(task.data_ids, samples, attempts), _chunk_path(cfg, task.split, task.chunk))
    _release_free_memory()
    return task.split, task.chunk


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's `malloc_trim`, or None on other C libraries."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def _release_free_memory() -> None:
    """Give the heap's free pages back to the system after a chunk.
    Without it a rendering process grows by ~60 KB per image (freed but fragmented heap memory that
    glibc keeps), so peak memory would grow with the dataset size; with it the workers stay flat.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def _image_path(split: str, data_id: int) -> str:
    return f"images/{split}/{data_id:07d}.jpg"


def _chunk_table(data_ids: list[int], samples: list, attempts: list[int]) -> dict[str, Any]:
    """The results of a rendered chunk of c samples (`RenderedSample`s) as a dozen stacked tensors
    rather than c dicts of small tensors (fewer objects to pickle in the worker and to load in the
    main process). `_chunk_results` reads it back."""

    def stack(field: str, dtype: torch.dtype) -> torch.Tensor:
        return torch.as_tensor(np.stack([getattr(sample, field) for sample in samples]), dtype=dtype)

    return {
        "data_ids": torch.tensor(data_ids),
        "image_hw": torch.tensor([sample.image.shape[:2] for sample in samples]),
        "frame_bbox": stack("bbox", torch.float64),
        "cam_rot": stack("cam_rot", torch.float32),
        "transl": stack("cam_transl", torch.float32),
        "in_frame": stack("in_frame", torch.bool),
        "unoccluded": stack("unoccluded", torch.bool),
        "visible": stack("visible", torch.bool),
        "joints_2d": stack("joints_2d", torch.float32),
        "criteria_values": [dict(sample.criteria) for sample in samples],
        "scene_attempts": torch.tensor(attempts),
    }


_PER_SAMPLE_TENSORS = ("cam_rot", "transl", "in_frame", "unoccluded", "visible", "joints_2d")


def _chunk_results(table: dict[str, Any], split: str) -> dict[int, dict[str, Any]]:
    """{data id: its results} of a `_chunk_table` (each tensor its own copy, not a view of the chunk's)."""
    results = {}
    for k, data_id in enumerate(table["data_ids"].tolist()):
        height, width = table["image_hw"][k].tolist()
        results[data_id] = {
            "image": _image_path(split, data_id),
            "bbox": [0.0, 0.0, float(width), float(height)],
            "frame_bbox": table["frame_bbox"][k].tolist(),
            **{key: table[key][k].clone() for key in _PER_SAMPLE_TENSORS},
            "criteria_values": table["criteria_values"][k],
            "scene_attempts": int(table["scene_attempts"][k]),
        }
    return results


def _save_jpeg(image: np.ndarray, path: Path, quality: int) -> None:
    save_image(image, path, quality=quality)


def _body_model(cfg: SynthConfig):

    return BodyModel() if cfg.body_model_file is None else BodyModel.from_directory(cfg.body_model_file)


def image_root(cfg: SynthConfig) -> Path:
    assert cfg.synth_root is not None
    return cfg.synth_root / cfg.script_name


def work_dir(cfg: SynthConfig, split: str) -> Path:
    return image_root(cfg) / "work" / split


def _chunk_path(cfg: SynthConfig, split: str, chunk: int) -> Path:
    return work_dir(cfg, split) / f"render_chunk_{chunk:05d}.pt"


class RenderWorkers:
    """The rendering processes (each with its body model, surface map and OpenGL renderer), started once
    for every split; `workers <= 1` renders in this process."""

    def __init__(self, cfg: SynthConfig):
        self.cfg = cfg
        self._pool = None

    def start(self) -> None:
        """Start the processes now: their set-up (imports, body model, OpenGL) overlaps this process's."""
        if self.cfg.workers > 1 and self._pool is None:
            self._pool = mp.get_context("spawn").Pool(
                self.cfg.workers, initializer=_spawned_worker_init, initargs=(self.cfg,)
            )

    def map(self, tasks: list[_RenderTask]):
        if self.cfg.workers <= 1:
            return map(_render_chunk, tasks)
        self.start()
        assert self._pool is not None
        return self._pool.imap_unordered(_render_chunk, tasks)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool.join()
            self._pool = None

    def __enter__(self) -> RenderWorkers:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._pool is not None and exc_info[0] is not None:
            self._pool.terminate()
            self._pool = None
        self.close()


def render_split(
    cfg: SynthConfig,
    split: str,
    pool: dict[str, torch.Tensor],
    workers: RenderWorkers,
    meanwhile: Callable[[], Any] = lambda: None,
    stop_after_chunks: int | None = None,
) -> tuple[dict[int, dict[str, Any]], Any]:
    """Render every kept pose of a split (parallel, resumable) while this process runs `meanwhile()`;
    returns (the per-id results, what `meanwhile` returned).

    The text stages need the pool only, so they run here while the workers render instead of after
    them. `stop_after_chunks` interrupts the run after that many new chunks (tests of the resume path).
    """
    selected = pool["selected"].tolist()
    chunks = [selected[i : i + cfg.chunk_size] for i in range(0, len(selected), cfg.chunk_size)]
    todo = [
        _RenderTask(cfg, split, k, ids, pool["poses_original"][ids], pool["betas"][ids])
        for k, ids in enumerate(chunks)
        if not _chunk_path(cfg, split, k).exists()
    ]
    if stop_after_chunks is not None:
        todo = todo[:stop_after_chunks]
    rendering = workers.map(todo)  # worker processes start on the chunks now; in-process rendering is lazy
    side_result = meanwhile()
    if todo:
        with tqdm(total=len(chunks), initial=len(chunks) - len(todo), desc=f"rendering {split}", unit="chunk") as bar:
            for _ in rendering:
                bar.update()
    missing = [k for k in range(len(chunks)) if not _chunk_path(cfg, split, k).exists()]
    if missing:
        raise InterruptedError(f"rendering of {split} stopped with {len(missing)} chunks left: run again to resume")
    results: dict[int, dict[str, Any]] = {}
    for k in range(len(chunks)):
        results.update(_chunk_results(load_cache(_chunk_path(cfg, split, k)), split))
    return results, side_result


# ---------------------------------------------------------------------------------------------- step 4-6


TextHook = Callable[..., Any]


def _work_value(table: dict[str, Any], path: Path) -> Any:
    if "value" not in table:
        raise CacheError(f"{path}: not a work table of `data synth` (no 'value'; has {sorted(map(str, table))})")
    return table["value"]


def _cached(path: Path, compute: Callable[[], Any]) -> Any:
    """Load a work-folder table, or compute and save it (atomically) first."""
    if path.exists():
        return _work_value(load_cache(path), path)
    value = compute()
    save_cache({"value": value}, path)
    return value


def pose_features(canonical_joints: torch.Tensor) -> torch.Tensor:
    """(N, 22, 3) canonical joints -> (N, 66) L2-normalised, mean-removed features for pair similarity.
    Stand-in for the original's PoseText pose features (not trained yet when the data is made): cosine
    similarity of the joint layouts after removing the dataset's mean layout.
    """
    flat = canonical_joints.reshape(len(canonical_joints), -1)
    return torch.nn.functional.normalize(flat - flat.mean(dim=0, keepdim=True), dim=-1)


def mine_pairs(cfg: SynthConfig, split: str, pool: dict[str, torch.Tensor], codes: torch.Tensor) -> dict[str, Any]:
    """Pairs among the kept poses of a split: {pair_2_dataid, sequence_info}, pair ids in mining order."""
    selected = pool["selected"]
    seq = pool["sequence_id"][selected].numpy()
    times = pool["frame_index"][selected].numpy() / cfg.fps
    rng = np.random.default_rng([cfg.split_seed(split), 6])
    in_pairs = mine_in_sequence_pairs(seq, times, codes, cfg.mining)
    features = pose_features(pool["canonical_joints"][selected])
    out_pairs = mine_out_of_sequence_pairs(seq, features, codes, cfg.mining, rng)
    ids = selected.tolist()
    pair_2_dataid, sequence_info = {}, {}
    for kind, pairs in (("in", in_pairs), ("out", out_pairs)):
        for a, b in pairs:
            pair_id = len(pair_2_dataid)
            pair_2_dataid[pair_id] = [ids[a], ids[b]]
            sequence_info[pair_id] = kind
    return {"pair_2_dataid": pair_2_dataid, "sequence_info": sequence_info}


# ---------------------------------------------------------------------------------------------- caches


def _script_criteria(cfg: SynthConfig) -> dict[str, Any]:
    """The `criteria` of the single-element caches: the selection criteria and how the data was made."""
    return {
        **cfg.criteria.as_dict(),
        "generator": "poseembroider data synth",
        "seed": cfg.seed,
        "pool_factor": cfg.pool_factor,
        "name": cfg.name,
    }


def _fix_criteria(cfg: SynthConfig) -> dict[str, Any]:
    """The `criteria` of the pair caches: the selection criteria, the mining settings and how pairs were made."""
    return {
        **cfg.criteria.as_dict(),
        **asdict(cfg.mining),
        "generator": "poseembroider data synth",
        "seed": cfg.seed,
        "name": cfg.name,
        "pose_features": "mean-removed canonical joints (PoseText stand-in)",
    }


def write_script_caches(
    cfg: SynthConfig,
    split: str,
    pool: dict[str, torch.Tensor],
    rendered: dict[int, dict[str, Any]],
    captions: dict[int, list[str]],
) -> list[Path]:
    """The images, poses and rawtexts caches of a split of the script dataset
    (`cache_writers`: checked, written together or not at all); returns their paths."""
    ids = pool["selected"].tolist()
    criteria = _script_criteria(cfg)
    caches = [
        images_cache(
            criteria,
            images={i: rendered[i]["image"] for i in ids},
            bboxes={i: rendered[i]["bbox"] for i in ids},
            full_human_visibility={i: bool(rendered[i]["in_frame"].all()) for i in ids},
            camera_transformation={i: (rendered[i]["cam_rot"], rendered[i]["transl"]) for i in ids},
            frame_bboxes={i: rendered[i]["frame_bbox"] for i in ids},
            joints_in_frame={i: rendered[i]["in_frame"] for i in ids},
            joints_unoccluded={i: rendered[i]["unoccluded"] for i in ids},
            joints_visible={i: rendered[i]["visible"] for i in ids},
            joints_2d={i: rendered[i]["joints_2d"] for i in ids},
        ),
        poses_cache(
            criteria,
            poses={i: pool["poses"][i] for i in ids},  # body only: stored with zero hands
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
    ]
    caches.append(rawtexts_cache(criteria, {i: captions[i] for i in ids}))
    destination = CacheDestination(cfg.cache_dir, "synthscript", cfg.script_version, split, cfg.size(split))
    return write_caches(destination, caches)


def write_fix_caches(
    cfg: SynthConfig, split: str, pairs: dict[str, Any], instructions: dict[int, list[str]] | None
) -> list[Path]:
    """The pairs and (with instructions) rawtexts caches of a split of the fix dataset; returns their paths."""
    criteria = _fix_criteria(cfg)
    caches = [pairs_cache(criteria, pairs["pair_2_dataid"], pairs["sequence_info"])]
    if instructions is not None:
        caches.append(rawtexts_cache(criteria, instructions))
    # named after the size of the single-element split, as the original names its fix caches
    destination = CacheDestination(cfg.cache_dir, "synthfix", cfg.fix_version, split, cfg.size(split))
    return write_caches(destination, caches)


# ---------------------------------------------------------------------------------------------- driver


def _yaw_change_deg(heading_a: torch.Tensor, heading_b: torch.Tensor) -> torch.Tensor:
    """Heading change (degrees, about the vertical) from A to B given their normalising rotations N."""
    relative = axis_angle_to_matrix(heading_a) @ axis_angle_to_matrix(heading_b).transpose(-1, -2)
    return torch.rad2deg(matrix_to_axis_angle(relative)[..., 1])


_RUN_SETTINGS_EXCLUDED = ("workers", "synth_root", "cache_dir", "body_model_file")


def check_work_dir(cfg: SynthConfig, split: str) -> None:
    """Refuse to resume a work folder made with other settings (its partial results would mix in)."""
    settings = {k: v for k, v in asdict(cfg).items() if k not in _RUN_SETTINGS_EXCLUDED}
    settings = json.loads(json.dumps(settings, default=str))
    path = work_dir(cfg, split) / "settings.json"
    if path.exists():
        previous = json.loads(path.read_text())
        if previous != settings:
            changed = sorted(k for k in settings.keys() | previous.keys() if settings.get(k) != previous.get(k))
            raise ValueError(
                f"{path.parent} holds a run of '{cfg.name}' made with other settings ({', '.join(changed)}): "
                "choose another --name or delete that folder to start again"
            )
        return
    write_json_atomic(path, settings)


@dataclass
class _Texts:
    """The text stages of a split: captions per data id, mined pairs, instructions per pair id."""

    captions: dict[int, list[str]]
    pairs: dict[str, Any]
    instructions: dict[int, list[str]] | None
    seconds: float


TEXT_BLOCK = 512
"""Poses (or pairs) per call of the text pipelines: their working memory stays the same for any N."""


def _in_blocks(make: Callable[[int, slice], list], count: int) -> list:
    """Concatenation of `make(block index, rows)` over consecutive `TEXT_BLOCK` row slices of `count` rows."""
    out: list = []
    for block, start in enumerate(range(0, count, TEXT_BLOCK)):
        out += make(block, slice(start, start + TEXT_BLOCK))
    return out


def _block_seed(cfg: SynthConfig, split: str, stage: int, block: int) -> int:
    """Seed of one block of a text stage (`stage`: the step number), independent of the others."""
    return int(np.random.SeedSequence([cfg.split_seed(split), stage, block]).generate_state(1)[0])


def text_stages(cfg: SynthConfig, split: str, pool: dict[str, torch.Tensor], body_model) -> _Texts:
    """Captions (step 4), pair mining and instructions (step 5) of a split, each cached in the work folder."""
    work = work_dir(cfg, split)
    start = time.perf_counter()
    selected = pool["selected"]
    ids = selected.tolist()
    kept_poses = pool["poses"][selected]

    def make_captions() -> list[list[str]]:
        return _in_blocks(
            lambda block, rows: caption_variants(kept_poses[rows], body_model, seed=_block_seed(cfg, split, 4, block)),
            len(ids),
        )

    def make_codes() -> torch.Tensor:
        return torch.cat(_in_blocks(lambda _, rows: [posecode_categories(kept_poses[rows], body_model)], len(ids)))

    captions = dict(zip(ids, _cached(work / "captions.pt", make_captions), strict=True))
    codes = _cached(work / "posecode_categories.pt", make_codes)
    pairs = _cached(work / "pairs.pt", lambda: mine_pairs(cfg, split, pool, codes))
    instructions = None
    if pairs["pair_2_dataid"]:
        pair_ids = list(pairs["pair_2_dataid"])
        a = torch.tensor([pairs["pair_2_dataid"][p][0] for p in pair_ids])
        b = torch.tensor([pairs["pair_2_dataid"][p][1] for p in pair_ids])
        in_sequence = torch.tensor([pairs["sequence_info"][p] == "in" for p in pair_ids])
        yaw = torch.where(
            in_sequence,
            _yaw_change_deg(pool["heading_rotation"][a], pool["heading_rotation"][b]),
            torch.full((len(pair_ids),), float("nan")),
        )

        def make_instructions() -> list[list[str]]:
            return _in_blocks(
                lambda block, rows: instruction_variants(
                    pool["poses"][a[rows]],
                    pool["poses"][b[rows]],
                    body_model,
                    seed=_block_seed(cfg, split, 7, block),
                    rotation_change_deg=yaw[rows],
                ),
                len(pair_ids),
            )

        instructions = dict(zip(pair_ids, _cached(work / "instructions.pt", make_instructions), strict=True))
    return _Texts(captions, pairs, instructions, time.perf_counter() - start)


def generate_split(
    cfg: SynthConfig, split: str, body_model, workers: RenderWorkers, stop_after_chunks: int | None = None
) -> dict[str, Any]:
    """Generate one split of the script and fix datasets; returns its statistics."""
    check_work_dir(cfg, split)
    start = time.perf_counter()
    pool = _cached(work_dir(cfg, split) / "pool.pt", lambda: build_pool(cfg, split, body_model))
    pool["poses_original"] = pool["poses"].clone()
    pool["poses_original"][:, 0] = pool["orientation"]
    pool_seconds = time.perf_counter() - start

    start = time.perf_counter()
    rendered, texts = render_split(
        cfg, split, pool, workers, lambda: text_stages(cfg, split, pool, body_model), stop_after_chunks
    )
    render_seconds = time.perf_counter() - start

    paths = write_script_caches(cfg, split, pool, rendered, texts.captions)
    paths += write_fix_caches(cfg, split, texts.pairs, texts.instructions)
    ids = pool["selected"].tolist()
    kinds = list(texts.pairs["sequence_info"].values())
    attempts = [rendered[i]["scene_attempts"] for i in ids]
    return {
        "size": len(ids),
        "pool_size": int(len(pool["poses"])),
        "pairs_in_sequence": kinds.count("in"),
        "pairs_out_of_sequence": kinds.count("out"),
        "captions": True,
        "instructions": texts.instructions is not None,
        "selected_by_criteria": float(np.mean([rendered[i]["criteria_values"]["selected"] for i in ids])),
        "full_human_visibility": float(np.mean([bool(rendered[i]["in_frame"].all()) for i in ids])),
        "mean_scene_attempts": float(np.mean(attempts)),
        "seconds": {  # the texts are made while the workers render: "render" includes them
            "pool": round(pool_seconds, 2),
            "render": round(render_seconds, 2),
            "texts": round(texts.seconds, 2),
        },
        "cache_files": [p.name for p in paths],
    }


def generate_synth(cfg: SynthConfig, stop_after_chunks: int | None = None) -> dict[str, Any]:
    """Generate every split; returns {dataset names, per-split statistics, samples/s}.

    One process generates a dataset at a time (`exclusive_lock` on its image folder): a second one with the
    same `--name` waits for it, then finds every chunk done and writes the same caches again."""
    # both output folders are checked before any pose is sampled or image rendered (FolderNotWritableError)
    ensure_writable_dir(cfg.cache_dir, "dataset cache folder (DATA_CACHE_DIR)")
    ensure_writable_dir(image_root(cfg), "synthetic image folder (SYNTH_DATA_DIR)")
    with exclusive_lock(image_root(cfg), "synthetic dataset", wait=True):
        return _generate_synth(cfg, stop_after_chunks)


def _generate_synth(cfg: SynthConfig, stop_after_chunks: int | None) -> dict[str, Any]:
    if cfg.body_model_file is None:  # pin the model file so that the workers use the same one
        cfg = replace(cfg, body_model_file=locate_model_file().path)
    start = time.perf_counter()
    # one torch thread, as in the workers: the same float results whatever the worker count, and no
    # spinning OpenMP threads taking the cores from the workers while the texts are made
    with RenderWorkers(cfg) as workers, torch_threads(1):
        workers.start()  # their set-up overlaps the loading of the body model and the pool sampling here
        body_model = _body_model(cfg).eval()
        splits = {
            split: generate_split(cfg, split, body_model, workers, stop_after_chunks)
            for split in SPLITS
            if cfg.size(split)
        }
    seconds = time.perf_counter() - start
    total = sum(s["size"] for s in splits.values())
    return {
        "script_dataset": cfg.script_name,
        "fix_dataset": cfg.fix_name,
        "image_root": str(image_root(cfg)),
        "cache_dir": str(cfg.cache_dir),
        "splits": splits,
        "seconds": round(seconds, 2),
        "samples_per_s": round(total / seconds, 2),
    }
