"""Synthetic dataset generation (`poseembroider data synth`): samples/s and peak memory as N grows.

Each run is a separate process generating a train split of N poses end to end (pool, farthest-point
sampling, rendering, captions, pair mining, instructions, caches) into a temporary folder; peak memory
is the largest sum of resident memory of the process and its rendering workers, sampled every 0.1 s.
Ours: 2 rendering workers. Baseline: the same generation with 1 worker (no parallelism), same run.
Stage seconds: "render" includes the captions, pairs and instructions, made while the workers render
("texts" is their own time). Each run records the machine's load average before and after it, and
its CPU seconds (process and workers): n / (CPU seconds / cores) is the rate the run would reach with
its cores (2 for 2 workers) to itself (it counts the imports and the workers' start-up, and assumes
no idle core).

    .venv/bin/python benchmarks/bench_synth_generation.py [--sizes 256 2048]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import write_result


def _children(pid: int) -> list[int]:
    """Child process ids of `pid`, from /proc/PID/task/*/children (no scan of every process)."""
    children = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            children += [int(c) for c in task.read_text().split()]
        except OSError:
            continue
    return children


def _tree_rss_mb(root: int) -> float:
    """Resident memory (MB) of `root` and all its descendants, from /proc (cheap: the sampling thread
    shares the two cores with the run it measures)."""
    tree, frontier = {root}, [root]
    while frontier:
        children = [c for c in _children(frontier.pop()) if c not in tree]
        tree.update(children)
        frontier.extend(children)
    total = 0.0
    for pid in tree:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            continue
    return total


class PeakMemory:
    """Samples the memory of this process tree in a background thread."""

    def __init__(self, period: float = 0.1):
        self.period, self.peak, self._stop = period, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _tree_rss_mb(os.getpid()))
            self._stop.wait(self.period)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


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
        load_before = os.getloadavg()[0]
        start = time.perf_counter()
        with PeakMemory() as memory:
            stats = generate_synth(cfg)
        seconds = time.perf_counter() - start
        load_after = os.getloadavg()[0]
    cpu_seconds = _cpu_seconds()  # the workers are joined: their time is in RUSAGE_CHILDREN
    split = stats["splits"]["train"]
    return {
        "n": n,
        "workers": workers,
        "seconds": round(seconds, 2),
        "samples_per_s": round(n / seconds, 2),
        "peak_memory_mb": round(memory.peak),
        "pairs": split["pairs_in_sequence"] + split["pairs_out_of_sequence"],
        "stage_seconds": split["seconds"],
        # 1-minute load average of the machine (our run included): other jobs share the 2 cores
        "load_before_after": [round(load_before, 2), round(load_after, 2)],
        "cpu_seconds": round(cpu_seconds, 1),
        # what the run's CPU time allows on min(workers, 2) cores of its own: the rate without other jobs
        "samples_per_s_on_free_cores": round(n / (cpu_seconds / min(workers, 2)), 2),
    }


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process and its finished children (the rendering workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


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
    parser.add_argument("--sizes", type=int, nargs=2, default=[256, 2048])
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
            "ours_samples_per_s_on_2_free_cores": ours_large["samples_per_s_on_free_cores"],
            "baseline_samples_per_s": baseline["samples_per_s"],
            "ratio": round(ours_small["samples_per_s"] / baseline["samples_per_s"], 2),
            "render_stage_samples_per_s": round(ours_large["n"] / ours_large["stage_seconds"]["render"], 2),
            "peak_memory_ratio_large_over_small": round(ours_large["peak_memory_mb"] / ours_small["peak_memory_mb"], 2),
            "runs": {f"n{r['n']}_w{r['workers']}": r for r in (baseline, ours_small, ours_large)},
        },
    )


if __name__ == "__main__":
    main()
