"""A convolutional keypoint encoder: person crops -> per-joint tokens, for CPU training from scratch.

Why a second image encoder: the conv-stem ViT (`convvit_tiny_256x192`) localises joints on its 16x12
token grid only to ~26 px after 48k crops, and the 2D joints bound what any head can lift to 3D
(train_imageEncoder.py's docstring has the curve). A U-shaped CNN (Xiao et al. 2018, "Simple baselines";
Newell et al. 2016) learns the same joints from the same crops sooner: 21 px after 37k crops as the pose
regressor's encoder (19.6 px after 24k crops as a heatmap network alone), on the quickstart crops.

Layout (`KeypointEncoderConfig`, defaults = the `unet_kp_256x192` preset):

- the crop is standardised and reduced by `input_pooling` (128x96 by default): averaged (`stem_channels` 0),
  or by a learned stride-`input_pooling` 3x3 conv to `stem_channels` maps, which keeps the limbs' edges that
  averaging blurs (an arm is 3-5 pixels wide at 128x96) for a few percent more multiply-adds;
- `len(widths)` stages, each a stride-2 3x3 conv + BatchNorm + ReLU and `stage_blocks` residual blocks
  (strides 4, 8, 16, 32, 64 crop pixels with pooling 2);
- a top-down path (nearest upsampling + a 1x1 lateral from the stage of that resolution + 3x3 conv) back to
  `heatmap_stride` (8 px: a 32x24 grid), where a 1x1 conv gives one heatmap per joint;
- each joint's softmax heatmap (B, J, h*w) gives its soft-argmax position (B, J, 2) (crop pixels) and its
  heatmap-pooled decoder feature (B, J, C);
- **joint tokens**: joint j's [pooled feature, position in [-1, 1], peak probability] through its own
  linear map to D, plus **context tokens**: the coarsest stage's cells through a shared linear map plus a
  learned position embedding.

`forward_features(images (B, 3, 256, 192)) -> (B, J + cells, D)`: the tokens PoseEmbroider reads (its
compact image mode averages them; the joint maps are per joint, so the average keeps every joint's part).
`keypoints(images)` also returns the heatmaps and 2D joints that `KeypointPoseRegressor` trains them with.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from poseembroider.assisting_models.imageEncoder.model_imageEncoder import (
    FrozenImageEncoderMixin,
    ResidualConvBlock,
    normalize_keypoints,
    token_centres,
)
from poseembroider.models.pretrained import PretrainedModel, register_model

KEYPOINT_PRESET = "unet_kp_256x192"


@dataclass
class KeypointEncoderConfig:
    """Architecture of the keypoint CNN (defaults: the `unet_kp_256x192` preset)."""

    img_size: tuple[int, int] = (256, 192)  # (H, W) of the input crops
    in_chans: int = 3
    input_pooling: int = 2  # reduce the crop by this factor first (1, 2 or 4)
    stem_channels: int = 0  # 0: reduce by averaging; > 0: by a learned strided conv to this many maps
    widths: tuple[int, ...] = (32, 64, 128, 256, 256)  # channels of the stride-2 stages
    stage_blocks: int = 1  # residual 3x3 blocks after each stride-2 conv
    heatmap_stride: int = 8  # crop pixels per heatmap cell (the top-down path stops there)
    num_joints: int = 22  # heatmaps and joint tokens
    embed_dim: int = 256  # token width D
    pixel_mean: tuple[float, float, float] = (0.485, 0.456, 0.406)  # standardisation of the pooled view
    pixel_std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    frozen: bool = False  # no trainable parameter, always eval (set in saved pretrained encoders)
    preset: str = KEYPOINT_PRESET  # provenance only

    def __post_init__(self) -> None:
        self.img_size = tuple(int(s) for s in self.img_size)  # type: ignore[assignment]
        self.widths = tuple(int(w) for w in self.widths)
        self.pixel_mean = tuple(float(v) for v in self.pixel_mean)  # type: ignore[assignment]
        self.pixel_std = tuple(float(v) for v in self.pixel_std)  # type: ignore[assignment]
        if len(self.img_size) != 2:
            raise ValueError(f"img_size must be (H, W), got {self.img_size}")
        if self.input_pooling not in (1, 2, 4):
            raise ValueError(f"input_pooling must be 1, 2 or 4, got {self.input_pooling}")
        if self.stem_channels < 0 or (self.stem_channels and self.input_pooling == 1):
            raise ValueError(f"stem_channels {self.stem_channels}: >= 0, and a learned stem needs input_pooling > 1")
        if not self.widths or min(self.widths) < 1:
            raise ValueError(f"widths must be positive stage channels, got {self.widths}")
        strides = self.stage_strides
        if self.heatmap_stride not in strides:
            raise ValueError(f"heatmap_stride {self.heatmap_stride} is not a stage stride {strides}")
        if any(s % strides[-1] for s in self.img_size):
            raise ValueError(f"img_size {self.img_size} is not a multiple of the last stage stride {strides[-1]}")
        for name in ("pixel_mean", "pixel_std"):
            if len(getattr(self, name)) != self.in_chans:
                raise ValueError(f"{name} needs {self.in_chans} values, got {getattr(self, name)}")

    @property
    def stage_strides(self) -> tuple[int, ...]:
        """Crop pixels per cell after each stage: input_pooling * 2, * 4, ..."""
        return tuple(self.input_pooling * 2 ** (i + 1) for i in range(len(self.widths)))

    @property
    def grid_size(self) -> tuple[int, int]:
        """(rows, cols) of the heatmaps: the crop over `heatmap_stride` (32 x 24 at 256x192, stride 8)."""
        return (self.img_size[0] // self.heatmap_stride, self.img_size[1] // self.heatmap_stride)

    @property
    def context_grid(self) -> tuple[int, int]:
        """(rows, cols) of the coarsest stage: the context tokens (4 x 3 by default)."""
        return (self.img_size[0] // self.stage_strides[-1], self.img_size[1] // self.stage_strides[-1])

    @property
    def num_tokens(self) -> int:
        rows, cols = self.context_grid
        return self.num_joints + rows * cols


KEYPOINT_ENCODER_PRESETS: dict[str, KeypointEncoderConfig] = {
    KEYPOINT_PRESET: KeypointEncoderConfig(),
    # the early, high-resolution stages half as wide: 2.2x the crops/s of a training step (bench_image_encoder)
    "unet_kp_small_256x192": KeypointEncoderConfig(widths=(16, 32, 64, 128, 256), preset="unet_kp_small_256x192"),
    "unet_kp_convstem_256x192": KeypointEncoderConfig(stem_channels=16, preset="unet_kp_convstem_256x192"),
}
"""Named keypoint-CNN architectures (`--image_encoder_name` of the image-encoder trainer)."""


def keypoint_encoder_config(preset: str, **overrides) -> KeypointEncoderConfig:
    """A preset's config with some fields replaced (KeyError naming the presets for an unknown one)."""
    if preset not in KEYPOINT_ENCODER_PRESETS:
        raise KeyError(f"unknown keypoint encoder preset {preset!r}; presets: {sorted(KEYPOINT_ENCODER_PRESETS)}")
    return dataclasses.replace(KEYPOINT_ENCODER_PRESETS[preset], **overrides)


