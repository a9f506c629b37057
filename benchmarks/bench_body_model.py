"""Body-model forward throughput (poses/s) at batch 64: one batched call vs a per-pose loop.

Poses are the real CMU dev poses (tiled to 64). Baseline: the same `BodyModel` called once per pose
(batch 1), the way a per-sample dataset or renderer loop would use it.
"""

from __future__ import annotations

import numpy as np
import torch

from common import time_call, write_result
from poseembroider.body.body_model import BodyModel
from poseembroider.data import load_cmu_dev_poses

BATCH = 64


def main() -> None:
    torch.manual_seed(0)
    model = BodyModel().eval()
    poses = torch.as_tensor(np.resize(load_cmu_dev_poses(), (BATCH, 22, 3)))
    with torch.no_grad():
        batched = time_call(lambda: model(poses), repeats=9, warmup=2)
        looped = time_call(lambda: [model(poses[i : i + 1]) for i in range(BATCH)], repeats=3, warmup=1)
        grad_poses = poses.clone().requires_grad_(True)
    backward = time_call(lambda: model(grad_poses).vertices.sum().backward(), repeats=5, warmup=1)
    write_result(
        "body_model",
        {
            "model": f"{model.kind} SMPL-X-format model",
            "num_vertices": model.num_vertices,
            "batch": BATCH,
            "ours_poses_per_s": BATCH / batched,
            "baseline_poses_per_s": BATCH / looped,
            "ratio": looped / batched,
            "forward_backward_poses_per_s": BATCH / backward,
            "ours": "BodyModel forward, batch 64",
            "baseline": "BodyModel forward, 64 calls of batch 1",
        },
    )


if __name__ == "__main__":
    main()
