"""Quickstart steps that train and evaluate the representation models on the synthetic script dataset.

`core_poseembroider` and `core_aligner` run `train_core.py` (published flags: `--l2normalize
--single_partials --dual_partials`, symBBC, layerplus projections; Aligner with `mediummlpxs`) on the
frozen encoders the earlier steps registered (image encoder, PoseVAE, PoseText), over cached frozen
features (`--no_img_augmentation`; compact image mode by default, see `CoreSizes`), then `evaluate_core`
on the validation split: R@1/5/10 of the 9 query types and mRecall single / dual / total, beside the
chance level of the gallery size (R@k of a random ranking: k / N). Each model is registered under
`<model>_model_synthscript`.

CPU sizes differ from the recipe (350 epochs at batch 128 over 50k samples): fewer epochs at batch 32 and a
higher learning rate (`CoreSizes`); the architecture is the published one. Beyond the recipe, every batch
also carries as many captioned poses of the pose pool (`--pose_text_pool`), trained on the pose and text
terms: the rendered set is small, poses and captions are cheap.

`pose_text_features` caches the frozen pose and text features those runs read (the pool's and the script
dataset's splits) as soon as PoseVAE and PoseText exist: on the lane beside the image encoder's training, so the
representation models, which wait for the image encoder, find them cached (the pool's 16,384 x 3 captions were
the longest part of PoseEmbroider's step).
"""

from __future__ import annotations

from typing import Any

from poseembroider import evaluate_core, train_core
from poseembroider.devices import torch_threads
from poseembroider.encoders import FrozenEncoders
from poseembroider.evaluation.retrieval import chance_mrecall
from poseembroider.features.frozen import compute_frozen_features
from poseembroider.quickstart.context import QuickstartContext


def step_pose_text_features(ctx: QuickstartContext) -> dict[str, Any]:
    """Cache the frozen pose and text features of the pose pool (train) and of the script dataset (train, val)
    where `train_core.py` reads them (same encoders, cache folder and batch size)."""
    encoders = FrozenEncoders(ctx.require_encoder_names(("pose", "text")))
    batch_size = train_core.build_parser().get_default("feature_batch_size")
    splits = [(ctx.require_pool_names()["poses"], "train")]
    splits += [(ctx.require_synth().script_name, split) for split in ("train", "val")]
    stores: dict[str, dict[str, str]] = {}
    with torch_threads(ctx.core_sizes.torch_threads):
        for dataset, split in splits:
            cached = compute_frozen_features(dataset, split, encoders, batch_size=batch_size)
            stores[f"{dataset}/{split}"] = {m: str(store.directory) for m, store in cached.items()}
    return {"stores": stores}


def train_and_evaluate(ctx: QuickstartContext, model: str) -> dict[str, Any]:
    """Train `model` ('PoseEmbroider' or 'Aligner') with train_core.py, evaluate it with evaluate_core.py."""
    sizes = ctx.core_sizes
    dataset = ctx.require_synth().script_name
    names = ctx.require_encoder_names()
    shortname = train_core.default_shortname(model, dataset)
    run_dir = ctx.run_dir(model.lower())
    argv = [
        "--model", model, "--dataset", dataset,
        "--image_encoder_name", names["image"], "--pose_encoder_name", names["pose"],
        "--text_encoder_name", names["text"],
        "--l2normalize", "--single_partials", "--dual_partials",
        "--external_encoder_projection_type", "mediummlpxs" if model == "Aligner" else "none",
        "--no_img_augmentation", "--image_feature_mode", sizes.image_feature_mode,
        "--epochs", str(sizes.epochs), "--batch_size", str(sizes.batch_size), "--lr", str(sizes.lr),
        "--lr_scheduler", "none", "--val_every", str(sizes.val_every),
        "--output_dir", str(run_dir), "--shortname", shortname, "--no_progress",
        "--torch_threads", str(sizes.torch_threads),
    ]  # fmt: skip
    if sizes.pose_text_pool_ratio > 0:
        argv += ["--pose_text_pool", ctx.require_pool_names()["poses"],
                 "--pose_text_pool_ratio", str(sizes.pose_text_pool_ratio)]  # fmt: skip
    with torch_threads(sizes.torch_threads):
        if train_core.main(argv) != 0:
            raise RuntimeError(f"train_core.py {' '.join(argv)} failed")
        args = evaluate_core.build_parser().parse_args(
            ["--model_path", str(run_dir), "--dataset", dataset, "--no_progress", "--overwrite"]
        )
        result = evaluate_core.run_evaluation(args)
    metrics = result["metrics"]
    chance = chance_mrecall(result["size"])
    print(f"[quickstart] {model} on {dataset} val ({result['size']} samples), chance mRecall {chance:.2f}:")
    print(evaluate_core.format_table(metrics))
    print(evaluate_core.format_dual_vs_single(result["dual_vs_single"]))
    ctx.core_names[model] = shortname
    return {
        "shortname": shortname,
        "model_dir": result["model_dir"],
        "best_epoch": result["epoch"],
        "val_size": result["size"],
        "image_feature_mode": sizes.image_feature_mode,
        "val": metrics,
        "val_dual_vs_single": result["dual_vs_single"],
        "chance_mRecall": round(chance, 3),
    }


def step_core_poseembroider(ctx: QuickstartContext) -> dict[str, Any]:
    """PoseEmbroider on the synthetic script dataset (`train_core.py`, then `evaluate_core.py`)."""
    return train_and_evaluate(ctx, "PoseEmbroider")


def step_core_aligner(ctx: QuickstartContext) -> dict[str, Any]:
    """The Aligner baseline, same data and encoders."""
    return train_and_evaluate(ctx, "Aligner")


CORE_STEPS = {
    "pose_text_features": step_pose_text_features,
    "core_poseembroider": step_core_poseembroider,
    "core_aligner": step_core_aligner,
}
"""Quickstart steps of this module, in order (after the assisting models)."""
