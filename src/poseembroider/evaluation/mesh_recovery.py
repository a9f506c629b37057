"""Human mesh recovery metrics with explicit units: inputs in metres and rotation matrices, outputs in
millimetres and degrees, one value per sample kept for intervals and paired comparisons.

Metrics (each (..., P, 3) metres -> (...) mm, the mean over the P points of one sample):

- `mpjpe`: mean per-joint position error, no alignment (the caller centres the skeletons as its protocol says);
- `pa_mpjpe`: the same after the per-sample similarity Procrustes alignment (scale, proper rotation,
  translation; `geometry.procrustes_align`, Umeyama with the reflection fix) of the prediction onto the target;
- `pve`: mean per-vertex error, the same formula over mesh vertices;
- `rotation_error_deg`: mean geodesic angle between predicted and target joint rotations, in degrees.

Two protocols (`PROTOCOLS`):

- `smplx22`, the paper's (original_system.md §5.2): SMPL-X model joints 0-21 and all vertices from a forward
  pass with zero translation and the canonical global orientation, compared without root centring; the
  rotation error over the 22 joint rotations. `pose_bodies` runs that forward pass on any body model.
- `h36m14`, the standard one of the 3DPW / Human3.6M literature (SPIN's `eval.py` convention, peers.md §5):
  the 17 Human3.6M joints regressed from the posed vertices with `J_regressor_h36m` (a file named by
  `config.H36M_REGRESSOR_FILE`), both skeletons centred on their H36M pelvis (joint 0), the 14 LSP joints
  kept (`H36M_TO_J14`), MPJPE and PA-MPJPE on them, and PVE after the same pelvis centring. Without the
  regressor file the protocol is skipped and `MeshRecoveryErrors.skipped` says which file to provide.

`evaluate_smplx_predictions` does the whole job from predicted and target rotations (and betas) in chunks, so
10k samples of 10,475 vertices never sit in memory at once; `MeshRecoveryErrors.summary` gives means with 95%
bootstrap intervals and `compare` the paired interval between two methods on the same samples.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from poseembroider import config
from poseembroider.evaluation.bootstrap import (
    DEFAULT_CONFIDENCE,
    DEFAULT_RESAMPLES,
    PairedComparison,
    bootstrap_mean_interval,
    paired_bootstrap_difference,
)
from poseembroider.geometry import (
    axis_angle_to_matrix,
    geodesic_distance,
    matrix_to_axis_angle,
    procrustes_align,
)
from poseembroider.geometry._checks import check_float_tensor, check_same_shape, check_trailing_shape, format_shape

__all__ = [
    "H36M_TO_J14",
    "METRES_TO_MM",
    "NUM_SMPLX_EVAL_JOINTS",
    "PROTOCOLS",
    "Bodies",
    "BodyModelLike",
    "MeshRecoveryErrors",
    "RegressorNotFoundError",
    "evaluate_bodies",
    "evaluate_smplx_predictions",
    "h36m14_protocol",
    "load_h36m_regressor",
    "mpjpe",
    "pa_mpjpe",
    "paper_protocol",
    "pose_bodies",
    "pve",
    "rotation_error_deg",
]

METRES_TO_MM = 1000.0
NUM_SMPLX_EVAL_JOINTS = 22
"""The paper's joint set: SMPL-X joints 0-21 (pelvis and the 21 body joints)."""
NUM_H36M_JOINTS = 17
H36M_TO_J14: tuple[int, ...] = (6, 5, 4, 1, 2, 3, 16, 15, 14, 11, 12, 13, 8, 10)
"""Rows of the 17-joint H36M regression kept by the 14-joint LSP protocol, in LSP order (right ankle, knee,
hip, left hip, knee, ankle, right wrist, elbow, shoulder, left shoulder, elbow, wrist, neck, head top)."""
H36M_PELVIS = 0
PAPER_PROTOCOL = "smplx22"
H36M_PROTOCOL = "h36m14"
PROTOCOLS: tuple[str, ...] = (PAPER_PROTOCOL, H36M_PROTOCOL)
REGRESSOR_SUFFIXES = (".npy", ".npz")
REGRESSOR_NPZ_KEYS = ("J_regressor_h36m", "regressor", "J_regressor")


