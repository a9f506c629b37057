"""Quickstart step: human mesh recovery on the representation (the paper's Table 3, on the offline world).

`hps_heads` trains an HPSEstimator head on the image x̄ of PoseEmbroider and of the Aligner (the published
recipe's flags, `train_pose_estimation.py`; x̄ cached once per split beside the representation model), then
evaluates each head on the validation split for every input set the dataset offers (images, texts,
images+texts, poses as an upper bound; `evaluate_pose_estimation.py`): PA-MPJPE, MPJPE, PVE (mm) and the
rotation error (degrees) on the 22 SMPL-X joints with zero translation, with 95% bootstrap intervals, beside
the training split's mean pose and the image encoder's own pose regression. The two heads are compared on
the same samples (paired bootstrap of PoseEmbroider - Aligner per input set).

CPU sizes (`DownstreamSizes`): fewer epochs than the recipe's 100 (the 2,048 training crops are fitted in a
few; validation loss picks the best epoch).
"""

from __future__ import annotations

from typing import Any

from poseembroider.devices import torch_threads
from poseembroider.downstream.pose_estimation import evaluate_pose_estimation, train_pose_estimation
from poseembroider.downstream.pose_estimation.evaluation import compare_per_sample, load_per_sample, per_sample_path
from poseembroider.evaluation.mesh_recovery import PAPER_PROTOCOL
from poseembroider.quickstart.context import QuickstartContext

HEAD_MODELS = ("PoseEmbroider", "Aligner")
"""Representation models a head is trained on, in order."""

METRICS = ("pa_mpjpe_mm", "mpjpe_mm", "pve_mm", "rotation_error_deg")


def head_shortname(representation: str) -> str:
    return f"hpsestimator_model_{representation.lower()}_synthscript"


def train_and_evaluate_head(ctx: QuickstartContext, representation: str) -> dict[str, Any]:
    """Train the head on `representation`'s image x̄, evaluate every input set; the result file's content
    (`metrics[input set][protocol][metric]`, `comparisons`) plus the head's shortname and folder."""
    sizes = ctx.downstream_sizes
    dataset = ctx.require_synth().script_name
    shortname = head_shortname(representation)
    run_dir = ctx.run_dir(f"hps_{representation.lower()}")
    argv = [
        "--dataset", dataset,
        "--pretrained_representation_model", ctx.require_core_name(representation),
        "--representation_model_input_types", "images",
        "--predict_bodyshape", "--cached_embeddings_file", "auto", "--no_img_augmentation",
        "--lr", str(sizes.hps_lr), "--wd", "0.0001", "--batch_size", str(sizes.hps_batch_size),
        "--epochs", str(sizes.hps_epochs), "--val_every", "1",
        "--output_dir", str(run_dir), "--shortname", shortname,
        "--no_progress", "--no_tensorboard",
    ]  # fmt: skip
    with torch_threads(sizes.torch_threads):
        summary = train_pose_estimation.train(train_pose_estimation.build_parser().parse_args(argv))
        args = evaluate_pose_estimation.build_parser().parse_args(
            ["--model_path", shortname, "--dataset", dataset, "--device", "cpu", "--no_progress", "--overwrite"]
        )
        result = evaluate_pose_estimation.evaluate(args)
    print(f"[quickstart] HPS head on {representation} x̄ (images), {dataset} val ({result['size']} samples):")
    print(evaluate_pose_estimation.format_table(result))
    return {"shortname": shortname, "best_dir": summary["best_dir"], "best_epoch": summary["best_epoch"], **result}


def paper_means(result: dict[str, Any]) -> dict[str, dict[str, float]]:
    """input set -> metric -> mean, on the paper's protocol."""
    return {
        name: {metric: round(summary[PAPER_PROTOCOL][metric]["value"], 2) for metric in METRICS}
        for name, summary in result["metrics"].items()
    }


def step_hps_heads(ctx: QuickstartContext) -> dict[str, Any]:
    """HPS heads on PoseEmbroider and on the Aligner; their errors beside the mean pose and the image encoder."""
    dataset = ctx.require_synth().script_name
    heads = {name.lower(): train_and_evaluate_head(ctx, name) for name in HEAD_MODELS}
    results: dict[str, Any] = {}
    for name, result in heads.items():
        means = paper_means(result)
        results[name] = {
            "shortname": result["shortname"],
            "best_epoch": result["best_epoch"],
            "val_size": result["size"],
            "val": means,
            "images_gain_over_mean_pose_pct": round(
                100 * (1 - means["images"]["pa_mpjpe_mm"] / means["mean_pose"]["pa_mpjpe_mm"]), 2
            ),
            "comparisons": result.get("comparisons", {}),
        }
    per_sample = {
        name: load_per_sample(per_sample_path(result["model_dir"], "val", dataset)) for name, result in heads.items()
    }
    results["poseembroider_minus_aligner"] = {
        input_set: compare_per_sample(
            per_sample["poseembroider"], per_sample["aligner"], f"{input_set}/{PAPER_PROTOCOL}/pa_mpjpe_mm"
        )
        for input_set in heads["poseembroider"]["metrics"]
        if input_set != evaluate_pose_estimation.BASELINE
    }
    encoder = ctx.results.get("image_encoder", {}).get("val", {})
    results["image_encoder_own_regression_pa_mpjpe"] = encoder.get("pa_mpjpe_mm")
    return results


MESH_RECOVERY_STEPS = {"hps_heads": step_hps_heads}
"""Quickstart steps of this module (after the representation models)."""
