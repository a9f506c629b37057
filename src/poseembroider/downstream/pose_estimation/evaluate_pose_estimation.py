"""Evaluate an HPS head for every input set of a dataset (original_system.md §5.2):

    python downstream/pose_estimation/evaluate_pose_estimation.py \\
        --model_path hpsestimator_model_poseembroider_bedlamscript --dataset bedlamscript-overlap30_res224_j16_sf11

(also `poseembroider evaluate-pose-estimation`). Input sets: `--input_sets images texts images+texts poses`
(default: those the dataset offers: images, texts, images+texts, and poses as an upper bound). x̄ of each set
comes from the x̄ cache of the head's representation model (computed first when missing; `--cache_dir` as
in `cache_intermodality_features`). Per set: PA-MPJPE, MPJPE, PVE (mm) and the mean geodesic rotation error
(degrees) on SMPL-X joints 0-21 with zero translation, means with 95% bootstrap intervals; the baseline is the
training split's mean pose; `comparisons` gives paired differences (images+texts - images, images - mean pose,
on the same samples). Result file `result_<split>_<dataset>.json` next to the head (reused while the settings
are unchanged, `--overwrite` recomputes).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

import torch

from poseembroider.datasets.registry import parse_dataset_name
from poseembroider.devices import resolve_device
from poseembroider.downstream.input_types import InputTypesError, check_input_types, input_types_name
from poseembroider.downstream.pose_estimation.data import split_targets
from poseembroider.downstream.pose_estimation.evaluation import (
    hps_errors,
    paired_difference,
    predict_from_xbar,
    summarize,
    uses_betas,
)
from poseembroider.downstream.pose_estimation.mean_pose import load_mean_pose, mean_smplx_pose
from poseembroider.downstream.pose_estimation.model_pose_estimation import HPSEstimator
from poseembroider.evaluation.result_files import reusable_result, save_result
from poseembroider.features.intermodality import compute_intermodality_features
from poseembroider.geometry import axis_angle_to_matrix
from poseembroider.models.pretrained import CheckpointError, load_pretrained, resolve_model_dir
from poseembroider.representation import load_representation_model
from poseembroider.training.script_args import add_evaluation_arguments, script_main

BASELINE = "mean_pose"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="evaluate_pose_estimation.py", description="evaluate an HPS head")
    add_evaluation_arguments(parser, batch_size=256)
    parser.add_argument("--input_sets", nargs="+", default=None, help="e.g. images texts images+texts poses")
    parser.add_argument("--cache_dir", default=None, help="folder of the x̄ caches (default: beside the model)")
    parser.add_argument("--feature_cache_dir", default=None, help="root of the frozen-feature caches")
    parser.add_argument("--mean_pose_file", default=None, help="baseline pose .npz (default: --dataset train)")
    return parser


def default_input_sets(dataset: str) -> list[str]:
    """images, texts, images+texts, poses for a dataset with images; texts, poses for a pose-only pool."""
    family, _ = parse_dataset_name(dataset)
    return ["images", "texts", "images+texts", "poses"] if family.has_images else ["texts", "poses"]


def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    head_dir = resolve_model_dir(args.model_path, args.checkpoint)
    head = load_pretrained(head_dir, map_location=resolve_device(args.device))
    if not isinstance(head, HPSEstimator):
        raise CheckpointError(f"{head_dir} holds a {type(head).__name__}, not an HPSEstimator head")
    sets = [
        input_types_name(check_input_types(s, "--input_sets"))
        for s in args.input_sets or default_input_sets(args.dataset)
    ]
    settings = {
        "input_sets": sets,
        "data_size": args.data_size,
        "seed": args.seed,
        "mean_pose_file": args.mean_pose_file,
    }
    previous = reusable_result(head_dir, args.split, args.dataset, settings, args.overwrite)
    if previous is not None:
        return previous
    rep, rep_dir = load_representation_model(head.config.pretrained_representation_model, device=args.device)
    head.attach_representation(rep)  # refuses another version of the model the head was trained on
    body = head.body_model(head.pose_head.init_state.device)
    errors: dict[str, dict[str, torch.Tensor]] = {}
    targets: dict[bytes, tuple[torch.Tensor, torch.Tensor]] = {}
    for name in sets:
        feats = compute_intermodality_features(
            rep,
            args.dataset,
            args.split,
            name,
            model_dir=rep_dir,
            root=args.cache_dir,
            batch_size=args.batch_size,
            device=args.device,
            frozen_root=args.feature_cache_dir,
            progress=args.progress,
        )
        ids = feats.data_ids[: args.data_size]
        if ids.tobytes() not in targets:
            targets[ids.tobytes()] = split_targets(args.dataset, args.split, ids, head.config.num_body_joints)
        poses, shapes = targets[ids.tobytes()]
        pred = predict_from_xbar(head, feats.features()[: len(ids)], args.batch_size)
        betas = uses_betas(head, check_input_types(name))
        errors[name] = hps_errors(
            body, pred["rotations"], poses, pred["betas"] if betas else None, shapes[:, :10] if betas else None
        )
    mean = load_mean_pose(args.mean_pose_file) if args.mean_pose_file else mean_smplx_pose(args.dataset, "train")
    poses, shapes = next(iter(targets.values()))
    with_betas = head.shape_head is not None
    mean_rot = axis_angle_to_matrix(mean.pose[: head.config.num_body_joints]).expand(len(poses), -1, -1, -1)
    mean_betas = mean.betas[:10].expand(len(poses), -1) if with_betas else None
    errors[BASELINE] = hps_errors(body, mean_rot, poses, mean_betas, shapes[:, :10] if with_betas else None)
    metrics = {name: summarize(values, args.seed) for name, values in errors.items()}
    comparisons = {}
    for a, b in (("images+texts", "images"), ("images", BASELINE), ("texts", BASELINE), ("poses", "images")):
        if a in errors and b in errors and len(errors[a]["pa_mpjpe_mm"]) == len(errors[b]["pa_mpjpe_mm"]):
            comparisons[f"{a} - {b}"] = {
                m: paired_difference(errors[a][m], errors[b][m], args.seed) for m in ("pa_mpjpe_mm", "mpjpe_mm")
            }
    return save_result(
        head_dir,
        args.split,
        args.dataset,
        settings,
        len(poses),
        metrics,
        comparisons=comparisons,
        representation_model=str(rep_dir),
        body_model=getattr(body, "kind", "?"),
    )


def format_table(result: dict[str, Any]) -> str:
    """One line per input set: each metric's mean [95% interval]; then the paired comparisons."""
    names = ("pa_mpjpe_mm", "mpjpe_mm", "pve_mm", "rotation_error_deg")
    lines = [f"{'input':<14}" + "".join(f"{n:>26}" for n in names)]
    for key, metrics in result["metrics"].items():
        cells = "".join(f"{m['value']:>9.1f} [{m['low']:6.1f},{m['high']:6.1f}]" for m in (metrics[n] for n in names))
        lines.append(f"{key:<14}{cells}")
    for key, diff in result.get("comparisons", {}).items():
        pa = diff["pa_mpjpe_mm"]
        lines.append(
            f"{key}: PA-MPJPE {pa['value']:+.1f} mm [{pa['low']:+.1f}, {pa['high']:+.1f}] ({pa['relative']:+.1%})"
        )
    return "\n".join(lines)


@script_main(InputTypesError)
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    print(format_table(evaluate(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
