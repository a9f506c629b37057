"""Train the HPS head on a frozen representation (original_system.md §2.9), with the original's flags:

    python downstream/pose_estimation/train_pose_estimation.py --model HPSEstimator --latentD 512 \\
        --num_body_joints 22 --num_shape_coeffs 10 --predict_bodyshape --representation_model_input_types images \\
        --pretrained_representation_model poseembroider_model_bedlamscript --cached_embeddings_file auto \\
        --no_img_augmentation --lr 0.0001 --wd 0.0001 --log_step 100 --val_every 1 --batch_size 64 --epochs 100 --seed 1

(also `poseembroider train-pose-estimation`). With `--cached_embeddings_file`, x̄ of the train and val splits
is read from the caches of `features.intermodality` (computed first when missing; `auto`, or the original's
filemark `e<epoch>`: the caches beside the representation model; a folder: caches under that folder), and a
step costs only the head. Without it, x̄ is computed live from the raw inputs by the frozen representation
model at every step (image augmentation possible). The head starts from the training split's mean pose
(`mean_pose.py`, or `--mean_pose_file`); `--latentD` follows the representation model. The best checkpoint
(validation loss) is registered as `hpsestimator_model_<representation class>_<dataset family>` unless
`--shortname` says otherwise. Difference with the original: `--lr_scheduler` flags, when given, are applied.

Measured on the quickstart world (2,048 / 512 crops, PoseEmbroider and Aligner of /work/final1, 1 torch thread,
shared 2-core machine): ~0.14 s per step of 64 on cached x̄ (~450 samples/s; live from crops: ~10x slower,
`benchmarks/bench_hps_head.py`); the validation loss is lowest after 5-8 epochs at lr 1e-4 (more overfits
2,048 samples; lr 3e-4 / 1e-3, dropout 0-0.5 did not do better): `--epochs 10 --val_every 2` is enough there.
Val PA-MPJPE on image x̄: 122.2 mm (PoseEmbroider) / 121.7 (Aligner) vs 134.8 for the mean pose, close to the
frozen image encoder's own end-to-end pose regression on those crops (119.4 vs 134.4): the image features cap it.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch.utils.data import Subset

from poseembroider.assisting_models.poseText.data import text_collate_fn
from poseembroider.config import non_negative_int, positive_int
from poseembroider.datasets.registry import get_dataset
from poseembroider.devices import torch_threads
from poseembroider.downstream.input_types import INPUT_TYPES, check_input_types, input_types_name
from poseembroider.downstream.pose_estimation.data import TensorItems, split_targets
from poseembroider.downstream.pose_estimation.mean_pose import load_mean_pose, mean_smplx_pose
from poseembroider.downstream.pose_estimation.model_pose_estimation import (
    HPSEstimator,
    HPSEstimatorConfig,
    representation_fingerprint,
)
from poseembroider.features.frozen import collate_batched
from poseembroider.features.intermodality import compute_intermodality_features
from poseembroider.representation import load_representation_model
from poseembroider.training.run_results import fit_and_publish, print_report, run_report
from poseembroider.training.script_args import (
    UsageError,
    add_config_arguments,
    add_run_arguments,
    as_usage_error,
    configs_from_args,
    dataset_family,
    default_output_dir,
    script_main,
    training_run_tag,
)
from poseembroider.training.state import seed_everything

DEFAULT_DATASET = "bedlamscript-overlap30_res224_j16_sf11"
RECIPE_DEFAULTS: dict[str, Any] = {
    "lr": 0.0001,
    "wd": 0.0001,
    "log_step": 100,
    "val_every": 1,
    "batch_size": 64,
    "epochs": 100,
    "seed": 1,
    "best_metric": "loss",
    "best_mode": "min",
}
DERIVED_FIELDS = ("representation_model_fingerprint", "regressor_hidden", "regressor_dropout", "n_iterations")
FILEMARK = re.compile(r"auto|e\d+")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="train_pose_estimation.py", description="train the HPS regression head")
    data = add_run_arguments(parser, "HPSEstimator", DEFAULT_DATASET, lr_flip=False)
    data.add_argument(
        "--cached_embeddings_file",
        default=None,
        metavar="auto|e<epoch>|FOLDER",
        help="train on cached x̄ (computed first when missing): 'auto' (or a filemark e<epoch>) for the caches "
        "beside the representation model, or a folder of caches; absent: x̄ computed live at every step",
    )
    data.add_argument("--no_img_augmentation", dest="img_augmentation", action="store_false", help="live x̄ only")
    data.add_argument("--mean_pose_file", default=None, help="mean pose .npz (default: computed from --dataset train)")
    data.add_argument("--feature_batch_size", type=positive_int, default=32, help="batch size when caching x̄")
    data.add_argument(
        "--torch_threads", type=non_negative_int, default=0, help="torch CPU threads (0: torch's default)"
    )
    add_config_arguments(parser, HPSEstimatorConfig, "HPSEstimator", RECIPE_DEFAULTS, exclude=DERIVED_FIELDS)
    for action in parser._actions:  # noqa: SLF001 - the original's flag takes its values after it, unquoted
        if action.dest == "representation_model_input_types":
            action.choices = INPUT_TYPES
    return parser


def cache_root(spec: str) -> Path | None:
    """None (the caches beside the representation model) for 'auto' or a filemark, else the folder given."""
    return None if FILEMARK.fullmatch(spec) else Path(spec)


def build_datasets(args: argparse.Namespace, rep: Any, rep_dir: Path, types: tuple[str, ...]) -> tuple:
    """(train, val, collate_fn): cached x̄ + targets as tensors, or raw items for live x̄."""
    if args.cached_embeddings_file is not None:
        sets = []
        for split in ("train", "val"):
            feats = compute_intermodality_features(
                rep,
                args.dataset,
                split,
                types,
                model_dir=rep_dir,
                root=cache_root(args.cached_embeddings_file),
                batch_size=args.feature_batch_size,
                num_workers=args.num_workers,
                progress=args.progress,
            )
            poses, shapes = split_targets(args.dataset, split, feats.data_ids, args.num_body_joints)
            sets.append(TensorItems(xbar=feats.features(), poses=poses, shapes=shapes))
        train, val, collate = sets[0], sets[1], collate_batched
    else:
        letters = "".join(t[0] for t in types if t != "poses") + "p"
        tokenizer = rep.frozen_encoders.encoders["text"].tokenizer if "texts" in types else None
        common = {"item_format": letters, "tokenizer": tokenizer, "num_body_joints": args.num_body_joints}
        processing = "smplerx_train" if args.img_augmentation else "smplerx_eval"
        train = get_dataset(
            args.dataset, "train", img_processing=processing, caption_selection="rand", seed=args.seed, **common
        )
        val = get_dataset(args.dataset, "val", img_processing="smplerx_eval", caption_selection=0, **common)
        collate = text_collate_fn(tokenizer) if tokenizer is not None else None
    if args.data_size:
        train = Subset(train, range(min(args.data_size, len(train))))
    return train, val, collate


def run_name(args: argparse.Namespace, representation: str) -> str:
    name = f"HPSEstimator_{representation}_{input_types_name(args.representation_model_input_types)}"
    name += ("_shape" if args.predict_bodyshape else "") + ("_smpllosses" if args.smpl_losses else "")
    return f"{name}_{training_run_tag(args)}" + ("_cached" if args.cached_embeddings_file is not None else "")


def train(args: argparse.Namespace) -> dict[str, Any]:
    """Build, train and register the head described by parsed `args`; returns the `fit_and_publish` summary."""
    with torch_threads(args.torch_threads if args.torch_threads > 0 else None):
        with as_usage_error(flag=f"--pretrained_representation_model {args.pretrained_representation_model}"):
            rep, rep_dir = load_representation_model(args.pretrained_representation_model, device="cpu")
        types = check_input_types(args.representation_model_input_types, "--representation_model_input_types")
        given = Path(args.pretrained_representation_model)
        overrides = {
            "latentD": rep.config.latentD,
            "representation_model_fingerprint": representation_fingerprint(rep),
            "pretrained_representation_model": str(given.resolve()) if given.exists() else str(given),
        }
        rep_class = type(rep).__name__
        model_config, trainer_config = configs_from_args(
            args,
            HPSEstimatorConfig,
            default_output_dir("HPSEstimator", args.dataset, run_name(args, rep_class)),
            **overrides,
        )
        mean = load_mean_pose(args.mean_pose_file) if args.mean_pose_file else None
        with as_usage_error(flag=f"--dataset {args.dataset}"):
            mean = mean or mean_smplx_pose(args.dataset, "train", args.num_body_joints)
            seed_everything(args.seed)
            head = HPSEstimator(model_config)
            head.set_mean_pose(mean.pose)
            head.attach_representation(rep)
            train_set, val_set, collate = build_datasets(args, rep, rep_dir, types)
        shortname = args.shortname
        if shortname is None:
            shortname = f"hpsestimator_model_{rep_class.lower()}_{dataset_family(args.dataset)}"
        return fit_and_publish(head, trainer_config, train_set, val_set, shortname, collate)


@script_main()
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.pretrained_representation_model:
        raise UsageError("--pretrained_representation_model: give the shortname or folder of PoseEmbroider / Aligner")
    cached = args.cached_embeddings_file is not None
    if cached and args.img_augmentation and "images" in args.representation_model_input_types:
        raise UsageError("--cached_embeddings_file: cached x̄ has no image augmentation; add --no_img_augmentation")
    print_report(run_report(train(args)))
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(main())
