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
"""Every step, in the order it runs."""


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
) -> dict[str, Any]:
    """Run every step and write `<out_dir>/summary.json`; returns the summary.

    `assisting_sizes` / `core_sizes` / `downstream_sizes`: how long the assisting / representation models /
    downstream heads train (defaults `AssistingSizes()`, `CoreSizes()`, `DownstreamSizes()`)."""
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
    for name, step in QUICKSTART_STEPS.items():
        step_start = time.perf_counter()
        ctx.results[name] = step(ctx)
        ctx.results[name].setdefault("seconds", round(time.perf_counter() - step_start, 2))
    summary["total_seconds"] = round(time.perf_counter() - start, 2)
    summary["step_seconds"] = step_seconds(ctx.results)
    summary["goals"] = goal_rows(ctx.results)
    table = results_markdown(summary)
    write_text_atomic(out_dir / "results.md", table)
    path = write_json_atomic(out_dir / "summary.json", summary)
    print(f"[quickstart] results against their references and goals (also in {out_dir / 'results.md'}):\n{table}")
    print(f"[quickstart] wrote {path} ({summary['total_seconds']} s)")
    return summary
