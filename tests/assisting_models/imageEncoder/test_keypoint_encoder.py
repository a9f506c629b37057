"""The keypoint CNN: shapes of its tokens, heatmaps and joints; the soft-argmax follows a peaked heatmap; the
joint tokens keep every joint's part in their average; frozen mode; save -> load -> same tokens; bad configs
and inputs are refused by name."""

from __future__ import annotations

import pytest
import torch

from poseembroider.assisting_models.imageEncoder.keypoint_encoder import (
    KEYPOINT_PRESET,
    JointLinear,
    KeypointEncoderConfig,
    KeypointImageEncoder,
    keypoint_encoder_config,
)
from poseembroider.assisting_models.imageEncoder.model_imageEncoder import build_image_encoder

SMALL = {"widths": (8, 16, 16, 32, 32), "embed_dim": 24}


@pytest.fixture
def encoder() -> KeypointImageEncoder:
    torch.manual_seed(0)
    return KeypointImageEncoder(keypoint_encoder_config(KEYPOINT_PRESET, **SMALL)).eval()


def test_outputs_have_the_documented_shapes(encoder):
    out = encoder.keypoints(torch.rand(2, 3, 256, 192))
    assert encoder.config.grid_size == (32, 24) and encoder.config.context_grid == (4, 3)
    assert out["tokens"].shape == (2, 22 + 12, 24) == (2, encoder.num_tokens, encoder.embed_dim)
    assert out["log_heatmaps"].shape == (2, 22, 32 * 24)
    assert torch.allclose(out["log_heatmaps"].exp().sum(-1), torch.ones(2, 22), atol=1e-5)
    keypoints = out["keypoints_2d"]
    assert keypoints.shape == (2, 22, 2) and keypoints.min() >= 0 and keypoints[..., 0].max() <= 191
    assert encoder.forward_features(torch.zeros(1, 3, 256, 192)).shape == (1, 34, 24)


def test_soft_argmax_lands_on_a_peaked_heatmap_cell(encoder):
    """A heatmap head that fires on one cell only puts every joint at that cell's centre (8 px cells)."""
    row, col = 5, 7
    captured = {}

    def spike(module, inputs, output):
        output = torch.full_like(output, -50.0)
        output[:, :, row, col] = 50.0
        captured["done"] = True
        return output

    handle = encoder.heatmap_head.register_forward_hook(spike)
    keypoints = encoder.keypoints(torch.rand(1, 3, 256, 192))["keypoints_2d"]
    handle.remove()
    assert captured["done"]
    expected = torch.tensor([col * 8 + 3.5, row * 8 + 3.5])
    assert torch.allclose(keypoints[0], expected.expand(22, 2), atol=1e-3)


def test_joint_linear_gives_each_joint_its_own_map():
    layer = JointLinear(3, 2, 4)
    x = torch.zeros(1, 3, 2)
    x[0, 1] = torch.tensor([1.0, -1.0])
    y = layer(x)
    assert torch.allclose(y[0, 0], layer.bias[0]) and torch.allclose(y[0, 2], layer.bias[2])
    assert torch.allclose(y[0, 1], x[0, 1] @ layer.weight[1] + layer.bias[1])


def test_frozen_encoder_has_no_trainable_parameter_and_stays_in_eval(encoder):
    encoder.freeze().train()
    assert encoder.frozen and not encoder.training
    assert not any(p.requires_grad for p in encoder.parameters())
    tokens = encoder.forward_features(torch.rand(1, 3, 256, 192))
    assert not tokens.requires_grad


def test_save_load_gives_the_same_tokens_and_builds_as_an_image_encoder(encoder, tmp_path):
    images = torch.rand(2, 3, 256, 192)
    encoder.freeze().save_pretrained(tmp_path / "enc")
    loaded = build_image_encoder(str(tmp_path / "enc"))
    assert isinstance(loaded, KeypointImageEncoder) and loaded.frozen
    assert torch.equal(loaded.forward_features(images), encoder.forward_features(images))


def test_learned_stem_keeps_the_shapes_and_sees_detail_that_averaging_loses():
    torch.manual_seed(0)
    stem = KeypointImageEncoder(keypoint_encoder_config(KEYPOINT_PRESET, stem_channels=6, **SMALL)).eval()
    assert isinstance(stem.pool[0], torch.nn.Conv2d) and stem.pool[0].out_channels == 6
    assert stem.stages[0][0][0].in_channels == 6
    out = stem.keypoints(torch.rand(2, 3, 256, 192))
    assert out["tokens"].shape == (2, 34, 24) and out["log_heatmaps"].shape == (2, 22, 32 * 24)
    # a one-pixel checkerboard averages to flat grey: the averaging encoder cannot tell it from grey, the stem can
    checker = ((torch.arange(256)[:, None] + torch.arange(192)[None, :]) % 2).float().expand(1, 3, 256, 192)
    grey = torch.full((1, 3, 256, 192), 0.5)
    pooled = KeypointImageEncoder(keypoint_encoder_config(KEYPOINT_PRESET, **SMALL)).eval()
    assert torch.allclose(pooled.forward_features(checker), pooled.forward_features(grey), atol=1e-5)
    assert not torch.allclose(stem.forward_features(checker), stem.forward_features(grey), atol=1e-3)
    for preset in ("unet_kp_small_256x192", "unet_kp_convstem_256x192"):
        assert keypoint_encoder_config(preset).preset == preset


def test_bad_configs_and_inputs_are_refused_by_name(encoder):
    with pytest.raises(ValueError, match="stem_channels"):
        KeypointEncoderConfig(stem_channels=8, input_pooling=1)
    with pytest.raises(ValueError, match="heatmap_stride 12"):
        KeypointEncoderConfig(heatmap_stride=12)
    with pytest.raises(ValueError, match="input_pooling"):
        KeypointEncoderConfig(input_pooling=3)
    with pytest.raises(ValueError, match="not a multiple"):
        KeypointEncoderConfig(img_size=(250, 192))
    with pytest.raises(KeyError, match="unknown keypoint encoder preset 'nope'"):
        keypoint_encoder_config("nope")
    with pytest.raises(ValueError, match=r"images: expected \(B, 3, 256, 192\)"):
        encoder.forward_features(torch.rand(1, 3, 128, 96))


def test_a_saved_model_of_another_kind_is_not_an_image_encoder(tmp_path):
    from poseembroider.assisting_models.imageEncoder.keypoint_regressor import KeypointPoseRegressor
    from poseembroider.models.pretrained import CheckpointError

    KeypointPoseRegressor().save_pretrained(tmp_path / "regressor")
    with pytest.raises(CheckpointError, match="not an image encoder"):
        build_image_encoder(str(tmp_path / "regressor"))
