"""How diverse and how realistic the pose sampler is, in numbers (`sampler_report`).

- **diversity**: mean pairwise MPJPE (mm) of a farthest-point subset (`fps_size` poses) of the n samples;
  the same for a random subset of that size is reported alongside, for scale;
- **realism**: for each of the 108 real CMU poses (`poseembroider.data.load_cmu_dev_poses`), the MPJPE (mm) to
  its nearest neighbour among the n samples; the median is the headline number. The CMU poses are not key
  poses of the default sampler, so this measures coverage of real poses, not memorisation;
- **rejections**: fractions of drawn candidates rejected by the joint limits and by the self-penetration
  test;
- **categories**: share of samples that the posture detectors of `metrics` flag (sitting, kneeling, lying,
  arms above head, upside down);
- **speed**: accepted samples per second of `PoseSampler.sample` (this process, its threads).

MPJPEs use the mean body shape (betas = 0) for both sets, pelvis-centred and heading-normalised.
"""

from __future__ import annotations

import time

import torch

from poseembroider.body.body_model import BodyModel
from poseembroider.data import load_cmu_dev_poses
from poseembroider.datasets.synthetic.metrics import (
    detect_categories,
    farthest_point_sampling,
    mean_pairwise_mpjpe,
    nearest_neighbour_mpjpe,
    normalize_joints,
)
from poseembroider.datasets.synthetic.pose_sampler import PoseSampler, SamplerConfig

__all__ = ["sampler_report"]


def sampler_report(
    n: int = 10000,
    seed: int = 0,
    fps_size: int = 1000,
    body_model: BodyModel | None = None,
    config: SamplerConfig | None = None,
) -> dict[str, float | int | dict[str, float]]:
    """Sample n poses and measure them (see the module docstring). Returns a flat-ish dict of numbers."""
    if not 2 <= fps_size <= n:
        raise ValueError(f"fps_size: expected 2 <= fps_size <= n = {n}, got {fps_size}")
    sampler = PoseSampler(seed, body_model, config)
    start = time.perf_counter()
    samples = sampler.sample(n)
    sample_seconds = time.perf_counter() - start

    with torch.no_grad():
        joints = normalize_joints(sampler.skeleton(samples.poses).joints)
        subset = farthest_point_sampling(joints.reshape(n, -1), fps_size, seed_index=0)
        random_subset = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:fps_size]
        cmu = torch.as_tensor(load_cmu_dev_poses())
        cmu_joints = normalize_joints(sampler.skeleton(cmu).joints)
        nn_mm, _ = nearest_neighbour_mpjpe(cmu_joints, joints, normalize=False)
        categories = detect_categories(samples.joints)

    attempts = samples.attempts
    drawn = max(1, attempts["drawn"])
    return {
        "n": n,
        "seed": seed,
        "diversity_fps_mpjpe_mm": mean_pairwise_mpjpe(joints[subset], normalize=False),
        "diversity_random_subset_mpjpe_mm": mean_pairwise_mpjpe(joints[random_subset], normalize=False),
        "realism_median_nn_mpjpe_mm": float(nn_mm.median()),
        "realism_mean_nn_mpjpe_mm": float(nn_mm.mean()),
        "realism_max_nn_mpjpe_mm": float(nn_mm.max()),
        "rejected_joint_limits": attempts["rejected_joint_limits"] / drawn,
        "rejected_self_penetration": attempts["rejected_self_penetration"] / drawn,
        "candidates_drawn": attempts["drawn"],
        "category_shares": {name: float(flags.float().mean()) for name, flags in categories.items()},
        "samples_per_second": n / sample_seconds,
        "seconds_total": time.perf_counter() - start,
    }
