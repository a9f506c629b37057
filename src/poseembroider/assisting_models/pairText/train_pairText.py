"""Train PairText with the one Trainer, using the original flags; two steps, as the released model.

    # 1. pretrain on the fix dataset                                   -> pairtext_model_bedlamfix
    python -m poseembroider.assisting_models.pairText.train_pairText --model PairText --num_body_joints 22 \\
        --latentD 512 --text_encoder_name distilbertUncased --transformer_topping avgp --retrieval_loss symBBC \\
        --lr 0.00005 --lr_scheduler stepLR --lr_gamma 0.5 --log_step 50 --batch_size 128 --seed 1 \\
        --dataset bedlamfix-overlap30_res224_j16_sf11-in15_out20_t05_sim0709 --epochs 400 --lr_step 400 \\
        --val_every 20
    # 2. finetune on several datasets, with left/right flips          -> pairtext_model_ft_bedlamfix_posefix
    python -m poseembroider.assisting_models.pairText.train_pairText <same common flags> \\
        --datasets posefix-H bedlamfix-overlap30_res224_j16_sf11-in15_out20_t05_sim0709 --epochs 250 \\
        --lr_step 40 --val_every 10 --apply_LR_augmentation --pretrained pairtext_model_bedlamfix

(also `poseembroider train-pairtext ...`). Offline, use `--dataset synthfix-<name>_…-in15_out20_t05_sim0709`
and `--text_encoder_name distilbertSynth`. `--datasets` concatenates the train splits (and the val splits)
of several datasets; it replaces `--dataset`. `--pretrained` (shortname, model folder or training output
folder) initialises every weight from a trained PairText with the same architecture. Best checkpoint by
the highest validation `mRecall` (pair-to-text and text-to-pair R@1/5/10). The best model is registered
under `--shortname`, default `pairtext_model_[ft_]<families>` ('ft_' with `--pretrained`, families sorted
and joined by '_'; '' to skip). As for PoseText, `stepLR` is applied (the original never stepped it), and
on a CPU `--num_workers 1` runs the tokenizer and the frozen text backbone in the DataLoader worker.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

from poseembroider.assisting_models.pairText.model_pairText import PairText, PairTextConfig
from poseembroider.assisting_models.poseText.data import load_train_val_text_datasets, loader_backbone, text_collate_fn
from poseembroider.models.pretrained import (
    WEIGHTS_NAME,
    load_state_dict_checked,
    load_state_dict_file,
    resolve_model_dir,
)
from poseembroider.training.run_results import fit_and_publish, print_report, run_report
from poseembroider.training.script_args import (
    add_config_arguments,
    add_run_arguments,
    as_usage_error,
    configs_from_args,
    dataset_family,
    default_output_dir,
    script_main,
    text_encoder_errors,
)
from poseembroider.training.script_args import text_retrieval_run_name as run_name
from poseembroider.training.state import seed_everything

logger = logging.getLogger(__name__)

DESCRIPTION = "train PairText (retrieval between pose pairs and instructions; evaluates instruction generation)"

RECIPE_DEFAULTS: dict[str, Any] = {
    "lr": 0.00005,
    "wd": 0.0,
    "lr_scheduler": "stepLR",
    "lr_step": 400,
    "lr_gamma": 0.5,
    "log_step": 50,
    "val_every": 20,
    "batch_size": 128,
    "epochs": 400,
    "seed": 1,
    "best_metric": "mRecall",
    "best_mode": "max",
}
"""Trainer settings of the published PairText recipe (pretraining step), used for the flags not given."""

DEFAULT_DATASET = "bedlamfix-overlap30_res224_j16_sf11-in15_out20_t05_sim0709"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="train_pairText.py", description=DESCRIPTION)
    data = add_run_arguments(parser, "PairText", DEFAULT_DATASET)
    data.add_argument(
        "--datasets",
        nargs="+",
        default=None,
        help="several dataset names, concatenated (replaces --dataset)",
    )
    data.add_argument(
        "--pretrained",
        default=None,
        help="initialise from this trained PairText (shortname, model folder or training output folder)",
    )
    add_config_arguments(parser, PairTextConfig, "PairText", RECIPE_DEFAULTS)
    return parser


def dataset_names(args: argparse.Namespace) -> list[str]:
    """`--datasets` when given, else `[--dataset]`."""
    return list(args.datasets) if args.datasets else [args.dataset]


def default_shortname(names: Sequence[str], finetuned: bool = False) -> str:
    """`pairtext_model_[ft_]<families>`: the released names for the two steps of the recipe."""
    families = sorted({dataset_family(name) for name in names})
    return "pairtext_model_" + ("ft_" if finetuned else "") + "_".join(families)


def load_pretrained_weights(model: PairText, name_or_path: str) -> None:
    """Copy every saved weight of a trained PairText into `model` (strictly: same architecture)."""
    directory = resolve_model_dir(name_or_path)
    state = load_state_dict_file(directory / WEIGHTS_NAME)
    load_state_dict_checked(
        model,
        state,
        f"--pretrained {name_or_path} ({directory / WEIGHTS_NAME})",
        allow_missing_prefixes=model.unsaved_prefixes,
    )
    logger.info("initialised from %s", directory)


@script_main()
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    names = dataset_names(args)
    output_dir = default_output_dir(args.model, "+".join(names), run_name(args))
    model_config, trainer_config = configs_from_args(args, PairTextConfig, output_dir)
    seed_everything(args.seed)  # the weight initialisation follows --seed too
    with text_encoder_errors(args.text_encoder_name):
        model = PairText(model_config)
    if args.pretrained:
        with as_usage_error(flag=f"--pretrained {args.pretrained}"):
            load_pretrained_weights(model, args.pretrained)
    tokenizer = model.text_encoder.tokenizer
    with as_usage_error(flag=f"--dataset(s) {' '.join(names)}"):
        train_dataset, val_dataset = load_train_val_text_datasets(
            names, tokenizer, args.num_body_joints, args.apply_LR_augmentation, args.seed, args.data_size
        )
    shortname = default_shortname(names, bool(args.pretrained)) if args.shortname is None else args.shortname
    collate = text_collate_fn(tokenizer, loader_backbone(model, args.num_workers, args.device))
    summary = fit_and_publish(model, trainer_config, train_dataset, val_dataset, shortname, collate)
    print_report(run_report(summary))
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(main())
