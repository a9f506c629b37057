"""Synthetic dataset generation (`poseembroider data synth`): samples/s and peak memory as N grows.

Each run is a separate process generating a train split of N poses end to end (pool, farthest-point
sampling, rendering, captions, pair mining, instructions, caches) into a temporary folder; peak resident
memory is read from the process and its rendering workers. Ours: 2 rendering workers. Baseline: the
same generation with 1 worker (no parallelism), same run.

    .venv/bin/python benchmarks/bench_synth_generation.py [--sizes 256 1024]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import write_result


def one_run(n: int, workers: int) -> dict:
    from poseembroider.datasets.synthetic.generate import SynthConfig, generate_synth

    with tempfile.TemporaryDirectory() as tmp:
        cfg = SynthConfig(
            name="bench",
            n_train=n,
            n_val=0,
            workers=workers,
            synth_root=Path(tmp) / "synth",
            cache_dir=Path(tmp) / "cache",
        )
        start = time.perf_counter()
        stats = generate_synth(cfg)
        seconds = time.perf_counter() - start
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    split = stats["splits"]["train"]
    return {
        "n": n,
        "workers": workers,
        "seconds": round(seconds, 2),
        "samples_per_s": round(n / seconds, 2),
        "peak_rss_main_mb": round(own),
        "peak_rss_worker_mb": round(children),
        "pairs": split["pairs_in_sequence"] + split["pairs_out_of_sequence"],
        "stage_seconds": split["seconds"],
    }


def run_in_subprocess(n: int, workers: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--one", str(n), str(workers)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parent,
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs=2, default=[256, 1024])
    parser.add_argument("--one", type=int, nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_run(*args.one)))
        return
    small, large = args.sizes
    baseline = run_in_subprocess(small, 1)
    ours_small = run_in_subprocess(small, 2)
    ours_large = run_in_subprocess(large, 2)
    write_result(
        "synth_generation",
        {
            "ours": "poseembroider data synth, 2 rendering workers",
            "baseline": "the same generation with 1 rendering worker",
            "ours_samples_per_s": ours_large["samples_per_s"],
            "baseline_samples_per_s": baseline["samples_per_s"],
            "ratio": round(ours_small["samples_per_s"] / baseline["samples_per_s"], 2),
            "peak_memory_ratio_large_over_small": round(
                (ours_large["peak_rss_main_mb"] + ours_large["peak_rss_worker_mb"])
                / (ours_small["peak_rss_main_mb"] + ours_small["peak_rss_worker_mb"]),
                2,
            ),
            "runs": {f"n{r['n']}_w{r['workers']}": r for r in (baseline, ours_small, ours_large)},
        },
    )


if __name__ == "__main__":
    main()
