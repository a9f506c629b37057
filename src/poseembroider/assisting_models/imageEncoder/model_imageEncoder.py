"""The image encoder: a ViT over 256x192 person crops whose 192 patch tokens feed PoseEmbroider.

`ImageEncoder` is the SMPLer-X / ViTPose backbone layout (original_system.md §2.4) built on timm's
`VisionTransformer`:

- patch embedding: Conv2d(k=16, s=16, padding=2) -> a 16x12 grid = 192 patch tokens for 256x192 crops;
- absolute position embedding of num_patches + 1 entries (ViTPose keeps the class-token slot of its
  ImageNet / MAE pretraining): patch i gets `pos_embed[1 + i] + pos_embed[0]`;
- 31 learnable task tokens (SMPLer-X: 1 shape + 1 camera + 2 expression/jaw + 2 hands + 25 body) prepended
  after the position embedding, without one; they are timm's `reg_token`;
- pre-norm blocks (LayerNorm eps 1e-6, qkv bias, GELU MLP, linearly increasing drop-path), final LayerNorm.

`forward_features(images (B, 3, 256, 192)) -> (B, 192, D)` returns only the patch tokens, in row-major
grid order, as PoseEmbroider uses them (the task tokens are dropped). Presets (`IMAGE_ENCODER_PRESETS`):
`smplerx_vitb32` (ViT-B/16, 768/12/12, loads the SMPLer-X weights, see `smplerx_weights`) and
`vit_tiny_256x192` (192/6/3, no task tokens, inputs standardised inside the model) and `convvit_tiny_256x192`
(conv stem over a 128x96 view, 128/2/4), our CPU-sized encoder pretrained on the synthetic crops by
`train_imageEncoder.py` with `ImagePoseRegressor` (pose regression + 2D keypoint heatmaps on the token grid).
The quickstart's offline encoder is no ViT but the keypoint CNN of `keypoint_encoder.py` (same interface:
`forward_features`, `embed_dim`, `num_tokens`, `freeze`), which learns the 2D joints sooner on a CPU.

Frozen mode (`freeze()`, or `frozen=True` in the config, as in the saved pretrained encoders): no
trainable parameter, always in eval mode (no drop-path), forward without autograd graph.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch
from timm.layers import PatchEmbed, trunc_normal_
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from poseembroider.assisting_models.imageEncoder.smplerx_weights import (
    find_smplerx_weights,
    load_smplerx_weights,
    missing_smplerx_file_error,
    smplerx_checkpoint_path,
)
from poseembroider.geometry import (
    axis_angle_to_matrix,
    chordal_mean_axis_angle,
    geodesic_distance,
    matrix_to_rot6d,
    procrustes_align,
    rot6d_to_matrix,
)
from poseembroider.models.pretrained import CheckpointError, PretrainedModel, load_pretrained, register_model

SMPLERX_PRESET = "smplerx_vitb32"
CPU_PRESET = "convvit_tiny_256x192"
PATCH_VIT_TINY_PRESET = "vit_tiny_256x192"


# --------------------------------------------------------------------------------------------- token embeddings


class PaddedPatchEmbed(PatchEmbed):
    """timm's PatchEmbed with a zero-padded projection conv (ViTPose: 16x16 / stride 16 / padding 2)."""

    def __init__(self, *args, padding: int = 2, **kwargs) -> None:
        self.padding = padding  # read by _init_img_size, which timm's __init__ calls
        super().__init__(*args, **kwargs)
        old = self.proj
        self.proj = nn.Conv2d(
            old.in_channels,
            old.out_channels,
            kernel_size=old.kernel_size,
            stride=old.stride,
            padding=padding,
            bias=old.bias is not None,
        )

    def _init_img_size(self, img_size):
        img_size, grid_size, num_patches = super()._init_img_size(img_size)
        if img_size is None:
            return img_size, grid_size, num_patches
        pad = getattr(self, "padding", 0)
        grid_size = tuple((s + 2 * pad - p) // p + 1 for s, p in zip(img_size, self.patch_size, strict=True))
        return img_size, grid_size, grid_size[0] * grid_size[1]


class ConvStemEmbed(PatchEmbed):
    """Tokens from stride-2 3x3 conv + BatchNorm + ReLU stages and a 1x1 projection, with the same 16x
    downsampling and (H/16) x (W/16) token grid as a 16x16 patch embedding.

    `input_pooling` > 1 first averages the image over `input_pooling`-pixel squares (a power of 2), and
    the stem has that many fewer stages: the transformer then sees a low-resolution view of the crop at a
    fraction of the cost (the CPU preset: 128x96). Stage widths double up to D (..., D/4, D/2, D);
    `stage_blocks` residual 3x3 blocks (`ResidualConvBlock`) follow each stride-2 stage.
    BatchNorm statistics are frozen with the rest of the encoder (frozen encoders run in eval mode).

    `pixel_mean` / `pixel_std` (per channel) standardise the pooled view, not the crop: the same numbers
    (averaging commutes with a per-channel affine map) on `input_pooling`^2 times fewer pixels: at full
    resolution it was 7 % of a bfloat16 CPU training step with input pooling 4 (profiled; within noise in
    float32). They are constants, not saved.
    """

    def __init__(
        self,
        *args,
        input_pooling: int = 1,
        stage_blocks: int = 0,
        pixel_mean: Sequence[float] | None = None,
        pixel_std: Sequence[float] | None = None,
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        stages = 4 - int(input_pooling).bit_length() + 1
        if input_pooling < 1 or input_pooling & (input_pooling - 1) or stages < 1:
            raise ValueError(f"input_pooling must be 1, 2, 4 or 8, got {input_pooling}")
        if stage_blocks < 0:
            raise ValueError(f"stage_blocks must be >= 0, got {stage_blocks}")
        dim = self.proj.out_channels
        widths = [self.proj.in_channels] + [dim // 2 ** (stages - 1 - i) for i in range(stages)]
        layers: list[nn.Module] = [nn.AvgPool2d(input_pooling)] if input_pooling > 1 else []
        for c_in, c_out in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
            layers += [ResidualConvBlock(c_out) for _ in range(stage_blocks)]
        layers.append(nn.Conv2d(dim, dim, 1))
        self.proj = nn.Sequential(*layers)
        self.input_pooling = int(input_pooling)
        self.standardise = pixel_mean is not None
        if (pixel_std is None) == self.standardise:
            raise ValueError("pixel_mean and pixel_std go together: set both or neither")
        if self.standardise:
            shape = (1, -1, 1, 1)
            self.register_buffer("pixel_mean", torch.tensor(pixel_mean, dtype=torch.float32).view(shape), False)
            self.register_buffer("pixel_std", torch.tensor(pixel_std, dtype=torch.float32).view(shape), False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) crop -> (B, N, D) tokens: pooling, standardisation, the conv stages."""
        if x.shape[-2:] != self.img_size:
            raise ValueError(f"input of {tuple(x.shape[-2:])} pixels: this stem takes {self.img_size}")
        layers = list(self.proj)
        if self.input_pooling > 1:
            x, layers = layers[0](x), layers[1:]
        if self.standardise:
            x = (x - self.pixel_mean) / self.pixel_std
        for layer in layers:
            x = layer(x)
        return self.norm(x.flatten(2).transpose(1, 2))


class ResidualConvBlock(nn.Module):
    """x -> ReLU(x + BN(Conv3x3(x))): one more 3x3 receptive-field step at a stem stage's resolution."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.norm = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        return torch.relu(x + self.norm(self.conv(x)))


PATCH_STEMS: dict[str, type[PatchEmbed]] = {"patch": PaddedPatchEmbed, "conv": ConvStemEmbed}
"""Token embeddings of `ImageEncoderConfig.stem`."""


@dataclass
class ImageEncoderConfig:
    """Architecture of the image ViT (defaults: SMPLer-X ViT-B/16 at 256x192)."""

    img_size: tuple[int, int] = (256, 192)  # (H, W) of the input crops
    patch_size: int = 16  # square patches
    patch_padding: int = 2  # zero padding of the patch-embed conv (ViTPose: 4 + 2 * (ratio // 2 - 1), ratio 1)
    stem: str = "patch"  # token embedding: 'patch' (one 16x16 conv, ViTPose) or 'conv' (3x3 conv stem, see PATCH_STEMS)
    stem_input_pooling: int = 1  # 'conv' stem: average-pool the crop by this factor first (1, 2, 4 or 8)
    stem_stage_blocks: int = 0  # 'conv' stem: residual 3x3 conv blocks after each stride-2 stage
    in_chans: int = 3
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    drop_path_rate: float = 0.3  # stochastic depth, linearly increasing over the blocks
    norm_eps: float = 1e-6  # LayerNorm epsilon
    num_task_tokens: int = 31  # SMPLer-X task tokens (1+1+2+2+25) prepended to the patch tokens
    # per-channel (x - mean) / std applied inside the model to the [0, 1] crops; None: none (SMPLer-X, as the original)
    pixel_mean: tuple[float, float, float] | None = None
    pixel_std: tuple[float, float, float] | None = None
    frozen: bool = False  # no trainable parameter, always eval (set in saved pretrained encoders)
    preset: str = SMPLERX_PRESET  # the preset this config derives from (provenance only)

    def __post_init__(self) -> None:
        self.img_size = tuple(int(s) for s in self.img_size)  # type: ignore[assignment]
        if len(self.img_size) != 2:
            raise ValueError(f"img_size must be (H, W), got {self.img_size}")
        if self.embed_dim % self.num_heads:
            raise ValueError(f"embed_dim {self.embed_dim} is not divisible by num_heads {self.num_heads}")
        if self.stem not in PATCH_STEMS:
            raise ValueError(f"stem {self.stem!r}: use one of {sorted(PATCH_STEMS)}")
        if self.stem == "conv" and (self.patch_size != 16 or self.patch_padding != 0):
            raise ValueError("the 'conv' stem downsamples by 16 with no padding: set patch_size 16, patch_padding 0")
        if min(self.grid_size) < 1:
            raise ValueError(f"img_size {self.img_size} gives no patch with patch_size {self.patch_size}")
        if (self.pixel_mean is None) != (self.pixel_std is None):
            raise ValueError("pixel_mean and pixel_std go together: set both or neither")
        for name in ("pixel_mean", "pixel_std"):
            value = getattr(self, name)
            if value is not None:
                if len(value) != self.in_chans:
                    raise ValueError(f"{name} needs {self.in_chans} values, got {value}")
                setattr(self, name, tuple(float(v) for v in value))

    @property
    def grid_size(self) -> tuple[int, int]:
        """(rows, cols) of patch tokens: the conv output size, (256 + 4 - 16) // 16 + 1 = 16 by 12."""
        pad, k = self.patch_padding, self.patch_size
        return tuple((s + 2 * pad - k) // k + 1 for s in self.img_size)  # type: ignore[return-value]

    @property
    def num_patches(self) -> int:
        return self.grid_size[0] * self.grid_size[1]


IMAGE_ENCODER_PRESETS: dict[str, ImageEncoderConfig] = {
    SMPLERX_PRESET: ImageEncoderConfig(),
    # ViT-Tiny widths, 6 blocks, no task tokens, no drop-path: sized for short CPU training from scratch, where
    # input standardisation (ImageNet statistics) makes pose regression start learning several times sooner
    PATCH_VIT_TINY_PRESET: ImageEncoderConfig(
        embed_dim=192,
        depth=6,
        num_heads=3,
        drop_path_rate=0.0,
        num_task_tokens=0,
        pixel_mean=(0.485, 0.456, 0.406),
        pixel_std=(0.229, 0.224, 0.225),
        preset=PATCH_VIT_TINY_PRESET,
    ),
    # a convolutional stem (Xiao et al. 2021, "Early convolutions help transformers see better") over a 128x96
    # view of the crop, one residual 3x3 block per stage, and a narrow, shallow transformer (2 blocks, MLP
    # ratio 2): the inductive bias and the cost that let a ViT learn 2D joints and pose from a few thousand
    # crops in minutes on a CPU (the stem blocks localise joints sooner than a third transformer block,
    # measured on the quickstart crops); still 192 tokens
    CPU_PRESET: ImageEncoderConfig(
        embed_dim=128,
        depth=2,
        num_heads=4,
        mlp_ratio=2.0,
        patch_padding=0,
        stem="conv",
        stem_input_pooling=2,
        stem_stage_blocks=1,
        drop_path_rate=0.0,
        num_task_tokens=0,
        pixel_mean=(0.485, 0.456, 0.406),
        pixel_std=(0.229, 0.224, 0.225),
        preset=CPU_PRESET,
    ),
}
"""Named architectures; `--image_encoder_name` of the trainer picks one."""


def image_encoder_config(preset: str, **overrides) -> ImageEncoderConfig:
    """A copy of preset `preset` with fields replaced by `overrides`."""
    if preset not in IMAGE_ENCODER_PRESETS:
        raise KeyError(f"unknown image encoder preset {preset!r}; known: {sorted(IMAGE_ENCODER_PRESETS)}")
    return dataclasses.replace(IMAGE_ENCODER_PRESETS[preset], **overrides)


# --------------------------------------------------------------------------------------------- backbone


class ViTPoseBackbone(VisionTransformer):
    """timm `VisionTransformer` with the SMPLer-X / ViTPose token layout (see the module docstring).

    Its state-dict names are timm's; `smplerx_weights` maps SMPLer-X checkpoints onto them.
    `forward_features` (timm's) returns all tokens, task tokens first: (B, num_task_tokens + N, D).
    """

    def __init__(self, config: ImageEncoderConfig) -> None:
        super().__init__(
            img_size=config.img_size,
            patch_size=config.patch_size,
            in_chans=config.in_chans,
            num_classes=0,
            global_pool="",
            embed_dim=config.embed_dim,
            depth=config.depth,
            num_heads=config.num_heads,
            mlp_ratio=config.mlp_ratio,
            qkv_bias=config.qkv_bias,
            class_token=False,
            reg_tokens=config.num_task_tokens,
            no_embed_class=True,
            fc_norm=False,
            drop_path_rate=config.drop_path_rate,
            embed_layer=(
                partial(PaddedPatchEmbed, padding=config.patch_padding)
                if config.stem == "patch"
                else partial(
                    ConvStemEmbed,
                    input_pooling=config.stem_input_pooling,
                    stage_blocks=config.stem_stage_blocks,
                    pixel_mean=config.pixel_mean,
                    pixel_std=config.pixel_std,
                )
            ),
            norm_layer=partial(nn.LayerNorm, eps=config.norm_eps),
        )
        # one extra slot (the class token's, unused by tokens of its own): added to every patch token
        self.pos_embed = nn.Parameter(torch.zeros(1, self.patch_embed.num_patches + 1, config.embed_dim))
        trunc_normal_(self.pos_embed, std=0.02)
        if self.reg_token is not None:
            trunc_normal_(self.reg_token, std=0.02)  # SMPLer-X's task-token init

    def _pos_embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, D) patch tokens -> (B, T + N, D): ViTPose position embedding, then the T task tokens."""
        x = x + self.pos_embed[:, 1:] + self.pos_embed[:, :1]
        if self.reg_token is not None:
            x = torch.cat([self.reg_token.expand(x.shape[0], -1, -1), x], dim=1)
        return self.pos_drop(x)


# --------------------------------------------------------------------------------------------- encoder


class FrozenImageEncoderMixin:
    """What every image encoder of PoseEmbroider shares (`ImageEncoder`, `KeypointImageEncoder`): a config
    with `embed_dim`, `frozen`, `in_chans` and `img_size`; freezing; the input check."""

    config: Any

    @property
    def embed_dim(self) -> int:
        return self.config.embed_dim

    @property
    def frozen(self) -> bool:
        return self.config.frozen

    def freeze(self):
        """No trainable parameter, eval mode kept through later `.train()` calls (no drop-path, no batch-norm
        statistics update)."""
        self.config = dataclasses.replace(self.config, frozen=True)
        for p in self.parameters():  # type: ignore[attr-defined]
            p.requires_grad_(False)
        return self.eval()  # type: ignore[attr-defined]

    def train(self, mode: bool = True):
        return super().train(mode and not self.config.frozen)  # type: ignore[misc]

    def _check_images(self, images: torch.Tensor) -> None:
        expected = (self.config.in_chans, *self.config.img_size)
        if not isinstance(images, torch.Tensor) or images.ndim != 4 or tuple(images.shape[1:]) != expected:
            shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise ValueError(f"images: expected (B, {', '.join(map(str, expected))}) crops in [0, 1], got {shape}")


@register_model
class ImageEncoder(FrozenImageEncoderMixin, PretrainedModel, nn.Module):
    """Person crops (B, 3, 256, 192) in [0, 1] -> patch tokens (B, 192, D).

    Callers always pass [0, 1] crops, as in the original pipeline (original_system.md §4.4: no ImageNet
    normalisation before the SMPLer-X ViT); an encoder whose config sets `pixel_mean` / `pixel_std`
    standardises them itself.
    """

    config_class = ImageEncoderConfig

    def __init__(self, config: ImageEncoderConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else ImageEncoderConfig()
        self.backbone = ViTPoseBackbone(self.config)
        if self.config.pixel_mean is not None:  # constants of the config: not saved in the state dict
            shape = (1, self.config.in_chans, 1, 1)
            self.register_buffer("pixel_mean", torch.tensor(self.config.pixel_mean).view(shape), persistent=False)
            self.register_buffer("pixel_std", torch.tensor(self.config.pixel_std).view(shape), persistent=False)
        if self.config.frozen:
            self.freeze()

    @classmethod
    def from_preset(cls, preset: str, **overrides) -> ImageEncoder:
        """Randomly initialised encoder of a named architecture (`IMAGE_ENCODER_PRESETS`)."""
        return cls(image_encoder_config(preset, **overrides))

    @property
    def num_tokens(self) -> int:
        """Patch tokens per image (192 at 256x192)."""
        return self.config.num_patches

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, N, D) patch tokens (N = 192 at 256x192), task tokens dropped."""
        self._check_images(images)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not (self.frozen and not images.requires_grad)):
            if self.config.pixel_mean is not None and self.config.stem != "conv":  # a conv stem standardises
                images = (images - self.pixel_mean) / self.pixel_std
            tokens = self.backbone.forward_features(images)
        return tokens[:, self.backbone.num_prefix_tokens :]

    forward = forward_features

    def feature_map(self, images: torch.Tensor) -> torch.Tensor:
        """(B, D, 16, 12): the patch tokens laid out as SMPLer-X's `forward_features` returns them."""
        tokens = self.forward_features(images)
        rows, cols = self.config.grid_size
        return tokens.transpose(1, 2).reshape(tokens.shape[0], -1, rows, cols)

    def load_smplerx_weights(self, path: str | os.PathLike | None = None) -> Path:
        """Load the SMPLer-X ViT-B backbone (default file under TORCH_CACHE_DIR/smplerx/) strictly."""
        return load_smplerx_weights(self.backbone, path)


def build_image_encoder(name: str, frozen: bool = True) -> nn.Module:
    """The image encoder PoseEmbroider's `--image_encoder_name` refers to.

    `smplerx_vitb32`: the ViT-B preset with the SMPLer-X weights (FileNotFoundError naming the expected file
    when they are absent); any other name: a shortname or folder of a saved `ImageEncoder` or
    `KeypointImageEncoder` (e.g. the one `train_imageEncoder.py` registers, saved frozen). `frozen=True`
    freezes the result; `False` leaves it as built or saved.
    """
    if name == SMPLERX_PRESET:
        path = find_smplerx_weights()
        if path is None:  # fail before building an 86M-parameter model
            raise missing_smplerx_file_error(smplerx_checkpoint_path())
        encoder = ImageEncoder.from_preset(SMPLERX_PRESET)
        encoder.load_smplerx_weights(path)
    else:
        encoder = load_pretrained(name)
        if not (callable(getattr(encoder, "forward_features", None)) and callable(getattr(encoder, "freeze", None))):
            raise CheckpointError(
                f"image encoder {name!r} holds a {type(encoder).__name__}, not an image encoder "
                "(an ImageEncoder or KeypointImageEncoder folder, with forward_features)"
            )
    if frozen:
        encoder.freeze()
    return encoder


# --------------------------------------------------------------------------------------------- pretraining


TRAIN_PRECISIONS = ("fp32", "bf16")
"""`ImagePoseRegressorConfig.train_precision`. 'bf16': the encoder's training forward (and so its backward)
under bfloat16 autocast, channels-last input, attention as matmuls: 2.0x the images/s of 'fp32' on a CPU
with AMX (input pooling 2, one thread; `benchmarks/bench_image_encoder.py`); the weights, optimiser, heads
and losses stay float32."""


@contextlib.contextmanager
def unfused_attention(encoder: ImageEncoder) -> Iterator[None]:
    """timm's attention as q @ k^T, softmax, @ v instead of `scaled_dot_product_attention` inside the block:
    under CPU bfloat16 autocast the fused kernel's backward took 30 % of a training step, the matmuls
    (oneDNN) a fifth of that; in float32 the fused kernel is the faster one, so it is restored after."""
    blocks = [block.attn for block in encoder.backbone.blocks if hasattr(block.attn, "fused_attn")]
    previous = [attn.fused_attn for attn in blocks]
    for attn in blocks:
        attn.fused_attn = False
    try:
        yield
    finally:
        for attn, fused in zip(blocks, previous, strict=True):
            attn.fused_attn = fused


REGRESSOR_POOLINGS = ("mean", "keypoints")
"""`ImagePoseRegressorConfig.pooling`. 'mean': the head reads the average token (D,). 'keypoints': a linear
layer on the tokens gives one heatmap per joint, a softmax over the N tokens (B, J, N); the head reads the
average token, each joint's heatmap-weighted token (projected to `keypoint_dim`) and each joint's expected
grid position (soft-argmax, in [-1, 1]). With `wloss_keypoints` the heatmaps are supervised by the 2D joints,
which teaches the tokens where the body parts are within the first epochs (HMR-style dense supervision)."""


def keypoint_grid_targets(
    joints_2d: torch.Tensor,
    grid_size: tuple[int, int],
    img_size: tuple[int, int],
    sigma: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Soft targets over the token grid for 2D joints in crop pixels.

    Args:
        joints_2d: (B, J, 2) (x, y) in pixels of the (H, W) = `img_size` crop, pixel centres at integers.
        grid_size: (rows, cols) of tokens; token (r, c) covers the pixels of cell (r, c) of a rows x cols
            tiling of the crop (the conv stem's and a padding-0 patch embedding's receptive layout).
        sigma: Gaussian std in cells.

    Returns:
        targets (B, J, rows * cols), rows summing to 1 (row-major token order, as the encoder's tokens);
        valid (B, J) bool, the joint lies inside the crop (targets of other joints are all zero).
    """
    rows, cols = grid_size
    height, width = img_size
    # pixel -> continuous cell coordinate whose integers are the cell centres
    gx = (joints_2d[..., 0] + 0.5) * (cols / width) - 0.5
    gy = (joints_2d[..., 1] + 0.5) * (rows / height) - 0.5
    valid = (gx >= -0.5) & (gx <= cols - 0.5) & (gy >= -0.5) & (gy <= rows - 0.5) & torch.isfinite(gx + gy)
    cy = torch.arange(rows, dtype=joints_2d.dtype, device=joints_2d.device)
    cx = torch.arange(cols, dtype=joints_2d.dtype, device=joints_2d.device)
    dy = (cy.view(1, 1, rows, 1) - gy.nan_to_num()[..., None, None]) ** 2
    dx = (cx.view(1, 1, 1, cols) - gx.nan_to_num()[..., None, None]) ** 2
    logits = -(dx + dy).flatten(-2) / (2 * sigma**2)
    targets = torch.softmax(logits, dim=-1) * valid[..., None]
    return targets, valid


def keypoint_kl_loss(log_heatmaps: torch.Tensor, targets: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean over valid joints of KL(targets || heatmaps); log_heatmaps, targets (B, J, N), valid (B, J).

    0 when the predicted heatmaps equal the targets; 0 (with a gradient of 0) when no joint is valid."""
    kl = (targets * (targets.clamp_min(1e-12).log() - log_heatmaps)).sum(-1)  # (B, J)
    return (kl * valid).sum() / valid.sum().clamp_min(1)


def token_centres(grid_size: tuple[int, int], img_size: tuple[int, int]) -> torch.Tensor:
    """(rows * cols, 2) pixel coordinates (x, y) of the token cells' centres, row-major (pixel centres at
    integers, as `keypoint_grid_targets`): token (r, c) -> ((c + 0.5) W / cols - 0.5, (r + 0.5) H / rows - 0.5)."""
    rows, cols = grid_size
    height, width = img_size
    ys = (torch.arange(rows) + 0.5) * (height / rows) - 0.5
    xs = (torch.arange(cols) + 0.5) * (width / cols) - 0.5
    return torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1).reshape(-1, 2)


def normalize_keypoints(joints_2d: torch.Tensor, img_size: tuple[int, int]) -> torch.Tensor:
    """(..., 2) crop pixels (x, y) -> [-1, 1] over the crop (the lifter's input scale)."""
    height, width = img_size
    return (joints_2d + 0.5) * joints_2d.new_tensor([2.0 / width, 2.0 / height]) - 1.0


@dataclass
class ImagePoseRegressorConfig:
    """Encoder + average pooling + MLP head regressing the SMPL-X body pose in 6D (offline pretraining)."""

    encoder: ImageEncoderConfig = field(default_factory=lambda: image_encoder_config(CPU_PRESET))
    num_body_joints: int = 22  # global orientation + 21 body joints
    head_hidden: int = 512  # hidden width of the MLP head
    head_dropout: float = 0.1
    # weight of the body-joint term: MPJPE (m) of the 21 body joints posed with the root rotation removed
    # (global orientation is already in the geodesic term); 0 = geodesic loss only, as the original recipe
    wloss_joints: float = 0.0
    # how the head reads the tokens: 'mean' (average over tokens) or 'keypoints' (see REGRESSOR_POOLINGS)
    pooling: str = "mean"
    keypoint_dim: int = 32  # 'keypoints' pooling: width each joint's pooled token is projected to
    # weight of the 2D keypoint term: KL divergence between each joint's softmax over the token grid and a
    # Gaussian around its projection in the crop (batches then need `joints_2d_crop`); 0 = off
    wloss_keypoints: float = 0.0
    keypoint_sigma: float = 1.0  # std of the Gaussian keypoint targets, in token cells (16 px)
    # weight of the L1 distance between the soft-argmax 2D joints and the true ones, in [-1, 1] crop coordinates
    # (integral regression, Sun et al. 2018): the KL shapes each heatmap, this term places its expectation
    # below a token cell; joints outside the crop do not count; 0 = off
    wloss_keypoints_l1: float = 0.0
    # 'keypoints' pooling: hidden width of the lifter, an MLP from the J soft-argmax 2D joints to a 6D residual
    # added to the head's (2D -> 3D lifting, pretrainable on ground-truth 2D joints: `lifting_step`); 0 = none
    lifter_hidden: int = 0
    # weight of the lifter's own pose loss on the batch's ground-truth 2D joints (`lifting_step`), added to
    # each training step so the lifter keeps learning 2D -> 3D while the heatmaps sharpen; 0 = off
    wloss_lifting: float = 0.0
    lifter_noise_px: float = 4.0  # Gaussian jitter (crop pixels) of the ground-truth 2D joints the lifter learns from
    # number format of the encoder's forward in training steps (`TRAIN_PRECISIONS`); validation, the heads,
    # the losses and the saved encoder stay float32
    train_precision: str = "fp32"

    def __post_init__(self) -> None:
        if self.train_precision not in TRAIN_PRECISIONS:
            raise ValueError(f"train_precision {self.train_precision!r}: use one of {TRAIN_PRECISIONS}")
        if self.pooling not in REGRESSOR_POOLINGS:
            raise ValueError(f"pooling {self.pooling!r}: use one of {REGRESSOR_POOLINGS}")
        if (self.wloss_keypoints or self.wloss_keypoints_l1) and self.pooling != "keypoints":
            raise ValueError("wloss_keypoints / wloss_keypoints_l1 need the keypoint heatmaps of pooling='keypoints'")
        if (self.lifter_hidden or self.wloss_lifting) and self.pooling != "keypoints":
            raise ValueError("a lifter (lifter_hidden, wloss_lifting) reads the keypoints of pooling='keypoints'")
        if self.wloss_lifting and not self.lifter_hidden:
            raise ValueError("wloss_lifting needs a lifter: set lifter_hidden > 0")
        if self.keypoint_sigma <= 0:
            raise ValueError(f"keypoint_sigma must be > 0, got {self.keypoint_sigma}")


@register_model
class ImagePoseRegressor(PretrainedModel, nn.Module):
    """Pretrains an `ImageEncoder` by regressing the body pose from crops (geodesic loss).

    tokens (B, N, D) -> mean over N -> LayerNorm -> Linear(D, H) -> GELU -> Dropout -> Linear(H, J*6)
    -> 6D + the learned mean pose -> rotation matrices (B, J, 3, 3). With `pooling='keypoints'` the head
    also reads per-joint heatmap-pooled tokens and soft-argmax 2D joints (`REGRESSOR_POOLINGS`), and a
    lifter MLP adds a 6D residual from those 2D joints alone (`lift`, pretrainable by `lifting_step`).

    Metrics (validation): geodesic error in degrees, MPJPE and PA-MPJPE in mm on the J body joints posed by
    the body model with the mean shape (pelvis-aligned; PA: similarity Procrustes per sample); with
    keypoint heatmaps and `joints_2d_crop` in the batch, also their KL and soft-argmax error (px).
    The body model is not part of the state dict (`set_body_model`, else built on first use).
    """

    config_class = ImagePoseRegressorConfig

    def __init__(self, config: ImagePoseRegressorConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else ImagePoseRegressorConfig()
        cfg = self.config
        self.encoder = ImageEncoder(cfg.encoder)
        dim, joints = cfg.encoder.embed_dim, cfg.num_body_joints
        head_in = dim
        if cfg.pooling == "keypoints":
            # per-token joint logits; LayerNorm first: the encoder's last norm is shared with the mean pooling
            self.keypoint_head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, joints))
            self.keypoint_proj = nn.Linear(dim, cfg.keypoint_dim)
            head_in = dim + joints * (cfg.keypoint_dim + 2)
            # (N, 2) token-centre pixels: the soft-argmax basis (a constant of the config, not saved)
            centres = token_centres(cfg.encoder.grid_size, cfg.encoder.img_size)
            self.register_buffer("token_xy", centres, persistent=False)
            if cfg.lifter_hidden:
                self.lifter = self.build_lifter()
        self.head = self.build_head(head_in)
        # the prediction is a residual on this pose (6D); identity rotations until `set_mean_pose`
        self.mean_rot6d = nn.Parameter(matrix_to_rot6d(torch.eye(3).expand(joints, 3, 3)).clone())
        self.__dict__["_body_model"] = None  # kept out of the module tree: not saved, not moved by .to()

    def build_head(self, features: int) -> nn.Sequential:
        """LayerNorm -> Linear(features, head_hidden) -> GELU -> Dropout -> Linear(head_hidden, J*6), the last
        layer near zero so training starts from the mean pose."""
        cfg = self.config
        head = nn.Sequential(
            nn.LayerNorm(features),
            nn.Linear(features, cfg.head_hidden),
            nn.GELU(),
            nn.Dropout(cfg.head_dropout),
            nn.Linear(cfg.head_hidden, cfg.num_body_joints * 6),
        )
        nn.init.xavier_uniform_(head[-1].weight, gain=0.01)
        nn.init.zeros_(head[-1].bias)
        return head

    def build_lifter(self) -> nn.Sequential:
        """MLP (J*2 -> lifter_hidden -> lifter_hidden -> J*6) from 2D joints in [-1, 1] to a 6D residual,
        starting near zero."""
        cfg = self.config
        joints = cfg.num_body_joints
        lifter = nn.Sequential(
            nn.Linear(joints * 2, cfg.lifter_hidden),
            nn.GELU(),
            nn.Dropout(cfg.head_dropout),
            nn.Linear(cfg.lifter_hidden, cfg.lifter_hidden),
            nn.GELU(),
            nn.Linear(cfg.lifter_hidden, joints * 6),
        )
        nn.init.xavier_uniform_(lifter[-1].weight, gain=0.01)
        nn.init.zeros_(lifter[-1].bias)
        return lifter

    # ---- body model (metrics) -------------------------------------------------------------------

    def set_body_model(self, body_model: nn.Module | None) -> None:
        self.__dict__["_body_model"] = body_model

    def body_model(self, device: torch.device) -> nn.Module:
        model = self.__dict__["_body_model"]
        if model is None:
            from poseembroider.body.body_model import BodyModel

            model = BodyModel().eval()
            self.__dict__["_body_model"] = model
        if next(model.buffers()).device != device:
            model.to(device)
        return model

    @torch.no_grad()
    def set_mean_pose(self, poses: torch.Tensor) -> None:
        """Start the head from the chordal mean of axis-angle poses (N, J, 3) (e.g. the training set's)."""
        mean = chordal_mean_axis_angle(poses.to(self.mean_rot6d)[:, : self.config.num_body_joints])
        self.mean_rot6d.copy_(matrix_to_rot6d(axis_angle_to_matrix(mean)))

    def param_groups(self, lr: float, wd: float) -> list[dict]:
        """Weight decay on matrices only: not on biases, norms, position embedding, task tokens, mean pose."""
        decay, no_decay = [], []
        for name, p in self.named_parameters():
            if not p.requires_grad:
                continue
            skip = p.ndim <= 1 or name.endswith(("pos_embed", "reg_token")) or name == "mean_rot6d"
            (no_decay if skip else decay).append(p)
        return [{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}]

    # ---- forward --------------------------------------------------------------------------------

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, 256, 192) -> rotation matrices (B, J, 3, 3)."""
        return self.predict(images)["rotations"]

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, N, D) float32 tokens; in training mode with `train_precision='bf16'`, the
        encoder runs under bfloat16 autocast with its attention spelled out (`unfused_attention`)."""
        if not (self.training and self.config.train_precision == "bf16"):
            return self.encoder.forward_features(images)
        with torch.autocast(images.device.type, dtype=torch.bfloat16), unfused_attention(self.encoder):
            tokens = self.encoder.forward_features(images.contiguous(memory_format=torch.channels_last))
        return tokens.float()

    def predict(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, 3, 256, 192) -> `rotations` (B, J, 3, 3) and, with 'keypoints' pooling, `log_heatmaps`
        (B, J, N): each joint's log-softmax over the N tokens."""
        tokens = self.encode(images)  # (B, N, D)
        features = tokens.mean(dim=1)
        outputs: dict[str, torch.Tensor] = {}
        if self.config.pooling == "keypoints":
            log_heatmaps = self.keypoint_head(tokens).transpose(1, 2).log_softmax(dim=-1)  # (B, J, N)
            heatmaps = log_heatmaps.exp()
            pooled = self.keypoint_proj(heatmaps @ tokens)  # (B, J, keypoint_dim)
            keypoints = heatmaps @ self.token_xy  # (B, J, 2) soft-argmax, crop pixels
            positions = normalize_keypoints(keypoints, self.config.encoder.img_size)
            features = torch.cat([features, pooled.flatten(1), positions.flatten(1)], dim=1)
            outputs.update(log_heatmaps=log_heatmaps, keypoints_2d=keypoints)
        rot6d = self.head(features).view(-1, self.config.num_body_joints, 6) + self.mean_rot6d
        if self.config.lifter_hidden and self.config.pooling == "keypoints":
            rot6d = rot6d + self.lift(positions)
        outputs["rotations"] = rot6d_to_matrix(rot6d)
        return outputs

    def lift(self, positions: torch.Tensor) -> torch.Tensor:
        """(B, J, 2) 2D joints normalised to [-1, 1] (`normalize_keypoints`) -> (B, J, 6) lifter residual."""
        return self.lifter(positions.flatten(1)).view(-1, self.config.num_body_joints, 6)

    def lifting_step(self, batch: dict, noise_px: float = 0.0) -> dict[str, torch.Tensor]:
        """Loss of the lifter alone on ground-truth 2D joints (no image): the training step's pose loss for
        rotations mean pose + `lift(batch['joints_2d_crop'])`, the 2D joints jittered by Gaussian
        `noise_px` pixels (the image model's keypoints are not exact). Joints outside the crop are given
        as they are: the lifter sees them so (soft-argmax keeps them near the crop border)."""
        if not self.config.lifter_hidden:
            raise ValueError("lifting_step needs a lifter (lifter_hidden > 0, pooling='keypoints')")
        joints_2d = batch["joints_2d_crop"][:, : self.config.num_body_joints].to(self.mean_rot6d.dtype)
        if noise_px:
            joints_2d = joints_2d + noise_px * torch.randn_like(joints_2d)
        height, width = self.config.encoder.img_size
        joints_2d = torch.stack(
            [joints_2d[..., 0].clamp(-0.5, width - 0.5), joints_2d[..., 1].clamp(-0.5, height - 0.5)], -1
        )
        rot6d = self.lift(normalize_keypoints(joints_2d, self.config.encoder.img_size)) + self.mean_rot6d
        return self.pose_loss(rot6d_to_matrix(rot6d), self._targets(batch))

    def _targets(self, batch: dict) -> torch.Tensor:
        poses = batch["poses"][:, : self.config.num_body_joints]
        return axis_angle_to_matrix(poses.to(self.mean_rot6d.dtype))

    def keypoint_loss(self, log_heatmaps: torch.Tensor, joints_2d: torch.Tensor) -> torch.Tensor:
        """KL of the heatmaps (B, J, N) to the Gaussian targets of 2D joints (B, J', 2) in crop pixels
        (J' >= J: the first J are used; joints outside the crop do not count)."""
        targets, valid = keypoint_grid_targets(
            joints_2d[:, : self.config.num_body_joints].to(log_heatmaps.dtype),
            self.config.encoder.grid_size,
            self.config.encoder.img_size,
            self.config.keypoint_sigma,
        )
        return keypoint_kl_loss(log_heatmaps, targets, valid)

    def keypoint_l1_loss(self, keypoints: torch.Tensor, joints_2d: torch.Tensor) -> torch.Tensor:
        """Mean L1 distance, in [-1, 1] crop coordinates, between soft-argmax 2D joints (B, J, 2) and the true
        2D joints (B, J', 2) in crop pixels (the first J are used), over the joints inside the crop."""
        true = joints_2d[:, : self.config.num_body_joints].to(keypoints.dtype)
        _, valid = keypoint_grid_targets(true, self.config.encoder.grid_size, self.config.encoder.img_size)
        size = self.config.encoder.img_size
        distance = (normalize_keypoints(keypoints, size) - normalize_keypoints(true.nan_to_num(), size)).abs().sum(-1)
        return (distance * valid).sum() / valid.sum().clamp_min(1)

    def pose_loss(self, predicted: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """`loss`: geodesic angle (rad) summed over joints, batch mean, + `wloss_joints` x the root-relative
        body-joint MPJPE (m); with detached `geodesic_deg` (and `joints_mm`). Rotations (B, J, 3, 3)."""
        angles = geodesic_distance(predicted, target)  # (B, J)
        outputs = {"geodesic_deg": torch.rad2deg(angles.detach()).mean()}
        loss = angles.sum(-1).mean()
        if self.config.wloss_joints:
            joint_error = self.root_relative_joint_error(predicted, target).mean()
            outputs["joints_mm"] = joint_error.detach() * 1000
            loss = loss + self.config.wloss_joints * joint_error
        outputs["loss"] = loss
        return outputs

    def training_step(self, batch: dict) -> dict[str, torch.Tensor]:
        """Geodesic loss: angle (rad) between predicted and true rotations, summed over joints, batch mean;
        plus `wloss_joints` x the root-relative body-joint MPJPE (m), `wloss_keypoints` x the 2D keypoint KL
        (`keypoint_loss`, from `batch['joints_2d_crop']`) and `wloss_lifting` x the lifter's loss on the
        ground-truth 2D joints (`lifting_step`) when set."""
        outputs_model = self.predict(batch["images"])
        outputs = self.pose_loss(outputs_model["rotations"], self._targets(batch))
        loss = outputs["loss"]
        cfg = self.config
        if (cfg.wloss_keypoints or cfg.wloss_keypoints_l1 or cfg.wloss_lifting) and "joints_2d_crop" not in batch:
            raise KeyError(
                "the keypoint and lifting terms need batch['joints_2d_crop'] (B, J, 2) crop pixels"
            )
        if cfg.wloss_keypoints:
            keypoint_kl = self.keypoint_loss(outputs_model["log_heatmaps"], batch["joints_2d_crop"])
            outputs["keypoint_kl"] = keypoint_kl.detach()
            loss = loss + cfg.wloss_keypoints * keypoint_kl
        if cfg.wloss_keypoints_l1:
            keypoint_l1 = self.keypoint_l1_loss(outputs_model["keypoints_2d"], batch["joints_2d_crop"])
            outputs["keypoint_l1"] = keypoint_l1.detach()
            loss = loss + cfg.wloss_keypoints_l1 * keypoint_l1
        if self.config.wloss_lifting:
            lifting = self.lifting_step(batch, self.config.lifter_noise_px)["loss"]
            outputs["lifting_loss"] = lifting.detach()
            loss = loss + self.config.wloss_lifting * lifting
        outputs["loss"] = loss
        return outputs

    def root_relative_joint_error(self, predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Per-sample mean distance (m), (B,), between the body joints posed by rotation matrices (B, J, 3, 3)
        with the root rotation set to identity (differentiable forward kinematics of the mean shape)."""
        skeleton = self.skeleton(predicted.device)
        both = torch.cat([predicted, target]).clone()
        both[:, 0] = torch.eye(3, dtype=both.dtype, device=both.device)
        joints = skeleton.pose_rotations(both)
        pred, true = joints.split(predicted.shape[0])
        return (pred - true).norm(dim=-1).mean(-1)

    def skeleton(self, device: torch.device) -> nn.Module:
        """The joints-only forward kinematics of the body model (built once, kept out of the state dict)."""
        skeleton = self.__dict__.get("_skeleton")
        if skeleton is None or skeleton.rest_joints.device != device:
            from poseembroider.body.skeleton import Skeleton

            skeleton = Skeleton(self.body_model(device)).to(device)
            self.__dict__["_skeleton"] = skeleton
        return skeleton

    @torch.no_grad()
    def joint_errors(self, predicted: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-sample MPJPE / PA-MPJPE (mm), (B,) each, for rotation matrices (B, J, 3, 3)."""
        from poseembroider.geometry import matrix_to_axis_angle

        body = self.body_model(predicted.device)
        both = matrix_to_axis_angle(torch.cat([predicted, target]))
        joints = body(both).body_joints[:, : self.config.num_body_joints]
        joints = joints - joints[:, :1]  # pelvis-aligned
        pred, true = joints.split(predicted.shape[0])
        mpjpe = (pred - true).norm(dim=-1).mean(-1) * 1000
        pa = (procrustes_align(pred, true).aligned - true).norm(dim=-1).mean(-1) * 1000
        return {"mpjpe_mm": mpjpe, "pa_mpjpe_mm": pa}

    @torch.no_grad()
    def validation_step(self, batch: dict) -> dict[str, torch.Tensor]:
        """Metrics of the class docstring; plus `keypoint_kl` when the batch has `joints_2d_crop` and the
        model has keypoint heatmaps."""
        outputs_model = self.predict(batch["images"])
        predicted, target = outputs_model["rotations"], self._targets(batch)
        angles = geodesic_distance(predicted, target)
        errors = self.joint_errors(predicted, target)
        metrics = {
            "loss": angles.sum(-1).mean(),
            "geodesic_deg": torch.rad2deg(angles).mean(),
            "mpjpe_mm": errors["mpjpe_mm"].mean(),
            "pa_mpjpe_mm": errors["pa_mpjpe_mm"].mean(),
        }
        if "log_heatmaps" in outputs_model and "joints_2d_crop" in batch:
            joints_2d = batch["joints_2d_crop"][:, : self.config.num_body_joints].to(predicted.dtype)
            metrics["keypoint_kl"] = self.keypoint_loss(outputs_model["log_heatmaps"], joints_2d)
            _, valid = keypoint_grid_targets(joints_2d, self.config.encoder.grid_size, self.config.encoder.img_size)
            distance = (outputs_model["keypoints_2d"] - joints_2d).norm(dim=-1)
            metrics["keypoint_err_px"] = (distance * valid).sum() / valid.sum().clamp_min(1)
        return metrics

    def frozen_encoder(self) -> nn.Module:
        """A frozen copy of the encoder part, of the encoder's own class (what `train_imageEncoder.py` saves as
        the image encoder)."""
        encoder = type(self.encoder)(dataclasses.replace(self.encoder.config, frozen=False))
        encoder.load_state_dict(self.encoder.state_dict(), strict=True)
        return encoder.freeze()


__all__ = [
    "CPU_PRESET",
    "IMAGE_ENCODER_PRESETS",
    "SMPLERX_PRESET",
    "ImageEncoder",
    "ImageEncoderConfig",
    "ImagePoseRegressor",
    "ImagePoseRegressorConfig",
    "PATCH_STEMS",
    "PATCH_VIT_TINY_PRESET",
    "REGRESSOR_POOLINGS",
    "TRAIN_PRECISIONS",
    "ConvStemEmbed",
    "FrozenImageEncoderMixin",
    "ResidualConvBlock",
    "PaddedPatchEmbed",
    "ViTPoseBackbone",
    "build_image_encoder",
    "image_encoder_config",
    "keypoint_grid_targets",
    "keypoint_kl_loss",
    "normalize_keypoints",
    "token_centres",
    "unfused_attention",
]
