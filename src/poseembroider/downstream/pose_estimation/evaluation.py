"""Evaluation of an HPS head on x̄ of a split (original_system.md §5.2), tensors in, per-sample errors out.

For one input set (images, texts, images+texts, poses...), the head regresses every sample's rotations (and
betas) from its x̄; the bodies are posed with zero translation and compared on SMPL-X joints 0-21: PA-MPJPE,
MPJPE, PVE (mm) and the mean geodesic rotation error (degrees). Betas as the original: the predicted ones
against the true ones when images are in the input and the head predicts shape, else the mean shape on both
sides. The baseline is the training split's mean pose (and mean betas, when betas are compared), the answer of
a head that learnt nothing from x̄.

Per-sample values are kept (`SampleErrors`), so means come with bootstrap intervals and two input sets
(image+text vs image) are compared sample by sample.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from poseembroider.assisting_models.poseVAE.reconstruction_metrics import pose_reconstruction_errors
from poseembroider.downstream.pose_estimation.model_pose_estimation import HPSEstimator
from poseembroider.geometry import axis_angle_to_matrix, matrix_to_axis_angle

__all__ = ["METRICS", "SampleErrors", "hps_errors", "predict_from_xbar", "uses_betas"]

METRICS: dict[str, str] = {
    "pa_mpjpe_mm": "pampjpe_mm",
    "mpjpe_mm": "mpjpe_mm",
    "pve_mm": "pve_mm",
    "rotation_error_deg": "rot_deg",
}
"""Our metric names -> the names of `reconstruction_metrics.pose_reconstruction_errors`."""

SampleErrors = dict[str, torch.Tensor]
"""{metric: (N,) float64 per-sample errors}, metric in `METRICS` (the unit ends the name)."""


def uses_betas(head: HPSEstimator, input_types: tuple[str, ...]) -> bool:
    """Whether the evaluation compares betas: the head predicts them and images are among the inputs."""
    return head.shape_head is not None and "images" in input_types


@torch.no_grad()
def predict_from_xbar(head: HPSEstimator, xbar: torch.Tensor, batch_size: int = 1024) -> dict[str, torch.Tensor]:
    """`head(xbar)` in eval mode, batch by batch: `rotations` (N, J, 3, 3) and `betas` (N, B) if it has a shape
    head, on the CPU."""
    head.eval()
    device = head.pose_head.init_state.device
    parts = [head(xbar[s : s + batch_size].to(device)) for s in range(0, len(xbar), batch_size)]
    return {key: torch.cat([p[key] for p in parts]).cpu() for key in parts[0]}


@torch.no_grad()
def hps_errors(
    body: torch.nn.Module,
    pred_rotations: torch.Tensor,
    target_poses: torch.Tensor,
    pred_betas: torch.Tensor | None = None,
    target_betas: torch.Tensor | None = None,
    batch_size: int = 256,
) -> SampleErrors:
    """Per-sample errors of predicted rotations (N, J, 3, 3) against true poses (N, J, 3) axis-angles, both
    posed by `body` with zero translation and the given betas (None: mean shape)."""
    if len(pred_rotations) != len(target_poses):
        raise ValueError(f"{len(pred_rotations)} predictions for {len(target_poses)} targets")
    device = next(body.buffers()).device
    sums: dict[str, list[torch.Tensor]] = {name: [] for name in METRICS}
    for start in range(0, len(target_poses), batch_size):
        part = slice(start, start + batch_size)
        pred_rot = pred_rotations[part].to(device)
        true = target_poses[part].to(device)
        pred_b = None if pred_betas is None else pred_betas[part].to(device)
        true_b = None if target_betas is None else target_betas[part].to(device)
        posed_pred, posed_true = body(matrix_to_axis_angle(pred_rot), pred_b), body(true, true_b)
        errors = pose_reconstruction_errors(
            posed_pred.joints,
            posed_true.joints,
            posed_pred.vertices,
            posed_true.vertices,
            pred_rot,
            axis_angle_to_matrix(true),
        )
        for name, theirs in METRICS.items():
            sums[name].append(errors[theirs].double().cpu())
    return {name: torch.cat(values) for name, values in sums.items()}


@dataclass(frozen=True)
class Interval:
    """Mean of per-sample values and its 95% percentile-bootstrap interval."""

    value: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float]:
        return {"value": self.value, "low": self.low, "high": self.high}


def bootstrap_mean(values: torch.Tensor, n_resamples: int = 1000, seed: int = 0) -> Interval:
    """Mean of (N,) values with a 95% percentile-bootstrap interval over the samples."""
    values = values.double().reshape(-1)
    generator = torch.Generator().manual_seed(seed)
    index = torch.randint(len(values), (n_resamples, len(values)), generator=generator)
    means = values[index].mean(1)
    low, high = torch.quantile(means, torch.tensor([0.025, 0.975], dtype=torch.float64)).tolist()
    return Interval(float(values.mean()), low, high)


def summarize(errors: Mapping[str, torch.Tensor], seed: int = 0) -> dict[str, dict[str, float]]:
    """{metric: {value, low, high}}: means with 95% bootstrap intervals."""
    return {name: bootstrap_mean(values, seed=seed).as_dict() for name, values in errors.items()}


def paired_difference(a: torch.Tensor, b: torch.Tensor, seed: int = 0) -> dict[str, float]:
    """mean(a - b) over the same samples with its 95% paired-bootstrap interval, and the relative change
    mean(a - b) / mean(b)."""
    interval = bootstrap_mean(a.double() - b.double(), seed=seed)
    return {**interval.as_dict(), "relative": interval.value / float(b.double().mean())}
