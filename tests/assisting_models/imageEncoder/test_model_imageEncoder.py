"""ImageEncoder: token layout of the SMPLer-X ViT, frozen mode, checkpoints, and the pose regressor's step."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from poseembroider.assisting_models.imageEncoder.model_imageEncoder import (
    IMAGE_ENCODER_PRESETS,
    ImageEncoder,
    ImageEncoderConfig,
    ImagePoseRegressor,
    ImagePoseRegressorConfig,
    ResidualConvBlock,
    build_image_encoder,
    image_encoder_config,
    keypoint_grid_targets,
    keypoint_kl_loss,
    normalize_keypoints,
    token_centres,
)
from poseembroider.geometry import axis_angle_to_matrix, geodesic_distance
from poseembroider.models.pretrained import CheckpointError, load_pretrained

SMALL = ImageEncoderConfig(embed_dim=32, depth=2, num_heads=4, drop_path_rate=0.3, preset="test_small")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _images(n: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, 256, 192, generator=torch.Generator().manual_seed(seed))


def test_smplerx_preset_gives_192_tokens_of_768():
    torch.manual_seed(0)
    encoder = ImageEncoder.from_preset("smplerx_vitb32").eval()
    cfg = encoder.config
    assert (cfg.embed_dim, cfg.depth, cfg.num_heads, cfg.num_task_tokens) == (768, 12, 12, 31)
    assert (cfg.mlp_ratio, cfg.qkv_bias, cfg.drop_path_rate, cfg.norm_eps) == (4.0, True, 0.3, 1e-6)
    conv = encoder.backbone.patch_embed.proj
    assert (conv.kernel_size, conv.stride, conv.padding) == ((16, 16), (16, 16), (2, 2))
    assert encoder.backbone.pos_embed.shape == (1, 193, 768)  # num_patches + 1
    assert encoder.backbone.reg_token.shape == (1, 31, 768)
    assert encoder.backbone.norm.eps == 1e-6 and encoder.backbone.blocks[0].norm1.eps == 1e-6
    with torch.no_grad():
        tokens = encoder.forward_features(_images(1))
    assert tokens.shape == (1, 192, 768) and encoder.num_tokens == 192
    assert 85e6 < sum(p.numel() for p in encoder.parameters()) < 87e6


@pytest.mark.parametrize("preset", sorted(IMAGE_ENCODER_PRESETS))
def test_every_preset_has_a_16x12_grid(preset):
    cfg = image_encoder_config(preset)
    assert cfg.grid_size == (16, 12) and cfg.num_patches == 192


def test_tokens_and_feature_map_of_a_small_encoder():
    encoder = ImageEncoder(SMALL).eval()
    images = _images(3)
    tokens = encoder(images)
    assert tokens.shape == (3, 192, 32)
    fmap = encoder.feature_map(images)
    assert fmap.shape == (3, 32, 16, 12)
    # row-major grid: token r * 12 + c is the feature at (r, c)
    assert torch.allclose(fmap[:, :, 2, 5], tokens[:, 2 * 12 + 5])


def test_forward_matches_the_vitpose_token_layout():
    """Reference written from the SMPLer-X ViT facts with plain torch ops: patch conv (padding 2), +pos[1:] +pos[0],
    task tokens prepended without position embedding, pre-norm blocks, last norm, task tokens dropped."""
    torch.manual_seed(1)
    cfg = dataclasses.replace(SMALL, num_task_tokens=5)
    encoder = ImageEncoder(cfg).eval()
    bb = encoder.backbone
    images = _images(2)
    with torch.no_grad():
        x = F.conv2d(images, bb.patch_embed.proj.weight, bb.patch_embed.proj.bias, stride=16, padding=2)
        x = x.flatten(2).transpose(1, 2)
        x = x + bb.pos_embed[:, 1:] + bb.pos_embed[:, :1]
        x = torch.cat([bb.reg_token.expand(2, -1, -1), x], dim=1)
        heads = cfg.num_heads
        for blk in bb.blocks:
            h = F.layer_norm(x, (cfg.embed_dim,), blk.norm1.weight, blk.norm1.bias, eps=1e-6)
            qkv = F.linear(h, blk.attn.qkv.weight, blk.attn.qkv.bias).reshape(2, x.shape[1], 3, heads, -1)
            q, k, v = qkv.permute(2, 0, 3, 1, 4)
            attn = ((q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)).softmax(-1)
            h = (attn @ v).transpose(1, 2).reshape(2, x.shape[1], -1)
            x = x + F.linear(h, blk.attn.proj.weight, blk.attn.proj.bias)
            h = F.layer_norm(x, (cfg.embed_dim,), blk.norm2.weight, blk.norm2.bias, eps=1e-6)
            x = x + F.linear(F.gelu(F.linear(h, blk.mlp.fc1.weight, blk.mlp.fc1.bias)), blk.mlp.fc2.weight,
                             blk.mlp.fc2.bias)
        x = F.layer_norm(x, (cfg.embed_dim,), bb.norm.weight, bb.norm.bias, eps=1e-6)
        expected = x[:, 5:]
        assert torch.allclose(encoder(images), expected, atol=1e-5)


def test_cpu_preset_standardises_inputs_inside_the_model_and_smplerx_does_not():
    assert image_encoder_config("smplerx_vitb32").pixel_mean is None  # the original feeds [0, 1] crops
    cfg = dataclasses.replace(image_encoder_config("vit_tiny_256x192"), depth=1)
    assert cfg.pixel_mean == (0.485, 0.456, 0.406) and cfg.pixel_std == (0.229, 0.224, 0.225)
    encoder = ImageEncoder(cfg).eval()
    assert not any("pixel" in k for k in encoder.state_dict())  # constants of the config, not weights
    images = _images(1)
    mean, std = torch.tensor(cfg.pixel_mean).view(1, 3, 1, 1), torch.tensor(cfg.pixel_std).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = encoder.backbone.forward_features((images - mean) / std)
        assert torch.allclose(encoder(images), expected, atol=1e-6)
    with pytest.raises(ValueError, match="pixel_mean and pixel_std go together"):
        ImageEncoderConfig(pixel_mean=(0.5, 0.5, 0.5))


def test_frozen_mode_has_no_trainable_parameter_and_is_deterministic():
    torch.manual_seed(0)
    encoder = ImageEncoder(SMALL)
    images = _images(4)
    encoder.train()
    assert not torch.equal(encoder(images), encoder(images))  # drop-path is live while training
    encoder.freeze()
    assert encoder.frozen and not any(p.requires_grad for p in encoder.parameters())
    encoder.train()  # a parent's .train() must not re-enable drop-path
    assert not encoder.training and not any(m.training for m in encoder.modules())
    first, second = encoder(images), encoder(images)
    assert torch.equal(first, second) and not first.requires_grad


def test_frozen_encoder_passes_gradients_to_input_images_when_asked():
    encoder = ImageEncoder(dataclasses.replace(SMALL, frozen=True))
    images = _images(1).requires_grad_(True)
    encoder(images).sum().backward()
    assert images.grad is not None and all(p.grad is None for p in encoder.parameters())


def test_bad_image_shape_is_refused_with_the_expected_shape():
    encoder = ImageEncoder(SMALL)
    with pytest.raises(ValueError, match=r"expected \(B, 3, 256, 192\).*\(2, 3, 224, 224\)"):
        encoder(torch.rand(2, 3, 224, 224))


def test_checkpoint_round_trips_strictly(tmp_path):
    torch.manual_seed(2)
    encoder = ImageEncoder(dataclasses.replace(SMALL, num_task_tokens=3)).freeze()
    encoder.save_pretrained(tmp_path / "enc")
    loaded = ImageEncoder.from_pretrained(tmp_path / "enc")
    assert loaded.config == encoder.config and loaded.frozen
    assert all(torch.equal(a, b) for a, b in zip(encoder.state_dict().values(), loaded.state_dict().values(),
                                                   strict=True))
    assert torch.equal(encoder(_images(1)), loaded(_images(1)))
    assert isinstance(load_pretrained(tmp_path / "enc"), ImageEncoder)
    assert isinstance(build_image_encoder(str(tmp_path / "enc")), ImageEncoder)
    # strict: a checkpoint of another architecture is refused, naming the key and both shapes
    other = ImageEncoder(dataclasses.replace(SMALL, embed_dim=48))
    with pytest.raises(CheckpointError, match=r"pos_embed: checkpoint \(1, 193, 32\) vs model \(1, 193, 48\)"):
        from poseembroider.models.pretrained import load_state_dict_checked

        load_state_dict_checked(other, encoder.state_dict(), "enc")


def test_regressor_round_trips_and_gives_rotations(tmp_path):
    torch.manual_seed(3)
    model = ImagePoseRegressor(ImagePoseRegressorConfig(encoder=SMALL, head_hidden=16)).eval()
    rotations = model(_images(2))
    assert rotations.shape == (2, 22, 3, 3)
    eye = torch.eye(3).expand(2, 22, 3, 3)
    assert torch.allclose(rotations @ rotations.transpose(-1, -2), eye, atol=1e-5)
    model.save_pretrained(tmp_path / "reg")
    loaded = ImagePoseRegressor.from_pretrained(tmp_path / "reg")
    assert loaded.config == model.config and torch.allclose(loaded(_images(2)), rotations)
    encoder = loaded.frozen_encoder()
    assert encoder.frozen and torch.equal(encoder(_images(1)), loaded.encoder(_images(1)))


def test_training_steps_on_a_fixed_batch_lower_the_geodesic_loss():
    torch.manual_seed(4)
    model = ImagePoseRegressor(ImagePoseRegressorConfig(encoder=dataclasses.replace(SMALL, drop_path_rate=0.0),
                                                        head_hidden=32, head_dropout=0.0))
    poses = 0.4 * torch.randn(4, 22, 3, generator=torch.Generator().manual_seed(5))
    images = torch.zeros(4, 3, 256, 192)
    for i in range(4):  # tell-apart images: a bright band at a different height in each
        images[i, i % 3, 64 * i : 64 * i + 64] = 1.0
    batch = {"images": images, "poses": poses}
    model.set_mean_pose(poses)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        optimizer.zero_grad()
        loss = model.training_step(batch)["loss"]
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]
    expected = geodesic_distance(model(images), axis_angle_to_matrix(poses)).sum(-1).mean()
    assert torch.isclose(model.training_step(batch)["loss"], expected)


def test_validation_metrics_are_zero_for_a_perfect_prediction(body_model):
    model = ImagePoseRegressor(ImagePoseRegressorConfig(encoder=SMALL, head_hidden=16))
    model.set_body_model(body_model)
    poses = 0.3 * torch.randn(3, 22, 3, generator=torch.Generator().manual_seed(6))
    target = axis_angle_to_matrix(poses)
    errors = model.joint_errors(target, target)
    assert errors["mpjpe_mm"].abs().max() < 1e-3 and errors["pa_mpjpe_mm"].abs().max() < 1e-2
    other = axis_angle_to_matrix(poses.flip(0))
    errors = model.joint_errors(other, target)
    assert (errors["mpjpe_mm"] >= errors["pa_mpjpe_mm"] - 1e-3).all() and errors["mpjpe_mm"][0] > 1.0
    metrics = model.validation_step({"images": _images(3), "poses": poses})
    assert set(metrics) == {"loss", "geodesic_deg", "mpjpe_mm", "pa_mpjpe_mm"}


def test_param_groups_keep_weight_decay_off_embeddings_norms_and_biases():
    model = ImagePoseRegressor(ImagePoseRegressorConfig(encoder=dataclasses.replace(SMALL, num_task_tokens=2)))
    decay, no_decay = model.param_groups(1e-3, 0.05)
    names = {id(p): n for n, p in model.named_parameters()}
    no_decay_names = {names[id(p)] for p in no_decay["params"]}
    assert {"encoder.backbone.pos_embed", "encoder.backbone.reg_token", "mean_rot6d"} <= no_decay_names
    assert all(p.ndim >= 2 for p in decay["params"]) and decay["weight_decay"] == 0.05
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def test_conv_stem_gives_the_same_grid_and_rejects_other_patch_settings():
    config = dataclasses.replace(SMALL, stem="conv", patch_padding=0)
    encoder = ImageEncoder(config).eval()
    assert encoder(_images(2)).shape == (2, 192, 32)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in encoder.modules())
    with pytest.raises(ValueError, match="patch_padding 0"):
        dataclasses.replace(SMALL, stem="conv")  # padding 2 of the ViTPose patch embedding
    with pytest.raises(ValueError, match="stem 'pixels'"):
        dataclasses.replace(SMALL, stem="pixels")


def test_joint_term_is_zero_for_a_perfect_prediction_and_adds_to_the_loss(body_model):
    encoder = dataclasses.replace(SMALL, drop_path_rate=0.0)
    model = ImagePoseRegressor(ImagePoseRegressorConfig(encoder=encoder, head_hidden=16, wloss_joints=10.0)).eval()
    model.set_body_model(body_model)
    poses = 0.4 * torch.randn(3, 22, 3, generator=torch.Generator().manual_seed(8))
    target = axis_angle_to_matrix(poses)
    assert model.root_relative_joint_error(target, target).abs().max() < 1e-5
    turned = target.clone()
    turned[:, 0] = axis_angle_to_matrix(torch.tensor([[0.0, 0.0, 1.0]])).expand(3, 3, 3)
    assert model.root_relative_joint_error(turned, target).abs().max() < 1e-5  # the root rotation is ignored
    outputs = model.training_step({"images": _images(3), "poses": poses})
    predicted = model(_images(3))
    geodesic = geodesic_distance(predicted, target).sum(-1).mean()
    joints = model.root_relative_joint_error(predicted, target).mean()
    assert torch.isclose(outputs["loss"], geodesic + 10.0 * joints, rtol=1e-4)
    assert outputs["joints_mm"] > 0


# ---- 2D keypoint heatmaps and the lifter ('keypoints' pooling) ----------------------------------------------


def _keypoint_config(**overrides) -> ImagePoseRegressorConfig:
    encoder = dataclasses.replace(SMALL, drop_path_rate=0.0, stem="conv", patch_padding=0, stem_input_pooling=4)
    fields = dict(encoder=encoder, head_hidden=16, head_dropout=0.0, pooling="keypoints", keypoint_dim=8)
    return ImagePoseRegressorConfig(**{**fields, **overrides})


def test_keypoint_targets_peak_on_the_joints_token_and_skip_joints_outside():
    # token (r=3, c=5) covers pixels x 80..95, y 48..63 of the 16x12 grid on 256x192: centre (87.5, 55.5)
    joints = torch.tensor([[[87.5, 55.5], [0.0, 0.0], [191.4, 255.4], [200.0, 10.0], [-3.0, 10.0]]])
    targets, valid = keypoint_grid_targets(joints, (16, 12), (256, 192), sigma=0.5)
    assert targets.shape == (1, 5, 192) and valid.tolist() == [[True, True, True, False, False]]
    assert targets[0, 0].argmax() == 3 * 12 + 5 and targets[0, 1].argmax() == 0 and targets[0, 2].argmax() == 191
    torch.testing.assert_close(targets[0, :3].sum(-1), torch.ones(3))
    assert targets[0, 3:].abs().sum() == 0
    # symmetric around the token centre: the 4 neighbours get the same weight
    grid = targets[0, 0].view(16, 12)
    assert torch.allclose(grid[2, 5], grid[4, 5]) and torch.allclose(grid[3, 4], grid[3, 6])
    assert torch.allclose(grid[2, 5], grid[3, 4])
    # the soft-argmax basis puts that token at the same pixel
    torch.testing.assert_close(token_centres((16, 12), (256, 192))[3 * 12 + 5], torch.tensor([87.5, 55.5]))
    torch.testing.assert_close(normalize_keypoints(torch.tensor([[-0.5, -0.5], [191.5, 255.5]]), (256, 192)),
                               torch.tensor([[-1.0, -1.0], [1.0, 1.0]]))


def test_keypoint_kl_is_zero_for_the_target_heatmaps_and_positive_otherwise():
    joints = torch.tensor([[[87.5, 55.5], [20.0, 200.0], [500.0, 0.0]]])
    targets, valid = keypoint_grid_targets(joints, (16, 12), (256, 192))
    perfect = targets.clamp_min(1e-30).log()
    assert keypoint_kl_loss(perfect, targets, valid).abs() < 1e-5
    uniform = torch.full_like(targets, -torch.log(torch.tensor(192.0)))
    assert keypoint_kl_loss(uniform, targets, valid) > 1.0
    none_valid = torch.zeros_like(valid)
    assert keypoint_kl_loss(uniform, targets, none_valid) == 0


def test_keypoint_l1_is_the_mean_crop_unit_distance_over_joints_inside_the_crop():
    model = ImagePoseRegressor(_keypoint_config(wloss_keypoints_l1=1.0))
    true = torch.zeros(1, 22, 2)
    true[0, :, 0], true[0, :, 1] = 95.5, 127.5  # the crop centre: (0, 0) in [-1, 1] units
    true[0, 21] = torch.tensor([400.0, 10.0])  # outside the 192-wide crop: not counted
    predicted = true.clone()
    assert model.keypoint_l1_loss(predicted, true) == 0
    predicted[0, :, 0] += 19.2  # 19.2 px of 192 = 0.2 in [-1, 1] units
    predicted[0, :, 1] -= 25.6  # 25.6 px of 256 = 0.2
    predicted[0, 21] += 1000.0  # the outside joint's prediction does not count either
    torch.testing.assert_close(model.keypoint_l1_loss(predicted, true), torch.tensor(0.4))
    outputs = model.training_step(
        {"images": _images(1), "poses": torch.zeros(1, 22, 3), "joints_2d_crop": true}
    )
    assert outputs["keypoint_l1"] > 0 and "keypoint_kl" not in outputs
    with pytest.raises(ValueError, match="wloss_keypoints_l1"):
        _keypoint_config(wloss_keypoints_l1=1.0, pooling="mean")


def test_keypoint_pooling_outputs_heatmaps_keypoints_and_round_trips(tmp_path):
    torch.manual_seed(9)
    model = ImagePoseRegressor(_keypoint_config(lifter_hidden=16)).eval()
    outputs = model.predict(_images(2))
    assert outputs["rotations"].shape == (2, 22, 3, 3)
    assert outputs["log_heatmaps"].shape == (2, 22, 192) and outputs["keypoints_2d"].shape == (2, 22, 2)
    torch.testing.assert_close(outputs["log_heatmaps"].exp().sum(-1), torch.ones(2, 22))
    x, y = outputs["keypoints_2d"].unbind(-1)
    assert (x > -0.5).all() and (x < 191.5).all() and (y > -0.5).all() and (y < 255.5).all()
    model.save_pretrained(tmp_path / "kp")
    loaded = ImagePoseRegressor.from_pretrained(tmp_path / "kp")
    assert loaded.config == model.config
    torch.testing.assert_close(loaded(_images(2)), outputs["rotations"])


def test_keypoint_loss_trains_the_heatmaps_towards_the_2d_joints(body_model):
    """A tiny batch whose 2D joints sit on a bright square: the keypoint term alone moves the soft-argmax."""
    torch.manual_seed(10)
    model = ImagePoseRegressor(_keypoint_config(wloss_keypoints=1.0))
    images = torch.zeros(4, 3, 256, 192)
    joints = torch.zeros(4, 22, 2)
    for i, (x, y) in enumerate([(40, 40), (150, 60), (60, 200), (140, 220)]):
        images[i, :, y - 16 : y + 16, x - 16 : x + 16] = 1.0
        joints[i] = torch.tensor([x - 0.5, y - 0.5])
    batch = {"images": images, "poses": torch.zeros(4, 22, 3), "joints_2d_crop": joints}

    def keypoint_error() -> float:
        with torch.no_grad():
            return float((model.predict(images)["keypoints_2d"] - joints).norm(dim=-1).mean())

    before = keypoint_error()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    kls = []
    for _ in range(40):
        optimizer.zero_grad()
        outputs = model.training_step(batch)
        outputs["loss"].backward()
        optimizer.step()
        kls.append(float(outputs["keypoint_kl"]))
    assert kls[-1] < 0.5 * kls[0]
    assert keypoint_error() < 0.5 * before
    model.set_body_model(body_model)
    metrics = model.eval().validation_step(batch)
    assert {"keypoint_kl", "keypoint_err_px"} <= set(metrics)
    assert torch.isclose(metrics["keypoint_err_px"], torch.tensor(keypoint_error()), rtol=1e-4)
    with pytest.raises(KeyError, match="joints_2d_crop"):
        model.training_step({"images": images, "poses": batch["poses"]})


def test_lifting_step_fits_poses_from_2d_joints_and_adds_to_the_training_loss():
    torch.manual_seed(11)
    model = ImagePoseRegressor(_keypoint_config(lifter_hidden=64, wloss_lifting=1.0, lifter_noise_px=0.0))
    generator = torch.Generator().manual_seed(12)
    poses = 0.4 * torch.randn(6, 22, 3, generator=generator)
    joints = torch.rand(6, 22, 2, generator=generator) * torch.tensor([191.0, 255.0])
    batch = {"poses": poses, "joints_2d_crop": joints}
    model.set_mean_pose(poses)
    optimizer = torch.optim.Adam(model.lifter.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        optimizer.zero_grad()
        loss = model.lifting_step(batch)["loss"]
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.3 * losses[0]
    # the lifter reads the image model's soft-argmax joints: fed the true ones it predicts the fitted poses
    full = {**batch, "images": _images(6)}
    outputs = model.eval().training_step(full)
    lifted = model.lifting_step(batch)["loss"]
    assert torch.isclose(outputs["lifting_loss"], lifted) and outputs["loss"] > lifted


def test_keypoint_settings_are_checked():
    with pytest.raises(ValueError, match="pooling 'max'"):
        ImagePoseRegressorConfig(pooling="max")
    with pytest.raises(ValueError, match="wloss_keypoints / wloss_keypoints_l1 need the keypoint heatmaps"):
        ImagePoseRegressorConfig(wloss_keypoints=1.0)
    with pytest.raises(ValueError, match="lifter"):
        ImagePoseRegressorConfig(lifter_hidden=16)
    with pytest.raises(ValueError, match="lifter_hidden > 0"):
        ImagePoseRegressorConfig(pooling="keypoints", wloss_lifting=1.0)
    with pytest.raises(ValueError, match="lifting_step needs a lifter"):
        ImagePoseRegressor(_keypoint_config()).lifting_step({"poses": torch.zeros(1, 22, 3),
                                                             "joints_2d_crop": torch.zeros(1, 22, 2)})


def test_conv_stem_stage_blocks_add_residual_convs_and_keep_the_grid():
    base = dataclasses.replace(SMALL, stem="conv", patch_padding=0, stem_input_pooling=2)
    plain = ImageEncoder(base)
    deeper = ImageEncoder(dataclasses.replace(base, stem_stage_blocks=1)).eval()
    blocks = [m for m in deeper.modules() if isinstance(m, ResidualConvBlock)]
    assert len(blocks) == 3 and not any(isinstance(m, ResidualConvBlock) for m in plain.modules())
    assert deeper(_images(2)).shape == (2, 192, 32)
    cpu = image_encoder_config("convvit_tiny_256x192")
    assert (cpu.stem_input_pooling, cpu.stem_stage_blocks, cpu.embed_dim) == (2, 1, 128)
    with pytest.raises(ValueError, match="stage_blocks"):
        ImageEncoder(dataclasses.replace(base, stem_stage_blocks=-1))


def test_conv_stem_standardises_after_its_input_pooling_with_the_same_tokens():
    cfg = dataclasses.replace(
        image_encoder_config("convvit_tiny_256x192"), embed_dim=32, depth=1, num_heads=2, stem_input_pooling=4
    )
    torch.manual_seed(0)
    encoder = ImageEncoder(cfg).eval()
    stem = encoder.backbone.patch_embed
    assert stem.standardise and not any("pixel" in k for k in encoder.state_dict())
    images = _images(2)
    mean, std = torch.tensor(cfg.pixel_mean).view(1, 3, 1, 1), torch.tensor(cfg.pixel_std).view(1, 3, 1, 1)
    with torch.no_grad():  # the crop standardised first, then every stem layer (pooling included) as built
        tokens = stem.proj((images - mean) / std).flatten(2).transpose(1, 2)
        bb = encoder.backbone
        expected = bb.norm(bb.blocks(bb._pos_embed(tokens)))
        assert torch.allclose(encoder(images), expected, atol=1e-5)
    with pytest.raises(ValueError, match="this stem takes"):
        stem(images[:, :, :128])


def test_bf16_training_forward_runs_under_autocast_and_keeps_float32_weights_and_validation():
    cfg = ImagePoseRegressorConfig(
        encoder=dataclasses.replace(image_encoder_config("convvit_tiny_256x192"), embed_dim=32, depth=1, num_heads=2),
        head_hidden=16,
        pooling="keypoints",
        wloss_keypoints=1.0,
        train_precision="bf16",
    )
    torch.manual_seed(1)
    model = ImagePoseRegressor(cfg)
    images = _images(2)
    batch = {"images": images, "poses": 0.3 * torch.randn(2, 22, 3), "joints_2d_crop": 100 * torch.rand(2, 22, 2)}
    fp32 = ImagePoseRegressor(dataclasses.replace(cfg, train_precision="fp32"))
    fp32.load_state_dict(model.state_dict())
    model.train(), fp32.train()
    tokens, reference = model.encode(images), fp32.encode(images)
    assert tokens.dtype == torch.float32
    assert not torch.equal(tokens, reference)  # bfloat16 on the way
    assert torch.allclose(tokens, reference, atol=0.1 * reference.abs().max().item())
    attentions = [block.attn for block in model.encoder.backbone.blocks]
    assert all(attn.fused_attn for attn in attentions) or not any(attn.fused_attn for attn in attentions)
    before = [attn.fused_attn for attn in attentions]
    model.training_step(batch)["loss"].backward()
    assert [attn.fused_attn for attn in attentions] == before  # restored after the step
    assert all(p.dtype == torch.float32 and p.grad is not None for p in model.encoder.parameters())
    fp32.load_state_dict(model.state_dict())  # same weights and BatchNorm statistics
    model.eval(), fp32.eval()
    assert torch.equal(model.encode(images), fp32.encode(images))  # validation in float32
    with pytest.raises(ValueError, match="train_precision"):
        ImagePoseRegressorConfig(train_precision="fp16")
