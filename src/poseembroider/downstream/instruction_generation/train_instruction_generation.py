"""Train the InstructionGenerator on frozen representations x̄, with the original flags; two steps as published.

    # 1. pretrain on the fix dataset, from poses  -> instructgen_model_poseembroider_bedlamfix
    python -m poseembroider.downstream.instruction_generation.train_instruction_generation \\
        --model InstructionGenerator --latentD 512 --num_body_joints 22 \\
        --text_decoder_name transformer_distilbertUncased --transformer_mode crossattention --decoder_nhead 8 \\
        --decoder_nlayers 4 --comparison_latentD 512 --decoder_latentD 512 --comparison_module_mode tirg \\
        --representation_model_input_types poses --pretrained_representation_model poseembroider_model_bedlamscript \\
        --cached_embeddings_file e<epoch> --lr 0.0001 --wd 0.0001 --log_step 100 --val_every 20 \\
        --textret_model pairtext_model_ft_bedlamfix_posefix --batch_size 64 --seed 1 \\
        --dataset bedlamfix-overlap30_res224_j16_sf11-in15_out20_t05_sim0709 --epochs 900
    # 2. finetune on a weighted mix               -> instructgen_model_poseembroider_bedlamfix_posefix
    ... <same flags> --datasets posefix-H bedlamfix-... --pair_kinds out any --epochs 300 --pretrained <step 1>

(also `poseembroider train-instruction-generation ...`). Offline: `--dataset synthfix-...` and
`--text_decoder_name transformer_distilbertSynth`; a CPU preset of the decoder, e.g. `--decoder_latentD 256
--decoder_nlayers 2 --decoder_nhead 4 --decoder_ff 512`.

x̄ comes from the x̄ caches of `features.intermodality` (one per representation model, dataset, split and input
types), computed on first use, reused after: beside the representation model (`--cached_embeddings_file auto`,
the default, or the original's file mark e<epoch>) or under a folder (`--cached_embeddings_file FOLDER`, for a
read-only model folder). `--latentD` and `--comparison_latentD` follow the representation
model. The best checkpoint is the lowest validation loss; it is registered as
`instructgen_model_<representation>_<families>` (`--shortname` '' to skip). With `--textret_model`, the best
checkpoint's greedy R-precision and text metrics on the validation pairs are added to the report.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

import torch

from poseembroider.assisting_models.pairText.model_pairText import PairText
from poseembroider.assisting_models.poseText.data import text_collate_fn
from poseembroider.config import positive_int
from poseembroider.downstream.instruction_generation.data import (
    WeightedMix,
    check_pair_images,
    concat,
    input_set_of,
    load_pair_references,
    load_pair_texts,
    pair_kinds_of,
    xbar_cache_root,
)
from poseembroider.downstream.instruction_generation.evaluation import evaluate_instruction_generator
from poseembroider.downstream.instruction_generation.model_instruction_generation import (
    InstructionGenerator,
    InstructionGeneratorConfig,
)
from poseembroider.features.intermodality import (
    WithIntermodalityFeatures,
    compute_intermodality_features,
)
from poseembroider.models.pretrained import (
    WEIGHTS_NAME,
    load_state_dict_checked,
    load_state_dict_file,
    resolve_model_dir,
)
from poseembroider.representation import load_representation_model
from poseembroider.training.config import finite_float
from poseembroider.training.run_results import fit_and_publish, print_report, run_report
from poseembroider.training.script_args import (
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

logger = logging.getLogger(__name__)

RECIPE_DEFAULTS: dict[str, Any] = {
    "lr": 0.0001,
    "wd": 0.0001,
    "log_step": 100,
    "val_every": 20,
    "batch_size": 64,
    "epochs": 900,
    "seed": 1,
    "best_metric": "loss",
    "best_mode": "min",
}
"""Trainer settings of the published recipe (pretraining step), used for the flags not given."""
DISTRACTOR_BANK_SIZE = 32
"""Training pairs kept with the weights for the 'rerank' decoding's listener (beyond the original; the training
is the same with or without them)."""
DEFAULT_DATASET = "bedlamfix-overlap30_res224_j16_sf11-in15_out20_t05_sim0709"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="train_instruction_generation.py", description=__doc__.split("\n")[0])
    data = add_run_arguments(parser, "InstructionGenerator", DEFAULT_DATASET, lr_flip=False)
    data.add_argument("--datasets", nargs="+", default=None, help="several pair datasets, mixed (replaces --dataset)")
    data.add_argument("--pair_kinds", nargs="+", default=None, help="in / out / any, one for all or one per dataset")
    data.add_argument(
        "--dataset_weights", nargs="+", type=finite_float, default=None, help="mix weights (default: 1 each)"
    )
    data.add_argument("--pretrained", default=None, help="initialise from a trained InstructionGenerator")
    data.add_argument(
        "--cached_embeddings_file",
        default="auto",
        metavar="auto|e<epoch>|FOLDER",
        help="x̄ caches (computed first when missing): beside the representation model ('auto' or the original's "
        "file mark e<epoch>) or under FOLDER (default: auto)",
    )
    data.add_argument("--textret_model", default=None, help="PairText for the final R-precision on val")
    data.add_argument("--num_body_joints", type=positive_int, default=22, help="(original flag; poses have 22 joints)")
    defaults = {**RECIPE_DEFAULTS, "distractor_bank_size": DISTRACTOR_BANK_SIZE}
    add_config_arguments(parser, InstructionGeneratorConfig, "InstructionGenerator", defaults, ("vocab_size",))
    return parser


def pair_features(rep, rep_dir, dataset: str, split: str, types: Sequence[str], args: argparse.Namespace):
    """The x̄ cache of a split (`--cached_embeddings_file`), computed first when missing."""
    root = xbar_cache_root(args.cached_embeddings_file)
    return compute_intermodality_features(
        rep, dataset, split, types, model_dir=rep_dir, root=root, progress=args.progress
    )


def datasets_with_xbar(names, kinds, split, model, rep, rep_dir, args) -> list:
    types = model.config.representation_model_input_types
    parts = []
    for name, pair_kinds in zip(names, kinds, strict=True):
        size = args.data_size if split == "train" else None
        items = load_pair_texts(name, split, model.tokenizer, pair_kinds, split == "train", args.seed, size)
        if "images" in types:
            check_pair_images(name, split, [items[i]["pair_ids"] for i in range(len(items))])
        parts.append(WithIntermodalityFeatures(items, pair_features(rep, rep_dir, name, split, types, args)))
    return parts


def keep_distractors(model: InstructionGenerator, train_parts: Sequence[WithIntermodalityFeatures], seed: int) -> None:
    """Draw the model's distractor pairs (`set_distractor_bank`) from the x̄ of the training pairs."""
    xbar_A = torch.cat([part.features.features("A") for part in train_parts])
    xbar_B = torch.cat([part.features.features("B") for part in train_parts])
    with as_usage_error(flag="--distractor_bank_size"):
        model.set_distractor_bank(xbar_A, xbar_B, seed=seed)


