"""Evaluate a trained PairText on a pair dataset split: pair-to-text and text-to-pair recall.

    python -m poseembroider.assisting_models.pairText.evaluate_pairText \\
        --model_path pairtext_model_ft_bedlamfix_posefix \\
        --dataset bedlamfix-overlap30_res224_j16_sf11-in15_out20_t05_sim0709 --split val

Same flags, protocol and output as `evaluate_poseText` (`result_<split>_<dataset>.json` next to the
checkpoint; the work is `assisting_models.poseText.evaluation`'s); `p2t` reads "pair to text":
`p2t_R@1/5/10`, `t2p_R@1/5/10` (percent) and `mRecall`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from poseembroider.assisting_models.pairText.model_pairText import PairText
from poseembroider.assisting_models.poseText.evaluation import evaluate_saved_model, format_table
from poseembroider.training.script_args import add_evaluation_arguments, script_main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="evaluate_pairText.py", description="evaluate a trained PairText (R@1/5/10 both ways, mRecall)"
    )
    add_evaluation_arguments(parser, batch_size=128, caption_selection="deterministic-mix")
    return parser


@script_main(ValueError)
def main(argv: Sequence[str] | None = None) -> int:
    result = evaluate_saved_model(PairText, **vars(build_parser().parse_args(argv)))
    print(format_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
