"""What the quickstart must show, checked on its own results: each trained model against its trivial
reference (mean pose, chance) and the goal it must reach, and the time each step took.

A `Goal` names where its value sits in the steps' results (`summary.json`'s `steps`), the reference of the
same split beside it, and a target: a number, or another result the value must beat (PoseEmbroider ahead of
the Aligner, dual queries ahead of single ones). `goal_rows` evaluates every goal whose step ran;
`results_markdown` prints the goals and the step times as the README's tables.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from poseembroider.evaluation.mesh_recovery import PAPER_PROTOCOL

ResultPath = tuple[str, ...]
"""(step name, key, key, ...) into the steps' results."""

QUICKSTART_MINUTES_GOAL = 35.0
"""Wall time of the quickstart's steps on a 2-core CPU (install excluded), the two downstream heads included (the
offline-world issue's budget: 30 minutes for the retrieval half, 35 with the heads; in lanes the halves
overlap, so only the whole is timed)."""


@dataclass(frozen=True)
class Goal:
    """One measured result, its trivial reference and its target.

    `target` is a number or the path of another result; `lower_is_better` says which side passes (a tie fails
    against another result: "ahead of" means strictly ahead)."""

    label: str
    value: ResultPath
    target: float | ResultPath
    lower_is_better: bool = False
    reference: ResultPath | None = None
    reference_label: str = ""
    unit: str = ""


GOALS: tuple[Goal, ...] = (
    Goal("PoseVAE reconstruction MPJPE, synthetic val", ("posevae", "val_metrics", "mpjpe_mm"), 60.0, True,
         ("posevae", "val_mean_pose_baseline", "mpjpe_mm"), "mean pose", "mm"),
    Goal("PoseVAE reconstruction PA-MPJPE, synthetic val", ("posevae", "val_metrics", "pampjpe_mm"), 25.0, True,
         ("posevae", "val_mean_pose_baseline", "pampjpe_mm"), "mean pose", "mm"),
    Goal("PoseVAE reconstruction PA-MPJPE, 108 real CMU poses", ("real_poses", "posevae", "pampjpe_mm"), 35.0, True,
         ("real_poses", "posevae_mean_pose_baseline", "pampjpe_mm"), "mean pose", "mm"),
    Goal("image encoder pose regression PA-MPJPE, synthetic val", ("image_encoder", "val", "pa_mpjpe_mm"), 80.0, True,
         ("image_encoder", "val_mean_pose_baseline", "pa_mpjpe_mm"), "mean pose", "mm"),
    Goal("PoseText pose<->text mRecall", ("posetext", "val", "mRecall"), 30.0, False,
         ("posetext", "chance_mRecall"), "chance"),
    Goal("PairText pair<->instruction mRecall", ("pairtext", "val", "mRecall"), 15.0, False,
         ("pairtext", "chance_mRecall"), "chance"),
    Goal("PoseEmbroider mRecall (9 query types)", ("core_poseembroider", "val", "mRecall"), 30.0, False,
         ("core_poseembroider", "chance_mRecall"), "chance"),
    Goal("Aligner mRecall (9 query types)", ("core_aligner", "val", "mRecall"), 30.0, False,
         ("core_aligner", "chance_mRecall"), "chance"),
    Goal("PoseEmbroider ahead of the Aligner (mRecall)", ("core_poseembroider", "val", "mRecall"),
         ("core_aligner", "val", "mRecall")),
    Goal("PoseEmbroider: dual queries ahead of single (mRecall)", ("core_poseembroider", "val", "mRecall_dual_query"),
         ("core_poseembroider", "val", "mRecall_single_query")),
    Goal("Aligner: dual queries ahead of single (mRecall)", ("core_aligner", "val", "mRecall_dual_query"),
         ("core_aligner", "val", "mRecall_single_query")),
    Goal("HPS head on PoseEmbroider image x̄: PA-MPJPE gain over the mean pose",
         ("hps_heads", "poseembroider", "images_gain_over_mean_pose_pct"), 25.0, False, unit="%"),
    Goal("HPS head on PoseEmbroider: images+texts - images, PA-MPJPE (95% interval's upper end)",
         ("hps_heads", "poseembroider", "comparisons", "images+texts - images", PAPER_PROTOCOL, "pa_mpjpe_mm",
          "difference", "high"), 0.0, True, unit="mm"),
    Goal("instructions from poses (P_A,P_B), rerank: R-precision R@1 vs half the GT control's",
         ("instruction_evaluation", "poses_rerank_R@1"), ("instruction_evaluation", "half_gt_R@1"),
         reference=("instruction_evaluation", "gt_R@1"), reference_label="GT texts"),
    Goal("instructions from poses (P_A,P_B), rerank: R-precision R@1 vs 10x the random control's",
         ("instruction_evaluation", "poses_rerank_R@1"), ("instruction_evaluation", "ten_times_random_R@1")),
)  # fmt: skip
"""Issue 13's goals, then the mesh-recovery and instruction-generation ones, on the quickstart's validation splits."""


