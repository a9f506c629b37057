"""PoseVAE: the variational auto-encoder of SMPL-X body poses whose encoder gives PoseEmbroider its pose feature.

Architecture (the original's, inherited from VPoser; state-dict keys match the original checkpoints):

    pose_encoder.encoder (nn.Sequential)             pose_decoder.decoder (nn.Sequential)
      0 BatchFlatten        (B, J, 3) -> (B, 3J)       0 Linear(latentD, 512)
      1 BatchNorm1d(3J)                                1 LeakyReLU
      2 Linear(3J, 512)                                2 Dropout(0.1)
      3 LeakyReLU                                      3 Linear(512, 512)
      4 BatchNorm1d(512)                               4 LeakyReLU
      5 Dropout(0.1)                                   5 Linear(512, 6J)
      6 Linear(512, 512)                               6 ContinuousRotReprDecoder: 6D -> 3x3 (Gram-Schmidt)
      7 Linear(512, 512)   <- the 512-d pose feature
      8 NormalDistDecoder(512, latentD): mu = Linear, scale = softplus(Linear)

with J = `num_body_joints` (22: global orientation + 21 body joints, axis-angle, z-up model frame).
Layers 6 and 7 follow each other **without an activation**, as in VPoser and the original; two
stacked linear maps are one linear map of rank <= 512, so this costs capacity nothing but parameters.
We keep it so that the layer indices, the feature (output of layer 7) and released weights stay
interchangeable with the original.

Three learned scalars weigh the reconstruction likelihoods: `decsigma_v2v` and `decsigma_jts` (log of a
Laplace scale) and `decsigma_rot` (log of a Gaussian *variance*: see `loss.py`), all initialised at 0.

Objective (`training_step`, per sample, then averaged over the batch), with the body model posed at the
mean shape with flat hands and no translation:

    v2v = Σ Laplace-NLL(vertices_rec; vertices_gt, decsigma_v2v)    over V x 3 coordinates
    jts = Σ Laplace-NLL(joints_rec; joints_gt, decsigma_jts)        over all 127 SMPL-X output joints x 3
    rot = Σ Gaussian-NLL(R_rec; R_gt, decsigma_rot)                 over J x 3 x 3 matrix entries
    kld = wloss_kldnpmul · KL(q(z|x) ‖ N(0, I))                     summed over the latent dims
    loss = w_v2v (v2v + w_kld kld') / (3V) + w_jts (jts + w_kld kld') / (3·127) + w_rot (rot + w_kld kld') / (9J)

where kld' = max(kld, kld_epsilon) at training time (a floor: below it the KL gets no gradient, which
keeps the posterior from collapsing onto the prior); at validation kld' = kld and w_kld = 1 (the
original's validation loss). The reconstruction is decoded from z ~ q(z|x) (reparametrised sample).
`wloss_kldnpmul` multiplies the KL; the original only tests it for zero (an on/off switch), which gives
the same objective for the values it is used with, 0 and 1. When `wloss_v2v` and `wloss_jts` are both 0,
training skips the body model entirely (rotation + KL objective only; validation metrics still use it).

`joints_source` picks the joints of the jts term: 'body_model' (the original: the 127 output joints of the
posed SMPL-X model, which needs the mesh: ~98% of a training step on a CPU) or 'skeleton' (ours, for
CPU budgets: the 22 body joints by forward kinematics of the reconstructed rotation matrices on the
mean-shape skeleton, `body.skeleton.Skeleton.pose_rotations`; no mesh, no axis-angle round trip, and the
same 22 joints the MPJPE is measured on). With 'skeleton' the term is normalised by 22 x 3 instead of
127 x 3, and training needs the body model only when `wloss_v2v` > 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from poseembroider.assisting_models.poseVAE.loss import gaussian_nll, kl_to_standard_normal, laplacian_nll
from poseembroider.assisting_models.poseVAE.reconstruction_metrics import pose_reconstruction_errors
from poseembroider.body.body_model import BodyModel, BodyModelOutput
from poseembroider.body.skeleton import Skeleton
from poseembroider.geometry import axis_angle_to_matrix, matrix_to_axis_angle, rot6d_to_matrix
from poseembroider.models.config_fields import config_field
from poseembroider.models.pose_encoder import FEATURE_LAYER, vposer_feature_layers
from poseembroider.models.pretrained import PretrainedModel, register_model

JOINTS_SOURCES = ("body_model", "skeleton")
"""Where the joints of the jts term come from (`PoseVAEConfig.joints_source`)."""

__all__ = [
    "JOINTS_SOURCES",
    "ContinuousRotReprDecoder",
    "NormalDistDecoder",
    "PoseDecoder",
    "PoseEncoder",
    "PoseVAE",
    "PoseVAEConfig",
]


@dataclass
class PoseVAEConfig:
    """Architecture and loss weights of the PoseVAE; defaults are the published recipe (README, §2.1)."""

    latentD: int = config_field(32, "size of the latent space", min=1)
    num_body_joints: int = config_field(22, "joints of the input pose (22: global orientation + 21 body joints)", min=1)
    num_neurons: int = config_field(512, "width of the hidden layers (also the size of the pose feature)", min=1)
    dropout: float = config_field(0.1, "dropout probability of encoder layer 5 and decoder layer 2")
    wloss_v2v: float = config_field(1.0, "weight of the vertex reconstruction term")
    wloss_jts: float = config_field(1.0, "weight of the joint reconstruction term")
    wloss_rot: float = config_field(1.0, "weight of the rotation-matrix reconstruction term")
    wloss_kld: float = config_field(1.0, "weight of the KL term inside each reconstruction term (training only)")
    wloss_kldnpmul: float = config_field(1.0, "multiplier of KL(q(z|x) || N(0, I)); 0 switches the KL off")
    kld_epsilon: float = config_field(10.0, "training-time floor of the per-sample KL (0: no floor)")
    decsigma_lr: float = config_field(
        0.0,
        "learning rate of the three decsigma scalars (0: the optimizer's base lr, the original); their Adam steps "
        "are about lr each, so at a small lr the likelihood scales take thousands of steps to reach the error level",
    )
    joints_source: str = config_field(
        "body_model",
        "joints of the jts term: 'body_model' (127 SMPL-X output joints of the posed mesh, the original) or "
        "'skeleton' (22 body joints by forward kinematics only: no mesh, far cheaper on a CPU)",
        choices=JOINTS_SOURCES,
    )

    def __post_init__(self) -> None:
        if self.joints_source not in JOINTS_SOURCES:
            raise ValueError(f"--joints_source must be one of {JOINTS_SOURCES}, got {self.joints_source!r}")
        for name in ("latentD", "num_body_joints", "num_neurons"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"--{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"--dropout must be in [0, 1), got {self.dropout}")
        for name in (
            "wloss_v2v",
            "wloss_jts",
            "wloss_rot",
            "wloss_kld",
            "wloss_kldnpmul",
            "kld_epsilon",
            "decsigma_lr",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"--{name} must be >= 0, got {getattr(self, name)}")


# --------------------------------------------------------------------------- layers


class NormalDistDecoder(nn.Module):
    """Encoder head: (B, F) features -> diagonal Gaussian q(z|x) over (B, latentD).

    The scale (standard deviation) is `softplus(logvar(x))`: the layer name `logvar` is VPoser's and is
    kept for checkpoint compatibility, but its output goes through a softplus and is used as a scale.
    """

    def __init__(self, num_feat_in: int, latentD: int):
        super().__init__()
        self.mu = nn.Linear(num_feat_in, latentD)
        self.logvar = nn.Linear(num_feat_in, latentD)

    def forward(self, x: torch.Tensor) -> torch.distributions.Normal:
        return torch.distributions.Normal(self.mu(x), F.softplus(self.logvar(x)))


class ContinuousRotReprDecoder(nn.Module):
    """(B, 6J) -> (B, J, 3, 3) rotation matrices; each 6-vector holds the first two matrix columns
    interleaved row by row (VPoser's layout), orthonormalised by Gram-Schmidt."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return rot6d_to_matrix(x.reshape(x.shape[0], -1, 6))


class PoseEncoder(nn.Module):
    """`encoder`: the 9-layer sequential of the module docstring, the VPoser trunk (layers 0-7,
    `models.pose_encoder.vposer_feature_layers`) then the distribution head; (B, J, 3) or (B, 3J) -> Normal."""

    def __init__(self, num_neurons: int, latentD: int, num_body_joints: int, dropout: float = 0.1):
        super().__init__()
        self.num_body_joints = num_body_joints
        self.encoder = nn.Sequential(
            *vposer_feature_layers(num_body_joints, num_neurons, dropout),  # 0-7
            NormalDistDecoder(num_neurons, latentD),  # 8
        )

    def forward(self, poses: torch.Tensor) -> torch.distributions.Normal:
        return self.encoder(poses)

    def features(self, poses: torch.Tensor) -> torch.Tensor:
        """(B, num_neurons) output of layer 7 (layers 0..7, without the distribution head)."""
        return self.encoder[: FEATURE_LAYER + 1](poses)


class PoseDecoder(nn.Module):
    """`decoder`: (B, latentD) -> (B, J, 3, 3) rotation matrices through the 7-layer sequential."""

    def __init__(self, num_neurons: int, latentD: int, num_body_joints: int, dropout: float = 0.1):
        super().__init__()
        self.num_body_joints = num_body_joints
        self.decoder = nn.Sequential(
            nn.Linear(latentD, num_neurons),  # 0
            nn.LeakyReLU(),  # 1
            nn.Dropout(dropout),  # 2
            nn.Linear(num_neurons, num_neurons),  # 3
            nn.LeakyReLU(),  # 4
            nn.Linear(num_neurons, num_body_joints * 6),  # 5
            ContinuousRotReprDecoder(),  # 6
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)


# --------------------------------------------------------------------------- model


@register_model
class PoseVAE(PretrainedModel, nn.Module):
    """Pose VAE (see the module docstring). Poses are (B, J, 3) axis-angles (or flat (B, 3J)).

    The body model used by the losses and metrics is not part of the model (not saved, not moved by
    `.to()`): it is built on first use (`BodyModel()`, the configured SMPL-X file or the procedural one)
    unless given with `set_body_model`, and follows the device of the poses.
    """

    config_class = PoseVAEConfig

    def __init__(self, config: PoseVAEConfig | None = None):
        super().__init__()
        self.config = config or PoseVAEConfig()
        cfg = self.config
        self.latentD = cfg.latentD
        self.num_body_joints = cfg.num_body_joints
        self.pose_encoder = PoseEncoder(cfg.num_neurons, cfg.latentD, cfg.num_body_joints, cfg.dropout)
        self.pose_decoder = PoseDecoder(cfg.num_neurons, cfg.latentD, cfg.num_body_joints, cfg.dropout)
        self.decsigma_v2v = nn.Parameter(torch.zeros(1))  # log Laplace scale
        self.decsigma_jts = nn.Parameter(torch.zeros(1))  # log Laplace scale
        self.decsigma_rot = nn.Parameter(torch.zeros(1))  # log Gaussian variance (see loss.py)
        self.__dict__["_body_model"] = None  # plain attribute: kept out of the module tree and state dict
        self.__dict__["_skeleton"] = None  # built from the body model on first use (joints_source='skeleton')

    # ------------------------------------------------------------------ encoding / decoding

    @property
    def feature_dim(self) -> int:
        """Size of `encode_features` (= num_neurons, 512)."""
        return self.config.num_neurons

    def _check_poses(self, poses: torch.Tensor) -> torch.Tensor:
        j = self.num_body_joints
        if poses.dim() == 2 and poses.shape[1] == 3 * j:
            poses = poses.reshape(poses.shape[0], j, 3)
        if poses.dim() != 3 or poses.shape[1:] != (j, 3):
            raise ValueError(
                f"poses: PoseVAE(num_body_joints={j}) expects (B, {j}, 3) axis-angles or (B, {3 * j}), "
                f"got {tuple(poses.shape)}"
            )
        return poses

    def encode(self, poses: torch.Tensor) -> torch.distributions.Normal:
        """q(z|x): a Normal with loc and scale of shape (B, latentD)."""
        return self.pose_encoder(self._check_poses(poses))

    def encode_features(self, poses: torch.Tensor) -> torch.Tensor:
        """(B, 512) output of encoder layer 7: the frozen pose feature PoseEmbroider uses.

        Call it on a model in eval mode (batch-norm running statistics, no dropout), as a frozen encoder.
        """
        return self.pose_encoder.features(self._check_poses(poses))

    def decode(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, latentD) -> `pose_body` (B, J, 3) axis-angles and `pose_body_matrot` (B, J, 9) matrices
        (row-major)."""
        rotmat = self.pose_decoder(z)
        return {
            "pose_body": matrix_to_axis_angle(rotmat),
            "pose_body_matrot": rotmat.reshape(rotmat.shape[0], -1, 9),
        }

    def forward(self, poses: torch.Tensor) -> dict[str, Any]:
        """Encode, draw z ~ q(z|x) (reparametrised) and decode: `q_z`, `z` and the `decode` outputs."""
        q_z = self.encode(poses)
        z = q_z.rsample()
        return {"q_z": q_z, "z": z, **self.decode(z)}

    def reconstruct(self, poses: torch.Tensor) -> dict[str, torch.Tensor]:
        """Deterministic reconstruction: decode the posterior mean."""
        return self.decode(self.encode(poses).mean)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """n poses decoded from z ~ N(0, I) (drawn on the CPU from `generator`, so seeds give the same
        poses on any device); same outputs as `decode`."""
        z = torch.randn(n, self.latentD, generator=generator)
        return self.decode(z.to(self.decsigma_v2v.device))

    # ------------------------------------------------------------------ body model

    def set_body_model(self, body_model: BodyModel | None) -> PoseVAE:
        """Use `body_model` for the losses and metrics (None: build the default one when needed)."""
        self.__dict__["_body_model"] = body_model
        self.__dict__["_skeleton"] = None
        return self

    def body_model(self, device: torch.device | str | None = None) -> BodyModel:
        """The body model (built on first use), moved to `device` when given."""
        body = self.__dict__["_body_model"]
        if body is None:
            body = BodyModel().eval()
            self.__dict__["_body_model"] = body
        if device is not None and body.smplx.v_template.device != torch.device(device):
            body.to(device)
        return body

    def skeleton(self, device: torch.device | str | None = None) -> Skeleton:
        """The joints-only forward kinematics of the body model (mean shape), built on first use."""
        skeleton = self.__dict__["_skeleton"]
        if skeleton is None:
            skeleton = Skeleton(self.body_model())
            self.__dict__["_skeleton"] = skeleton
        if device is not None and skeleton.rest_joints.device != torch.device(device):
            skeleton.to(device)
        return skeleton

    def skeleton_joints(self, rotmat: torch.Tensor) -> torch.Tensor:
        """(B, J, 3, 3) local joint rotations -> (B, J, 3) posed joints (metres, mean shape), differentiable."""
        return self.skeleton(rotmat.device).pose_rotations(rotmat)

    # ------------------------------------------------------------------ objective

    def _objective(self, poses: torch.Tensor, training: bool) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Loss terms (batch means) and, for the metrics, the intermediate values."""
        cfg = self.config
        poses = self._check_poses(poses)
        batch, joints = poses.shape[:2]
        q_z = self.encode(poses)
        rec = self.decode(q_z.rsample())
        target_rotmat = axis_angle_to_matrix(poses)  # (B, J, 3, 3)
        rec_rotmat = rec["pose_body_matrot"].reshape(batch, joints, 3, 3)
        per_sample: dict[str, torch.Tensor] = {
            "rot": gaussian_nll(rec_rotmat, target_rotmat, self.decsigma_rot).sum((1, 2, 3)),
            "kld": cfg.wloss_kldnpmul * kl_to_standard_normal(q_z),
        }
        norms = {"rot": 9 * joints}
        weights = {"rot": cfg.wloss_rot}
        extras: dict[str, Any] = {"q_z": q_z, "target_rotmat": target_rotmat, "original": None}
        skeleton_joints = cfg.joints_source == "skeleton"
        if not training or cfg.wloss_v2v != 0 or (cfg.wloss_jts != 0 and not skeleton_joints):
            body = self.body_model(poses.device)
            with torch.no_grad():
                original = body(poses)
            posed = body(rec["pose_body"])
            per_sample["v2v"] = laplacian_nll(posed.vertices, original.vertices, self.decsigma_v2v).sum((1, 2))
            norms["v2v"], weights["v2v"] = original.vertices.shape[1] * 3, cfg.wloss_v2v
            if not skeleton_joints:
                per_sample["jts"] = laplacian_nll(posed.joints, original.joints, self.decsigma_jts).sum((1, 2))
                norms["jts"], weights["jts"] = original.joints.shape[1] * 3, cfg.wloss_jts
            extras["original"] = original
        if skeleton_joints and (not training or cfg.wloss_jts != 0):
            with torch.no_grad():
                target_joints = self.skeleton_joints(target_rotmat)
            rec_joints = self.skeleton_joints(rec_rotmat)
            per_sample["jts"] = laplacian_nll(rec_joints, target_joints, self.decsigma_jts).sum((1, 2))
            norms["jts"], weights["jts"] = target_joints.shape[1] * 3, cfg.wloss_jts
        kld = per_sample["kld"]
        if training:
            kld_used = kld.clamp(min=cfg.kld_epsilon) if cfg.kld_epsilon else kld
            w_kld = cfg.wloss_kld
        else:
            kld_used, w_kld = kld, 1.0
        total = sum(weights[k] * (per_sample[k] + w_kld * kld_used) / norms[k] for k in weights)
        losses = {"loss": total.mean(), **{k: v.mean() for k, v in per_sample.items()}}
        if training:
            losses["kld_training"] = kld_used.mean()
        else:  # ELBO per coefficient, as the original reports it: (-NLL summed over coefficients - KL) / N
            for k in ("v2v", "jts", "rot"):
                losses[f"elbo_{k}"] = ((-per_sample[k] - kld) / norms[k]).mean()
        return losses, extras

    def training_step(self, batch: Mapping[str, Any] | torch.Tensor) -> dict[str, torch.Tensor]:
        """`{"loss", "v2v", "jts", "rot", "kld", "kld_training", "decsigma_*"}` (v2v / jts absent when
        their weights are 0); `batch["poses"]` (B, J, 3)."""
        losses, _ = self._objective(_poses_of(batch), training=True)
        for name in ("v2v", "jts", "rot"):
            losses[f"decsigma_{name}"] = getattr(self, f"decsigma_{name}").detach()
        return losses

    def validation_step(self, batch: Mapping[str, Any] | torch.Tensor) -> dict[str, torch.Tensor]:
        """Validation loss and its terms (sampled z, unclamped KL), per-coefficient ELBOs, and the errors of
        the deterministic reconstruction (posterior mean): `mpjpe_mm`, `pampjpe_mm`, `pve_mm`, `rot_deg`."""
        poses = self._check_poses(_poses_of(batch))
        losses, extras = self._objective(poses, training=False)
        rec = self.decode(extras["q_z"].mean)
        posed = self.body_model(poses.device)(rec["pose_body"])
        original: BodyModelOutput = extras["original"]
        errors = pose_reconstruction_errors(
            posed.joints,
            original.joints,
            posed.vertices,
            original.vertices,
            rec["pose_body_matrot"].reshape(extras["target_rotmat"].shape),
            extras["target_rotmat"],
        )
        return {**losses, **{k: v.mean() for k, v in errors.items()}}

    def param_groups(self, lr: float, wd: float) -> list[dict[str, Any]]:
        """The original's 3 Adam groups: encoder, decoder (both at `lr`), and the three decsigmas (no lr
        of their own: the optimizer's base lr, unless `decsigma_lr` > 0). Weight decay is the optimizer's,
        for all three."""
        decsigmas: dict[str, Any] = {"params": [self.decsigma_v2v, self.decsigma_jts, self.decsigma_rot]}
        if self.config.decsigma_lr > 0:
            decsigmas["lr"] = self.config.decsigma_lr
        return [
            {"params": list(self.pose_encoder.parameters()), "lr": lr},
            {"params": list(self.pose_decoder.parameters()), "lr": lr},
            decsigmas,
        ]


def _poses_of(batch: Mapping[str, Any] | torch.Tensor) -> torch.Tensor:
    if isinstance(batch, torch.Tensor):
        return batch
    if isinstance(batch, Mapping) and "poses" in batch:
        return batch["poses"]
    keys = sorted(batch) if isinstance(batch, Mapping) else type(batch).__name__
    raise KeyError(f"PoseVAE expects a batch with 'poses' (B, J, 3) (dataset item_format 'p'); got {keys}")
