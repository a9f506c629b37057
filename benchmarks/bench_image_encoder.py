"""Image encoder throughput (images/s): frozen encoding at batch 32, ours (the CPU preset) vs the SMPLer-X ViT-B/16
preset (random weights, same input, same run); pretraining throughput of `ImagePoseRegressor` (CPU preset,
forward + backward + AdamW step, batch 32, model only: data loading excluded); and the pretraining step of the
CPU recipe with the previous settings (float32, input pooling 2) against bfloat16 and input pooling 4 (batch 16),
and the keypoint CNN (`unet_kp_256x192`) against that ViT recipe: its pretraining step (bfloat16, 128x96 view,
batch 16) and its frozen encoding; the narrower `unet_kp_small_256x192` (the quickstart's encoder) against it.

Input: random 256x192 crops in [0, 1], the size PoseEmbroider feeds its image encoder. `--threads N` sets torch's
intra-op threads (default: torch's choice); on a CPU shared with other jobs, 1 thread can be much faster.
"""

from __future__ import annotations

import argparse

import torch

from common import time_call, write_result
from poseembroider.assisting_models.imageEncoder.keypoint_encoder import KEYPOINT_PRESET, KeypointImageEncoder
from poseembroider.assisting_models.imageEncoder.model_imageEncoder import (
    CPU_PRESET,
    SMPLERX_PRESET,
    ImageEncoder,
    ImagePoseRegressor,
    ImagePoseRegressorConfig,
    image_encoder_config,
)

BATCH = 32


