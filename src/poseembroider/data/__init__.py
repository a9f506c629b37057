"""Data shipped with the package: 108 real CMU mocap poses as SMPL-X body axis-angles (test fixtures,
realism yardstick, quickstart samples). Origin, licence and conversion: `cmu_mocap/README.md`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

CMU_DEV_POSES_FILE = Path(__file__).resolve().parent / "cmu_mocap" / "poses_dev.npz"


def load_cmu_dev_poses(with_sources: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Real CMU poses, (108, 22, 3) float32 axis-angles in SMPL-X joint order (recorded heading kept).

    With `with_sources`, also the (108,) "subject/trial.bvh:frame" strings.
    """
    with np.load(CMU_DEV_POSES_FILE, allow_pickle=False) as data:
        poses = data["poses"].astype(np.float32)
        sources = data["source"]
    if poses.ndim != 3 or poses.shape[1:] != (22, 3):
        raise ValueError(f"{CMU_DEV_POSES_FILE}: key 'poses' has shape {poses.shape}, expected (N, 22, 3)")
    return (poses, sources) if with_sources else poses
