"""Pretrain the offline image encoder: regress the SMPL-X body pose from person crops, then keep the encoder.

Without the SMPLer-X weights, PoseEmbroider's frozen image encoder is our own ViT, pretrained here on the
synthetic crops: `ImagePoseRegressor` (encoder + average pooling + MLP head -> 22 x 6D -> rotation matrices)
is trained with the geodesic loss (angle summed over joints, mean over the batch) and the root-relative
joint term. By default (`--pooling keypoints`) the encoder's tokens also carry 2D joint heatmaps, supervised on
the 16x12 token grid by the dataset's projected joints (`--wloss_keypoints`), and a lifter MLP maps their
soft-argmax 2D joints to the pose: it is first pretrained alone on the ground-truth 2D joints for
`--lifter_steps` steps (seconds), then trained with the images (`--wloss_lifting` keeps its ground-truth
term). Samples are flipped left/right with `--lr_flip` (image, pose and 2D joints together); with keypoints
the augmentation keeps only its photometric part. Validation reports the geodesic error (deg), MPJPE and
PA-MPJPE (mm, body joints of the body model with the mean shape), and the heatmaps' KL and 2D error. The
encoder of the best checkpoint (lowest `--best_metric`, default pa_mpjpe_mm) is then saved alone, frozen,
in `<output_dir>/image_encoder/` and registered under `--shortname`, for `--image_encoder_name <shortname>`.

    python -m poseembroider.assisting_models.imageEncoder.train_imageEncoder \\
        --dataset synthscript-quickstart_overlap30_res224_j16_sf11 --image_encoder_name vit_tiny_256x192 \\
        --lr 0.0003 --wd 0.05 --batch_size 16 --epochs 20 --val_every 1 --seed 1

(also `poseembroider train-image-encoder ...`). Every Trainer flag is available (`--optimizer`,
`--lr_scheduler`, `--warmup`, `--grad_clip`, `--resume`, ...); `--no_img_augmentation` turns off the
training augmentation (random resized crop, colour jitter, blur, solarisation); `--pooling mean
--lr_flip 0` is the plain regressor of the original recipe.

Outputs in `--output_dir` (default `GENERAL_EXP_OUTPUT_DIR/imageEncoder/<preset>_<dataset>_seed<seed>`): the
Trainer's `best/`, `last/`, `log.jsonl`; `image_encoder/` (config.json + model.safetensors of the frozen
encoder); `results.json` (best validation metrics, a mean-pose baseline on the same split, throughput).

What limits it on the offline world (quickstart val split, 512 crops; mean pose 134.4 mm PA-MPJPE; runs of
`convvit_tiny_256x192`, bf16, input pooling 4, batch 16, lr 2e-3, on the shared 2-core machine):

    images seen            16k     32k     48k          the 2D joints are the bottleneck: the lifter alone,
    2,048 training crops   125.6   115.7   113.7        on ground-truth 2D joints plus Gaussian noise
    4,096 training crops   121.5   113.9   110.7        of 0 / 8 / 16 / 24 px, gives 71.1 / 75.9 / 88.8 /
    (18 epochs: 114.4 mm in 6.0 min; 24: 112.2 in 8.4)  105.7 mm; the encoder's joints are 25 px off

Each doubling of images seen or of crops buys 2-4 mm; 80 mm needs 2D joints within ~8 px, far beyond a CPU
budget of minutes for a ViT trained from scratch (the SMPLer-X encoder of the paper is the intended one).

The keypoint CNN (`--image_encoder_name unet_kp_256x192`, `keypoint_encoder.py`: 32x24 heatmaps at stride 8 on
a 128x96 view, the head on the token average) learns the 2D joints sooner on the same 2,048 crops (bf16,
batch 16, lr 2e-3, `--wloss_keypoints_l1 5`, two runs side by side on the 2-core machine):

    images seen                  9k      18k     28k     37k (18 epochs, ~450 s)
    2D joint error (px)          28.0    23.3    21.4    20.9       conv-stem ViT: 26 px at 48k
    PA-MPJPE (mm), with lifter   120.3   117.4   109.3   107.2      conv-stem ViT: 113.3 (quickstart)
    PA-MPJPE (mm), no lifter     121.6   115.2   112.0   111.1

Four times the images (72 epochs, cosine over all of them, validated every 4th; 23 min on 2 threads): PA-MPJPE
126.3 / 118.8 / 114.7 / 113.3 / 111.4 / 106.3 mm at epochs 4-24, best 102.1 mm at epoch 40 (2D joints 16 px),
then 104-105 mm to the end while the training crops are learnt by heart (2D joints 0.03 crop units off, joints
55 mm): on 2,048 crops more steps stop paying near 102 mm. The same 147k images over 4,096 crops (36 epochs,
`data synth --n-train 4096`, the same 512 val crops; about 30 s more rendering) reach 104.6 / 98.5 / 94.2 mm at
epochs 12 / 20 / 24 and 93.8 mm at epoch 30 (2D joints 12.4 px; train 0.05 crop units, joints 69 mm): the
crops, not the steps, bind first. Both runs take 23 min on 2 threads alone, past the quickstart's budget.

A lifter pretrained 4x longer (2,000 steps of 256) on these 2D joints, or on them plus 8,192 pool poses seen by
the scene sampler's cameras (projected without rendering), changes PA-MPJPE by at most 1.3 mm after 37k crops
(107.5, 105.9 against 107.2): the 2D joints, not the lifter's data, bound the pose.

The
error is spread over every joint, not a left/right confusion (18-epoch encoder: median 19 px, pelvis 12 px,
wrists and feet 47-51 px; swapping left and right where it would help changes the mean by 0.1 px), and an
integral-regression term on the soft-argmax joints does not move it (8 epochs: 117.4 mm / 28.8 px without,
117.7 mm / 28.4 px with `--wloss_keypoints_l1 10`). Its 18-epoch errors: mean 21.0 px, median 13.6 px, and
55% of the summed error comes from joints more than 32 px off (elbows median 33 px, wrists 36-38, feet 24-25;
spine, neck and head 3-5 px); reading the 2D joint near the heatmap's peak instead of the whole soft-argmax
gives a median of 8.2 px but a mean of 21.6: limbs found in the wrong place bind, not sub-cell precision.

Speed and variety (`--jitter_*`, `--preload_crops_gb`, the `unet_kp_small_256x192` preset; same flags, two runs
side by side at one thread each on a slower 2-core machine, 2,048 crops):

    run                                                       epochs   seconds  crops/s  PA-MPJPE   2D error
    unet_kp_256x192, crops from disk                            18       846     53.5   106.8 mm   21.0 px
    + jitter (turn <= 30 deg, zoom 1/1.25-1.25, shift 10%)      18       844     53.5   106.8 mm   20.4 px
    unet_kp_small_256x192 + jitter, crops preloaded             36       975     99.6   104.4 mm   20.2 px
    the same + a learned stem (`--stem_channels 16`)            36       892*   108     103.1 mm   19.2 px

(* alone for its second half.) The jitter does not pay within 18 epochs (train and val errors are still alike:
the model is far from learning the crops by heart) but keeps the crops new for longer runs; preloading the
crops and halving the early stages' widths double the crops seen per second, worth 2-4 mm here; in a whole
quickstart (32 epochs beside the other lane, 825 s) the narrower CNN with the jitter gave 106.3 mm, against 106.8
for the wider one's 18 epochs, too little to change the quickstart's encoder. 80 mm stays out of reach on two
cores in minutes: each doubling of crops seen buys a few mm (the curves above).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from poseembroider.assisting_models.imageEncoder.training import (
    ImageEncoderTrainingConfig,
    StepTimer,
    default_output_dir,
    prepare_run,
    publish_encoder,
)
from poseembroider.devices import torch_threads
from poseembroider.training.config import TrainerConfig, add_dataclass_arguments, dataclass_from_args
from poseembroider.training.script_args import as_usage_error, script_main, set_recipe_defaults
from poseembroider.training.trainer import Trainer

# this model's defaults for the Trainer flags (a ViT trained from scratch wants AdamW, warm-up and decay)
TRAINER_DEFAULTS: dict[str, Any] = {
    "lr": 3e-4,
    "wd": 0.05,
    "optimizer": "AdamW",
    "lr_scheduler": "cosine",
    "scheduler_interval": "step",
    "warmup": 50,
    "grad_clip": 1.0,  # the heatmap, lifter and pose terms start far apart in scale
    "batch_size": 16,
    "epochs": 20,
    "val_every": 1,
    "best_metric": "pa_mpjpe_mm",
    "best_mode": "min",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="train_imageEncoder",
        description="pretrain the offline image encoder: regress the SMPL-X body pose from person crops, then "
        "save the encoder alone, frozen, and register it under a shortname",
    )
    add_dataclass_arguments(parser, ImageEncoderTrainingConfig, title="data and model")
    add_dataclass_arguments(parser, TrainerConfig, title="training")
    set_recipe_defaults(parser, TRAINER_DEFAULTS)
    return parser


def train(args: argparse.Namespace, body_model: nn.Module | None = None) -> dict[str, Any]:
    """Run the pretraining described by parsed `args`; returns the content of results.json."""
    with torch_threads(args.torch_threads if args.torch_threads > 0 else None):
        cfg = dataclass_from_args(ImageEncoderTrainingConfig, args)
        if not args.output_dir:
            args.output_dir = str(default_output_dir(cfg, args.seed))
        trainer_config = dataclass_from_args(TrainerConfig, args)
        torch.manual_seed(trainer_config.seed)
        run = prepare_run(cfg, trainer_config.seed, body_model)

        timer = StepTimer(trainer_config.batch_size)
        start = time.perf_counter()
        trainer = Trainer(run.model, run.data.train_set, run.data.val_set, trainer_config, callbacks=[timer])
        summary = trainer.fit()
        train_seconds = time.perf_counter() - start
        return publish_encoder(
            run,
            cfg,
            trainer_config.output_dir,
            best_metric=trainer_config.best_metric,
            epochs=summary["epoch"],
            train_seconds=train_seconds,
            images_per_s=timer.images_per_s,
        )


@script_main()
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with as_usage_error(ValueError):  # flag checks, before any work
        dataclass_from_args(TrainerConfig, args, output_dir=args.output_dir or "-")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    results = train(args)
    val, base = results["val"], results["val_mean_pose_baseline"]
    print(
        f"image encoder saved in {results['encoder_dir']}"
        + (f" (shortname {results['shortname']})" if results["shortname"] else "")
        + f"\nval (best epoch {results['best_epoch']}): PA-MPJPE {val['pa_mpjpe_mm']:.1f} mm, "
        f"MPJPE {val['mpjpe_mm']:.1f} mm, geodesic {val['geodesic_deg']:.2f} deg "
        f"(mean-pose baseline: {base['pa_mpjpe_mm']:.1f} mm, {base['mpjpe_mm']:.1f} mm, "
        f"{base['geodesic_deg']:.2f} deg)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