def _params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _training_recipes(images: torch.Tensor, rounds: int = 4) -> dict:
    """Images/s of the pretraining step of `train_imageEncoder.py` (keypoint pooling, heatmap KL, lifter,
    joint term: every loss of the CPU recipe): the previous code (float32, input pooling 2, the crop
    standardised before the stem's pooling), the same settings now (standardised after the pooling), bfloat16
    training forward and input pooling 4 alone and together; interleaved rounds in one process (a shared
    machine slows them alike), the best round of each kept."""
    import time

    from poseembroider.assisting_models.imageEncoder.training import ImageEncoderTrainingConfig, build_regressor

    generator = torch.Generator().manual_seed(1)
    batch = {
        "images": images[:16],
        "poses": 0.3 * torch.randn(16, 22, 3, generator=generator),
        "joints_2d_crop": torch.rand(16, 22, 2, generator=generator) * torch.tensor([192.0, 256.0]),
    }
    variants = {
        "previous_fp32_pool2": {},  # the crop standardised before the stem's pooling, as the previous code did
        "fp32_pool2": {},
        "bf16_pool2": {"train_precision": "bf16"},
        "fp32_pool4": {"stem_input_pooling": 4},
        "bf16_pool4": {"train_precision": "bf16", "stem_input_pooling": 4},
        "keypoint_cnn_bf16": {
            "image_encoder_name": KEYPOINT_PRESET,
            "train_precision": "bf16",
            "wloss_keypoints_l1": 5.0,
        },
        "keypoint_cnn_small_bf16": {
            "image_encoder_name": "unet_kp_small_256x192",
            "train_precision": "bf16",
            "wloss_keypoints_l1": 5.0,
        },
    }
    steps = {}
    for name, overrides in variants.items():
        torch.manual_seed(0)
        model = build_regressor(ImageEncoderTrainingConfig(**overrides)).train()
        optimizer = torch.optim.AdamW(model.param_groups(1e-3, 0.05), lr=1e-3)
        steps[name] = (model, optimizer)

    previous = steps["previous_fp32_pool2"][0]  # a ViT regressor: its stem's standardisation is switched off
    previous.encoder.backbone.patch_embed.standardise = False
    mean, std = previous.encoder.pixel_mean, previous.encoder.pixel_std

    def step(model: ImagePoseRegressor, optimizer: torch.optim.Optimizer) -> float:
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        if model is previous:
            model.training_step({**batch, "images": (batch["images"] - mean) / std})["loss"].backward()
        else:
            model.training_step(batch)["loss"].backward()
        optimizer.step()
        return time.perf_counter() - start

    best = {name: float("inf") for name in variants}
    for round_ in range(rounds + 1):
        for name, (model, optimizer) in steps.items():
            seconds = step(model, optimizer)
            if round_:  # round 0 warms up
                best[name] = min(best[name], seconds)
    rates = {name: 16 / seconds for name, seconds in best.items()}
    return {
        "pretrain_step": "train_imageEncoder's CPU recipe step (keypoints, lifter, joint term) + AdamW, batch 16",
        **{f"pretrain_{name}_images_per_s": round(rate, 1) for name, rate in rates.items()},
        "pretrain_ratio_bf16_pool4_vs_previous": round(rates["bf16_pool4"] / rates["previous_fp32_pool2"], 2),
        "pretrain_ratio_bf16_vs_fp32_at_pool2": round(rates["bf16_pool2"] / rates["fp32_pool2"], 2),
        "pretrain_ratio_keypoint_cnn_vs_vit_bf16_pool4": round(rates["keypoint_cnn_bf16"] / rates["bf16_pool4"], 2),
        "pretrain_ratio_small_vs_keypoint_cnn": round(rates["keypoint_cnn_small_bf16"] / rates["keypoint_cnn_bf16"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    images = torch.rand(BATCH, 3, 256, 192)

    ours = ImageEncoder.from_preset(CPU_PRESET).freeze()
    vitb = ImageEncoder.from_preset(SMPLERX_PRESET).freeze()
    keypoint_cnn = KeypointImageEncoder.from_preset(KEYPOINT_PRESET).freeze()
    with torch.no_grad():
        assert ours(images[:1]).shape[1] == vitb(images[:1]).shape[1] == 192
        ours_s = time_call(lambda: ours(images), repeats=5, warmup=1)
        vitb_s = time_call(lambda: vitb(images), repeats=3, warmup=1)
        keypoint_cnn_s = time_call(lambda: keypoint_cnn(images), repeats=5, warmup=1)

    model = ImagePoseRegressor(ImagePoseRegressorConfig(encoder=image_encoder_config(CPU_PRESET))).train()
    optimizer = torch.optim.AdamW(model.param_groups(5e-4, 0.05), lr=5e-4)
    batch = {"images": images, "poses": 0.3 * torch.randn(BATCH, 22, 3)}

    def train_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        model.training_step(batch)["loss"].backward()
        optimizer.step()

    train_s = time_call(train_step, repeats=3, warmup=1)
    recipes = _training_recipes(images)
    write_result(
        "image_encoder",
        {
            "batch": BATCH,
            "input": "(32, 3, 256, 192) crops -> (32, 192, D) patch tokens, frozen encoders, fp32",
            "ours": f"{CPU_PRESET}: {ours.config.embed_dim}-d, {ours.config.depth} blocks, {ours.config.num_heads} "
            f"heads, {ours.config.num_task_tokens} task tokens, {_params(ours) / 1e6:.1f} M parameters",
            "baseline": f"{SMPLERX_PRESET} (SMPLer-X ViT-B/16 layout, random weights): 768-d, 12 blocks, 12 heads, "
            f"31 task tokens, {_params(vitb) / 1e6:.1f} M parameters",
            "ours_encode_images_per_s": BATCH / ours_s,
            "baseline_encode_images_per_s": BATCH / vitb_s,
            "ratio": vitb_s / ours_s,
            "keypoint_cnn_encode_images_per_s": BATCH / keypoint_cnn_s,
            "keypoint_cnn": f"{KEYPOINT_PRESET}: widths {keypoint_cnn.config.widths}, "
            f"{keypoint_cnn.num_tokens} tokens of {keypoint_cnn.embed_dim}, "
            f"{_params(keypoint_cnn) / 1e6:.1f} M parameters",
            "ours_train_images_per_s": BATCH / train_s,
            "train": "ImagePoseRegressor (CPU preset + head), forward + geodesic loss + backward + AdamW, batch 32",
            **recipes,
        },
    )


if __name__ == "__main__":
    main()
