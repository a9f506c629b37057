"""Evaluate an InstructionGenerator on a pair split, for every input set the data offers (original_system.md §5.3).

    python -m poseembroider.downstream.instruction_generation.evaluate_instruction_generation \\
        --model_path instructgen_model_poseembroider_bedlamfix_posefix \\
        --dataset bedlamfix-overlap30_res224_j16_sf11-in15_out20_t05_sim0709 --split val \\
        --textret_model pairtext_model_ft_bedlamfix_posefix
    # PoseFix-OOS: --dataset posefix-H --split test --pair_kind out

(also `poseembroider evaluate-instruction-generation ...`). Input sets: (P_A,P_B), (V_A,V_B), (P_A,V_B), (V_A,P_B),
(V_A+P_A,V_B+P_B) when the dataset has images, (P_A,P_B) otherwise (`--input_sets` to choose). Decodings:
greedy (the original's), beam search, nucleus sampling and rerank (greedy and nucleus candidates, the one kept
by the model's own listener over its distractor pairs) (`--decodings greedy beam nucleus rerank`, `--beam_size`,
`--top_p`, `--rerank_samples`). Metrics:
R@1/2/3 (PairText, pool 200, 10 repetitions), BLEU-4, ROUGE-L, METEOR, generated texts/s, beside the GT and random
controls. x̄ comes from the representation model's x̄ caches (computed on first use; `--cached_embeddings_file`).
The result goes to `result_<split>_<dataset>.json` next to the checkpoint (reused when the settings match).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from poseembroider.assisting_models.pairText.model_pairText import PairText
from poseembroider.config import non_negative_int, positive_int
from poseembroider.devices import resolve_device
from poseembroider.downstream.instruction_generation.data import (
    PAIR_KINDS,
    available_input_sets,
    check_pair_images,
    get_input_set,
    load_pair_references,
    xbar_cache_root,
)
from poseembroider.downstream.instruction_generation.decoding import (
    DEFAULT_MAX_LENGTH,
    DEFAULT_MIN_LENGTH,
    get_decoding,
)
from poseembroider.downstream.instruction_generation.evaluation import evaluate_instruction_generator, format_table
from poseembroider.downstream.instruction_generation.model_instruction_generation import InstructionGenerator
from poseembroider.evaluation.result_files import result_path, reusable_result, save_result
from poseembroider.features.intermodality import compute_intermodality_features
from poseembroider.models.pretrained import read_model_config, resolve_model_dir
from poseembroider.representation import load_representation_model
from poseembroider.training.config import finite_float
from poseembroider.training.script_args import add_evaluation_arguments, as_usage_error, script_main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="evaluate_instruction_generation.py", description=__doc__.split("\n")[0])
    add_evaluation_arguments(parser, batch_size=128)
    parser.add_argument("--textret_model", required=True, help="PairText shortname or folder (R-precision)")
    parser.add_argument("--pair_kind", default="any", choices=sorted(PAIR_KINDS), help="(default: %(default)s)")
    parser.add_argument("--input_sets", nargs="+", default=None, help="default: every one the dataset offers")
    parser.add_argument(
        "--decodings",
        nargs="+",
        default=None,
        help="greedy, beam, nucleus, rerank (default: greedy beam, and rerank when the model keeps distractors)",
    )
    parser.add_argument(
        "--other_decodings",
        nargs="+",
        default=None,
        help="decodings of the input sets other than the generator's own (default: those of --decodings)",
    )
    parser.add_argument("--beam_size", type=positive_int, default=4, help="(default: %(default)s)")
    parser.add_argument("--length_penalty", type=finite_float, default=1.0, help="beam: sum / length^p (default: 1)")
    parser.add_argument(
        "--top_p", type=finite_float, default=0.9, help="nucleus sampling and rerank's samples (default: %(default)s)"
    )
    parser.add_argument(
        "--rerank_samples",
        type=non_negative_int,
        default=8,
        help="rerank: nucleus samples beside the greedy text (default: %(default)s)",
    )
    parser.add_argument(
        "--speaker_weight",
        type=finite_float,
        default=0.0,
        help="rerank: weight of the text's mean log-likelihood beside the listener's (default: %(default)s)",
    )
    parser.add_argument(
        "--length_normalised_listener",
        action="store_true",
        help="rerank: the listener judges by per-token mean log-likelihoods, not sums (texts of annotation length)",
    )
    parser.add_argument("--max_length", type=positive_int, default=DEFAULT_MAX_LENGTH, help="(default: %(default)s)")
    parser.add_argument(
        "--min_length", type=non_negative_int, default=DEFAULT_MIN_LENGTH, help="(default: %(default)s)"
    )
    parser.add_argument("--pretrained_representation_model", default=None, help="default: the generator's")
    parser.add_argument(
        "--cached_embeddings_file",
        default="auto",
        metavar="auto|e<epoch>|FOLDER",
        help="x̄ caches (computed first when missing): beside the representation model, or under FOLDER",
    )
    return parser


def default_decodings(model_dir: Path) -> list[str]:
    """greedy and beam, and rerank when the model keeps distractor pairs (`distractor_bank_size`)."""
    bank = read_model_config(model_dir)["config"].get("distractor_bank_size", 0)
    return ["greedy", "beam", "rerank"] if bank else ["greedy", "beam"]


def decoding_specs(args: argparse.Namespace, decodings: Sequence[str]) -> dict[str, dict]:
    """{result name: decoding spec} of `decodings` ('beam' is named beam<size>, 'rerank' rerank<samples>)."""
    limits = {"max_length": args.max_length, "min_length": args.min_length}
    specs = {}
    for name in decodings:
        get_decoding(name)  # an unknown name lists the known ones
        if name == "beam":
            specs[f"beam{args.beam_size}"] = {
                "decoding": "beam",
                "beam_size": args.beam_size,
                "length_penalty": args.length_penalty,
                **limits,
            }
        elif name == "rerank":
            specs[f"rerank{args.rerank_samples}"] = {
                "decoding": "rerank",
                "nucleus_samples": args.rerank_samples,
                "top_p": args.top_p,
                "speaker_weight": args.speaker_weight,
                "length_normalised": args.length_normalised_listener,
                "seed": args.seed,
                **limits,
            }
        elif name == "nucleus":
            specs[f"nucleus{args.top_p:g}"] = {"decoding": "nucleus", "top_p": args.top_p, "seed": args.seed, **limits}
        else:
            specs[name] = {"decoding": name, **limits}
    return specs


@script_main(ValueError)
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    model_dir = resolve_model_dir(args.model_path, args.checkpoint)
    device = resolve_device(args.device)
    with as_usage_error(flag="--input_sets"):
        offered = available_input_sets(args.dataset)
        chosen = args.input_sets or offered
        refused = [name for name in chosen if name not in offered]
        if refused:
            raise ValueError(f"{refused} not among the input sets {args.dataset} offers: {offered}")
        input_sets = [get_input_set(name) for name in chosen]
    with as_usage_error(flag="--decodings"):
        specs = decoding_specs(args, args.decodings or default_decodings(model_dir))
    with as_usage_error(flag="--other_decodings"):
        other_specs = decoding_specs(args, args.other_decodings) if args.other_decodings else None
    settings = {
        k: getattr(args, k)
        for k in (
            "textret_model",
            "pair_kind",
            "data_size",
            "seed",
            "max_length",
            "min_length",
            "pretrained_representation_model",
        )
    }
    settings.update(input_sets=chosen, decodings=specs, other_decodings=other_specs)
    result = reusable_result(model_dir, args.split, args.dataset, settings, args.overwrite)
    if result is None:
        model = InstructionGenerator.from_pretrained(model_dir, map_location=device)
        rep_name = args.pretrained_representation_model or model.config.pretrained_representation_model
        with as_usage_error(flag="--pretrained_representation_model"):
            rep, rep_dir = load_representation_model(rep_name, device="cpu")
        refs = load_pair_references(args.dataset, args.split, PAIR_KINDS[args.pair_kind], args.data_size)
        if any(s.needs_images for s in input_sets):
            check_pair_images(args.dataset, args.split, refs.pair_ids)
        caches = {}

        def xbar_for(input_set):
            out = []
            for side in ("A", "B"):
                types = input_set.types(side)
                if types not in caches:
                    caches[types] = compute_intermodality_features(
                        rep,
                        args.dataset,
                        args.split,
                        types,
                        model_dir=rep_dir,
                        root=xbar_cache_root(args.cached_embeddings_file),
                        progress=args.progress,
                    )
                out.append(caches[types].rows(refs.pair_ids, side))
            return out[0], out[1]

        metrics = evaluate_instruction_generator(
            model,
            refs,
            xbar_for,
            PairText.from_pretrained(args.textret_model, map_location=device),
            input_sets,
            specs,
            batch_size=args.batch_size,
            seed=args.seed,
            progress=args.progress,
            other_decodings=other_specs,
        )
        result = save_result(model_dir, args.split, args.dataset, settings, len(refs), metrics)
    print(format_table(result["metrics"]))
    print(f"results: {result_path(model_dir, args.split, args.dataset)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
