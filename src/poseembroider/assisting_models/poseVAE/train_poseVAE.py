"""Train the PoseVAE with the one Trainer, using the original flags.

    python -m poseembroider.assisting_models.poseVAE.train_poseVAE \\
        --dataset bedlamscript-overlap30_res224_j16_sf11 --model PoseVAE --latentD 32 --num_body_joints 22 \\
        --lr 1e-05 --wd 0.0001 --batch_size 128 --epochs 2000 --val_every 20 --seed 1

(also `poseembroider train-posevae ...`, or `python train_poseVAE.py ...` from this folder). Any dataset
of the registry works (`synthscript-<name>_overlap30_res224_j16_sf11` offline); only its poses are read
(item format 'p'). Flags not given take the published recipe's values (above; Adam, constant LR, loss
weights 1, `kld_epsilon` 10). Checkpoints go to `--output_dir` (default
`GENERAL_EXP_OUTPUT_DIR/PoseVAE/<dataset>/<run name>`): `best/` (lowest validation loss) and `last/`
(+ training state for `--resume`). At the end the best model is registered under `--shortname`
(default `posevae_model_<dataset family>`, i.e. the released model's name `posevae_model_bedlamscript` for
BEDLAM-Script; '' to skip) and its validation metrics are printed as JSON.

On a CPU (the offline world), train on a pose-only pool and replace the mesh terms by the skeleton joint term:

    --dataset synthposes-quickstart_overlap30_res224_j16_sf11 --epochs 32 --batch_size 128 --lr 1e-3 \\
        --lr_scheduler cosine --scheduler_interval step --wloss_v2v 0 --wloss_jts 1 --joints_source skeleton \\
        --decsigma_lr 0.01 --wloss_kld 0.2 --val_every 16

(16,384 pool poses, ~83 s on one core; val MPJPE 31 mm, PA-MPJPE 19 mm, 27 mm PA-MPJPE on the real CMU poses.)
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

from torch.utils.data import Dataset, Subset

from poseembroider.assisting_models.poseVAE.data import PoseTensorDataset
from poseembroider.assisting_models.poseVAE.model_poseVAE import PoseVAE, PoseVAEConfig
from poseembroider.datasets.registry import get_dataset
from poseembroider.training.run_results import fit_and_publish, print_report, run_report
from poseembroider.training.script_args import (
    add_config_arguments,
    add_run_arguments,
    as_usage_error,
    configs_from_args,
    default_output_dir,
    script_main,
    training_run_tag,
)
from poseembroider.training.script_args import default_shortname as model_shortname
from poseembroider.training.state import seed_everything

logger = logging.getLogger(__name__)

DESCRIPTION = "train the PoseVAE (pose variational auto-encoder; its encoder is the frozen pose encoder)"

RECIPE_DEFAULTS: dict[str, Any] = {
    "lr": 1e-05,
    "wd": 0.0001,
    "batch_size": 128,
    "epochs": 2000,
    "val_every": 20,
    "seed": 1,
    "best_metric": "loss",
    "best_mode": "min",
}
"""Trainer settings of the published PoseVAE recipe, used for the flags not given."""

DEFAULT_DATASET = "bedlamscript-overlap30_res224_j16_sf11"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="train_poseVAE.py", description=DESCRIPTION)
    add_run_arguments(parser, "PoseVAE", DEFAULT_DATASET)
    add_config_arguments(parser, PoseVAEConfig, "PoseVAE", RECIPE_DEFAULTS)
    return parser


def run_name(args: argparse.Namespace) -> str:
    """Folder name of a run: the loss flags, then `training_run_tag`."""
    return (
        f"latentD{args.latentD}_wloss{args.wloss_v2v:g}-{args.wloss_jts:g}-{args.wloss_rot:g}-{args.wloss_kld:g}"
        f"_kldeps{args.kld_epsilon:g}_{training_run_tag(args)}"
    )


def default_shortname(dataset: str) -> str:
    """`posevae_model_<family>`: 'bedlamscript-…' gives the released model's name."""
    return model_shortname("PoseVAE", dataset)


def load_datasets(args: argparse.Namespace) -> tuple[Dataset, Dataset]:
    """Train and val pose datasets (item format 'p') of `--dataset`, read once into `PoseTensorDataset`s
    (the model uses the poses only); the train split stays a registry dataset with `--apply_LR_augmentation`,
    whose flips are drawn per item."""
    common = {"item_format": "p", "num_body_joints": args.num_body_joints}
    train = get_dataset(
        args.dataset, "train", lr_flip_probability=0.5 if args.apply_LR_augmentation else 0.0, seed=args.seed, **common
    )
    val = PoseTensorDataset.from_dataset(get_dataset(args.dataset, "val", **common))
    if args.data_size:
        train = Subset(train, range(min(args.data_size, len(train))))
    if not args.apply_LR_augmentation:
        train = PoseTensorDataset.from_dataset(train)
    return train, val


def run(argv: Sequence[str] | None = None, body_model: Any = None) -> dict[str, Any]:
    """Parse `argv` (the script's flags), train, register; returns the report `main` prints.

    `body_model`: the `BodyModel` of the losses (default: built on first use). Raises `UsageError` for bad
    flags or an unreadable `--dataset`, before any training.
    """
    args = build_parser().parse_args(argv)
    model_config, trainer_config = configs_from_args(
        args, PoseVAEConfig, default_output_dir(args.model, args.dataset, run_name(args))
    )
    with as_usage_error(flag=f"--dataset {args.dataset}"):
        train_dataset, val_dataset = load_datasets(args)
    shortname = default_shortname(args.dataset) if args.shortname is None else args.shortname
    seed_everything(trainer_config.seed)  # the weight initialisation follows --seed too
    model = PoseVAE(model_config).set_body_model(body_model)
    return run_report(fit_and_publish(model, trainer_config, train_dataset, val_dataset, shortname))


@script_main()
def main(argv: Sequence[str] | None = None) -> int:
    print_report(run(argv))
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(main())
