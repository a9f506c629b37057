"""`poseembroider data import-amass`: flags and the run (thin: the work is in `importer`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from poseembroider.config import finite_float, seed_int

__all__ = ["add_import_amass_arguments", "run_import_amass"]


def add_import_amass_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--amass-root", type=Path, required=True, help="folder searched recursively for motion .npz files")
    p.add_argument("--name", required=True, help="dataset name part (lower-case letters, digits, '_')")
    p.add_argument(
        "--fps", type=finite_float, default=10.0, help="frames kept per second of motion (default: %(default)s)"
    )
    p.add_argument(
        "--val-share", type=finite_float, default=0.1, help="share of the sequences in val (default: %(default)s)"
    )
    p.add_argument("--seed", type=seed_int, default=0, help="seed of the text writers and pair draws")
    p.add_argument("--no-pairs", dest="pairs", action="store_false", help="poses and captions only")
    p.add_argument("--in-sequence-only", action="store_true", help="no out-of-sequence pairs (O(N^2) mining)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print the statistics as JSON")


def run_import_amass(args: argparse.Namespace) -> int:
    from poseembroider.datasets.process_amass.importer import AmassImportConfig, import_amass
    from poseembroider.datasets.process_amass.motion_files import MotionFileError

    try:
        cfg = AmassImportConfig(
            amass_root=args.amass_root,
            name=args.name,
            fps=args.fps,
            val_share=args.val_share,
            pairs=args.pairs,
            in_sequence_only=args.in_sequence_only,
            seed=args.seed,
            progress=args.progress,
        )
        stats = import_amass(cfg)
    except (ValueError, FileNotFoundError, MotionFileError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(stats, indent=2))
        return 0
    print(f"{stats['poses']} poses from {stats['sequences']} motion files ({stats['skipped_without_poses']} "
          f"without poses skipped); {stats['poses_read_per_s']} poses read/s")  # fmt: skip
    for split, s in stats["splits"].items():
        pairs = (
            f", {s['pairs_in_sequence']} in- / {s['pairs_out_of_sequence']} out-of-sequence pairs"
            if "pairs_in_sequence" in s
            else ""
        )
        print(f"  {split}: {s['poses']} poses from {s['sequences']} sequences{pairs}")
    print(f"datasets: {stats['poses_dataset']}" + (f", {stats['pairs_dataset']}" if stats["pairs_dataset"] else ""))
    print(f"caches in {stats['cache_dir']}; {stats['seconds']['total']} s")
    return 0
