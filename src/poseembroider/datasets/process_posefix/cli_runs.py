"""`poseembroider data process-posefix`: build the PoseFix / PoseScript caches and print what was kept and skipped."""

from __future__ import annotations

import argparse
import json
import sys

__all__ = ["run_process_posefix"]


def run_process_posefix(args: argparse.Namespace) -> int:
    """Build the caches of every (dataset, split) of `args`; exit code 2 with the error naming the file."""
    from poseembroider import config
    from poseembroider.datasets.cache_format import CacheError
    from poseembroider.datasets.process_posefix.build import FAMILIES, build_release_split
    from poseembroider.datasets.process_posefix.pose_sources import AmassPoses
    from poseembroider.datasets.restricted_pickle import PickleReadError, UnsafePickleError

    results = []
    try:
        for name in args.dataset:
            family, _, version = name.partition("-")
            if family not in FAMILIES or not version:
                raise ValueError(f"--dataset {name!r}: expected posefix-<H|PP|HPP> or posescript-H2")
            source = None
            if args.amass_root is not None:
                release = config.POSEFIX_DIR if family == "posefix" else config.POSESCRIPT_DIR
                source = AmassPoses(args.amass_root, release)
            for split in args.splits:
                results.append(build_release_split(family, version, split, pose_source=source))
    except (ValueError, FileNotFoundError, CacheError, PickleReadError, UnsafePickleError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    for r in results:
        kept = (
            f"{r['pairs']} pairs ({r['pairs_in_sequence']} in / {r['pairs_out_of_sequence']} out)"
            if "pairs" in r
            else ""
        )
        skipped = ", ".join(
            f"{k.removeprefix('skipped_')} {v}" for k, v in r.items() if k.startswith(("skipped", "unannotated"))
        )
        print(f"{r['dataset']} {r['split']}: {r['poses']} poses {kept}; skipped: {skipped}")
    return 0
