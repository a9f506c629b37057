"""`KeypointPoseRegressor`: pretrains the keypoint CNN (`KeypointImageEncoder`) by regressing the body pose.

The training of `ImagePoseRegressor` (geodesic + joint terms, the heatmap KL and soft-argmax L1 terms, the
lifter and its pretraining, the metrics) on the CNN's own heatmaps (a 32x24 grid at stride 8 instead of
the ViT's 16x12 token grid): the keypoint terms and metrics read `config.encoder.grid_size` and
`img_size`, which both encoders' configs define.

The pose head reads only the average of the encoder's tokens: what PoseEmbroider's compact image mode reads
of the frozen encoder, so the pose the regressor learns is in the features the representation gets.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from poseembroider.assisting_models.imageEncoder.keypoint_encoder import (
    KEYPOINT_PRESET,
    KeypointEncoderConfig,
    KeypointImageEncoder,
    keypoint_encoder_config,
)
from poseembroider.assisting_models.imageEncoder.model_imageEncoder import (
    ImagePoseRegressor,
    ImagePoseRegressorConfig,
    normalize_keypoints,
)
from poseembroider.geometry import matrix_to_rot6d, rot6d_to_matrix
from poseembroider.models.pretrained import register_model


@dataclass
class KeypointPoseRegressorConfig(ImagePoseRegressorConfig):
    """`ImagePoseRegressorConfig` with the keypoint CNN as encoder (pooling is always 'keypoints';
    `keypoint_sigma` is in heatmap cells, 8 px by default)."""

    encoder: KeypointEncoderConfig = field(  # type: ignore[assignment]
        default_factory=lambda: keypoint_encoder_config(KEYPOINT_PRESET)
    )
    pooling: str = "keypoints"

    def __post_init__(self) -> None:
        if self.pooling != "keypoints":
            raise ValueError(f"pooling {self.pooling!r}: the keypoint CNN always pools by its heatmaps ('keypoints')")
        if self.encoder.num_joints != self.num_body_joints:
            raise ValueError(
                f"encoder.num_joints {self.encoder.num_joints} != num_body_joints {self.num_body_joints}: "
                "one heatmap per regressed joint"
            )
        super().__post_init__()


@register_model
class KeypointPoseRegressor(ImagePoseRegressor):
    """Keypoint CNN -> mean token -> LayerNorm -> MLP -> 6D residual on the mean pose (+ the lifter's
    residual from the soft-argmax 2D joints) -> rotation matrices (B, J, 3, 3)."""

    config_class = KeypointPoseRegressorConfig

    def __init__(self, config: KeypointPoseRegressorConfig | None = None) -> None:
        nn.Module.__init__(self)
        self.config = cfg = config if config is not None else KeypointPoseRegressorConfig()
        self.encoder = KeypointImageEncoder(cfg.encoder)
        joints = cfg.num_body_joints
        if cfg.lifter_hidden:
            self.lifter = self.build_lifter()
        self.head = self.build_head(cfg.encoder.embed_dim)
        self.mean_rot6d = nn.Parameter(matrix_to_rot6d(torch.eye(3).expand(joints, 3, 3)).clone())
        self.__dict__["_body_model"] = None  # kept out of the module tree: not saved, not moved by .to()

    def encoder_outputs(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """`KeypointImageEncoder.keypoints`, under bfloat16 autocast (channels-last) in training mode with
        `train_precision='bf16'`; tokens, heatmaps and joints come back float32."""
        if not (self.training and self.config.train_precision == "bf16"):
            return self.encoder.keypoints(images)
        with torch.autocast(images.device.type, dtype=torch.bfloat16):
            outputs = self.encoder.keypoints(images.contiguous(memory_format=torch.channels_last))
        return {name: value.float() for name, value in outputs.items()}

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, N, D) float32 tokens."""
        return self.encoder_outputs(images)["tokens"]

    def predict(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, 3, 256, 192) -> `rotations` (B, J, 3, 3), `log_heatmaps` (B, J, h*w), `keypoints_2d` (B, J, 2)."""
        outputs = self.encoder_outputs(images)
        rot6d = self.head(outputs["tokens"].mean(dim=1)).view(-1, self.config.num_body_joints, 6) + self.mean_rot6d
        if self.config.lifter_hidden:
            rot6d = rot6d + self.lift(normalize_keypoints(outputs["keypoints_2d"], self.config.encoder.img_size))
        return {
            "rotations": rot6d_to_matrix(rot6d),
            "log_heatmaps": outputs["log_heatmaps"],
            "keypoints_2d": outputs["keypoints_2d"],
        }


__all__ = ["KeypointPoseRegressor", "KeypointPoseRegressorConfig"]