class RegressorNotFoundError(FileNotFoundError):
    """The H36M joint-regressor file is absent: the 14-joint protocol cannot run (a reason to skip it)."""


# ---------------------------------------------------------------------------------------------- metrics


def _point_sets(pred: torch.Tensor, target: torch.Tensor, pred_name: str, target_name: str) -> None:
    check_trailing_shape(pred, pred_name, (3,), "3D points in metres")
    check_trailing_shape(target, target_name, (3,), "3D points in metres")
    if pred.ndim < 2:
        raise ValueError(f"{pred_name}: expected (..., P, 3) point sets, got {format_shape(pred.shape)}")
    check_same_shape(target, target_name, pred, pred_name)


def mpjpe(pred_joints: torch.Tensor, target_joints: torch.Tensor) -> torch.Tensor:
    """Mean per-joint position error, no alignment: (..., J, 3) metres x 2 -> (...) millimetres."""
    _point_sets(pred_joints, target_joints, "pred_joints", "target_joints")
    return (pred_joints - target_joints).norm(dim=-1).mean(-1) * METRES_TO_MM


def pa_mpjpe(pred_joints: torch.Tensor, target_joints: torch.Tensor) -> torch.Tensor:
    """MPJPE after aligning each predicted skeleton onto its target with the best similarity transform
    (scale, proper rotation, translation): (..., J, 3) metres x 2 -> (...) millimetres.

    Invariant to any similarity transform of the prediction (a scaled, rotated, moved copy of the target
    scores 0); reflections are not allowed (the rotation keeps determinant +1)."""
    _point_sets(pred_joints, target_joints, "pred_joints", "target_joints")
    aligned = procrustes_align(pred_joints, target_joints).aligned
    return (aligned - target_joints).norm(dim=-1).mean(-1) * METRES_TO_MM


def pve(pred_vertices: torch.Tensor, target_vertices: torch.Tensor) -> torch.Tensor:
    """Mean per-vertex error, no alignment: (..., V, 3) metres x 2 -> (...) millimetres."""
    _point_sets(pred_vertices, target_vertices, "pred_vertices", "target_vertices")
    return (pred_vertices - target_vertices).norm(dim=-1).mean(-1) * METRES_TO_MM


def rotation_error_deg(pred_rotations: torch.Tensor, target_rotations: torch.Tensor) -> torch.Tensor:
    """Mean geodesic angle between predicted and target joint rotations: (..., J, 3, 3) x 2 -> (...) degrees."""
    check_trailing_shape(pred_rotations, "pred_rotations", (3, 3), "rotation matrices")
    check_trailing_shape(target_rotations, "target_rotations", (3, 3), "rotation matrices")
    if pred_rotations.ndim < 3:
        raise ValueError(
            f"pred_rotations: expected (..., J, 3, 3) joint rotations, got {format_shape(pred_rotations.shape)}"
        )
    check_same_shape(target_rotations, "target_rotations", pred_rotations, "pred_rotations")
    return torch.rad2deg(geodesic_distance(pred_rotations, target_rotations)).mean(-1)


# ---------------------------------------------------------------------------------------------- bodies


@dataclass
class Bodies:
    """Posed bodies in metres, from a zero-translation forward pass (`pose_bodies`).

    joints: (N, 22, 3) SMPL-X joints 0-21; vertices: (N, V, 3) or None (no PVE, no 14-joint protocol);
    rotations: (N, 22, 3, 3) joint rotation matrices (global orientation first) or None (no rotation error).
    """

    joints: torch.Tensor
    vertices: torch.Tensor | None = None
    rotations: torch.Tensor | None = None

    def check(self, name: str) -> None:
        """Raise ValueError naming `name.field` when a field has the wrong shape."""
        joints = check_trailing_shape(self.joints, f"{name}.joints", (NUM_SMPLX_EVAL_JOINTS, 3), "joints in metres")
        if joints.ndim != 3:
            raise ValueError(f"{name}.joints: expected (N, 22, 3), got {format_shape(joints.shape)}")
        n = joints.shape[0]
        if self.vertices is not None:
            v = check_trailing_shape(self.vertices, f"{name}.vertices", (3,), "vertices in metres")
            if v.ndim != 3 or v.shape[0] != n:
                raise ValueError(f"{name}.vertices: expected ({n}, V, 3), got {format_shape(v.shape)}")
        if self.rotations is not None:
            r = check_trailing_shape(
                self.rotations, f"{name}.rotations", (NUM_SMPLX_EVAL_JOINTS, 3, 3), "rotation matrices"
            )
            if r.ndim != 4 or r.shape[0] != n:
                raise ValueError(f"{name}.rotations: expected ({n}, 22, 3, 3), got {format_shape(r.shape)}")


