"""Evaluate an HPS head for every input set of a dataset (original_system.md §5.2):

    python downstream/pose_estimation/evaluate_pose_estimation.py \\
        --model_path hpsestimator_model_poseembroider_bedlamscript --dataset bedlamscript-overlap30_res224_j16_sf11

(also `poseembroider evaluate-pose-estimation`). Input sets: `--input_sets images texts images+texts poses`
(default: those the dataset offers: images, texts, images+texts, and poses as an upper bound). x̄ of each set
comes from the x̄ cache of the head's representation model (computed first when missing; `--cache_dir` as
in `cache_intermodality_features`). Per set, `evaluation.mesh_recovery`: PA-MPJPE, MPJPE, PVE (mm) and the mean
geodesic rotation error (degrees) on SMPL-X joints 0-21 with zero translation (`smplx22`, the paper's), and the
14-joint H36M protocol (`h36m14`) when `--h36m_regressor` / `config.H36M_REGRESSOR_FILE` exists (else the result
says which file is missing); means with 95% bootstrap intervals. The baseline is the training split's mean pose;
`comparisons` holds paired differences on the same samples (images+texts - images, images - mean pose, ...).
Outputs next to the head: `result_<split>_<dataset>.json` (reused while the settings are unchanged,
`--overwrite` recomputes) and the per-sample errors `per_sample_<split>_<dataset>.npz` (to compare two heads).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from poseembroider.datasets.registry import parse_dataset_name
from poseembroider.devices import resolve_device
from poseembroider.downstream.input_types import InputTypesError, check_input_types, input_types_name
from poseembroider.downstream.pose_estimation.data import split_targets
from poseembroider.downstream.pose_estimation.evaluation import (
    mean_pose_predictions,
    per_sample_path,
    predict_from_xbar,
    save_per_sample,
    uses_betas,
)
from poseembroider.downstream.pose_estimation.mean_pose import load_mean_pose, mean_smplx_pose
from poseembroider.downstream.pose_estimation.model_pose_estimation import HPSEstimator
from poseembroider.evaluation.mesh_recovery import PAPER_PROTOCOL, MeshRecoveryErrors, evaluate_smplx_predictions
from poseembroider.evaluation.result_files import reusable_result, save_result
from poseembroider.features.intermodality import compute_intermodality_features
from poseembroider.models.pretrained import CheckpointError, load_pretrained, resolve_model_dir
from poseembroider.representation import load_representation_model
from poseembroider.training.script_args import add_evaluation_arguments, script_main

BASELINE = "mean_pose"
COMPARISONS = (("images+texts", "images"), ("images", BASELINE), ("texts", BASELINE), ("poses", "images"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="evaluate_pose_estimation.py", description="evaluate an HPS head")
    add_evaluation_arguments(parser, batch_size=256)
    parser.add_argument("--input_sets", nargs="+", default=None, help="e.g. images texts images+texts poses")
    parser.add_argument("--cache_dir", default=None, help="folder of the x̄ caches (default: beside the model)")
    parser.add_argument("--feature_cache_dir", default=None, help="root of the frozen-feature caches")
    parser.add_argument("--mean_pose_file", default=None, help="baseline pose .npz (default: --dataset train)")
    parser.add_argument("--h36m_regressor", default=None, help="J_regressor_h36m file (default: config's)")
    return parser


def default_sets(args: argparse.Namespace) -> list[str]:
    """The input sets a dataset offers, poses last (the upper bound): images, texts, images+texts, poses for
    a dataset with both; images, poses for one without texts (3DPW); texts, poses for a pose-only pool."""
    family, _ = parse_dataset_name(args.dataset)
    sets = [name for name, has in (("images", family.has_images), ("texts", family.has_texts)) if has]
    if family.has_images and family.has_texts:
        sets.append("images+texts")
    return [*sets, "poses"]


def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    head_dir = resolve_model_dir(args.model_path, args.checkpoint)
    head = load_pretrained(head_dir, map_location=resolve_device(args.device))
    if not isinstance(head, HPSEstimator):
        raise CheckpointError(f"{head_dir} holds a {type(head).__name__}, not an HPSEstimator head")
    sets = [input_types_name(check_input_types(s, "--input_sets")) for s in args.input_sets or default_sets(args)]
    settings = {
        "input_sets": sets,
        "data_size": args.data_size,
        "seed": args.seed,
        "mean_pose_file": args.mean_pose_file,
    }
    settings["h36m_regressor"] = args.h36m_regressor
    previous = reusable_result(head_dir, args.split, args.dataset, settings, args.overwrite)
    if previous is not None:
        return previous
    rep, rep_dir = load_representation_model(head.config.pretrained_representation_model, device=args.device)
    head.attach_representation(rep)  # refuses another version of the model the head was trained on
    body = head.body_model(head.pose_head.init_state.device)
    errors: dict[str, MeshRecoveryErrors] = {}
    ids = poses = shapes = None
    for name in sets:
        feats = compute_intermodality_features(
            rep, args.dataset, args.split, name, model_dir=rep_dir, root=args.cache_dir, batch_size=args.batch_size,
            device=args.device, frozen_root=args.feature_cache_dir, progress=args.progress,
        )  # fmt: skip
        if ids is None:
            ids = feats.data_ids[: args.data_size]
            poses, shapes = split_targets(args.dataset, args.split, ids, head.config.num_body_joints)
        elif not np.array_equal(feats.data_ids[: len(ids)], ids):
            raise ValueError(f"input set {name}: its x̄ cache holds other samples than {sets[0]}'s")
        pred = predict_from_xbar(head, feats.features()[: len(ids)], args.batch_size)
        errors[name] = smplx_errors(body, pred, poses, shapes, uses_betas(head, check_input_types(name)), args)
    mean = load_mean_pose(args.mean_pose_file) if args.mean_pose_file else mean_smplx_pose(args.dataset, "train")
    baseline = mean_pose_predictions(mean, len(ids), head.config.num_body_joints, head.shape_head is not None)
    errors[BASELINE] = smplx_errors(body, baseline, poses, shapes, head.shape_head is not None, args)
    metrics = {name: result.summary(seed=args.seed) for name, result in errors.items()}
    comparisons = {
        f"{a} - {b}": {p: {m: c.as_dict() for m, c in by_metric.items()} for p, by_metric in cmp.items()}
        for a, b in COMPARISONS
        if a in errors and b in errors
        for cmp in [errors[a].compare(errors[b], seed=args.seed)]
    }
    save_per_sample(per_sample_path(head_dir, args.split, args.dataset), ids, errors)
    return save_result(
        head_dir, args.split, args.dataset, settings, len(ids), metrics, comparisons=comparisons,
        representation_model=str(rep_dir), body_model=getattr(body, "kind", "?"),
    )  # fmt: skip


def smplx_errors(body, pred: dict, poses, shapes, betas: bool, args: argparse.Namespace) -> MeshRecoveryErrors:
    """Per-sample errors of predictions (`rotations`, `betas`) against the true poses and shapes."""
    return evaluate_smplx_predictions(
        body, pred["rotations"], poses, pred["betas"] if betas else None, shapes[:, :10] if betas else None,
        h36m_regressor=args.h36m_regressor, batch_size=args.batch_size,
    )  # fmt: skip


def format_table(result: dict[str, Any]) -> str:
    """One line per input set: each metric's mean [95% interval] (paper protocol); the paired comparisons."""
    names = ("pa_mpjpe_mm", "mpjpe_mm", "pve_mm", "rotation_error_deg")
    lines = [f"{'input':<14}" + "".join(f"{n:>26}" for n in names)]
    for key, summary in result["metrics"].items():
        cells = (summary[PAPER_PROTOCOL][n] for n in names)
        lines.append(f"{key:<14}" + "".join(f"{m['value']:>9.1f} [{m['low']:6.1f},{m['high']:6.1f}]" for m in cells))
    skipped = next(iter(result["metrics"].values())).get("skipped", {})
    lines += list(skipped.values())
    for key, diff in result.get("comparisons", {}).items():
        pa = diff[PAPER_PROTOCOL]["pa_mpjpe_mm"]
        d, r = pa["difference"], pa["relative"]
        lines.append(f"{key}: PA-MPJPE {d['value']:+.1f} mm [{d['low']:+.1f}, {d['high']:+.1f}] ({r['value']:+.1%})")
    return "\n".join(lines)


@script_main(InputTypesError)
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    print(format_table(evaluate(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
