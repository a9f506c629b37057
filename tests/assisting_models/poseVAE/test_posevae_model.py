"""PoseVAE architecture: the original's layer indices, shapes, valid decoded rotations, save/load."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from torch import nn

from poseembroider.assisting_models.poseVAE.model_poseVAE import (
    ContinuousRotReprDecoder,
    NormalDistDecoder,
    PoseVAE,
    PoseVAEConfig,
)
from poseembroider.geometry import axis_angle_to_matrix
from poseembroider.models.pose_encoder import BatchFlatten
from poseembroider.models.pretrained import CheckpointError, load_pretrained

ORIGINAL_KEYS = {
    "decsigma_v2v",
    "decsigma_jts",
    "decsigma_rot",
    *(
        f"pose_encoder.encoder.{i}.{p}"
        for i in (1, 4)
        for p in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    ),
    *(f"pose_encoder.encoder.{i}.{p}" for i in (2, 6, 7) for p in ("weight", "bias")),
    *(f"pose_encoder.encoder.8.{h}.{p}" for h in ("mu", "logvar") for p in ("weight", "bias")),
    *(f"pose_decoder.decoder.{i}.{p}" for i in (0, 3, 5) for p in ("weight", "bias")),
}


@pytest.fixture
def model() -> PoseVAE:
    torch.manual_seed(0)
    return PoseVAE().eval()


def test_defaults_are_the_published_recipe():
    cfg = PoseVAEConfig()
    assert (cfg.latentD, cfg.num_body_joints, cfg.num_neurons, cfg.dropout) == (32, 22, 512, 0.1)
    assert (cfg.wloss_v2v, cfg.wloss_jts, cfg.wloss_rot, cfg.wloss_kld, cfg.wloss_kldnpmul) == (1, 1, 1, 1, 1)
    assert cfg.kld_epsilon == 10.0
    with pytest.raises(ValueError, match="kld_epsilon"):
        PoseVAEConfig(kld_epsilon=-1)


def test_encoder_layers_have_the_original_indices(model):
    enc = model.pose_encoder.encoder
    expected = [
        BatchFlatten,
        nn.BatchNorm1d,
        nn.Linear,
        nn.LeakyReLU,
        nn.BatchNorm1d,
        nn.Dropout,
        nn.Linear,
        nn.Linear,
        NormalDistDecoder,
    ]
    assert [type(layer) for layer in enc] == expected
    assert enc[1].num_features == 66 and enc[4].num_features == 512
    assert (enc[2].in_features, enc[2].out_features) == (66, 512)
    assert (enc[6].in_features, enc[6].out_features) == (enc[7].in_features, enc[7].out_features) == (512, 512)
    assert enc[5].p == 0.1 and enc[3].negative_slope == 0.01
    assert (enc[8].mu.out_features, enc[8].logvar.out_features) == (32, 32)


def test_decoder_layers_have_the_original_indices(model):
    dec = model.pose_decoder.decoder
    expected = [nn.Linear, nn.LeakyReLU, nn.Dropout, nn.Linear, nn.LeakyReLU, nn.Linear, ContinuousRotReprDecoder]
    assert [type(layer) for layer in dec] == expected
    assert (dec[0].in_features, dec[0].out_features) == (32, 512)
    assert (dec[5].in_features, dec[5].out_features) == (512, 132)
    assert dec[2].p == 0.1


def test_state_dict_keys_are_the_original_ones(model):
    assert set(model.state_dict()) == ORIGINAL_KEYS
    assert all(model.state_dict()[f"decsigma_{k}"].shape == (1,) for k in ("v2v", "jts", "rot"))
    assert all(float(getattr(model, f"decsigma_{k}").detach()) == 0.0 for k in ("v2v", "jts", "rot"))


def test_features_are_the_output_of_encoder_layer_7(model, sampled_poses):
    poses = sampled_poses[:8]
    features = model.encode_features(poses)
    assert features.shape == (8, 512) and model.feature_dim == 512
    x = poses
    for layer in model.pose_encoder.encoder[:8]:
        x = layer(x)
    torch.testing.assert_close(features, x)
    # flat input gives the same feature
    torch.testing.assert_close(model.encode_features(poses.reshape(8, 66)), features)


def test_encode_gives_a_diagonal_gaussian_with_softplus_scale(model, sampled_poses):
    q_z = model.encode(sampled_poses[:5])
    assert isinstance(q_z, torch.distributions.Normal)
    assert q_z.loc.shape == q_z.scale.shape == (5, 32)
    h = model.encode_features(sampled_poses[:5])
    torch.testing.assert_close(q_z.scale, torch.nn.functional.softplus(model.pose_encoder.encoder[8].logvar(h)))
    assert (q_z.scale > 0).all()


def test_decode_gives_rotation_matrices_and_matching_axis_angles(model):
    out = model.decode(torch.randn(6, 32) * 3)
    assert out["pose_body"].shape == (6, 22, 3) and out["pose_body_matrot"].shape == (6, 22, 9)
    rot = out["pose_body_matrot"].reshape(6, 22, 3, 3)
    eye = torch.eye(3).expand_as(rot)
    torch.testing.assert_close(rot.transpose(-1, -2) @ rot, eye, atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.linalg.det(rot), torch.ones(6, 22), atol=1e-5, rtol=0)
    torch.testing.assert_close(axis_angle_to_matrix(out["pose_body"]), rot, atol=1e-5, rtol=0)


def test_forward_and_sampling(model, sampled_poses):
    out = model(sampled_poses[:4])
    assert set(out) == {"q_z", "z", "pose_body", "pose_body_matrot"} and out["z"].shape == (4, 32)
    a = model.sample(3, torch.Generator().manual_seed(5))
    b = model.sample(3, torch.Generator().manual_seed(5))
    assert a["pose_body"].shape == (3, 22, 3)
    torch.testing.assert_close(a["pose_body_matrot"], b["pose_body_matrot"])


def test_bad_pose_shapes_are_refused(model):
    with pytest.raises(ValueError, match=r"\(B, 22, 3\).*\(4, 21, 3\)"):
        model.encode(torch.zeros(4, 21, 3))
    with pytest.raises(KeyError, match="poses"):
        model.training_step({"images": torch.zeros(2, 3)})


def test_param_groups_are_the_original_three(model):
    groups = model.param_groups(lr=1e-5, wd=1e-4)
    assert len(groups) == 3
    assert [g.get("lr") for g in groups] == [1e-5, 1e-5, None]
    assert groups[2]["params"] == [model.decsigma_v2v, model.decsigma_jts, model.decsigma_rot]
    n_params = sum(len(g["params"]) for g in groups)
    assert n_params == len(list(model.parameters()))
    optimizer = torch.optim.Adam(groups, lr=1e-5, weight_decay=1e-4)
    assert [g["lr"] for g in optimizer.param_groups] == [1e-5] * 3  # decsigmas: the base lr


def test_decsigma_lr_gives_the_scalars_their_own_learning_rate():
    model = PoseVAE(PoseVAEConfig(decsigma_lr=0.01))
    groups = model.param_groups(lr=1e-3, wd=0.0)
    optimizer = torch.optim.Adam(groups, lr=1e-3)
    assert [g["lr"] for g in optimizer.param_groups] == [1e-3, 1e-3, 0.01]
    with pytest.raises(ValueError, match="--decsigma_lr"):
        PoseVAEConfig(decsigma_lr=-1.0)


def test_save_load_round_trip_is_strict_and_exact(tmp_path, sampled_poses):
    torch.manual_seed(1)
    config = replace(PoseVAEConfig(), latentD=16, wloss_rot=2.0, kld_epsilon=5.0)
    model = PoseVAE(config)
    model.train()
    model.pose_encoder(sampled_poses[:32])  # batch-norm running statistics away from their initial values
    model.eval()
    with torch.no_grad():
        model.decsigma_rot.fill_(-0.5)
    model.save_pretrained(tmp_path / "vae")
    saved = json.loads((tmp_path / "vae" / "config.json").read_text())
    assert saved["model_class"] == "PoseVAE" and saved["config"]["latentD"] == 16
    loaded = PoseVAE.from_pretrained(tmp_path / "vae")
    assert loaded.config == config and not loaded.training
    for key, value in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value, rtol=0, atol=0)
    poses = sampled_poses[:10]
    torch.testing.assert_close(loaded.encode_features(poses), model.encode_features(poses), rtol=0, atol=0)
    torch.testing.assert_close(loaded.encode(poses).scale, model.encode(poses).scale, rtol=0, atol=0)
    z = torch.randn(4, 16)
    torch.testing.assert_close(loaded.decode(z)["pose_body"], model.decode(z)["pose_body"], rtol=0, atol=0)
    assert isinstance(load_pretrained(tmp_path / "vae"), PoseVAE)


def test_loading_a_checkpoint_with_other_shapes_fails_clearly(tmp_path):
    PoseVAE(PoseVAEConfig(latentD=16)).save_pretrained(tmp_path / "vae")
    config_file = tmp_path / "vae" / "config.json"
    data = json.loads(config_file.read_text())
    data["config"]["latentD"] = 32
    config_file.write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match=r"pose_encoder\.encoder\.8\.mu\.weight"):
        PoseVAE.from_pretrained(tmp_path / "vae")


def test_body_model_stays_out_of_the_state_dict(model, body_model):
    model.set_body_model(body_model)
    assert model.body_model() is body_model
    assert set(model.state_dict()) == ORIGINAL_KEYS
    assert all(not name.startswith("_body_model") for name, _ in model.named_modules())