def _down(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())


def _conv_bn_relu(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())


class JointLinear(nn.Module):
    """One linear map per joint: (B, J, C_in) -> (B, J, C_out), y_j = x_j W_j + b_j."""

    def __init__(self, joints: int, c_in: int, c_out: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(joints, c_in, c_out) / c_in**0.5)
        self.bias = nn.Parameter(torch.zeros(joints, c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bjc,jcd->bjd", x, self.weight) + self.bias


@register_model
class KeypointImageEncoder(FrozenImageEncoderMixin, PretrainedModel, nn.Module):
    """Person crops (B, 3, 256, 192) in [0, 1] -> joint and context tokens (B, J + cells, D); see the module
    docstring. The frozen-encoder interface of `ImageEncoder`: `forward_features`, `embed_dim`, `num_tokens`,
    `frozen`, `freeze` (`FrozenImageEncoderMixin`)."""

    config_class = KeypointEncoderConfig

    def __init__(self, config: KeypointEncoderConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config if config is not None else KeypointEncoderConfig()
        if cfg.stem_channels:
            self.pool = nn.Sequential(
                nn.Conv2d(cfg.in_chans, cfg.stem_channels, 3, stride=cfg.input_pooling, padding=1, bias=False),
                nn.BatchNorm2d(cfg.stem_channels),
                nn.ReLU(),
            )
        else:
            self.pool = nn.AvgPool2d(cfg.input_pooling) if cfg.input_pooling > 1 else nn.Identity()
        channels = (cfg.stem_channels or cfg.in_chans, *cfg.widths)
        self.stages = nn.ModuleList(
            nn.Sequential(_down(c_in, c_out), *[ResidualConvBlock(c_out) for _ in range(cfg.stage_blocks)])
            for c_in, c_out in zip(channels[:-1], channels[1:], strict=True)
        )
        # top-down: from the last stage to the heatmap stride, one stage's resolution at a time
        self.heatmap_level = cfg.stage_strides.index(cfg.heatmap_stride)
        self.laterals, self.ups = nn.ModuleList(), nn.ModuleList()
        width = cfg.widths[-1]
        for level in range(len(cfg.widths) - 2, self.heatmap_level - 1, -1):
            self.laterals.append(nn.Conv2d(cfg.widths[level], width, 1))
            self.ups.append(_conv_bn_relu(width, cfg.widths[level]))
            width = cfg.widths[level]
        self.heatmap_head = nn.Conv2d(width, cfg.num_joints, 1)
        self.joint_tokens = JointLinear(cfg.num_joints, width + 3, cfg.embed_dim)
        rows, cols = cfg.context_grid
        self.context_proj = nn.Linear(cfg.widths[-1], cfg.embed_dim)
        self.context_pos = nn.Parameter(torch.zeros(rows * cols, cfg.embed_dim))
        nn.init.trunc_normal_(self.context_pos, std=0.02)
        self.norm = nn.LayerNorm(cfg.embed_dim, eps=1e-6)
        # constants of the config, not saved
        self.register_buffer("pixel_mean", torch.tensor(cfg.pixel_mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(cfg.pixel_std).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("cell_xy", token_centres(cfg.grid_size, cfg.img_size), persistent=False)
        if cfg.frozen:
            self.freeze()

    @classmethod
    def from_preset(cls, preset: str, **overrides) -> KeypointImageEncoder:
        """Randomly initialised encoder of a named architecture (`KEYPOINT_ENCODER_PRESETS`)."""
        return cls(keypoint_encoder_config(preset, **overrides))

    @property
    def num_tokens(self) -> int:
        """Joint tokens + context tokens per image (22 + 12 by default)."""
        return self.config.num_tokens

    def keypoints(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, 3, H, W) crops in [0, 1] -> `tokens` (B, N, D), `log_heatmaps` (B, J, h*w) (log-softmax over
        the heatmap cells, float32), `keypoints_2d` (B, J, 2) soft-argmax joints in crop pixels."""
        self._check_images(images)
        if self.config.stem_channels:  # the learned stem reads the standardised crop
            x = self.pool((images - self.pixel_mean) / self.pixel_std)
        else:  # averaging commutes with the standardisation: do it on 4x fewer pixels
            x = (self.pool(images) - self.pixel_mean) / self.pixel_std
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        coarsest = x
        for offset, (lateral, up) in enumerate(zip(self.laterals, self.ups, strict=True)):
            skip = features[len(features) - 2 - offset]
            x = up(F.interpolate(x, size=skip.shape[-2:], mode="nearest") + lateral(skip))
        log_heatmaps = self.heatmap_head(x).flatten(2).float().log_softmax(dim=-1)  # (B, J, h*w)
        heatmaps = log_heatmaps.exp()
        keypoints = heatmaps @ self.cell_xy  # (B, J, 2)
        pooled = heatmaps @ x.flatten(2).transpose(1, 2).float()  # (B, J, C)
        positions = normalize_keypoints(keypoints, self.config.img_size)
        peak = heatmaps.amax(dim=-1, keepdim=True)
        joint_tokens = self.joint_tokens(torch.cat([pooled, positions, peak], dim=-1))
        context = self.context_proj(coarsest.flatten(2).transpose(1, 2).float()) + self.context_pos
        tokens = self.norm(torch.cat([joint_tokens, context], dim=1))
        return {"tokens": tokens, "log_heatmaps": log_heatmaps, "keypoints_2d": keypoints}

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, N, D) tokens (joint tokens first, then the context cells in row-major order)."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not (self.frozen and not images.requires_grad)):
            return self.keypoints(images)["tokens"]

    forward = forward_features


__all__ = [
    "KEYPOINT_ENCODER_PRESETS",
    "KEYPOINT_PRESET",
    "JointLinear",
    "KeypointEncoderConfig",
    "KeypointImageEncoder",
    "keypoint_encoder_config",
]