class BodyModelLike(Protocol):
    """What `pose_bodies` needs of a body model (`poseembroider.body.BodyModel` is one): called with
    axis-angle poses (B, 22, 3), betas (B, n) or None and a translation (B, 3), it returns an object with
    `joints` (B, >= 22, 3) and `vertices` (B, V, 3), in metres."""

    def __call__(
        self, poses: torch.Tensor, betas: torch.Tensor | None = ..., transl: torch.Tensor | None = ...
    ) -> Any: ...


def _as_rotation_matrices(rotations: torch.Tensor, name: str) -> torch.Tensor:
    """(N, 22, 3, 3) matrices or (N, 22, 3) axis-angles -> (N, 22, 3, 3) matrices."""
    check_float_tensor(rotations, name)
    if rotations.ndim == 4 and tuple(rotations.shape[1:]) == (NUM_SMPLX_EVAL_JOINTS, 3, 3):
        return rotations
    if rotations.ndim == 3 and tuple(rotations.shape[1:]) == (NUM_SMPLX_EVAL_JOINTS, 3):
        return axis_angle_to_matrix(rotations)
    raise ValueError(
        f"{name}: expected (N, 22, 3, 3) rotation matrices or (N, 22, 3) axis-angles, "
        f"got {format_shape(rotations.shape)}"
    )


@torch.no_grad()
def pose_bodies(
    body_model: BodyModelLike | Callable[..., Any],
    rotations: torch.Tensor,
    betas: torch.Tensor | None = None,
    *,
    with_vertices: bool = True,
) -> Bodies:
    """The paper's forward pass: pose `body_model` with the 22 joint rotations, zero translation (so both
    bodies stand at the model origin in the canonical orientation of their global rotation) and `betas`.

    rotations: (N, 22, 3, 3) matrices or (N, 22, 3) axis-angles (global orientation + 21 body joints);
    betas: (N, n) shape coefficients, or None for the mean shape (the original evaluates texts-only inputs,
    which predict no shape, with the mean shape on both sides). Returns joints 0-21, the vertices (unless
    `with_vertices` is False) and the rotation matrices, in metres, as float32 on the CPU.
    """
    matrices = _as_rotation_matrices(rotations, "rotations")
    n = matrices.shape[0]
    if betas is not None:
        check_float_tensor(betas, "betas")
        if betas.ndim != 2 or betas.shape[0] != n:
            raise ValueError(f"betas: expected ({n}, n_betas) for {n} poses, got {format_shape(betas.shape)}")
    poses = rotations if rotations.ndim == 3 else matrix_to_axis_angle(matrices)
    out = body_model(poses, betas=betas, transl=torch.zeros(n, 3, dtype=poses.dtype, device=poses.device))
    joints = out.joints
    if joints.ndim != 3 or joints.shape[0] != n or joints.shape[1] < NUM_SMPLX_EVAL_JOINTS:
        raise ValueError(f"body_model: returned joints {format_shape(joints.shape)}, expected ({n}, >= 22, 3)")
    vertices = out.vertices.detach().float().cpu() if with_vertices else None
    return Bodies(
        joints=joints[:, :NUM_SMPLX_EVAL_JOINTS].detach().float().cpu(),
        vertices=vertices,
        rotations=matrices.detach().float().cpu(),
    )


# ---------------------------------------------------------------------------------------------- protocols


