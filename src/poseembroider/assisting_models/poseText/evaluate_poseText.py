"""Evaluate a trained PoseText on a dataset split: pose-to-text and text-to-pose recall.

    python -m poseembroider.assisting_models.poseText.evaluate_poseText \\
        --model_path posetext_model_bedlamscript --dataset bedlamscript-overlap30_res224_j16_sf11 --split val

`--model_path` is a model folder (config.json + model.safetensors), a training output folder (then
`--checkpoint best|last` picks the sub-folder) or a registered shortname. Every sample is embedded once
(its caption chosen by `--caption_selection`, default 'deterministic-mix' as at validation), and each
query is ranked against the whole split. Keys of `metrics`: `p2t_R@1`, `p2t_R@5`, `p2t_R@10`, `t2p_R@1`,
`t2p_R@5`, `t2p_R@10` (percent) and `mRecall` (their mean). The results are written, atomically, next to
the checkpoint as `result_<split>_<dataset>.json` and reused while the settings are unchanged
(`--overwrite` recomputes). The work is `assisting_models.poseText.evaluation`'s.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from poseembroider.assisting_models.poseText.evaluation import evaluate_saved_model, format_table
from poseembroider.assisting_models.poseText.model_poseText import PoseText
from poseembroider.training.script_args import add_evaluation_arguments, script_main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="evaluate_poseText.py", description="evaluate a trained PoseText (R@1/5/10 both ways, mRecall)"
    )
    add_evaluation_arguments(parser, batch_size=128, caption_selection="deterministic-mix")
    return parser


@script_main(ValueError)
def main(argv: Sequence[str] | None = None) -> int:
    result = evaluate_saved_model(PoseText, **vars(build_parser().parse_args(argv)))
    print(format_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
