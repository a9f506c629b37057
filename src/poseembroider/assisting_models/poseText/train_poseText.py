"""Train PoseText with the one Trainer, using the original flags.

    python -m poseembroider.assisting_models.poseText.train_poseText \\
        --dataset bedlamscript-overlap30_res224_j16_sf11 --model PoseText --latentD 512 \\
        --text_encoder_name distilbertUncased --transformer_topping avgp --num_body_joints 22 \\
        --retrieval_loss symBBC --lr 0.0002 --lr_scheduler stepLR --lr_step 400 --lr_gamma 0.5 \\
        --log_step 20 --val_every 20 --batch_size 128 --epochs 500 --seed 1

(also `poseembroider train-posetext ...`). Flags not given take these values (Adam without weight decay;
best checkpoint by the highest validation `mRecall`). Any dataset of the registry with poses and captions
works (`synthscript-<name>_overlap30_res224_j16_sf11` offline); captions are drawn at random at training
time and fixed per sample at validation; `--apply_LR_augmentation` mirrors poses and captions left/right
with probability 0.5.

Text backbone: the default `distilbertUncased` is the real DistilBERT, read from
`TRANSFORMER_CACHE_DIR`. Offline (no such folder) the script stops and says so: pass
`--text_encoder_name distilbertSynth` (our backbone, made by `poseembroider text train-tokenizer` and
`text pretrain-backbone`). The backbone is never swapped silently, since the model's weights only make sense
over the backbone they were trained with.

Difference with the original: `--lr_scheduler stepLR` is applied (the original never stepped its
scheduler, so its LR stayed constant); pass `--lr_scheduler none` to reproduce a constant LR.

Checkpoints go to `--output_dir` (default `GENERAL_EXP_OUTPUT_DIR/PoseText/<dataset>/<run name>`):
`best/` and `last/` (+ training state for `--resume`). The best model is registered under `--shortname`
(default `posetext_model_<dataset family>`, i.e. `posetext_model_bedlamscript` for BEDLAM-Script; '' to
skip) and its validation metrics are printed as JSON.
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

from torch import nn
from torch.utils.data import Dataset

from poseembroider import config
from poseembroider.assisting_models.poseText.data import load_text_datasets, text_collate_fn
from poseembroider.assisting_models.poseText.model_poseText import PoseText, PoseTextConfig
from poseembroider.training.config import TrainerConfig, add_dataclass_arguments, dataclass_from_args
from poseembroider.training.distributed import is_main_process

logger = logging.getLogger(__name__)

DESCRIPTION = "train PoseText (pose-text retrieval; its text branch is PoseEmbroider's frozen text encoder)"

RECIPE_DEFAULTS: dict[str, Any] = {
    "lr": 0.0002,
    "wd": 0.0,
    "lr_scheduler": "stepLR",
    "lr_step": 400,
    "lr_gamma": 0.5,
    "log_step": 20,
    "val_every": 20,
    "batch_size": 128,
    "epochs": 500,
    "seed": 1,
    "best_metric": "mRecall",
    "best_mode": "max",
}
"""Trainer settings of the published PoseText recipe, used for the flags not given."""

DEFAULT_DATASET = "bedlamscript-overlap30_res224_j16_sf11"
OFFLINE_TEXT_ENCODER = "distilbertSynth"


# --------------------------------------------------------------------------- flags


def set_recipe_defaults(parser: argparse.ArgumentParser, defaults: dict[str, Any]) -> None:
    """Override flag defaults, keeping the '(default: ...)' of their help text true."""
    parser.set_defaults(**defaults)
    for action in parser._actions:  # noqa: SLF001 - argparse offers no public access to the help strings
        if action.dest in defaults and action.help:
            action.help = re.sub(r"\(default: .*\)$", f"(default: {defaults[action.dest]!r})", action.help)


def add_run_arguments(parser: argparse.ArgumentParser, model: str, default_dataset: str) -> argparse._ArgumentGroup:
    """`--dataset`, `--model`, `--data_size`, `--apply_LR_augmentation`, `--shortname` (one group)."""
    data = parser.add_argument_group("data and run")
    data.add_argument("--dataset", default=default_dataset, help="dataset name of the registry (default: %(default)s)")
    data.add_argument("--model", default=model, choices=(model,), help="model class (default: %(default)s)")
    data.add_argument("--data_size", type=int, default=None, help="keep only the first N training items")
    data.add_argument(
        "--apply_LR_augmentation",
        action="store_true",
        help="mirror training poses and texts left/right with probability 0.5",
    )
    data.add_argument(
        "--shortname",
        default=None,
        help=f"register the best model under this shortname (default: {model.lower()}_model_<dataset family>; "
        "'' to skip)",
    )
    return data


def finish_parser(parser: argparse.ArgumentParser, config_class: type, model: str, recipe: dict[str, Any]) -> None:
    """Add the model and Trainer flags, the recipe defaults, and the `--output_dir` help."""
    add_dataclass_arguments(parser, config_class, title=model)
    add_dataclass_arguments(parser, TrainerConfig, title="training")
    set_recipe_defaults(parser, recipe)
    for action in parser._actions:  # noqa: SLF001
        if action.dest == "output_dir":
            action.help = (
                "folder for checkpoints, logs and tensorboard/ "
                f"(default: GENERAL_EXP_OUTPUT_DIR/{model}/<dataset>/<run name>)"
            )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="train_poseText.py", description=DESCRIPTION)
    add_run_arguments(parser, "PoseText", DEFAULT_DATASET)
    finish_parser(parser, PoseTextConfig, "PoseText", RECIPE_DEFAULTS)
    return parser


def run_name(args: argparse.Namespace) -> str:
    """Folder name summarising the main flags of a PoseText / PairText run."""
    encoder = Path(args.text_encoder_name).name
    name = (
        f"latentD{args.latentD}_{encoder}_{args.transformer_topping}_{args.retrieval_loss}_lr{args.lr:g}"
        f"_{args.lr_scheduler}"
    )
    if args.lr_scheduler == "stepLR":
        name += f"{args.lr_step}-{args.lr_gamma:g}"
    name += f"_bs{args.batch_size}_seed{args.seed}"
    if args.data_size:
        name += f"_data{args.data_size}"
    if args.apply_LR_augmentation:
        name += "_LRflip"
    return name


def default_output_dir(args: argparse.Namespace, dataset_part: str | None = None) -> Path:
    """`GENERAL_EXP_OUTPUT_DIR/<model>/<dataset>/<run name>`."""
    return Path(config.GENERAL_EXP_OUTPUT_DIR) / args.model / (dataset_part or args.dataset) / run_name(args)


def dataset_family(name: str) -> str:
    """'bedlamscript-overlap30_…' -> 'bedlamscript'."""
    return name.partition("-")[0]


def default_shortname(dataset: str) -> str:
    """`posetext_model_<family>`: 'bedlamscript-…' gives the released model's name."""
    return f"posetext_model_{dataset_family(dataset)}"


