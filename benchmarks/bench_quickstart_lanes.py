"""Quickstart lanes (seconds for two independent one-thread training steps): two lanes vs one after the other.

Ours: `quickstart.lanes.run_on_lanes(jobs=2)`, each step in a spawned process (process start, imports and the
context's pickling included). Baseline: `jobs=1`, the same two steps one after the other in this process (how
the quickstart ran before the lanes). Each step trains a small transformer (the width and depth of the
quickstart's text models) on one torch thread for a fixed number of steps, as the quickstart's steps do.
A lane costs about 5 s to start (a fresh interpreter, imports): with 200 optimizer steps (11 s a step) the
speed-up was 1.35x, with 1,000 (a minute) 1.89x; the quickstart's steps take minutes.

    .venv/bin/python benchmarks/bench_quickstart_lanes.py [--steps 1000]
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_result  # noqa: E402
from poseembroider.devices import torch_threads  # noqa: E402
from poseembroider.quickstart.context import QuickstartContext  # noqa: E402
from poseembroider.quickstart.lanes import run_on_lanes  # noqa: E402

STEPS = 1000  # about a minute per step: the quickstart's steps take minutes, a lane's start seconds


def train_small_transformer(ctx: QuickstartContext, steps: int) -> dict:
    """A quickstart-sized training step: a 2-layer, 128-wide transformer, batch 64 x 24 tokens, one thread."""
    with torch_threads(1):
        torch.manual_seed(0)
        layer = torch.nn.TransformerEncoderLayer(128, 4, 256, batch_first=True)
        model = torch.nn.TransformerEncoder(layer, 2)
        optimizer = torch.optim.AdamW(model.parameters())
        x = torch.randn(64, 24, 128)
        start = time.perf_counter()
        for _ in range(steps):
            loss = model(x).pow(2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        return {"train_seconds": time.perf_counter() - start, "loss": float(loss.detach())}


def run(jobs: int, steps: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        ctx = QuickstartContext(Path(folder))
        step = functools.partial(train_small_transformer, steps=steps)  # a module-level function: lanes import it
        start = time.perf_counter()
        run_on_lanes(ctx, {"a": step, "b": step}, {}, jobs=jobs)
        wall = time.perf_counter() - start
    return {
        "jobs": jobs,
        "wall_seconds": round(wall, 2),
        "step_seconds": [round(ctx.results[name]["seconds"], 2) for name in ("a", "b")],
        "train_seconds": [round(ctx.results[name]["train_seconds"], 2) for name in ("a", "b")],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=STEPS, help="optimizer steps per training step")
    args = parser.parse_args()
    baseline = run(1, args.steps)
    ours = run(2, args.steps)
    write_result(
        "quickstart_lanes",
        {
            "ours": "run_on_lanes(jobs=2): two spawned lanes, one torch thread each",
            "baseline": "run_on_lanes(jobs=1): the same two steps one after the other in this process",
            "optimizer_steps_per_step": args.steps,
            "ours_wall_seconds": ours["wall_seconds"],
            "baseline_wall_seconds": baseline["wall_seconds"],
            "speedup": round(baseline["wall_seconds"] / ours["wall_seconds"], 2),
            "ours_train_seconds_per_step": ours["train_seconds"],
            "baseline_train_seconds_per_step": baseline["train_seconds"],
            # process start, imports, pickling: what a lane costs beyond its training
            "lane_overhead_seconds": round(ours["wall_seconds"] - max(ours["train_seconds"]), 2),
        },
    )


if __name__ == "__main__":
    main()
