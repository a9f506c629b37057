"""`poseembroider data import-amass`: AMASS-style motions -> a pose source and fix pairs from real motions.

From every motion file under `--amass-root` (SMPL+H or SMPL-X `.npz`, any folder depth; `motion_files`):

1. frames are taken at `fps` (the nearest source frame every 1 / fps seconds; all frames when the motion is
   slower); each motion is one sequence, its subject the folder above it;
2. each global orientation is normalised as PoseScript / PoseFix poses are (z-up, z Euler angle zeroed;
   `heading_rotation` kept), the 52 body + hand joints stored;
3. sequences are dealt to train / val by a hash of their path (`val_share`; stable when files are added; at
   least one val sequence when there are two or more);
4. every pose gets three captions from our captioner (`caption_variants`, in blocks with their own seeds);
5. pairs are mined per split with the synthetic world's miner (`synthetic.pair_mining`, the constraints of
   the dataset name: > 15 / > 20 differing posecodes, B at most 0.5 s after A, pose similarity window):
   in-sequence pairs within windows of `segment_frames` frames (memory O(segment^2), whatever the motion
   length: a pair across a window border is lost, one per border at most), out-of-sequence pairs between
   different motions (row-chunked, bounded memory; O(N^2) time: `in_sequence_only` for very large imports);
   similarity = cosine of mean-removed canonical joints (the synthetic world's PoseText stand-in);
6. three instructions per pair from our instruction writer (in-sequence pairs say the whole-body turn from
   the two frames' orientations).

Outputs (`cache_writers`, all or nothing per split): `amassposes-<name>` (poses, rawtexts; `sequence_info`
{sequence, frame_index (source frame), subject, fps}) and `amasspairs-<name>-<mining version>` (pairs,
rawtexts). Data ids run over (sorted files, kept frames) across both splits.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from poseembroider import config
from poseembroider.datasets.cache_writers import (
    CacheDestination,
    pairs_cache,
    poses_cache,
    rawtexts_cache,
    write_caches,
)
from poseembroider.datasets.process_amass.motion_files import AmassMotion, read_motion_file
from poseembroider.datasets.process_posefix.build import normalize_amass_poses
from poseembroider.datasets.synthetic.pair_mining import (
    MiningParams,
    mine_in_sequence_pairs,
    mine_out_of_sequence_pairs,
)
from poseembroider.devices import torch_threads
from poseembroider.geometry import z_up_to_y_up

__all__ = ["AmassImportConfig", "discover_motion_files", "import_amass"]

POSES_FAMILY = "amassposes"
PAIRS_FAMILY = "amasspairs"
GENERATOR = "poseembroider data import-amass"
TEXT_BLOCK = 512
SPLITS = ("train", "val")


@dataclass(frozen=True)
class AmassImportConfig:
    """What `import_amass` makes (module docstring).

    Args:
        amass_root: folder searched recursively for `.npz` motion files.
        name: dataset name part (lower-case letters, digits, '_').
        fps: frames kept per second of motion.
        val_share: share of the sequences in the val split.
        pairs: also mine pairs and write instructions (`amasspairs-...`).
        in_sequence_only: no out-of-sequence pairs (their mining is O(N^2) in time).
        segment_frames: in-sequence mining window (frames).
        seed: seeds the text writers and the out-of-sequence draws.
    """

    amass_root: Path
    name: str
    fps: float = 10.0
    val_share: float = 0.1
    pairs: bool = True
    in_sequence_only: bool = False
    segment_frames: int = 600
    seed: int = 0
    mining: MiningParams = field(default_factory=MiningParams)
    cache_dir: Path | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z0-9_]+", self.name):
            raise ValueError(f"--name {self.name!r}: use lower-case letters, digits and '_'")
        if not (math.isfinite(self.fps) and self.fps > 0):
            raise ValueError(f"--fps must be a positive frame rate, got {self.fps}")
        if not 0.0 <= self.val_share < 1.0:
            raise ValueError(f"--val-share must be in [0, 1), got {self.val_share}")
        if self.segment_frames < 2:
            raise ValueError(f"segment_frames must be >= 2, got {self.segment_frames}")
        if self.cache_dir is None:
            object.__setattr__(self, "cache_dir", Path(config.DATA_CACHE_DIR))

    @property
    def poses_name(self) -> str:
        return f"{POSES_FAMILY}-{self.name}"

    @property
    def pairs_version(self) -> str:
        return f"{self.name}-{self.mining.version_string}"

    @property
    def pairs_name(self) -> str:
        return f"{PAIRS_FAMILY}-{self.pairs_version}"

    def criteria(self) -> dict[str, Any]:
        return {
            "generator": GENERATOR,
            "name": self.name,
            "fps": self.fps,
            "val_share": self.val_share,
            "seed": self.seed,
            "pose_frame": "z-up AMASS frame, global orientation with its z Euler angle zeroed",
            "shapes": "the motion files' betas (first 10; SMPL+H betas are not SMPL-X betas)",
        }


def discover_motion_files(root: Path) -> list[Path]:
    """Every `.npz` under `root`, sorted by relative path."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"--amass-root {root}: no such folder")
    return sorted(root.rglob("*.npz"), key=lambda p: p.relative_to(root).as_posix())


