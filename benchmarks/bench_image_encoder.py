"""Image encoder throughput (images/s): frozen encoding at batch 32, ours (the CPU preset) vs the SMPLer-X ViT-B/16
preset (random weights, same input, same run); and pretraining throughput of `ImagePoseRegressor` (CPU preset,
forward + backward + AdamW step, batch 32, model only: data loading excluded).

Input: random 256x192 crops in [0, 1], the size PoseEmbroider feeds its image encoder. `--threads N` sets torch's
intra-op threads (default: torch's choice); on a CPU shared with other jobs, 1 thread can be much faster.
"""

from __future__ import annotations

import argparse

import torch

from common import time_call, write_result
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
    with torch.no_grad():
        assert ours(images[:1]).shape[1] == vitb(images[:1]).shape[1] == 192
        ours_s = time_call(lambda: ours(images), repeats=5, warmup=1)
        vitb_s = time_call(lambda: vitb(images), repeats=3, warmup=1)

    model = ImagePoseRegressor(ImagePoseRegressorConfig(encoder=image_encoder_config(CPU_PRESET))).train()
    optimizer = torch.optim.AdamW(model.param_groups(5e-4, 0.05), lr=5e-4)
    batch = {"images": images, "poses": 0.3 * torch.randn(BATCH, 22, 3)}

    def train_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        model.training_step(batch)["loss"].backward()
        optimizer.step()

    train_s = time_call(train_step, repeats=3, warmup=1)
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
            "ours_train_images_per_s": BATCH / train_s,
            "train": "ImagePoseRegressor (CPU preset + head), forward + geodesic loss + backward + AdamW, batch 32",
        },
    )


if __name__ == "__main__":
    main()