def paper_protocol(pred: Bodies, target: Bodies) -> dict[str, torch.Tensor]:
    """The paper's errors per sample (original_system.md §5.2): {metric: (N,)} with `pa_mpjpe_mm`, `mpjpe_mm`
    on SMPL-X joints 0-21 (no centring: both bodies come from zero-translation forward passes), `pve_mm` over
    all vertices and `rotation_error_deg` over the 22 joint rotations, each when both sides have its input."""
    pred.check("pred")
    target.check("target")
    if pred.joints.shape[0] != target.joints.shape[0]:
        raise ValueError(f"pred has {pred.joints.shape[0]} samples, target {target.joints.shape[0]}")
    errors = {
        "pa_mpjpe_mm": pa_mpjpe(pred.joints, target.joints),
        "mpjpe_mm": mpjpe(pred.joints, target.joints),
    }
    if pred.vertices is not None and target.vertices is not None:
        errors["pve_mm"] = _pve_named(pred.vertices, target.vertices)
    if pred.rotations is not None and target.rotations is not None:
        errors["rotation_error_deg"] = rotation_error_deg(pred.rotations, target.rotations)
    return errors


def _pve_named(pred_vertices: torch.Tensor, target_vertices: torch.Tensor) -> torch.Tensor:
    if pred_vertices.shape != target_vertices.shape:
        raise ValueError(
            f"pred.vertices {format_shape(pred_vertices.shape)} and target.vertices "
            f"{format_shape(target_vertices.shape)}: the two meshes need the same topology"
        )
    return pve(pred_vertices, target_vertices)


def load_h36m_regressor(path: str | os.PathLike | None = None) -> torch.Tensor:
    """The Human3.6M joint regressor (17, V) float32 from `path` (default `config.H36M_REGRESSOR_FILE`).

    Accepts a dense array in `.npy`, or `.npz` holding one array (or one named `J_regressor_h36m`,
    `regressor` or `J_regressor`); pickles are refused (allow_pickle=False). Raises RegressorNotFoundError
    naming the file and the setting when it is absent, ValueError naming the file for any other problem."""
    file = Path(config.H36M_REGRESSOR_FILE if path is None else path)
    if not file.is_file():
        raise RegressorNotFoundError(
            f"H36M joint regressor not found: {file}. Provide the Human3.6M joint regressor of your body model's "
            f"mesh as a (17, V) array in .npy or .npz at that path, or point POSEEMBROIDER_H36M_REGRESSOR_FILE at it "
            f"(SPIN's J_regressor_h36m.npy for SMPL meshes, V = 6890; a SMPL-X-topology one for SMPL-X, V = 10475)"
        )
    if file.suffix not in REGRESSOR_SUFFIXES:
        raise ValueError(f"{file}: expected a .npy or .npz regressor (pickles are never loaded), got '{file.suffix}'")
    try:
        if file.suffix == ".npy":
            array = np.load(file, allow_pickle=False)
            if not isinstance(array, np.ndarray):  # a zip archive (an .npz, a torch.save file) under a .npy name
                array.close()
                raise ValueError(f"{file}: a zip archive, not a .npy array")
        else:
            with np.load(file, allow_pickle=False) as archive:
                keys = list(archive.keys())
                key = keys[0] if len(keys) == 1 else next((k for k in REGRESSOR_NPZ_KEYS if k in keys), None)
                if key is None:
                    raise ValueError(f"{file}: holds {keys}; expected one array or one of {list(REGRESSOR_NPZ_KEYS)}")
                array = archive[key]
    except ValueError as err:
        if str(file) in str(err):
            raise
        raise ValueError(f"{file}: cannot read the regressor as a plain numeric array ({err})") from err
    if array.dtype.kind not in "fiu" or array.ndim != 2 or array.shape[0] != NUM_H36M_JOINTS:
        raise ValueError(
            f"{file}: expected a (17, V) numeric H36M joint regressor, "
            f"got shape {tuple(array.shape)} dtype {array.dtype}"
        )
    regressor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    if not bool(torch.isfinite(regressor).all()):
        raise ValueError(f"{file}: the regressor holds NaN or infinite values")
    return regressor


def _h36m_joints(vertices: torch.Tensor, regressor: torch.Tensor, name: str) -> torch.Tensor:
    """(N, V, 3) -> (N, 17, 3) regressed Human3.6M joints."""
    if vertices.shape[-2] != regressor.shape[1]:
        raise ValueError(
            f"{name}: {vertices.shape[-2]} vertices, but the H36M regressor (17, {regressor.shape[1]}) was made for "
            f"meshes of {regressor.shape[1]} vertices (config.H36M_REGRESSOR_FILE = {config.H36M_REGRESSOR_FILE})"
        )
    return torch.einsum("jv,nvc->njc", regressor.to(vertices), vertices)