def missing_text_encoder_message(name: str, err: Exception) -> str:
    """The error of a text backbone that cannot be found, with the offline way out."""
    message = f"error: --text_encoder_name {name}: {err}"
    if name != OFFLINE_TEXT_ENCODER:
        message += (
            f"\nOffline, use our own text backbone: --text_encoder_name {OFFLINE_TEXT_ENCODER} "
            "(made by `poseembroider text train-tokenizer` then `poseembroider text pretrain-backbone`)."
        )
    return message


# --------------------------------------------------------------------------- training


def build_model(model_class: type[nn.Module], model_config: Any, seed: int) -> nn.Module:
    """`model_class(model_config)` with its weight initialisation seeded by `seed`."""
    from poseembroider.training.state import seed_everything

    seed_everything(seed)
    return model_class(model_config)


def fit(
    model: nn.Module,
    trainer_config: TrainerConfig,
    train_dataset: Dataset,
    val_dataset: Dataset,
    shortname: str | None = None,
) -> dict[str, Any]:
    """Train `model` (PoseText or PairText); returns the Trainer summary plus `best_dir`, `best_metrics`
    and `shortname` (registered on the main process when given)."""
    from poseembroider.training.run_results import publish_best
    from poseembroider.training.trainer import Trainer

    collate = text_collate_fn(model.text_encoder.tokenizer)
    trainer = Trainer(model, train_dataset, val_dataset, trainer_config, collate_fn=collate)
    summary = trainer.fit()
    return publish_best(summary, trainer_config.output_dir, shortname, trainer.is_main)


def print_report(trainer_config: TrainerConfig, summary: dict[str, Any], train_size: int, val_size: int) -> None:
    if is_main_process():
        report = {
            "output_dir": trainer_config.output_dir,
            "best_dir": summary["best_dir"],
            "best_epoch": summary["best_epoch"],
            "shortname": summary["shortname"],
            "train_size": train_size,
            "val_size": val_size,
            "val_metrics": summary["best_metrics"],
        }
        print(json.dumps(report, indent=2))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        model_config = dataclass_from_args(PoseTextConfig, args)
        if not args.output_dir:
            args.output_dir = str(default_output_dir(args))
        trainer_config = dataclass_from_args(TrainerConfig, args)
    except ValueError as err:
        parser.error(str(err))
    if args.data_size is not None and args.data_size < 1:
        parser.error(f"--data_size must be >= 1, got {args.data_size}")
    from poseembroider.datasets.cache_format import CacheError
    from poseembroider.text.tokenization import TextModelNotFoundError

    try:
        model = build_model(PoseText, model_config, args.seed)
    except (TextModelNotFoundError, KeyError) as err:
        print(missing_text_encoder_message(args.text_encoder_name, err), file=sys.stderr)
        return 2
    tokenizer = model.text_encoder.tokenizer
    common = {"tokenizer": tokenizer, "num_body_joints": args.num_body_joints}
    try:
        train_dataset = load_text_datasets(
            [args.dataset],
            "train",
            training=True,
            lr_flip_probability=0.5 if args.apply_LR_augmentation else 0.0,
            seed=args.seed,
            data_size=args.data_size,
            **common,
        )
        val_dataset = load_text_datasets([args.dataset], "val", **common)
    except (CacheError, ValueError) as err:
        print(f"error: --dataset {args.dataset}: {err}", file=sys.stderr)
        return 2
    shortname = default_shortname(args.dataset) if args.shortname is None else args.shortname
    summary = fit(model, trainer_config, train_dataset, val_dataset, shortname=shortname)
    print_report(trainer_config, summary, len(train_dataset), len(val_dataset))
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(main())
