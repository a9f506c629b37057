"""The main job on the offline world (`make quickstart` / `poseembroider quickstart`): every step in order.

Each step (`QUICKSTART_STEPS`) reads and extends a typed `QuickstartContext` and returns a JSON-able dict of
what it produced and measured; the dicts are gathered in `<out>/summary.json`, written last and atomically:

1-4. the offline world (`world`): body model, real poses on it, the pose sampler's report, the synthetic
     script + fix datasets;
5.   the assisting models trained on it (`assisting`): text tokenizer and backbone, PoseVAE, PoseText,
     PairText, image encoder, each registered under its shortname beside a chance-level reference;
6.   the representation models (`core`): PoseEmbroider and the Aligner trained on the frozen features of
     those encoders, evaluated on the 9 query types, each registered under `<model>_model_synthscript`;
7.   the downstream heads on their x̄ (`mesh_recovery`): an HPS head per representation model, evaluated for
     every input set beside the mean pose and the image encoder's own regression; an InstructionGenerator on
     PoseEmbroider's pose x̄ (`instructions`), evaluated for every input set beside the GT and random controls.

The world's steps run first, in this process (data generation spreads over the cores by itself); the
later steps run on `jobs` lanes (`lanes.run_on_lanes`, default 2: one step per core, each on one torch
thread), each as soon as the steps it needs (`STEP_NEEDS`) have finished, in the order of `QUICKSTART_STEPS`.
The results do not depend on the lanes: each step is seeded and reads only what its needs made.

Last, every result is set beside its trivial reference and its goal (`goals`), with each step's seconds:
`summary.json` keys `goals` and `step_seconds`, and the same as Markdown tables in `<out>/results.md`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from poseembroider import config
from poseembroider.atomic_io import write_json_atomic, write_text_atomic
from poseembroider.quickstart.assisting import ASSISTING_STEPS
from poseembroider.quickstart.context import (
    AssistingSizes,
    CoreSizes,
    DownstreamSizes,
    QuickstartContext,
    QuickstartStep,
)
from poseembroider.quickstart.core import CORE_STEPS
from poseembroider.quickstart.goals import goal_rows, results_markdown, step_seconds
from poseembroider.quickstart.instructions import INSTRUCTION_STEPS
from poseembroider.quickstart.lanes import run_on_lanes
from poseembroider.quickstart.mesh_recovery import MESH_RECOVERY_STEPS
from poseembroider.quickstart.real_poses import REAL_POSE_STEPS
from poseembroider.quickstart.world import WORLD_STEPS

QUICKSTART_STEPS: dict[str, QuickstartStep] = {
    **WORLD_STEPS,
    **ASSISTING_STEPS,
    **REAL_POSE_STEPS,
    **CORE_STEPS,
    **MESH_RECOVERY_STEPS,
    **INSTRUCTION_STEPS,
}
"""Every step, in the order it runs with one lane (`jobs=1`), and the order lanes pick ready steps in."""

STEP_NEEDS: dict[str, tuple[str, ...]] = {
    "text_models": ("body_model",),
    "posevae": ("pose_pools",),
    "posetext": ("pose_pools", "text_models"),
    "pairtext": ("pose_pools", "text_models"),
    "image_encoder": ("synthetic_dataset",),
    "real_poses": ("posevae", "posetext"),
    "pose_text_features": ("posevae", "posetext", "pose_pools", "synthetic_dataset"),
    "core_poseembroider": ("image_encoder", "pose_text_features"),
    "core_aligner": ("image_encoder", "pose_text_features"),
    "hps_heads": ("core_poseembroider", "core_aligner", "image_encoder"),
    "instruction_generator": ("core_poseembroider", "pose_pools"),
    "instruction_evaluation": ("instruction_generator", "pairtext"),
}
"""What each step after the world reads from earlier ones: a lane starts it once these have finished."""

LANE_ORDER: tuple[str, ...] = (
    "image_encoder",
    "text_models",
    "posevae",
    "posetext",
    "pose_text_features",
    "core_poseembroider",
    "instruction_generator",
    "pairtext",
    "core_aligner",
    "hps_heads",
    "real_poses",
    "instruction_evaluation",
)
"""Which ready step a free lane takes first: the longest chain of waiting steps first (image encoder ->
PoseEmbroider -> instruction generator), so the other lane fills the gaps."""

DEFAULT_JOBS = 2
"""Lanes of `run_quickstart`: the 2 cores of the machines the quickstart is sized for."""


def run_quickstart(
    out_dir: Path | None = None,
    n_poses: int = 16,
    seed: int = 0,
    n_train: int = 2048,
    n_val: int = 512,
    sampler_report_size: int = 10_000,
    n_pool: int = 16_384,
    assisting_sizes: AssistingSizes | None = None,
    core_sizes: CoreSizes | None = None,
    downstream_sizes: DownstreamSizes | None = None,
    jobs: int = DEFAULT_JOBS,
) -> dict[str, Any]:
    """Run every step and write `<out_dir>/summary.json`; returns the summary.

    `assisting_sizes` / `core_sizes` / `downstream_sizes`: how long the assisting / representation models /
    downstream heads train (defaults `AssistingSizes()`, `CoreSizes()`, `DownstreamSizes()`); `jobs`: how many
    steps after the world run at once, each in a process of its own (1: all in this process, in order)."""
    out_dir = Path(config.GENERAL_EXP_OUTPUT_DIR / "quickstart" if out_dir is None else out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ctx = QuickstartContext(
        out_dir,
        n_poses,
        seed,
        n_train,
        n_val,
        sampler_report_size,
        n_pool,
        assisting_sizes or AssistingSizes(),
        core_sizes or CoreSizes(),
        downstream_sizes or DownstreamSizes(),
    )
    summary: dict[str, Any] = {"seed": seed, "steps": ctx.results}
    start = time.perf_counter()
    world = {name: step for name, step in QUICKSTART_STEPS.items() if name not in STEP_NEEDS}
    run_on_lanes(ctx, world, {}, jobs=1)
    laned = {name: QUICKSTART_STEPS[name] for name in LANE_ORDER}
    run_on_lanes(ctx, laned, STEP_NEEDS, jobs=jobs, on_finished=_say_finished)
    ctx.results = {name: ctx.results[name] for name in QUICKSTART_STEPS}  # the summary in the order of the steps
    summary["steps"] = ctx.results
    summary["jobs"] = jobs
    summary["total_seconds"] = round(time.perf_counter() - start, 2)
    summary["step_seconds"] = step_seconds(ctx.results)
    summary["goals"] = goal_rows(ctx.results)
    table = results_markdown(summary)
    write_text_atomic(out_dir / "results.md", table)
    path = write_json_atomic(out_dir / "summary.json", summary)
    print(f"[quickstart] results against their references and goals (also in {out_dir / 'results.md'}):\n{table}")
    print(f"[quickstart] wrote {path} ({summary['total_seconds']} s)")
    return summary


def _say_finished(name: str, result: dict[str, Any], seconds: float) -> None:
    print(f"[quickstart] step {name} finished in {seconds:.0f} s", flush=True)