def h36m14_protocol(
    pred_vertices: torch.Tensor, target_vertices: torch.Tensor, regressor: torch.Tensor
) -> dict[str, torch.Tensor]:
    """The standard 14-joint errors per sample: {`pa_mpjpe_mm`, `mpjpe_mm`, `pve_mm`: (N,)}.

    pred_vertices, target_vertices: (N, V, 3) metres; regressor: (17, V) (`load_h36m_regressor`). The 17
    H36M joints are regressed from each mesh, each skeleton and mesh centred on its own H36M pelvis, and the
    14 LSP joints of `H36M_TO_J14` kept (SPIN's evaluation)."""
    _point_sets(pred_vertices, target_vertices, "pred_vertices", "target_vertices")
    if pred_vertices.ndim != 3:
        raise ValueError(f"pred_vertices: expected (N, V, 3), got {format_shape(pred_vertices.shape)}")
    check_float_tensor(regressor, "regressor")
    if regressor.ndim != 2 or regressor.shape[0] != NUM_H36M_JOINTS:
        raise ValueError(f"regressor: expected (17, V), got {format_shape(regressor.shape)}")
    pred_h36m = _h36m_joints(pred_vertices, regressor, "pred_vertices")
    target_h36m = _h36m_joints(target_vertices, regressor, "target_vertices")
    pred_pelvis = pred_h36m[:, H36M_PELVIS : H36M_PELVIS + 1]
    target_pelvis = target_h36m[:, H36M_PELVIS : H36M_PELVIS + 1]
    j14 = list(H36M_TO_J14)
    pred_j14 = pred_h36m[:, j14] - pred_pelvis
    target_j14 = target_h36m[:, j14] - target_pelvis
    return {
        "pa_mpjpe_mm": pa_mpjpe(pred_j14, target_j14),
        "mpjpe_mm": mpjpe(pred_j14, target_j14),
        "pve_mm": pve(pred_vertices - pred_pelvis, target_vertices - target_pelvis),
    }


# ---------------------------------------------------------------------------------------------- results


@dataclass
class MeshRecoveryErrors:
    """Per-sample errors of one method on N samples: `per_sample[protocol][metric]` (N,) float64 (mm or
    degrees, the unit ends the metric's name); `skipped[protocol]` says why a protocol did not run."""

    per_sample: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def num_samples(self) -> int:
        for metrics in self.per_sample.values():
            for values in metrics.values():
                return int(values.shape[0])
        return 0

    def summary(
        self, *, confidence: float = DEFAULT_CONFIDENCE, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0
    ) -> dict[str, Any]:
        """{protocol: {metric: {value (the mean), low, high, confidence}}, plus `n` and `skipped`}: JSON-ready."""
        out: dict[str, Any] = {"n": self.num_samples}
        for protocol, metrics in self.per_sample.items():
            out[protocol] = {
                metric: bootstrap_mean_interval(
                    values, confidence=confidence, n_resamples=n_resamples, seed=seed
                ).as_dict()
                for metric, values in metrics.items()
            }
        if self.skipped:
            out["skipped"] = dict(self.skipped)
        return out

    def compare(
        self,
        other: MeshRecoveryErrors,
        *,
        confidence: float = DEFAULT_CONFIDENCE,
        n_resamples: int = DEFAULT_RESAMPLES,
        seed: int = 0,
    ) -> dict[str, dict[str, PairedComparison]]:
        """This method (A) against `other` (B) on the same samples, metric by metric of the protocols both ran:
        {protocol: {metric: PairedComparison}} (difference = mean(A) - mean(B); negative = A has lower errors)."""
        out: dict[str, dict[str, PairedComparison]] = {}
        for protocol, metrics in self.per_sample.items():
            others = other.per_sample.get(protocol, {})
            out[protocol] = {
                metric: paired_bootstrap_difference(
                    values, others[metric], confidence=confidence, n_resamples=n_resamples, seed=seed
                )
                for metric, values in metrics.items()
                if metric in others
            }
        return out

    @staticmethod
    def concatenate(parts: list[MeshRecoveryErrors]) -> MeshRecoveryErrors:
        """Errors of consecutive chunks of samples -> the errors of all of them (same protocols and metrics)."""
        if not parts:
            return MeshRecoveryErrors()
        per_sample = {
            protocol: {metric: torch.cat([p.per_sample[protocol][metric] for p in parts]) for metric in metrics}
            for protocol, metrics in parts[0].per_sample.items()
        }
        return MeshRecoveryErrors(per_sample=per_sample, skipped=dict(parts[0].skipped))


