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

    python -m poseembroider.assisting_models.poseVAE.evaluate_poseVAE --model_path posevae_model_synthscript \\
        --pose_file src/poseembroider/data/cmu_mocap/poses_dev.npz [--pose_normalization bedlam]

evaluates on the poses of a file instead (here the 108 real CMU poses, recorded heading: normalised as the
datasets do) and prints MPJPE, PA-MPJPE, PVE and rotation error beside the mean-pose baseline on the same
poses (`evaluation.evaluate_pose_file`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from poseembroider import config
from poseembroider.assisting_models.poseVAE.evaluation import (
    SAMPLE_SOURCES,
    evaluate_pose_file,
    evaluate_saved_model,
    format_pose_file_table,
    format_table,
)
from poseembroider.datasets.pose_processing import POSE_NORMALIZERS
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
        type=config.positive_int,
        default=config.nb_sample_reconstruction,
        help="decoded samples per pose (default: %(default)s)",
    )
    parser.add_argument(
        "--k_topk_reconstruction_values",
        type=config.positive_int,
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
    poses = parser.add_argument_group("poses from a file (instead of a dataset split)")
    poses.add_argument(
        "--pose_file",
        type=Path,
        default=None,
        help="evaluate on the poses of this .npz file (e.g. the 108 real CMU poses) instead of --dataset/--split; "
        "prints the reconstruction errors beside the mean-pose baseline",
    )
    poses.add_argument(
        "--pose_normalization",
        default="bedlam",
        choices=sorted(POSE_NORMALIZERS),
        help="frame of --pose_file: y-up SMPL-X with any heading (bedlam, as the CMU poses), z-up AMASS (amass), "
        "the models' (none) (default: %(default)s)",
    )
    poses.add_argument(
        "--mean_pose_dataset",
        default=None,
        help="baseline pose of --pose_file: the chordal mean of this dataset's train poses "
        "(default: the mean of the file's own poses)",
    )
    return parser


@script_main(ValueError, FileNotFoundError)
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = vars(args)
    pose_file = settings.pop("pose_file")
    file_flags = {k: settings.pop(k) for k in ("pose_normalization", "mean_pose_dataset")}
    if pose_file is None:
        print(format_table(evaluate_saved_model(**settings)))
        return 0
    result = evaluate_pose_file(
        args.model_path, pose_file, checkpoint=args.checkpoint, device=args.device, **file_flags
    )
    print(format_pose_file_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
