"""Captioner throughput on 2 threads: posecodes/s (after the coordinates) and captions/s end to end.

Poses: the real CMU dev poses, perturbed and tiled to 2,048. Posecodes: `compute_posecodes` on the
whole batch (measures, noise, binning, super-posecodes, eligibility) vs the same call once per pose.
Captions: `caption_poses` end to end (skeleton forward kinematics, coordinates, posecodes, selection,
wording) on the whole batch vs the same pipeline once per pose through the full body-model forward
(vertices included), the straightforward way to caption a pose.
"""

from __future__ import annotations

import numpy as np
import torch

from common import time_call, write_result
from poseembroider.body.body_model import BodyModel
from poseembroider.data import load_cmu_dev_poses
from poseembroider.text.captioning.captions import caption_poses, caption_variants
from poseembroider.text.captioning.coordinates import caption_coordinates
from poseembroider.text.captioning.posecodes import compute_posecodes
from poseembroider.text.captioning.skeleton import skeleton_model

NUM_POSES = 2048
NUM_BASELINE = 64
TARGET_POSECODES_PER_S = 2000
TARGET_CAPTIONS_PER_S = 200


def main() -> None:
    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    cmu = load_cmu_dev_poses()
    noise = rng.normal(0, 0.1, (NUM_POSES, 22, 3)).astype(np.float32)
    poses = torch.as_tensor(np.resize(cmu, (NUM_POSES, 22, 3)) + noise)
    body_model = BodyModel().eval()
    skeleton = skeleton_model(body_model)
    coords = caption_coordinates(poses, skeleton)
    small = poses[:NUM_BASELINE]

    def posecodes_batched():
        compute_posecodes(coords, poses, torch.Generator().manual_seed(0))

    def posecodes_looped():
        generator = torch.Generator().manual_seed(0)
        for i in range(NUM_BASELINE):
            compute_posecodes(coords[i : i + 1], poses[i : i + 1], generator)

    def captions_looped():
        for i in range(NUM_BASELINE):
            caption_poses(small[i : i + 1], body_model_full, seed=i)

    body_model_full = _FullForward(body_model)
    codes_s = time_call(posecodes_batched, repeats=5, warmup=1)
    codes_loop_s = time_call(posecodes_looped, repeats=3, warmup=1)
    captions_s = time_call(lambda: caption_poses(poses, body_model, seed=0), repeats=3, warmup=1)
    variants_s = time_call(lambda: caption_variants(poses, body_model, seed=0), repeats=3, warmup=1)
    captions_loop_s = time_call(captions_looped, repeats=3, warmup=1)
    posecodes_per_s = NUM_POSES / codes_s
    captions_per_s = NUM_POSES / captions_s
    write_result(
        "captioning",
        {
            "num_poses": NUM_POSES,
            "posecodes_per_s": posecodes_per_s,
            "posecodes_baseline_per_s": NUM_BASELINE / codes_loop_s,
            "posecodes_ratio": posecodes_per_s / (NUM_BASELINE / codes_loop_s),
            "captions_per_s": captions_per_s,
            "captions_three_variants_per_s": 3 * NUM_POSES / variants_s,
            "captions_baseline_per_s": NUM_BASELINE / captions_loop_s,
            "captions_ratio": captions_per_s / (NUM_BASELINE / captions_loop_s),
            "ours_poses_per_s": captions_per_s,
            "baseline_poses_per_s": NUM_BASELINE / captions_loop_s,
            "ratio": captions_per_s / (NUM_BASELINE / captions_loop_s),
            "meets_targets": posecodes_per_s >= TARGET_POSECODES_PER_S and captions_per_s >= TARGET_CAPTIONS_PER_S,
            "targets": f">= {TARGET_POSECODES_PER_S} posecodes/s, >= {TARGET_CAPTIONS_PER_S} captions/s on 2 cores",
            "ours": f"batched: posecodes of {NUM_POSES} poses in one call; caption_poses on {NUM_POSES} poses "
                    "(skeleton-only forward kinematics)",
            "baseline": f"the same pipeline once per pose ({NUM_BASELINE} poses), captions through the full "
                        "body-model forward (vertices)",
        },
    )


class _FullForward(torch.nn.Module):
    """The body model as a captioner would naively use it: full forward, vertices included. Wrapping it
    keeps `caption_poses` from switching to its skeleton-only kinematics."""

    def __init__(self, body_model: BodyModel):
        super().__init__()
        self.body_model = body_model

    def forward(self, poses):
        return self.body_model(poses)


if __name__ == "__main__":
    main()