@script_main(ValueError)
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    names = list(args.datasets) if args.datasets else [args.dataset]
    with as_usage_error(flag="--pretrained_representation_model"):
        rep, rep_dir = load_representation_model(args.pretrained_representation_model, device="cpu")
    args.latentD = args.comparison_latentD = rep.config.latentD
    run = f"{rep_dir.parent.name}_{'+'.join(args.representation_model_input_types)}_{training_run_tag(args)}"
    output_dir = default_output_dir(args.model, "+".join(names), run)
    model_config, trainer_config = configs_from_args(args, InstructionGeneratorConfig, output_dir)
    seed_everything(args.seed)
    with as_usage_error(flag="--text_decoder_name"):
        model = InstructionGenerator(model_config)
    if args.pretrained:
        directory = resolve_model_dir(args.pretrained)
        with as_usage_error(flag=f"--pretrained {args.pretrained}"):
            state = load_state_dict_file(directory / WEIGHTS_NAME)
            # the kept distractors are this run's (drawn below from its training pairs), whatever the other kept
            state.pop("distractor_xbar", None)
            own = model.state_dict()
            if "distractor_xbar" in own:
                state["distractor_xbar"] = own["distractor_xbar"]
            load_state_dict_checked(model, state, directory / WEIGHTS_NAME)
    with as_usage_error(flag="--pair_kinds"):
        kinds = pair_kinds_of(args.pair_kinds, len(names))
    train_parts = datasets_with_xbar(names, kinds, "train", model, rep, rep_dir, args)
    train = train_parts[0] if len(names) == 1 else WeightedMix(train_parts, args.dataset_weights, args.seed)
    val = concat(datasets_with_xbar(names, kinds, "val", model, rep, rep_dir, args))
    if model.config.distractor_bank_size:
        keep_distractors(model, train_parts, args.seed)
    families = "_".join(sorted({dataset_family(n) for n in names}))
    shortname = (
        args.shortname if args.shortname is not None else f"instructgen_model_{type(rep).__name__.lower()}_{families}"
    )
    summary = fit_and_publish(model, trainer_config, train, val, shortname, text_collate_fn(model.tokenizer))
    report = run_report(summary)
    if args.textret_model:
        best = InstructionGenerator.from_pretrained(summary["best_dir"])
        refs = load_pair_references(names[-1], "val", kinds[-1])
        input_set = input_set_of(
            best.config.representation_model_input_types, best.config.representation_model_input_types
        )
        features = pair_features(rep, rep_dir, names[-1], "val", input_set.types_A, args)
        result = evaluate_instruction_generator(
            best,
            refs,
            lambda s: (features.rows(refs.pair_ids, "A"), features.rows(refs.pair_ids, "B")),
            PairText.from_pretrained(args.textret_model),
            [input_set],
            {"greedy": {"decoding": "greedy"}},
        )
        report["val_generation"] = {
            "controls": result["controls"],
            "greedy": result["results"][input_set.name]["greedy"],
        }
    print_report(report)
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(main())
