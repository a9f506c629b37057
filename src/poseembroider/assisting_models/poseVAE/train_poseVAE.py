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
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset, Subset

from poseembroider import config
from poseembroider.assisting_models.poseVAE.model_poseVAE import PoseVAE, PoseVAEConfig
from poseembroider.training.config import TrainerConfig, add_dataclass_arguments, dataclass_from_args
from poseembroider.training.distributed import is_main_process

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

MODELS = ("PoseVAE",)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="train_poseVAE.py", description=DESCRIPTION)
    data = parser.add_argument_group("data and run")
    data.add_argument(
        "--dataset",
        default="bedlamscript-overlap30_res224_j16_sf11",
        help="dataset name of the registry (default: %(default)s)",
    )
    data.add_argument("--model", default="PoseVAE", choices=MODELS, help="model class (default: %(default)s)")
    data.add_argument(
        "--data_size",
        type=int,
        default=None,
        help="keep only the first N training poses (farthest-point-sampling order)",
    )
    data.add_argument(
        "--apply_LR_augmentation", action="store_true", help="mirror training poses left/right with probability 0.5"
    )
    data.add_argument(
        "--shortname",
        default=None,
        help="register the best model under this shortname (default: posevae_model_<dataset family>; '' to skip)",
    )
    add_dataclass_arguments(parser, PoseVAEConfig, title="PoseVAE")
    add_dataclass_arguments(parser, TrainerConfig, title="training")
    _set_recipe_defaults(parser, RECIPE_DEFAULTS)
    for action in parser._actions:  # noqa: SLF001
        if action.dest == "output_dir":
            action.help = (
                "folder for checkpoints, logs and tensorboard/ "
                "(default: GENERAL_EXP_OUTPUT_DIR/PoseVAE/<dataset>/<run name>)"
            )
    return parser


def _set_recipe_defaults(parser: argparse.ArgumentParser, defaults: dict[str, Any]) -> None:
    """Override flag defaults, keeping the '(default: ...)' of their help text true."""
    parser.set_defaults(**defaults)
    for action in parser._actions:  # noqa: SLF001 - argparse offers no public access to the help strings
        if action.dest in defaults and action.help:
            action.help = re.sub(r"\(default: .*\)$", f"(default: {defaults[action.dest]!r})", action.help)


def default_output_dir(args: argparse.Namespace) -> Path:
    """`GENERAL_EXP_OUTPUT_DIR/PoseVAE/<dataset>/<run name from the main flags>`."""
    run = (
        f"latentD{args.latentD}_wloss{args.wloss_v2v:g}-{args.wloss_jts:g}-{args.wloss_rot:g}-{args.wloss_kld:g}"
        f"_kldeps{args.kld_epsilon:g}_lr{args.lr:g}_wd{args.wd:g}_bs{args.batch_size}_seed{args.seed}"
    )
    if args.data_size:
        run += f"_data{args.data_size}"
    if args.apply_LR_augmentation:
        run += "_LRflip"
    return Path(config.GENERAL_EXP_OUTPUT_DIR) / args.model / args.dataset / run


def default_shortname(dataset: str) -> str:
    """`posevae_model_<family>`: 'bedlamscript-…' gives the released model's name."""
    return f"posevae_model_{dataset.partition('-')[0]}"


def load_datasets(args: argparse.Namespace) -> tuple[Dataset, Dataset]:
    """Train and val pose datasets (item format 'p') of `--dataset`."""
    from poseembroider.datasets.registry import get_dataset

    common = {"item_format": "p", "num_body_joints": args.num_body_joints}
    train = get_dataset(
        args.dataset, "train", lr_flip_probability=0.5 if args.apply_LR_augmentation else 0.0, seed=args.seed, **common
    )
    val = get_dataset(args.dataset, "val", **common)
    if args.data_size:
        train = Subset(train, range(min(args.data_size, len(train))))
    return train, val


def train(
    model_config: PoseVAEConfig,
    trainer_config: TrainerConfig,
    train_dataset: Dataset,
    val_dataset: Dataset,
    shortname: str | None = None,
    body_model: Any = None,
) -> dict[str, Any]:
    """Fit a new PoseVAE; returns the Trainer summary plus `best_dir`, `best_metrics` and `shortname`.

    `body_model`: the `BodyModel` of the losses (default: built on first use).
    """
    from poseembroider.training.run_results import publish_best
    from poseembroider.training.state import seed_everything
    from poseembroider.training.trainer import Trainer

    seed_everything(trainer_config.seed)  # the weight initialisation follows --seed too
    model = PoseVAE(model_config).set_body_model(body_model)
    trainer = Trainer(model, train_dataset, val_dataset, trainer_config)
    summary = trainer.fit()
    return publish_best(summary, trainer_config.output_dir, shortname, trainer.is_main)


class UsageError(ValueError):
    """Bad flags or dataset: the message names the flag at fault."""


def run(argv: Sequence[str] | None = None, body_model: Any = None) -> dict[str, Any]:
    """Parse `argv` (the script's flags), train, register; returns the report `main` prints.

    Raises `UsageError` for bad flags or an unreadable `--dataset` (before any training).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        model_config = dataclass_from_args(PoseVAEConfig, args)
        if not args.output_dir:
            args.output_dir = str(default_output_dir(args))
        trainer_config = dataclass_from_args(TrainerConfig, args)
    except ValueError as err:
        raise UsageError(str(err)) from err
    if args.data_size is not None and args.data_size < 1:
        raise UsageError(f"--data_size must be >= 1, got {args.data_size}")
    from poseembroider.datasets.cache_format import CacheError

    try:
        train_dataset, val_dataset = load_datasets(args)
    except (CacheError, ValueError) as err:
        raise UsageError(f"--dataset {args.dataset}: {err}") from err
    shortname = default_shortname(args.dataset) if args.shortname is None else args.shortname
    summary = train(
        model_config, trainer_config, train_dataset, val_dataset, shortname=shortname, body_model=body_model
    )
    return {
        "output_dir": trainer_config.output_dir,
        "best_dir": summary["best_dir"],
        "best_epoch": summary["best_epoch"],
        "shortname": summary["shortname"],
        "train_size": len(train_dataset),
        "val_size": len(val_dataset),
        "val_metrics": summary["best_metrics"],
    }


def main(argv: Sequence[str] | None = None) -> int:
    try:
        report = run(argv)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if is_main_process():
        print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(main())
