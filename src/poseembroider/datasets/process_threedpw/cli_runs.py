"""`poseembroider data process-3dpw`: flags and the run (thin: the work is in `processing`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from poseembroider.config import finite_float

__all__ = ["add_process_3dpw_arguments", "run_process_3dpw"]


def add_process_3dpw_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--threedpw-root", type=Path, default=None, help="the release folder, with sequenceFiles/ and imageFiles/ "
        "(default: THREEDPW_DIR)"
    )  # fmt: skip
    p.add_argument("--split", nargs="+", default=["train", "val", "test"], help="among train, val, test (default: all)")
    p.add_argument("--scale-factor", type=finite_float, default=1.3, help="crop = 2D-keypoint box x this (named: sf13)")
    p.add_argument(
        "--box-keypoints", default="both", choices=("both", "projected", "detected"),
        help="keypoints of the tight box: projected SMPL joints, detections of poses2d, or both (default)",
    )  # fmt: skip
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print the statistics as JSON")


def run_process_3dpw(args: argparse.Namespace) -> int:
    from poseembroider import config
    from poseembroider.datasets.process_threedpw.processing import ThreeDPWConfig, process_threedpw
    from poseembroider.datasets.restricted_pickle import PickleReadError, UnsafePickleError

    try:
        cfg = ThreeDPWConfig(
            root=args.threedpw_root if args.threedpw_root is not None else Path(config.THREEDPW_DIR),
            splits=tuple(args.split),
            scale_factor=args.scale_factor,
            box_keypoints=args.box_keypoints,
            progress=args.progress,
        )
        stats = process_threedpw(cfg)
    except (ValueError, FileNotFoundError, PickleReadError, UnsafePickleError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(stats, indent=2))
        return 0
    for split, s in stats["splits"].items():
        skipped = ", ".join(f"{k} {v}" for k, v in s["skipped"].items() if v) or "none"
        print(
            f"{s['dataset']} {split}: {s['kept']} of {s['person_frames']} person-frames from {s['sequences']} "
            f"sequences (skipped: {skipped}); {s['person_frames_per_s']} person-frames/s"
        )
    if stats["hint"]:
        print(f"note: {stats['hint']}")
    return 0
