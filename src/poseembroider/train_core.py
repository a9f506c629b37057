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

Difference with the original: `--lr_scheduler stepLR` is applied (the original never stepped it); pass
`--lr_scheduler none` for the published constant LR.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from poseembroider import config
from poseembroider.model import REPRESENTATION_MODELS, CoreConfig, RepresentationModel
from poseembroider.modalities import MODALITIES
from poseembroider.training.config import TrainerConfig, add_dataclass_arguments, dataclass_from_args

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
    from poseembroider.assisting_models.poseText.train_poseText import set_recipe_defaults

    parser = argparse.ArgumentParser(prog="train_core.py", description="train PoseEmbroider or the Aligner")
    data = parser.add_argument_group("data and run")
    data.add_argument("--model", default="PoseEmbroider", choices=sorted(REPRESENTATION_MODELS))
    data.add_argument("--dataset", default=DEFAULT_DATASET, help="dataset name of the registry (default: %(default)s)")
    data.add_argument(
        "--no_img_augmentation",
        dest="img_augmentation",
        action="store_false",
        help="no image augmentation: train on cached frozen features (encoders run once per split)",
    )
    data.add_argument("--data_size", type=int, default=None, help="keep only the first N training items")
    data.add_argument(
        "--feature_cache_dir",
        default=None,
        help="root of the frozen-feature caches (default: DATA_CACHE_DIR/frozen_features)",
    )
    data.add_argument("--feature_batch_size", type=int, default=32, help="batch size when caching features")
    data.add_argument(
        "--torch_threads",
        type=int,
        default=0,
        help="torch intra-op threads (0: torch's default); 1 is faster on a CPU shared with other jobs",
    )
    data.add_argument(
        "--shortname",
        default=None,
        help="register the best model under this shortname (default: <model>_model_<dataset family>; '' to skip)",
    )
    add_dataclass_arguments(parser, CoreConfig, exclude=DERIVED_FIELDS, title="model")
    add_dataclass_arguments(parser, TrainerConfig, title="training")
    set_recipe_defaults(parser, RECIPE_DEFAULTS)
    return parser


def run_name(args: argparse.Namespace) -> str:
    name = f"{args.model}_latentD{args.latentD}_{args.embroider_core_type if args.model == 'PoseEmbroider' else ''}"
    name += f"{args.external_encoder_projection_type}_{args.image_feature_mode}"
    parts = [
        p for p, flag in (("s", args.single_partials), ("d", args.dual_partials), ("t", args.triplet_partial)) if flag
    ]
    name += f"_{''.join(parts)}_lr{args.lr:g}_bs{args.batch_size}_seed{args.seed}"
    if args.no_projection_heads:
        name += "_noheads"
    if not args.img_augmentation:
        name += "_noaug"
    return name


def default_output_dir(args: argparse.Namespace) -> Path:
    return Path(config.GENERAL_EXP_OUTPUT_DIR) / args.model / args.dataset / run_name(args)


def default_shortname(model: str, dataset: str) -> str:
    return f"{model.lower()}_model_{dataset.partition('-')[0]}"


def core_config(args: argparse.Namespace, encoders: Any) -> CoreConfig:
    """The model config from the flags and the frozen encoders' widths and fingerprints."""
    shapes, prints = encoders.feature_shapes(), encoders.fingerprints()
    derived = {f"{m}_feature_dim": shapes[m][-1] for m in MODALITIES}
    derived.update({f"{m}_encoder_fingerprint": prints[m] for m in MODALITIES})
    return dataclass_from_args(CoreConfig, args, **derived)


def build_datasets(args: argparse.Namespace, model: RepresentationModel) -> tuple[Dataset, Dataset, Any]:
    """(train, val, collate_fn): cached features without image augmentation, raw items otherwise."""
    from torch.utils.data import Subset

    if args.img_augmentation:
        from poseembroider.assisting_models.poseText.data import text_collate_fn
        from poseembroider.datasets.registry import get_dataset

        tokenizer = model.frozen_encoders.encoders["text"].tokenizer
        common = {"item_format": "ipt", "tokenizer": tokenizer, "num_body_joints": args.num_body_joints}
        train = get_dataset(
            args.dataset, "train", img_processing="smplerx_train", caption_selection="rand", seed=args.seed, **common
        )
        val = get_dataset(args.dataset, "val", img_processing="smplerx_eval", **common)
        collate = text_collate_fn(tokenizer)
    else:
        from poseembroider.features.frozen import CachedFeatureDataset, collate_batched, compute_frozen_features

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
    if args.data_size:
        train = Subset(train, range(min(args.data_size, len(train))))
    return train, val, collate


def train(args: argparse.Namespace) -> dict[str, Any]:
    """Build, train and register the model described by parsed `args`; returns the run summary."""
    from poseembroider.encoders import FrozenEncoders
    from poseembroider.training.run_results import publish_best
    from poseembroider.training.state import seed_everything
    from poseembroider.training.trainer import Trainer

    if args.torch_threads > 0:
        import torch

        torch.set_num_threads(args.torch_threads)
    encoders = FrozenEncoders(
        {"image": args.image_encoder_name, "pose": args.pose_encoder_name, "text": args.text_encoder_name}
    )
    model_config = core_config(args, encoders)
    seed_everything(args.seed)
    model = REPRESENTATION_MODELS[args.model](model_config)
    model.attach_encoders(encoders)
    train_set, val_set, collate = build_datasets(args, model)
    if not args.output_dir:
        args.output_dir = str(default_output_dir(args))
    trainer_config = dataclass_from_args(TrainerConfig, args)
    trainer = Trainer(model, train_set, val_set, trainer_config, collate_fn=collate)
    summary = trainer.fit()
    shortname = default_shortname(args.model, args.dataset) if args.shortname is None else args.shortname
    summary = publish_best(summary, trainer_config.output_dir, shortname, trainer.is_main)
    summary.update(train_size=len(train_set), val_size=len(val_set), output_dir=trainer_config.output_dir)
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        dataclass_from_args(CoreConfig, args)  # flag checks before any work
        dataclass_from_args(TrainerConfig, args, output_dir=args.output_dir or "-")
    except ValueError as err:
        parser.error(str(err))
    if args.data_size is not None and args.data_size < 1:
        parser.error(f"--data_size must be >= 1, got {args.data_size}")
    summary = train(args)
    from poseembroider.training.distributed import is_main_process

    if is_main_process():
        keys = ("output_dir", "best_dir", "best_epoch", "shortname", "train_size", "val_size", "best_metrics")
        print(json.dumps({k: summary.get(k) for k in keys}, indent=2))
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(main())
