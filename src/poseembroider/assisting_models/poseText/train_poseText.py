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

Speed on a CPU: with `--num_workers 1` (or more) the DataLoader workers tokenize the captions and run the
frozen text backbone on the next batches while the training process trains the rest (`data.loader_backbone`);
`--transformer_dropout 0` keeps PyTorch's fused CPU attention (dropout inside attention sends it to a
path ~5x slower). Both are flags: the recipe's values stay the defaults.

Difference with the original: `--lr_scheduler stepLR` is applied (the original never stepped its
scheduler, so its LR stayed constant); pass `--lr_scheduler none` to reproduce a constant LR.

Checkpoints go to `--output_dir` (default `GENERAL_EXP_OUTPUT_DIR/PoseText/<dataset>/<run name>`):
`best/` and `last/` (+ training state for `--resume`). The best model is registered under `--shortname`
(default `posetext_model_<dataset family>`, i.e. `posetext_model_bedlamscript` for BEDLAM-Script; '' to
skip) and its validation metrics are printed as JSON.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

from poseembroider.assisting_models.poseText.data import load_train_val_text_datasets, loader_backbone, text_collate_fn
from poseembroider.assisting_models.poseText.model_poseText import PoseText, PoseTextConfig
from poseembroider.training.run_results import fit_and_publish, print_report, run_report
from poseembroider.training.script_args import (
    add_config_arguments,
    add_run_arguments,
    as_usage_error,
    configs_from_args,
    default_output_dir,
    script_main,
    text_encoder_errors,
)
from poseembroider.training.script_args import default_shortname as model_shortname
from poseembroider.training.script_args import text_retrieval_run_name as run_name
from poseembroider.training.state import seed_everything

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="train_poseText.py", description=DESCRIPTION)
    add_run_arguments(parser, "PoseText", DEFAULT_DATASET)
    add_config_arguments(parser, PoseTextConfig, "PoseText", RECIPE_DEFAULTS)
    return parser


def default_shortname(dataset: str) -> str:
    """`posetext_model_<family>`: 'bedlamscript-…' gives the released model's name."""
    return model_shortname("PoseText", dataset)


@script_main()
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    output_dir = default_output_dir(args.model, args.dataset, run_name(args))
    model_config, trainer_config = configs_from_args(args, PoseTextConfig, output_dir)
    seed_everything(args.seed)  # the weight initialisation follows --seed too
    with text_encoder_errors(args.text_encoder_name):
        model = PoseText(model_config)
    tokenizer = model.text_encoder.tokenizer
    with as_usage_error(flag=f"--dataset {args.dataset}"):
        train_dataset, val_dataset = load_train_val_text_datasets(
            [args.dataset], tokenizer, args.num_body_joints, args.apply_LR_augmentation, args.seed, args.data_size
        )
    shortname = default_shortname(args.dataset) if args.shortname is None else args.shortname
    collate = text_collate_fn(tokenizer, loader_backbone(model, args.num_workers, args.device))
    summary = fit_and_publish(model, trainer_config, train_dataset, val_dataset, shortname, collate)
    print_report(run_report(summary))
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(main())
