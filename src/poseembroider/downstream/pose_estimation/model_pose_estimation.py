"""HPSEstimator: SMPL-X body pose (and shape) regressed from the frozen representation x̄ (original_system.md §2.9).

    x̄ (B, D) ──┬─ IterativeRegressionHead: state_0 = mean pose (J x 6D, trainable)
               │     3 x  state += MLP([x̄, state])   (D + 6J -> 1024 -> 1024 -> 6J, dropout 0.5, LeakyReLU)
               │     -> Gram-Schmidt -> rotations (B, J, 3, 3)   [global orientation + 21 body joints]
               └─ shape head (--predict_bodyshape): Linear(D, D) ReLU Linear(D, 10) -> betas (B, 10)

x̄ is PoseEmbroider's intermodality token or the Aligner's mixed query of the input types the head is trained
on (`representation_model_input_types`, `images` in the paper), from a frozen representation model named in
the config (`pretrained_representation_model`: shortname or folder; its weights hash is stored and checked).
A batch brings x̄ itself (`xbar`, read from a cache, `features.intermodality`) or the representation model's
inputs (raw images / poses / texts, or their cached frozen features), from which x̄ is computed live under
`torch.no_grad()`; the representation model is kept out of the state dict and loaded on first use.

Losses (`training_step`; targets `poses` (B, J, 3) axis-angles, `shapes` (B, >= 10) betas), their mean:

- `loss_rotations`: geodesic angle (radians) between predicted and true joint rotations, summed over joints,
  batch mean;
- `loss_betas` (shape head, and only when images are among the input types, as the original): smooth-L1
  summed over the coefficients, batch mean;
- `loss_joints`, `loss_vertices` (`--smpl_losses`): smooth-L1 between the bodies posed by the body model
  (predicted vs true rotations; betas as the evaluation protocol: predicted vs true with the shape head, the
  mean shape on both sides otherwise), summed over x, y, z, mean over the first J joints / all vertices and
  the batch. Not used by the published recipe.

Validation adds, per batch, `geodesic_deg`, and the MPJPE / PA-MPJPE (mm, 22 SMPL-X joints, zero translation)
of the posed bodies; the best checkpoint is chosen by the validation loss, as the original.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from poseembroider.downstream.input_types import check_input_types, modalities_of
from poseembroider.encoders import weights_fingerprint
from poseembroider.geometry import (
    axis_angle_to_matrix,
    geodesic_distance,
    matrix_to_axis_angle,
    matrix_to_rot6d,
    procrustes_align,
    rot6d_to_matrix,
)
from poseembroider.model import RepresentationModel
from poseembroider.models.config_fields import config_field
from poseembroider.models.pretrained import (
    CheckpointError,
    PretrainedModel,
    load_pretrained,
    register_model,
    resolve_model_dir,
)
from poseembroider.models.projections import MiniMLP

__all__ = ["HPSEstimator", "HPSEstimatorConfig", "IterativeRegressionHead", "representation_fingerprint"]


def representation_fingerprint(model: RepresentationModel) -> str:
    """`<class>@<weights hash>`: the representation model version, as in the x̄ caches' fingerprints."""
    return f"{type(model).__name__}@{weights_fingerprint(model)}"


@dataclass
class HPSEstimatorConfig:
    """The regression head of §2.9 and the representation model it reads; defaults = the published recipe."""

    latentD: int = config_field(512, "width of x̄ (that of the representation model)", min=1)
    num_body_joints: int = config_field(22, "joints regressed: global orientation + 21 body joints", min=1)
    num_shape_coeffs: int = config_field(10, "SMPL-X betas regressed by the shape head")
    predict_bodyshape: bool = config_field(False, "also regress the body shape (betas) with a shape head")
    regressor_hidden: int = config_field(1024, "hidden width of the iterative regressor", min=1)
    regressor_dropout: float = config_field(0.5, "dropout of the iterative regressor")
    n_iterations: int = config_field(3, "residual iterations of the regressor", min=1)
    smpl_losses: bool = config_field(False, "add smooth-L1 losses on the posed joints and vertices")
    pretrained_representation_model: str = config_field("", "frozen representation model: shortname or folder")
    representation_model_fingerprint: str = config_field("", "its <class>@<weights hash> (checked when loaded)")
    representation_model_input_types: list[str] = config_field(["images"], "inputs of x̄ at training")

    def __post_init__(self) -> None:
        for name in ("latentD", "num_body_joints", "regressor_hidden", "n_iterations"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"--{name} must be >= 1, got {getattr(self, name)}")
        if self.num_shape_coeffs < 0 or (self.predict_bodyshape and self.num_shape_coeffs == 0):
            raise ValueError(f"--num_shape_coeffs {self.num_shape_coeffs}: >= 1 with --predict_bodyshape, >= 0")
        if not 0.0 <= self.regressor_dropout < 1.0:
            raise ValueError(f"--regressor_dropout {self.regressor_dropout} must be in [0, 1)")
        self.representation_model_input_types = list(
            check_input_types(self.representation_model_input_types, "--representation_model_input_types")
        )


