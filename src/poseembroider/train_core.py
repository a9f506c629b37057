"""Train PoseEmbroider or the Aligner (original_system.md §2.8), with the original's flags:

    python train_core.py --model PoseEmbroider --dataset bedlamscript-overlap30_res224_j16_sf11 \\
        --latentD 512 --l2normalize --num_body_joints 22 --image_encoder_name smplerx_vitb32 \\
        --pose_encoder_name posevae --text_encoder_name posetext --encoder_projection_type layerplus \\
        --external_encoder_projection_type none --embroider_core_type transformer --retrieval_loss symBBC \\
        --single_partials --dual_partials --lr 0.0002 --lr_scheduler stepLR --lr_step 400 --lr_gamma 0.5 \\
        --log_step 50 --val_every 5 --batch_size 128 --epochs 350 --seed 1

(also `python -m poseembroider.train_core` and `poseembroider train-core`). Aligner: `--model Aligner
--external_encoder_projection_type mediummlpxs`.

Frozen features: with `--no_img_augmentation`, the frozen encoders run once per split and their outputs
are cached (`frozen_features`, `--image_feature_mode exact|compact`); training then reads features, not
pixels. With image augmentation on (the original's default), the encoders run live on every batch.
Validation (every `--val_every` epochs) computes the 9-query-type retrieval metrics; the best checkpoint by
`mRecall` is registered under `--shortname` (default `<model>_model_<dataset family>`).

Beyond the original: `--pose_text_pool DATASET` (cached features only) adds to every batch a sub-batch of
`--pose_text_pool_ratio` x its size drawn from a dataset of poses and captions without images (the offline
world's `synthposes-<version>`: many more sampled poses than are rendered), trained with the loss terms of
the pose and text modalities; validation stays on `--dataset`.

Difference with the original: `--lr_scheduler stepLR` is applied (the original never stepped it); pass
`--lr_scheduler none` for the published constant LR.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset, Subset

from poseembroider.assisting_models.poseText.data import text_collate_fn
from poseembroider.config import non_negative_int, positive_int
from poseembroider.datasets.registry import get_dataset
from poseembroider.devices import torch_threads
from poseembroider.encoders import FrozenEncoders
from poseembroider.features.frozen import (
    CachedFeatureDataset,
    WithPoolBatches,
    collate_batched,
    compute_frozen_features,
)
from poseembroider.model import REPRESENTATION_MODELS, CoreConfig, RepresentationModel, encoder_fields
from poseembroider.training.config import TrainerConfig, dataclass_from_args, finite_float
from poseembroider.training.run_results import fit_and_publish, print_report, run_report
from poseembroider.training.script_args import (
    UsageError,
    add_config_arguments,
    add_run_arguments,
    as_usage_error,
    configs_from_args,
    default_output_dir,
    default_shortname,
    script_main,
    training_run_tag,
)
from poseembroider.training.state import seed_everything

logger = logging.getLogger(__name__)

DEFAULT_DATASET = "bedlamscript-overlap30_res224_j16_sf11"

RECIPE_DEFAULTS: dict[str, Any] = {
    "lr": 0.0002,
    "wd": 0.0,
    "lr_scheduler": "stepLR",
    "lr_step": 400,
    "lr_gamma": 0.5,
    "log_step": 50,
    "val_every": 5,
    "batch_size": 128,
    "epochs": 350,
    "seed": 1,
    "drop_last": True,
    "best_metric": "mRecall",
    "best_mode": "max",
}
"""Trainer settings of the published core recipe, used for the flags not given."""

# set from the frozen encoders, not by flags
DERIVED_FIELDS = (
    "image_feature_dim",
    "pose_feature_dim",
    "text_feature_dim",
    "image_encoder_fingerprint",
    "pose_encoder_fingerprint",
    "text_encoder_fingerprint",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="train_core.py", description="train PoseEmbroider or the Aligner")
    data = add_run_arguments(
        parser, "PoseEmbroider", DEFAULT_DATASET, models=tuple(sorted(REPRESENTATION_MODELS)), lr_flip=False
    )
    data.add_argument(
        "--no_img_augmentation",
        dest="img_augmentation",
        action="store_false",
        help="no image augmentation: train on cached frozen features (encoders run once per split)",
    )
    data.add_argument(
        "--pose_text_pool",
        default=None,
        metavar="DATASET",
        help="extra training samples with poses and texts only (e.g. synthposes-<version>), as a sub-batch of "
        "every batch trained on the pose and text terms (needs --no_img_augmentation)",
    )
    data.add_argument(
        "--pose_text_pool_ratio",
        type=finite_float,
        default=1.0,
        help="size of the pose-text sub-batch, relative to --batch_size",
    )
    data.add_argument(
        "--feature_cache_dir",
        default=None,
        help="root of the frozen-feature caches (default: DATA_CACHE_DIR/frozen_features)",
    )
    data.add_argument("--feature_batch_size", type=positive_int, default=32, help="batch size when caching features")
    data.add_argument(
        "--torch_threads",
        type=non_negative_int,
        default=0,
        help="torch intra-op threads (0: torch's default); 1 is faster on a CPU shared with other jobs",
    )
    add_config_arguments(parser, CoreConfig, "PoseEmbroider", RECIPE_DEFAULTS, exclude=DERIVED_FIELDS, title="model")
    return parser


def run_name(args: argparse.Namespace) -> str:
    """Folder name of a run: model, architecture and training bundles, then `training_run_tag`."""
    name = f"{args.model}_latentD{args.latentD}_{args.embroider_core_type if args.model == 'PoseEmbroider' else ''}"
    name += f"{args.external_encoder_projection_type}_{args.image_feature_mode}"
    parts = [
        p for p, flag in (("s", args.single_partials), ("d", args.dual_partials), ("t", args.triplet_partial)) if flag
    ]
    name += f"_{''.join(parts)}_{training_run_tag(args)}"
    if args.no_projection_heads:
        name += "_noheads"
    if not args.img_augmentation:
        name += "_noaug"
    return name


def build_datasets(args: argparse.Namespace, model: RepresentationModel) -> tuple[Dataset, Dataset, Any]:
    """(train, val, collate_fn): cached features without image augmentation, raw items otherwise."""
    if args.img_augmentation:
        tokenizer = model.frozen_encoders.encoders["text"].tokenizer
        common = {"item_format": "ipt", "tokenizer": tokenizer, "num_body_joints": args.num_body_joints}
        train = get_dataset(
            args.dataset, "train", img_processing="smplerx_train", caption_selection="rand", seed=args.seed, **common
        )
        val = get_dataset(args.dataset, "val", img_processing="smplerx_eval", **common)
        collate = text_collate_fn(tokenizer)
    else:
        root = Path(args.feature_cache_dir) if args.feature_cache_dir else None
        stores = {
            split: compute_frozen_features(
                args.dataset,
                split,
                model.frozen_encoders,
                args.image_feature_mode,
                batch_size=args.feature_batch_size,
                num_workers=args.num_workers,
                root=root,
            )
            for split in ("train", "val")
        }
        train = CachedFeatureDataset(stores["train"], "rand", seed=args.seed)
        val = CachedFeatureDataset(stores["val"], "deterministic-mix")
        collate = collate_batched
        if args.pose_text_pool:
            with as_usage_error(flag=f"--pose_text_pool {args.pose_text_pool}"):
                pool_stores = compute_frozen_features(
                    args.pose_text_pool,
                    "train",
                    model.frozen_encoders,
                    modalities=("pose", "text"),
                    batch_size=args.feature_batch_size,
                    num_workers=args.num_workers,
                    root=root,
                )
            pool = CachedFeatureDataset(pool_stores, "rand", seed=args.seed + 1)
            train = WithPoolBatches(train, pool, args.pose_text_pool_ratio, seed=args.seed)
    if args.data_size:
        train = Subset(train, range(min(args.data_size, len(train))))
    return train, val, collate


def train(args: argparse.Namespace) -> dict[str, Any]:
    """Build, train and register the model described by parsed `args`; returns the `fit_and_publish` summary."""
    with torch_threads(args.torch_threads if args.torch_threads > 0 else None):
        encoders = FrozenEncoders(
            {"image": args.image_encoder_name, "pose": args.pose_encoder_name, "text": args.text_encoder_name}
        )
        model_config, trainer_config = configs_from_args(
            args, CoreConfig, default_output_dir(args.model, args.dataset, run_name(args)), **encoder_fields(encoders)
        )
        seed_everything(args.seed)
        model = REPRESENTATION_MODELS[args.model](model_config)
        model.attach_encoders(encoders)
        with as_usage_error(flag=f"--dataset {args.dataset}"):
            train_set, val_set, collate = build_datasets(args, model)
        shortname = default_shortname(args.model, args.dataset) if args.shortname is None else args.shortname
        return fit_and_publish(model, trainer_config, train_set, val_set, shortname, collate)


@script_main()
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.pose_text_pool and args.img_augmentation:
        raise UsageError("--pose_text_pool trains on cached features: add --no_img_augmentation")
    with as_usage_error(ValueError):  # flag checks before any work
        dataclass_from_args(CoreConfig, args)
        dataclass_from_args(TrainerConfig, args, output_dir=args.output_dir or "-")
    print_report(run_report(train(args)))
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(main())
