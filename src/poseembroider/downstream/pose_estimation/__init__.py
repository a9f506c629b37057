"""Human mesh recovery on the representation (original_system.md §2.9, §5.2): `HPSEstimator` regresses the
SMPL-X body pose (22 joints) and shape (10 betas) from x̄.

- `model_pose_estimation`: the head (iterative regression from the mean pose, shape head, losses);
- `mean_pose`: the mean SMPL-X pose of a training split (the head's start and the baseline), as `.npz`;
- `data`: ground-truth targets of a split in a cache's id order, tensor batches;
- `evaluation`: per-sample PA-MPJPE / MPJPE / PVE / rotation errors of a head on x̄;
- scripts `train_pose_estimation`, `evaluate_pose_estimation`.
"""