class IterativeRegressionHead(nn.Module):
    """x (B, D) -> state (B, S): `n_iterations` times `state += regressor([x, state])`, from a trainable
    initial state (HMR-style iterative error feedback; the state of the HPS head is J x 6D rotations)."""

    def __init__(self, in_dim: int, state_dim: int, hidden: int, dropout: float, n_iterations: int) -> None:
        super().__init__()
        self.n_iterations = n_iterations
        self.init_state = nn.Parameter(torch.zeros(state_dim))
        self.regressor = nn.Sequential(
            nn.Linear(in_dim + state_dim, hidden),
            nn.Dropout(dropout),
            nn.LeakyReLU(),
            nn.Linear(hidden, hidden),
            nn.Dropout(dropout),
            nn.LeakyReLU(),
            nn.Linear(hidden, state_dim),
        )
        # starts at the initial state: small last weights (as the original) and, unlike it, a zero last bias
        # (PyTorch's default bias would move every untrained answer away from the mean pose)
        nn.init.xavier_uniform_(self.regressor[-1].weight, gain=0.01)
        nn.init.zeros_(self.regressor[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        state = self.init_state.expand(x.shape[0], -1)
        for _ in range(self.n_iterations):
            state = state + self.regressor(torch.cat([x, state], dim=-1))
        return state


@register_model
class HPSEstimator(PretrainedModel, nn.Module):
    """x̄ -> SMPL-X body pose rotations (B, J, 3, 3) and, with the shape head, betas (B, num_shape_coeffs)."""

    config_class = HPSEstimatorConfig
    config: HPSEstimatorConfig

    def __init__(self, config: HPSEstimatorConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or HPSEstimatorConfig()
        joints = cfg.num_body_joints
        self.pose_head = IterativeRegressionHead(
            cfg.latentD, joints * 6, cfg.regressor_hidden, cfg.regressor_dropout, cfg.n_iterations
        )
        with torch.no_grad():  # identity rotations until `set_mean_pose`
            self.pose_head.init_state.copy_(matrix_to_rot6d(torch.eye(3).expand(joints, 3, 3)).reshape(-1))
        self.shape_head = MiniMLP(cfg.latentD, cfg.latentD, cfg.num_shape_coeffs) if cfg.predict_bodyshape else None
        self.__dict__["_representation"] = None  # frozen, out of the state dict and of .to()
        self.__dict__["_body_model"] = None

    # ------------------------------------------------------------------ set-up

    @torch.no_grad()
    def set_mean_pose(self, mean_pose: torch.Tensor) -> None:
        """Start the regression from `mean_pose` (J', 3) axis-angles, J' >= J (the training split's mean pose,
        `mean_pose.py`); its first J joints become the trainable initial state."""
        joints = self.config.num_body_joints
        pose = torch.as_tensor(mean_pose, dtype=torch.float32)
        if pose.dim() != 2 or pose.shape[1] != 3 or pose.shape[0] < joints:
            raise ValueError(f"mean_pose: expected ({joints}+, 3) axis-angles, got {tuple(pose.shape)}")
        rot6d = matrix_to_rot6d(axis_angle_to_matrix(pose[:joints])).reshape(-1)
        self.pose_head.init_state.copy_(rot6d.to(self.pose_head.init_state))

    def attach_representation(self, model: RepresentationModel) -> None:
        """Use `model` for live x̄, after checking it is the version the head was built over (and its width)."""
        found = representation_fingerprint(model)
        expected = self.config.representation_model_fingerprint
        if expected and found != expected:
            raise CheckpointError(
                f"the representation model {self.config.pretrained_representation_model!r} is {found}, but this "
                f"head was trained over {expected} (representation_model_fingerprint in its config.json): "
                "another version of that model"
            )
        if model.config.latentD != self.config.latentD:
            raise CheckpointError(
                f"representation width {model.config.latentD} != the head's latentD {self.config.latentD}"
            )
        model.eval().requires_grad_(False)
        self.__dict__["_representation"] = model

    def representation(self, device: torch.device | None = None) -> RepresentationModel:
        """The frozen representation model, loaded from `pretrained_representation_model` on first use."""
        model = self.__dict__["_representation"]
        if model is None:
            name = self.config.pretrained_representation_model
            if not name:
                raise ValueError("this HPSEstimator names no representation model: give batches with 'xbar'")
            loaded = load_pretrained(resolve_model_dir(name))
            if not isinstance(loaded, RepresentationModel):
                raise CheckpointError(f"{name} holds a {type(loaded).__name__}, not PoseEmbroider or Aligner")
            self.attach_representation(loaded)
            model = loaded
        device = device or self.pose_head.init_state.device
        if model.temperature.device != device:
            model.to(device)
        return model

    def set_body_model(self, body_model: nn.Module | None) -> None:
        self.__dict__["_body_model"] = body_model

    def body_model(self, device: torch.device) -> nn.Module:
        """The SMPL-X body model (licensed file when configured, else procedural), built on first use."""
        model = self.__dict__["_body_model"]
        if model is None:
            from poseembroider.body.body_model import BodyModel

            model = BodyModel().eval()
            self.__dict__["_body_model"] = model
        if next(model.buffers()).device != device:
            model.to(device)
        return model

    # ------------------------------------------------------------------ forward

    def forward(self, xbar: torch.Tensor) -> dict[str, torch.Tensor]:
        """x̄ (B, D) -> `rotations` (B, J, 3, 3) and, with the shape head, `betas` (B, num_shape_coeffs)."""
        if xbar.dim() != 2 or xbar.shape[1] != self.config.latentD:
            raise ValueError(f"xbar: expected (B, {self.config.latentD}), got {tuple(xbar.shape)}")
        xbar = xbar.to(self.pose_head.init_state.dtype)
        rot6d = self.pose_head(xbar).view(-1, self.config.num_body_joints, 6)
        out = {"rotations": rot6d_to_matrix(rot6d)}
        if self.shape_head is not None:
            out["betas"] = self.shape_head(xbar)
        return out

    def xbar_of(self, batch: Mapping[str, Any], input_types: Sequence[str] | None = None) -> torch.Tensor:
        """x̄ (B, D) of a batch: its `xbar`, or computed by the frozen representation model from the batch's
        inputs of `input_types` (default: the training input types)."""
        if "xbar" in batch:
            return batch["xbar"]
        modalities = modalities_of(input_types or self.config.representation_model_input_types)
        with torch.no_grad():
            return self.representation().get_intermodality_token(batch, modalities).float()

    def predict(self, batch: Mapping[str, Any], input_types: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """`forward(xbar_of(batch, input_types))`, plus `poses` (B, J, 3) axis-angles."""
        out = self(self.xbar_of(batch, input_types))
        out["poses"] = matrix_to_axis_angle(out["rotations"])
        return out

    # ------------------------------------------------------------------ losses

    def _uses_betas(self, input_types: Sequence[str] | None = None) -> bool:
        types = input_types or self.config.representation_model_input_types
        return self.shape_head is not None and "images" in types

    def _targets(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor | None]:
        poses = batch["poses"][:, : self.config.num_body_joints].float()
        shapes = batch.get("shapes")
        if shapes is not None:
            shapes = shapes[:, : self.config.num_shape_coeffs].float()
        return axis_angle_to_matrix(poses), shapes

    def _posed(self, rotations: torch.Tensor, betas: torch.Tensor | None):
        body = self.body_model(rotations.device)
        return body(matrix_to_axis_angle(rotations), betas)

    def losses(self, outputs: Mapping[str, torch.Tensor], batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """The loss terms of the module docstring (scalars) and `loss`, their mean."""
        target_rot, target_betas = self._targets(batch)
        terms = {"loss_rotations": geodesic_distance(outputs["rotations"], target_rot).sum(-1).mean()}
        use_betas = self._uses_betas() and target_betas is not None
        if use_betas:
            terms["loss_betas"] = F.smooth_l1_loss(outputs["betas"], target_betas, reduction="none").sum(-1).mean()
        if self.config.smpl_losses:
            pred = self._posed(outputs["rotations"], outputs["betas"] if use_betas else None)
            with torch.no_grad():
                true = self._posed(target_rot, target_betas if use_betas else None)
            joints = self.config.num_body_joints
            pj, tj = pred.joints[:, :joints], true.joints[:, :joints]
            terms["loss_joints"] = F.smooth_l1_loss(pj, tj, reduction="none").sum(-1).mean()
            terms["loss_vertices"] = F.smooth_l1_loss(pred.vertices, true.vertices, reduction="none").sum(-1).mean()
        terms["loss"] = torch.stack(list(terms.values())).mean()
        return terms

    def training_step(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        return self.losses(self(self.xbar_of(batch)), batch)

    @torch.no_grad()
    def validation_step(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        outputs = self(self.xbar_of(batch))
        metrics = self.losses(outputs, batch)
        target_rot, target_betas = self._targets(batch)
        metrics["geodesic_deg"] = torch.rad2deg(geodesic_distance(outputs["rotations"], target_rot)).mean()
        use_betas = self._uses_betas() and target_betas is not None
        joints = self.config.num_body_joints
        pred = self._posed(outputs["rotations"], outputs["betas"] if use_betas else None).joints[:, :joints]
        true = self._posed(target_rot, target_betas if use_betas else None).joints[:, :joints]
        metrics["mpjpe_mm"] = (pred - true).norm(dim=-1).mean() * 1000
        metrics["pa_mpjpe_mm"] = (procrustes_align(pred, true).aligned - true).norm(dim=-1).mean() * 1000
        return metrics

    def param_groups(self, lr: float, wd: float) -> list[dict[str, Any]]:
        """The head's parameters only (the representation model is frozen and outside the module tree)."""
        return [{"params": [p for p in self.parameters() if p.requires_grad]}]
