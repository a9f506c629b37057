"""Evaluate a trained PairText on a pair dataset split: pair-to-text and text-to-pair recall.

    python -m poseembroider.assisting_models.pairText.evaluate_pairText \\
        --model_path pairtext_model_ft_bedlamfix_posefix \\
        --dataset bedlamfix-overlap30_res224_j16_sf11-in15_out20_t05_sim0709 --split val

Same flags, protocol and output as `evaluate_poseText` (`result_<split>_<dataset>.json` next to the
checkpoint); `p2t` reads "pair to text": `p2t_R@1/5/10`, `t2p_R@1/5/10` (percent) and `mRecall`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from poseembroider.assisting_models.pairText.model_pairText import PairText
from poseembroider.assisting_models.poseText import evaluate_poseText


def build_parser():
    return evaluate_poseText.build_parser(prog="evaluate_pairText.py", model="PairText")


def main(argv: Sequence[str] | None = None) -> int:
    return evaluate_poseText.main(argv, model_class=PairText, parser=build_parser())


if __name__ == "__main__":
    sys.exit(main())