def lookup(results: Mapping[str, Any], path: ResultPath) -> float | None:
    """The number at `path` in the steps' results, None when a step or key on the way is missing."""
    node: Any = results
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return float(node) if isinstance(node, (int, float)) else None


def _describe_target(goal: Goal, results: Mapping[str, Any]) -> tuple[float | None, str]:
    if isinstance(goal.target, tuple):
        target = lookup(results, goal.target)
        shown = "—" if target is None else f"{target:.2f}"
        return target, f"{'<' if goal.lower_is_better else '>'} {shown} ({'/'.join(goal.target[1:])})"
    return float(goal.target), f"{'<=' if goal.lower_is_better else '>='} {goal.target:g}"


def goal_rows(results: Mapping[str, Any], goals: Sequence[Goal] = GOALS) -> list[dict[str, Any]]:
    """One row per goal whose value was measured: label, value, reference, target (as text), met (bool).

    Against a number the bound is inclusive (`<= 25`); against another result the value must be strictly
    better."""
    rows = []
    for goal in goals:
        value = lookup(results, goal.value)
        if value is None:
            continue
        target, target_text = _describe_target(goal, results)
        if target is None:
            met = False
        elif isinstance(goal.target, tuple):
            met = value < target if goal.lower_is_better else value > target
        else:
            met = value <= target if goal.lower_is_better else value >= target
        reference = lookup(results, goal.reference) if goal.reference else None
        rows.append(
            {
                "goal": goal.label,
                "value": round(value, 2),
                "unit": goal.unit,
                "reference": None if reference is None else round(reference, 2),
                "reference_label": goal.reference_label,
                "target": target_text,
                "met": met,
            }
        )
    return rows


def step_seconds(results: Mapping[str, Any]) -> dict[str, float]:
    """Seconds of each step that recorded them, in run order."""
    return {name: float(r["seconds"]) for name, r in results.items() if isinstance(r, Mapping) and "seconds" in r}


def results_markdown(summary: Mapping[str, Any]) -> str:
    """The goals table and the step-times table of a quickstart summary, as Markdown."""
    lines = ["| result | value | trivial reference | goal | met |", "| --- | --- | --- | --- | --- |"]
    for row in summary.get("goals", []):
        unit = f" {row['unit']}" if row["unit"] else ""
        reference = "" if row["reference"] is None else f"{row['reference']:g}{unit} ({row['reference_label']})"
        met = "yes" if row["met"] else "**no**"
        lines.append(f"| {row['goal']} | {row['value']:g}{unit} | {reference} | {row['target']} | {met} |")
    seconds = summary.get("step_seconds", {})
    lines += ["", "| step | seconds |", "| --- | --- |"]
    lines += [f"| {name} | {value:.0f} |" for name, value in seconds.items()]
    total = summary.get("total_seconds")
    if total is not None:
        minutes = total / 60
        verdict = "within" if minutes <= QUICKSTART_MINUTES_GOAL else "**over**"
        lines.append(f"| total | {total:.0f} ({minutes:.1f} min, {verdict} the {QUICKSTART_MINUTES_GOAL:g} min goal) |")
    return "\n".join(lines) + "\n"
