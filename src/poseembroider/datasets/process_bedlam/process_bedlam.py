"""Build BEDLAM-Script and BEDLAM-Fix caches from a BEDLAM release (the original's `do.sh`, steps 1-7).

    poseembroider data process-bedlam --bedlam-root /data/bedlam --split train --workers 16
    python -m poseembroider.datasets.process_bedlam.process_bedlam --bedlam-root /data/bedlam --split val
    torchrun --nproc_per_node 4 -m poseembroider.datasets.process_bedlam.process_bedlam --bedlam-root ... --split train

A killed run continues where it stopped when started again with the same flags. The library is
`datasets/process_bedlam/pipeline.py`; this script parses flags, joins torchrun's process group and prints.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from poseembroider.assisting_models.poseText.model_poseText import PoseText
from poseembroider.config import finite_float, non_negative_int, positive_int, seed_int
from poseembroider.datasets.process_bedlam.layout import BedlamInputError
from poseembroider.datasets.process_bedlam.pipeline import (
    STEPS,
    BedlamConfig,
    PoseFeatures,
    format_summary,
    process_bedlam,
)
from poseembroider.datasets.synthetic.crops import SelectionCriteria
from poseembroider.datasets.synthetic.pair_mining import MiningParams
from poseembroider.models.pretrained import CheckpointError, load_pretrained, resolve_model_dir
from poseembroider.training.distributed import destroy_distributed, init_distributed


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="poseembroider data process-bedlam", description=__doc__.splitlines()[0])
    p.add_argument("--bedlam-root", type=Path, required=True, help="the release: images/, smplx_gt/ (BEDLAM layout)")
    p.add_argument("--split", required=True, choices=["train", "val"])
    p.add_argument("--workers", type=positive_int, default=1, help="processes for step 'people' (per torchrun rank)")
    p.add_argument("--steps", nargs="+", default=list(STEPS), choices=list(STEPS), help="steps to run (default all)")
    p.add_argument(
        "--fps-size", type=positive_int, default=None, help="farthest-point subset size (50000 train, 10000 val)"
    )
    p.add_argument("--sample-fps", type=positive_int, default=6, choices=[6, 30], help="frames per second processed")
    p.add_argument("--seed", type=seed_int, default=0, help="seed of the captions, pairs and instructions")
    p.add_argument("--images-dir", type=Path, default=None, help="scene folders (default BEDLAM_ROOT/images)")
    p.add_argument("--motion-dir", type=Path, default=None, help="motion files (default BEDLAM_ROOT/smplx_gt/...)")
    p.add_argument("--scene-table", type=Path, default=None, help="csv folder,name,split,fps (default: BEDLAM's 30)")
    p.add_argument("--cache-dir", type=Path, default=None, help="where the caches go (default DATA_CACHE_DIR)")
    p.add_argument("--work-dir", type=Path, default=None, help="resumable work files (default BEDLAM_PROCESSED_DIR)")
    p.add_argument("--body-model", type=Path, default=None, help="SMPL-X model folder or npz (default: configured)")
    p.add_argument("--groups-per-unit", type=positive_int, default=16, help="sequence groups per resumable unit")
    p.add_argument("--fps-device", default="cpu", help="device of the farthest-point sampling (cpu, cuda)")
    p.add_argument(
        "--similarity-model",
        default=None,
        help="PoseText (shortname or folder) whose pose embeddings the out-of-sequence similarity window reads, "
        "as the original (default: mean-removed canonical joints)",
    )
    p.add_argument(
        "--overlap", type=finite_float, default=0.3, help="max fraction of the box covered by a nearer person"
    )
    p.add_argument("--resolution", type=positive_int, default=224, help="min longer side of the crop box (pixels)")
    p.add_argument(
        "--visible-joints", type=non_negative_int, default=16, help="min body joints inside the frame (of 22)"
    )
    p.add_argument(
        "--scale-factor", type=finite_float, default=1.1, help="crop box = tight box enlarged by this factor"
    )
    p.add_argument("--json", action="store_true", help="print the statistics as JSON")
    return p


def posetext_pose_features(name: str) -> PoseFeatures:
    """The pose embeddings of the PoseText `name` (shortname or folder), under no_grad, as `PoseFeatures`."""
    try:
        model = load_pretrained(resolve_model_dir(name), map_location="cpu")
    except (CheckpointError, FileNotFoundError, KeyError) as err:
        raise ValueError(f"--similarity-model {name}: {err}") from None
    if not isinstance(model, PoseText):
        raise ValueError(f"--similarity-model {name}: a {type(model).__name__}, not a PoseText")
    model.eval()

    @torch.no_grad()
    def features(poses: torch.Tensor) -> torch.Tensor:
        return model.encode_poses(poses.float())

    return features


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        cfg = BedlamConfig(
            bedlam_root=args.bedlam_root,
            split=args.split,
            workers=args.workers,
            fps_size=args.fps_size,
            sample_fps=args.sample_fps,
            seed=args.seed,
            criteria=SelectionCriteria(args.overlap, args.visible_joints, args.resolution, args.scale_factor),
            mining=MiningParams(),
            groups_per_unit=args.groups_per_unit,
            images_dir=args.images_dir,
            motion_dir=args.motion_dir,
            scene_table=args.scene_table,
            cache_dir=args.cache_dir,
            work_dir=args.work_dir,
            body_model_file=args.body_model,
            fps_device=args.fps_device,
            similarity_model=args.similarity_model,
        )
        features = posetext_pose_features(args.similarity_model) if args.similarity_model else None
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed:
        init_distributed("cpu")  # gloo: only barriers travel
    try:
        stats = process_bedlam(cfg, args.steps, similarity_features=features)
    except (BedlamInputError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    finally:
        if distributed:
            destroy_distributed()
    if args.json:
        print(json.dumps(stats, indent=2))
    elif "person_frames" in stats:
        print(format_summary(stats))
        if "cache_files" in stats:
            print(f"datasets: {stats['script_dataset']} and {stats['fix_dataset']} ({cfg.split}) in {cfg.cache_dir}")
            print(f"their images are read from {cfg.layout.images_dir}: set POSEEMBROIDER_BEDLAM_IMG_DIR to it")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
