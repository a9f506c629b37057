"""Real-data readers: 3DPW person-frames parsed/s (`process-3dpw`), AMASS poses imported/s (`import-amass`).

3DPW: a release in 3DPW's layout made by `process_threedpw.fixture` (Python-2 pickles, portrait JPEG frames,
1-2 actors per sequence). Ours: `process_split` (restricted unpickling, checks, batched projection /
normalisation / crops per sequence, one image-size read per sequence, every image checked to exist, caches
written). Baseline: the same code one person-frame at a time (each frame of each sequence processed as a
sequence of its own, as the original's per-item loops), caches written the same way.

AMASS: SMPL+H files made by `process_amass.fixture` (60 fps). Ours: `import_amass` reading stage (one
`np.load` per file, frames kept at 10 fps, batched normalisation), then the whole import (captions, pairs,
instructions). Baseline for the reading stage: the PoseScript/PoseFix way of resolving pose ids to AMASS, one
`np.load` of the sequence file and one normalisation per pose. With `--cmu` (default: when the file
exists), the real CMU salsa sequences (8,700 poses at 10 fps) are imported too, end to end.

    .venv/bin/python benchmarks/bench_real_data.py [--frames 200] [--sequences 6] [--amass-sequences 40]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from common import write_result

CMU_SEQUENCES = Path("/work/shared/data/cmu_mocap/sequences_dev.npz")


def bench_threedpw(root: Path, cache: Path, sequences: int, frames: int, body_model) -> dict:
    from poseembroider.datasets.cache_writers import CacheDestination, images_cache, poses_cache, write_caches
    from poseembroider.datasets.process_threedpw import processing
    from poseembroider.datasets.process_threedpw.fixture import write_threedpw_release
    from poseembroider.datasets.process_threedpw.sequences import read_sequence_file

    start = time.perf_counter()
    fixture = write_threedpw_release(root, sequences={"test": sequences}, frames=frames, body_model=body_model)
    made = time.perf_counter() - start
    cfg = processing.ThreeDPWConfig(root, splits=("test",), cache_dir=cache)
    stats = processing.process_split(cfg, "test")  # warm (imports, file cache)
    runs = [processing.process_split(cfg, "test") for _ in range(2)]
    ours_s = min(r["seconds"]["total"] for r in runs)
    parse_s = min(r["seconds"]["parse"] for r in runs)

    # baseline: one person-frame at a time through the same code
    files = sorted((root / "sequenceFiles" / "test").glob("*.pkl"))
    start = time.perf_counter()
    records: dict[str, list] = {}
    for path in files:
        seq = read_sequence_file(path)
        for f in range(seq.num_frames):
            for a in range(seq.num_actors):
                one = processing.ThreeDPWSequence(
                    seq.path, seq.name, seq.poses[a : a + 1, f : f + 1], seq.trans[a : a + 1, f : f + 1],
                    seq.betas[a : a + 1], seq.joints[a : a + 1, f : f + 1], seq.keypoints_2d[a : a + 1, f : f + 1],
                    seq.valid[a : a + 1, f : f + 1], seq.genders[a : a + 1], seq.cam_poses[f : f + 1],
                    seq.intrinsics, seq.frame_ids[f : f + 1],
                )  # fmt: skip
                for key, values in processing.process_sequence(one, root / "imageFiles", cfg)["records"].items():
                    records.setdefault(key, []).extend(values)
    ids = range(len(records["images"]))
    crit = cfg.criteria("test")
    write_caches(
        CacheDestination(cache / "baseline", "threedpw", cfg.version, "test"),
        [
            images_cache(crit, **{k: dict(zip(ids, records[k], strict=True)) for k in processing._IMAGE_TABLES}),
            poses_cache(crit, **{k: dict(zip(ids, records[k], strict=True)) for k in processing._POSE_TABLES}),
        ],
    )
    baseline_s = time.perf_counter() - start
    n = stats["person_frames"]
    return {
        "threedpw_person_frames": n,
        "threedpw_sequences": sequences,
        "threedpw_fixture_seconds": round(made, 2),
        "threedpw_person_frames_per_s": round(n / ours_s, 1),
        "threedpw_parse_only_person_frames_per_s": round(n / parse_s, 1),
        "threedpw_baseline_person_frames_per_s": round(n / baseline_s, 1),
        "threedpw_ratio": round(baseline_s / ours_s, 2),
        "threedpw_kept": stats["kept"],
        "threedpw_skipped": stats["skipped"],
        "threedpw_fixture_person_frames": fixture.person_frames["test"],
    }


def bench_amass(root: Path, cache: Path, n_sequences: int, body_model) -> dict:
    from poseembroider.datasets.process_amass import importer
    from poseembroider.datasets.process_amass.fixture import synthetic_amass_release
    from poseembroider.datasets.process_amass.motion_files import read_motion_file
    from poseembroider.datasets.process_posefix.build import normalize_amass_poses

    paths = synthetic_amass_release(root, n_sequences=n_sequences, frames=600, fps=60.0, body_model=body_model)
    cfg = importer.AmassImportConfig(root, "bench", fps=10.0, cache_dir=cache, progress=False)
    importer._read_motions(cfg)  # warm
    start = time.perf_counter()
    motions, stats = importer._read_motions(cfg)
    ours_read = time.perf_counter() - start
    kept = [(p, int(f)) for p in paths for f in importer._frame_indices(read_motion_file(p), cfg.fps)]

    start = time.perf_counter()  # baseline: one np.load and one normalisation per pose (PoseScript's resolver)
    for path, frame in kept:
        with np.load(path) as data:
            pose = torch.as_tensor(data["poses"][frame].reshape(-1, 3), dtype=torch.float32)
        normalize_amass_poses(pose[None])
    baseline_read = time.perf_counter() - start

    start = time.perf_counter()
    full = importer.import_amass(cfg, body_model=body_model)
    total = time.perf_counter() - start
    n = stats["poses"]
    return {
        "amass_files": len(paths),
        "amass_source_frames": stats["source_frames"],
        "amass_poses": n,
        "amass_read_poses_per_s": round(n / ours_read, 1),
        "amass_read_source_frames_per_s": round(stats["source_frames"] / ours_read, 1),
        "amass_read_baseline_poses_per_s": round(n / baseline_read, 1),
        "amass_read_ratio": round(baseline_read / ours_read, 2),
        "amass_import_poses_per_s_end_to_end": round(n / total, 1),
        "amass_import_seconds": full["seconds"],
        "amass_pairs": {
            s: v.get("pairs_in_sequence", 0) + v.get("pairs_out_of_sequence", 0) for s, v in full["splits"].items()
        },  # fmt: skip
    }


def bench_cmu(root: Path, cache: Path, body_model) -> dict:
    from poseembroider.datasets.process_amass import importer
    from poseembroider.datasets.process_amass.fixture import amass_release_from_cmu_sequences

    amass_release_from_cmu_sequences(CMU_SEQUENCES, root)
    start = time.perf_counter()
    stats = importer.import_amass(
        importer.AmassImportConfig(root, "cmu_salsa", fps=10.0, cache_dir=cache, progress=False), body_model=body_model
    )
    total = time.perf_counter() - start
    return {
        "cmu_salsa_poses": stats["poses"],
        "cmu_salsa_files": stats["sequences"],
        "cmu_salsa_splits": stats["splits"],
        "cmu_salsa_import_poses_per_s_end_to_end": round(stats["poses"] / total, 1),
        "cmu_salsa_seconds": stats["seconds"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=int, default=6, help="3DPW fixture sequences")
    parser.add_argument("--frames", type=int, default=200, help="frames per 3DPW fixture sequence")
    parser.add_argument("--amass-sequences", type=int, default=40, help="AMASS fixture files (600 frames at 60 fps)")
    parser.add_argument("--cmu", action=argparse.BooleanOptionalAction, default=CMU_SEQUENCES.is_file())
    args = parser.parse_args()
    torch.set_num_threads(1)
    from poseembroider.body.body_model import BodyModel

    body_model = BodyModel().eval()
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        result = {
            "ours": "process_split (3DPW, batched per sequence) / import_amass reading stage (one np.load per file)",
            "baseline": "the same 3DPW code one person-frame at a time / one np.load + normalisation per pose",
            **bench_threedpw(tmp / "3DPW", tmp / "cache", args.sequences, args.frames, body_model),
            **bench_amass(tmp / "amass", tmp / "cache", args.amass_sequences, body_model),
        }
        if args.cmu:
            result.update(bench_cmu(tmp / "cmu", tmp / "cache", body_model))
    result["load_average_start_end"] = f"{load[0]:.2f} / {os.getloadavg()[0]:.2f} (2 cores shared with other jobs)"
    result["torch_threads"] = 1
    write_result("real_data", result)


if __name__ == "__main__":
    main()
