"""Evaluate a trained PoseVAE on a dataset split: ELBO terms and reconstruction errors.

    python -m poseembroider.assisting_models.poseVAE.evaluate_poseVAE \\
        --model_path posevae_model_bedlamscript --dataset bedlamscript-overlap30_res224_j16_sf11 --split val

`--model_path` is a model folder (config.json + model.safetensors), a training output folder (then
`--checkpoint best|last` picks the sub-folder) or a registered shortname. The results are written,
atomically, next to the checkpoint as `result_<split>_<dataset>.json` and reused while the settings are
unchanged (`--overwrite` recomputes). Metrics (`assisting_models.poseVAE.evaluation`, which does the work):
ELBO terms `elbo_v2v`, `elbo_jts`, `elbo_rot`, the KL `kld`, and the errors `recon_<m>` of the decoded
posterior mean, `sample_<m>_avg` and `sample_<m>_top<k>` of `--nb_sample_reconstruction` decoded samples
(drawn from the prior, as the original, or `--sample_from posterior`), for `<m>` among `mpjpe_mm`,
`pampjpe_mm`, `pve_mm` and `rot_deg`. Defaults: `nb_sample_reconstruction` = 30 and
`k_topk_reconstruction_values` = [1] (config).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from poseembroider import config
from poseembroider.assisting_models.poseVAE.evaluation import SAMPLE_SOURCES, evaluate_saved_model, format_table
from poseembroider.training.script_args import add_evaluation_arguments, script_main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="evaluate_poseVAE.py",
        description="evaluate a trained PoseVAE "
        "(ELBO terms, reconstruction errors in mm and degrees, best-of-k samples)",
    )
    add_evaluation_arguments(parser, default_dataset="bedlamscript-overlap30_res224_j16_sf11", batch_size=32)
    parser.add_argument(
        "--nb_sample_reconstruction",
        type=int,
        default=config.nb_sample_reconstruction,
        help="decoded samples per pose (default: %(default)s)",
    )
    parser.add_argument(
        "--k_topk_reconstruction_values",
        type=int,
        nargs="+",
        default=list(config.k_topk_reconstruction_values),
        help="k of best-of-k (default: %(default)s)",
    )
    parser.add_argument(
        "--sample_from",
        default="prior",
        choices=SAMPLE_SOURCES,
        help="where samples are drawn: the prior N(0, I) (original) or q(z|x) (default: %(default)s)",
    )
    return parser


@script_main(ValueError)
def main(argv: Sequence[str] | None = None) -> int:
    print(format_table(evaluate_saved_model(**vars(build_parser().parse_args(argv)))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
