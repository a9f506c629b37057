"""Instruction writer throughput on 2 threads: paircodes/s and instructions/s, batched vs one pair at a time.

Pairs: real CMU dev poses, perturbed, tiled to 2,048 pairs (half of them two perturbations of one pose,
like mined pairs; half two different poses). Paircodes: `compute_paircodes` on the whole batch (posecodes
of A and B, differences, noise, binning, super-paircodes, posture changes) vs the same call once per pair.
Instructions: `instruct_pairs` end to end (skeleton forward kinematics, coordinates, paircodes, facts about
B, selection, wording) on the whole batch, and `instruction_variants` (3 texts per pair), vs
`instruct_pairs` called once per pair (the batch of one).
"""

from __future__ import annotations

import numpy as np
import torch

from common import time_call, write_result
from poseembroider.body.body_model import BodyModel
from poseembroider.data import load_cmu_dev_poses
from poseembroider.text.captioning.coordinates import caption_coordinates
from poseembroider.text.captioning.skeleton import skeleton_model
from poseembroider.text.correcting.instructions import instruct_pairs, instruction_variants
from poseembroider.text.correcting.paircodes import compute_paircodes

NUM_PAIRS = 2048
NUM_BASELINE = 64


def _pairs(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    cmu = load_cmu_dev_poses()
    first = rng.integers(0, len(cmu), n)
    second = np.where(rng.random(n) < 0.5, first, rng.integers(0, len(cmu), n))
    a = cmu[first] + rng.normal(0, 0.1, (n, 22, 3)).astype(np.float32)
    b = cmu[second] + rng.normal(0, 0.1, (n, 22, 3)).astype(np.float32)
    return torch.from_numpy(a), torch.from_numpy(b)


def main() -> None:
    torch.set_num_threads(2)
    poses_a, poses_b = _pairs(NUM_PAIRS)
    body_model = BodyModel().eval()
    skeleton = skeleton_model(body_model)
    coords_a, coords_b = caption_coordinates(poses_a, skeleton), caption_coordinates(poses_b, skeleton)
    yaw = torch.where(torch.arange(NUM_PAIRS) % 2 == 0, torch.linspace(-180, 180, NUM_PAIRS), float("nan"))

    def paircodes_batched():
        compute_paircodes(coords_a, coords_b, poses_a, poses_b, torch.Generator().manual_seed(0),
                          rotation_change_deg=yaw)

    def paircodes_looped():
        generator = torch.Generator().manual_seed(0)
        for i in range(NUM_BASELINE):
            compute_paircodes(coords_a[i : i + 1], coords_b[i : i + 1], poses_a[i : i + 1], poses_b[i : i + 1],
                              generator, rotation_change_deg=yaw[i : i + 1])

    def instructions_looped():
        for i in range(NUM_BASELINE):
            instruct_pairs(poses_a[i : i + 1], poses_b[i : i + 1], body_model, seed=i,
                           rotation_change_deg=yaw[i : i + 1])

    codes_s = time_call(paircodes_batched, repeats=5, warmup=1)
    codes_loop_s = time_call(paircodes_looped, repeats=3, warmup=1)
    batched_s = time_call(lambda: instruct_pairs(poses_a, poses_b, body_model, seed=0, rotation_change_deg=yaw),
                          repeats=3, warmup=1)
    variants_s = time_call(lambda: instruction_variants(poses_a, poses_b, body_model, seed=0,
                                                        rotation_change_deg=yaw), repeats=3, warmup=1)
    looped_s = time_call(instructions_looped, repeats=3, warmup=1)
    texts = instruction_variants(poses_a[:256], poses_b[:256], body_model, seed=0, rotation_change_deg=yaw[:256])
    words = np.array([[len(t.split()) for t in per_pair] for per_pair in texts])
    instructions_per_s = NUM_PAIRS / batched_s
    baseline_per_s = NUM_BASELINE / looped_s
    write_result(
        "instructions",
        {
            "num_pairs": NUM_PAIRS,
            "paircodes_per_s": NUM_PAIRS / codes_s,
            "paircodes_baseline_per_s": NUM_BASELINE / codes_loop_s,
            "paircodes_ratio": (NUM_PAIRS / codes_s) / (NUM_BASELINE / codes_loop_s),
            "instructions_per_s": instructions_per_s,
            "instructions_three_variants_per_s": 3 * NUM_PAIRS / variants_s,
            "instructions_baseline_per_s": baseline_per_s,
            "ratio": instructions_per_s / baseline_per_s,
            "mean_words": {"default": float(words[:, 0].mean()), "simplified": float(words[:, 1].mean()),
                           "short": float(words[:, 2].mean())},
            "ours": f"batched: paircodes of {NUM_PAIRS} pairs in one call; instruct_pairs on {NUM_PAIRS} pairs "
                    "(skeleton-only forward kinematics)",
            "baseline": f"the same calls once per pair ({NUM_BASELINE} pairs)",
        },
    )


if __name__ == "__main__":
    main()