def _frame_indices(motion: AmassMotion, fps: float) -> np.ndarray:
    """Source frames kept at `fps`: the nearest frame every 1 / fps seconds (all frames if the motion is slower)."""
    if motion.fps <= fps:
        return np.arange(motion.num_frames)
    times = np.arange(0.0, motion.num_frames / motion.fps, 1.0 / fps)
    return np.unique(np.minimum(np.round(times * motion.fps).astype(np.int64), motion.num_frames - 1))


def _val_sequences(paths: list[str], share: float) -> set[str]:
    if share <= 0 or len(paths) < 2:
        return set()
    scores = {p: int(hashlib.sha1(p.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF for p in paths}
    chosen = {p for p, s in scores.items() if s < share}
    if not chosen:
        chosen = {min(scores, key=scores.get)}
    if len(chosen) == len(paths):
        chosen.discard(max(chosen, key=scores.get))
    return chosen


def _read_motions(cfg: AmassImportConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """Poses and per-pose tables of every kept frame (module docstring, steps 1-3), and read statistics."""
    root = Path(cfg.amass_root)
    files = discover_motion_files(root)
    parts: dict[str, list] = {k: [] for k in ("poses", "betas", "sequence", "frame", "time")}
    sequences, subjects, skipped, source_frames = [], [], [], 0
    for path in tqdm(files, desc="motion files", unit="file", disable=not cfg.progress):
        motion = read_motion_file(path)
        rel = path.relative_to(root).as_posix()
        if motion is None:
            skipped.append(rel)
            continue
        frames = _frame_indices(motion, cfg.fps)
        source_frames += motion.num_frames
        parts["poses"].append(torch.from_numpy(motion.poses[frames]))
        betas = np.zeros(10, np.float32)
        betas[: min(10, motion.betas.size)] = motion.betas[:10]
        parts["betas"].append(torch.from_numpy(betas).expand(len(frames), -1))
        parts["sequence"].append(torch.full((len(frames),), len(sequences), dtype=torch.long))
        parts["frame"].append(torch.from_numpy(frames))
        parts["time"].append(torch.from_numpy(frames / motion.fps))
        sequences.append(rel)
        subjects.append(Path(rel).parent.as_posix())
    if not sequences:
        raise ValueError(f"--amass-root {root}: no motion file (an .npz with 'poses') among {len(files)} .npz files")
    table = {k: torch.cat(v) for k, v in parts.items()}
    raw = table.pop("poses").float()
    table["poses"], table["heading_rotation"] = normalize_amass_poses(raw)
    table["orientation_y_up"] = z_up_to_y_up(raw[:, 0].double()).float()  # for the whole-body turn of pairs
    val = _val_sequences(sequences, cfg.val_share)
    table["split"] = torch.tensor([sequences[s] in val for s in table["sequence"].tolist()])
    stats = {
        "files": len(files),
        "skipped_without_poses": len(skipped),
        "sequences": len(sequences),
        "source_frames": source_frames,
        "poses": len(raw),
    }
    return {"table": table, "sequences": sequences, "subjects": subjects}, stats


def _y_up(poses: torch.Tensor) -> torch.Tensor:
    """(N, J, 3) stored z-up poses -> the y-up frame the captioner and the miner read (heading kept removed)."""
    out = poses[:, :22].clone()
    out[:, 0] = z_up_to_y_up(out[:, 0])
    return out


def _seed(cfg: AmassImportConfig, *parts: int) -> int:
    return int(np.random.SeedSequence([cfg.seed, *parts]).generate_state(1)[0])


def _captions(cfg: AmassImportConfig, poses_y: torch.Tensor, body_model, stage: int) -> list[list[str]]:
    from poseembroider.text.captioning.captions import caption_variants

    out: list[list[str]] = []
    for block, start in enumerate(range(0, len(poses_y), TEXT_BLOCK)):
        out += caption_variants(poses_y[start : start + TEXT_BLOCK], body_model, seed=_seed(cfg, stage, block))
    return out


def _mine(cfg: AmassImportConfig, table: dict[str, torch.Tensor], rows: torch.Tensor, body_model) -> list[tuple]:
    """(local A, local B, kind) pairs among `rows` of the table."""
    from poseembroider.datasets.synthetic.generate import pose_features
    from poseembroider.datasets.synthetic.skeleton import BodySkeleton
    from poseembroider.text.correcting.pair_statistics import posecode_categories

    poses_y = _y_up(table["poses"][rows])
    codes = torch.cat([posecode_categories(poses_y[s : s + 4096], body_model) for s in range(0, len(rows), 4096)])
    sequence = table["sequence"][rows].numpy()  # rows are sorted: each sequence is one run
    starts = np.r_[0, np.flatnonzero(np.diff(sequence)) + 1]
    position = np.arange(len(sequence)) - np.repeat(starts, np.diff(np.r_[starts, len(sequence)]))
    segment = sequence * 1_000_000 + position // cfg.segment_frames  # windows of kept frames
    pairs = [(a, b, "in") for a, b in mine_in_sequence_pairs(segment, table["time"][rows].numpy(), codes, cfg.mining)]
    if not cfg.in_sequence_only and len(rows) > 1:
        joints = BodySkeleton(body_model).joints(poses_y)
        features = pose_features(joints - joints[:, :1])
        rng = np.random.default_rng([cfg.seed, 6])
        pairs += [(a, b, "out") for a, b in mine_out_of_sequence_pairs(sequence, features, codes, cfg.mining, rng)]
    return pairs


def _instructions(cfg: AmassImportConfig, table, pairs: list[tuple], body_model, stage: int) -> list[list[str]]:
    from poseembroider.text.correcting.instructions import instruction_variants
    from poseembroider.text.correcting.paircodes import rotation_change_from_orientations

    if not pairs:
        return []
    a = torch.tensor([p[0] for p in pairs])
    b = torch.tensor([p[1] for p in pairs])
    in_sequence = torch.tensor([p[2] == "in" for p in pairs])
    turn = rotation_change_from_orientations(table["orientation_y_up"][a], table["orientation_y_up"][b])
    turn = torch.where(in_sequence, turn, torch.full_like(turn, float("nan")))
    poses_a, poses_b = _y_up(table["poses"][a]), _y_up(table["poses"][b])
    out: list[list[str]] = []
    for block, start in enumerate(range(0, len(pairs), TEXT_BLOCK)):
        rows = slice(start, start + TEXT_BLOCK)
        out += instruction_variants(
            poses_a[rows], poses_b[rows], body_model, seed=_seed(cfg, stage, block), rotation_change_deg=turn[rows]
        )
    return out


def import_amass(cfg: AmassImportConfig, body_model=None) -> dict[str, Any]:
    """Import the motions of `cfg.amass_root` (module docstring); returns counts and timings per stage."""
    from poseembroider.body.body_model import BodyModel

    seconds: dict[str, float] = {}
    start = time.perf_counter()
    motions, stats = _read_motions(cfg)
    seconds["read_and_normalise"] = round(time.perf_counter() - start, 3)
    table, sequences, subjects = motions["table"], motions["sequences"], motions["subjects"]
    criteria = {**cfg.criteria(), **stats}
    splits: dict[str, Any] = {}
    with torch_threads(1):  # the same floats whatever the machine's thread count
        body_model = BodyModel().eval() if body_model is None else body_model
        for split_index, split in enumerate(SPLITS):
            rows = torch.nonzero(table["split"] == (split == "val")).flatten()
            if len(rows) == 0:
                continue
            ids = rows.tolist()  # data ids: rows of the whole table (unique across splits)
            t = time.perf_counter()
            captions = _captions(cfg, _y_up(table["poses"][rows]), body_model, stage=10 + split_index)
            seconds[f"captions_{split}"] = round(time.perf_counter() - t, 3)
            info = {
                i: {
                    "sequence": sequences[int(table["sequence"][i])],
                    "frame_index": int(table["frame"][i]),
                    "subject": subjects[int(table["sequence"][i])],
                    "fps": cfg.fps,
                }
                for i in ids
            }
            caches = [
                poses_cache(
                    criteria,
                    poses={i: table["poses"][i] for i in ids},
                    shapes={i: table["betas"][i] for i in ids},
                    heading_rotation={i: table["heading_rotation"][i] for i in ids},
                    sequence_info=info,
                ),
                rawtexts_cache(criteria, dict(zip(ids, captions, strict=True))),
            ]
            write_caches(CacheDestination(Path(cfg.cache_dir), POSES_FAMILY, cfg.name, split), caches)
            split_stats: dict[str, Any] = {"poses": len(ids), "sequences": len(set(table["sequence"][rows].tolist()))}
            if cfg.pairs:
                t = time.perf_counter()
                local = _mine(cfg, table, rows, body_model)
                seconds[f"pair_mining_{split}"] = round(time.perf_counter() - t, 3)
                pairs = [(ids[a], ids[b], kind) for a, b, kind in local]
                t = time.perf_counter()
                texts = _instructions(cfg, table, pairs, body_model, stage=20 + split_index)
                seconds[f"instructions_{split}"] = round(time.perf_counter() - t, 3)
                pair_criteria = {**criteria, **{k: list(v) if isinstance(v, tuple) else v
                                                for k, v in cfg.mining.__dict__.items()},
                                 "pose_features": "mean-removed canonical joints (PoseText stand-in)",
                                 "segment_frames": cfg.segment_frames}  # fmt: skip
                pair_caches = [
                    pairs_cache(
                        pair_criteria,
                        {p: [a, b] for p, (a, b, _) in enumerate(pairs)},
                        {p: kind for p, (_, _, kind) in enumerate(pairs)},
                    ),
                    rawtexts_cache(pair_criteria, dict(enumerate(texts))),
                ]
                write_caches(CacheDestination(Path(cfg.cache_dir), PAIRS_FAMILY, cfg.pairs_version, split), pair_caches)
                split_stats["pairs_in_sequence"] = sum(k == "in" for *_, k in pairs)
                split_stats["pairs_out_of_sequence"] = sum(k == "out" for *_, k in pairs)
            splits[split] = split_stats
    seconds["total"] = round(time.perf_counter() - start, 3)
    return {
        "poses_dataset": cfg.poses_name,
        "pairs_dataset": cfg.pairs_name if cfg.pairs else None,
        **stats,
        "splits": splits,
        "seconds": seconds,
        "poses_read_per_s": round(stats["poses"] / max(seconds["read_and_normalise"], 1e-9), 1),
        "cache_dir": str(cfg.cache_dir),
    }