def _float64(errors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: values.detach().to("cpu", torch.float64) for name, values in errors.items()}


def _regressor_or_reason(regressor: torch.Tensor | str | os.PathLike | None) -> tuple[torch.Tensor | None, str | None]:
    if isinstance(regressor, torch.Tensor):
        return regressor, None
    try:
        return load_h36m_regressor(regressor), None
    except RegressorNotFoundError as err:
        return None, f"{H36M_PROTOCOL} protocol skipped: {err}"


def evaluate_bodies(
    pred: Bodies, target: Bodies, *, h36m_regressor: torch.Tensor | str | os.PathLike | None = None
) -> MeshRecoveryErrors:
    """Both protocols on posed bodies (`pose_bodies`). `h36m_regressor`: a (17, V) tensor, a file, or None
    for `config.H36M_REGRESSOR_FILE`; an absent file skips the 14-joint protocol with a message naming it
    (in `skipped`), a bad one raises. The 14-joint protocol also needs both sides' vertices."""
    return _evaluate(pred, target, *_regressor_or_reason(h36m_regressor))


def _evaluate(pred: Bodies, target: Bodies, regressor: torch.Tensor | None, reason: str | None) -> MeshRecoveryErrors:
    result = MeshRecoveryErrors(per_sample={PAPER_PROTOCOL: _float64(paper_protocol(pred, target))})
    if regressor is None:
        result.skipped[H36M_PROTOCOL] = str(reason)
    elif pred.vertices is None or target.vertices is None:
        result.skipped[H36M_PROTOCOL] = f"{H36M_PROTOCOL} protocol skipped: the bodies have no vertices"
    else:
        result.per_sample[H36M_PROTOCOL] = _float64(h36m14_protocol(pred.vertices, target.vertices, regressor))
    return result


def evaluate_smplx_predictions(
    body_model: BodyModelLike | Callable[..., Any],
    pred_rotations: torch.Tensor,
    target_rotations: torch.Tensor,
    pred_betas: torch.Tensor | None = None,
    target_betas: torch.Tensor | None = None,
    *,
    h36m_regressor: torch.Tensor | str | os.PathLike | None = None,
    batch_size: int = 256,
) -> MeshRecoveryErrors:
    """Per-sample errors of predicted SMPL-X body poses against the ground truth, both protocols.

    pred_rotations, target_rotations: (N, 22, 3, 3) matrices or (N, 22, 3) axis-angles; pred_betas,
    target_betas: (N, n) or None (mean shape; the original uses the mean shape on both sides when the input
    has no image). Bodies are posed `batch_size` samples at a time with zero translation (`pose_bodies`), so
    memory stays bounded; the regressor file is read once. Returns `MeshRecoveryErrors` (N values per metric).
    """
    pred_m = _as_rotation_matrices(pred_rotations, "pred_rotations")
    target_m = _as_rotation_matrices(target_rotations, "target_rotations")
    if pred_m.shape[0] != target_m.shape[0]:
        raise ValueError(
            f"pred_rotations has {pred_m.shape[0]} samples, target_rotations {target_m.shape[0]}: expected the same"
        )
    for betas, name in ((pred_betas, "pred_betas"), (target_betas, "target_betas")):
        if betas is not None and (betas.ndim != 2 or betas.shape[0] != pred_m.shape[0]):
            raise ValueError(f"{name}: expected ({pred_m.shape[0]}, n_betas), got {format_shape(betas.shape)}")
    if batch_size < 1:
        raise ValueError(f"batch_size: expected at least 1, got {batch_size}")
    matrix, reason = _regressor_or_reason(h36m_regressor)
    parts = []
    for start in range(0, pred_m.shape[0], batch_size):
        chunk = slice(start, start + batch_size)
        pred = pose_bodies(body_model, pred_m[chunk], None if pred_betas is None else pred_betas[chunk])
        target = pose_bodies(body_model, target_m[chunk], None if target_betas is None else target_betas[chunk])
        parts.append(_evaluate(pred, target, matrix, reason))
    return MeshRecoveryErrors.concatenate(parts)
