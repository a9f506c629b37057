"""PoseVAE throughput: frozen-encoder poses/s (batched vs per-pose loop) and training samples/s.

Ours: `PoseVAE.encode_features` (the 512-d frozen pose feature) on 256 poses in one batched call.
Baseline: the same encoder called once per pose (batch 1), the way a per-item feature-caching loop would.
Training is timed as full optimisation steps (forward, loss, backward, Adam) at the recipe's batch size
(128): with the published objective, which poses both the original and the reconstructed bodies with
the SMPL-X-format model, and with the body-model-free objective (rotations + KL, `--wloss_v2v 0
--wloss_jts 0`), to show the share of the body model in a step. The joint term alone (`--wloss_v2v 0`) is
timed both ways: with the joints of the posed SMPL-X-format mesh (`--joints_source body_model`, the
published default) and with the 22 body joints by forward kinematics only (`--joints_source skeleton`), as
a ratio measured in one run.
Poses come from the synthetic pose sampler.
Each figure is the best of a few medians (other processes only add time). The headline figures use one
torch thread: on a 2-core machine shared with other processes, two intra-op threads stall each other
(up to 30x slower small matrix products); the figures with torch's default thread count are kept beside.
"""

from __future__ import annotations

import os

import torch

from common import time_call, write_result
from poseembroider.assisting_models.poseVAE.model_poseVAE import PoseVAE, PoseVAEConfig
from poseembroider.body.body_model import BodyModel
from poseembroider.datasets.pose_processing import normalize_poses
from poseembroider.datasets.synthetic.pose_sampler import PoseSampler

ENCODE_BATCH = 256
TRAIN_BATCH = 128


def best_time(fn, rounds: int, repeats: int, warmup: int = 1) -> float:
    """Smallest of `rounds` medians: other processes on a shared machine only ever add time."""
    return min(time_call(fn, repeats=repeats, warmup=warmup) for _ in range(rounds))


def training_step_time(model: PoseVAE, poses: torch.Tensor, rounds: int, repeats: int) -> float:
    optimizer = torch.optim.Adam(model.param_groups(1e-5, 1e-4), lr=1e-5, weight_decay=1e-4)
    model.train()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        model.training_step({"poses": poses})["loss"].backward()
        optimizer.step()

    return best_time(step, rounds=rounds, repeats=repeats)


def measure(model: PoseVAE, body_free: PoseVAE, poses: torch.Tensor) -> dict[str, float]:
    """Encoder poses/s (batched, per-pose loop) and training samples/s (full, body-free objective, joint term
    by the mesh and by the skeleton)."""
    model.eval()
    with torch.no_grad():
        batched = best_time(lambda: model.encode_features(poses), rounds=5, repeats=11, warmup=3)
        looped = best_time(
            lambda: [model.encode_features(poses[i : i + 1]) for i in range(ENCODE_BATCH)], rounds=3, repeats=3
        )
    full = training_step_time(model, poses[:TRAIN_BATCH], rounds=2, repeats=3)
    free = training_step_time(body_free, poses[:TRAIN_BATCH], rounds=3, repeats=7)
    body = model.body_model()
    joints = {}
    for source, rounds, repeats in (("body_model", 2, 3), ("skeleton", 3, 7)):
        joint_model = PoseVAE(PoseVAEConfig(wloss_v2v=0.0, joints_source=source)).set_body_model(body)
        joints[source] = training_step_time(joint_model, poses[:TRAIN_BATCH], rounds=rounds, repeats=repeats)
    return {
        "encode_batched": ENCODE_BATCH / batched,
        "encode_looped": ENCODE_BATCH / looped,
        "train_full": TRAIN_BATCH / full,
        "train_free": TRAIN_BATCH / free,
        "train_joints_body_model": TRAIN_BATCH / joints["body_model"],
        "train_joints_skeleton": TRAIN_BATCH / joints["skeleton"],
    }


def main() -> None:
    torch.manual_seed(0)
    body = BodyModel().eval()
    poses = normalize_poses(PoseSampler(seed=0, body_model=body).sample(ENCODE_BATCH).poses, "bedlam")
    model = PoseVAE().set_body_model(body)
    body_free = PoseVAE(PoseVAEConfig(wloss_v2v=0.0, wloss_jts=0.0))
    default_threads = torch.get_num_threads()
    default = measure(model, body_free, poses)
    torch.set_num_threads(1)
    one = measure(model, body_free, poses)
    torch.set_num_threads(default_threads)
    write_result(
        "posevae",
        {
            "body_model": f"{body.kind} SMPL-X-format model, {body.num_vertices} vertices",
            "threads": 1,
            "encode_batch": ENCODE_BATCH,
            "ours_poses_per_s": one["encode_batched"],
            "baseline_poses_per_s": one["encode_looped"],
            "ratio": one["encode_batched"] / one["encode_looped"],
            "train_batch": TRAIN_BATCH,
            "train_samples_per_s": one["train_full"],
            "train_body_free_samples_per_s": one["train_free"],
            "body_model_share_of_train_step": 1.0 - one["train_full"] / one["train_free"],
            "train_joint_term_body_model_samples_per_s": one["train_joints_body_model"],
            "train_joint_term_skeleton_samples_per_s": one["train_joints_skeleton"],
            "joint_term_skeleton_vs_body_model_ratio": one["train_joints_skeleton"] / one["train_joints_body_model"],
            f"default_threads_{default_threads}": {k: round(v, 1) for k, v in default.items()},
            "load_average_1min": os.getloadavg()[0],
            "ours": f"encode_features, one call of {ENCODE_BATCH} poses (eval, no grad), 1 torch thread",
            "baseline": f"encode_features, {ENCODE_BATCH} calls of 1 pose, 1 torch thread",
        },
    )


if __name__ == "__main__":
    main()
