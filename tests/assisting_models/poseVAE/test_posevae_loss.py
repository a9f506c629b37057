"""PoseVAE likelihoods and objective against hand-computed values on tiny cases."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from poseembroider.assisting_models.poseVAE.loss import gaussian_nll, kl_to_standard_normal, laplacian_nll
from poseembroider.assisting_models.poseVAE.model_poseVAE import PoseVAE, PoseVAEConfig
from poseembroider.geometry import axis_angle_to_matrix


def test_laplacian_nll_is_the_laplace_nll_of_scale_exp_log_b():
    x_tilde, x = torch.tensor([1.5, -1.0]), torch.tensor([0.5, 1.0])
    log_b = torch.tensor([math.log(2.0)])
    expected = torch.tensor([math.log(2) + math.log(2) + 1.0 / 2, math.log(2) + math.log(2) + 2.0 / 2])
    torch.testing.assert_close(laplacian_nll(x_tilde, x, log_b), expected)
    torch.testing.assert_close(laplacian_nll(x_tilde, x, log_b), -torch.distributions.Laplace(x, 2.0).log_prob(x_tilde))


def test_gaussian_nll_takes_a_log_variance():
    x_tilde, x = torch.tensor([2.0]), torch.tensor([0.0])
    log_var = torch.tensor([math.log(4.0)])  # variance 4, standard deviation 2
    expected = 0.5 * (math.log(2 * math.pi) + math.log(4.0)) + 0.5 * 4.0 / 4.0
    assert gaussian_nll(x_tilde, x, log_var).item() == pytest.approx(expected, rel=1e-6)
    ref = -torch.distributions.Normal(x, 2.0).log_prob(x_tilde)  # Normal takes the standard deviation
    torch.testing.assert_close(gaussian_nll(x_tilde, x, log_var), ref)
    # at log_var = 0 both readings coincide: 0.5 log 2π + 0.5 d²
    zero = torch.zeros(1)
    assert gaussian_nll(x_tilde, x, zero).item() == pytest.approx(0.5 * math.log(2 * math.pi) + 2.0, rel=1e-6)


def test_kl_to_standard_normal_matches_torch():
    q = torch.distributions.Normal(torch.tensor([[0.3, -1.0], [0.0, 2.0]]), torch.tensor([[0.5, 1.0], [2.0, 0.1]]))
    prior = torch.distributions.Normal(torch.zeros(2, 2), torch.ones(2, 2))
    torch.testing.assert_close(kl_to_standard_normal(q), torch.distributions.kl_divergence(q, prior).sum(-1))
    # one dimension by hand: mu 0.3, sigma 0.5
    assert kl_to_standard_normal(
        torch.distributions.Normal(torch.tensor([[0.3]]), torch.tensor([[0.5]]))
    ).item() == pytest.approx(0.5 * (0.25 + 0.09 - 1) - math.log(0.5), rel=1e-6)


def _tiny(config: PoseVAEConfig, seed: int = 0) -> PoseVAE:
    torch.manual_seed(seed)
    model = PoseVAE(config).eval()  # eval: no dropout, so a reseeded call draws the same z
    with torch.no_grad():
        model.decsigma_v2v.fill_(0.3)
        model.decsigma_jts.fill_(-0.2)
        model.decsigma_rot.fill_(-1.0)
    return model


def _sample(model: PoseVAE, poses: torch.Tensor, seed: int):
    torch.manual_seed(seed)
    q_z = model.encode(poses)
    z = q_z.rsample()
    return q_z, model.decode(z)


@pytest.mark.parametrize("kld_epsilon", [0.0, 1000.0])
def test_body_free_training_loss_equals_the_formula(sampled_poses, kld_epsilon):
    config = PoseVAEConfig(
        wloss_v2v=0.0, wloss_jts=0.0, wloss_rot=2.0, wloss_kld=0.5, wloss_kldnpmul=1.0, kld_epsilon=kld_epsilon
    )
    model = _tiny(config).set_body_model(_Forbidden())
    poses = sampled_poses[:3]
    torch.manual_seed(7)
    out = model.training_step({"poses": poses})
    assert "v2v" not in out and "jts" not in out  # the body model is skipped
    q_z, rec = _sample(model, poses, 7)
    s = -1.0
    d2 = (rec["pose_body_matrot"].reshape(3, 22, 3, 3) - axis_angle_to_matrix(poses)) ** 2
    rot = (0.5 * (math.log(2 * math.pi) + s) + 0.5 * d2 / math.exp(s)).sum((1, 2, 3))
    kl = (0.5 * (q_z.scale**2 + q_z.loc**2 - 1) - q_z.scale.log()).sum(-1)
    kl_used = kl.clamp(min=kld_epsilon) if kld_epsilon else kl
    expected = (2.0 * (rot + 0.5 * kl_used) / (22 * 9)).mean()
    torch.testing.assert_close(out["loss"], expected)
    torch.testing.assert_close(out["rot"], rot.mean())
    torch.testing.assert_close(out["kld"], kl.mean())
    torch.testing.assert_close(out["kld_training"], kl_used.mean())
    if kld_epsilon:
        assert out["kld_training"].item() == kld_epsilon  # the floor is active: the KL gets no gradient
        out["loss"].backward()
        assert model.pose_encoder.encoder[8].logvar.weight.grad is not None


def test_kld_floor_blocks_the_kl_gradient_only_below_epsilon(sampled_poses):
    poses = sampled_poses[:4]

    def mu_grad(**overrides):
        model = _tiny(PoseVAEConfig(wloss_v2v=0, wloss_jts=0, **overrides))
        torch.manual_seed(3)
        model.training_step({"poses": poses})["loss"].backward()
        return model.pose_encoder.encoder[8].mu.weight.grad

    floored, without_kl, with_kl = mu_grad(kld_epsilon=1e6), mu_grad(wloss_kldnpmul=0.0), mu_grad(kld_epsilon=0.0)
    torch.testing.assert_close(floored, without_kl)  # under the floor the KL contributes no gradient
    assert (with_kl - without_kl).abs().max() > 1e-6


def test_validation_loss_through_the_body_model_equals_the_formula(sampled_poses, body_model):
    config = replace(PoseVAEConfig(), wloss_v2v=1.5, wloss_jts=0.5, wloss_rot=1.0, wloss_kld=3.0)
    model = _tiny(config).set_body_model(body_model)
    poses = sampled_poses[:2]
    torch.manual_seed(11)
    with torch.no_grad():
        out = model.validation_step({"poses": poses})
        q_z, rec = _sample(model, poses, 11)
        orig, posed = body_model(poses), body_model(rec["pose_body"])
    lap = lambda a, b, s: (math.log(2) + s + (a - b).abs() / math.exp(s)).sum((1, 2))  # noqa: E731
    v2v = lap(posed.vertices, orig.vertices, 0.3)
    jts = lap(posed.joints, orig.joints, -0.2)
    d2 = (rec["pose_body_matrot"].reshape(2, 22, 3, 3) - axis_angle_to_matrix(poses)) ** 2
    rot = (0.5 * (math.log(2 * math.pi) - 1.0) + 0.5 * d2 / math.exp(-1.0)).sum((1, 2, 3))
    kl = kl_to_standard_normal(q_z)
    n_v, n_j, n_r = orig.vertices.shape[1] * 3, 127 * 3, 22 * 9
    assert orig.joints.shape[1] == 127
    # validation: w_kld = 1 and no floor, as the original's validation loss
    expected = (1.5 * (v2v + kl) / n_v + 0.5 * (jts + kl) / n_j + 1.0 * (rot + kl) / n_r).mean()
    torch.testing.assert_close(out["loss"], expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out["v2v"], v2v.mean(), rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(out["elbo_v2v"], ((-v2v - kl) / n_v).mean(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out["elbo_rot"], ((-rot - kl) / n_r).mean(), rtol=1e-5, atol=1e-6)
    for key in ("mpjpe_mm", "pampjpe_mm", "pve_mm", "rot_deg"):
        assert out[key].item() > 0
    assert out["pampjpe_mm"] <= out["mpjpe_mm"] + 1e-3


def test_full_objective_sends_gradients_to_every_parameter(sampled_poses, body_model):
    model = _tiny(PoseVAEConfig()).set_body_model(body_model).train()
    out = model.training_step({"poses": sampled_poses[:8]})
    assert {"loss", "v2v", "jts", "rot", "kld", "kld_training", "decsigma_v2v"} <= set(out)
    out["loss"].backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


class _Forbidden:
    """A body model that must not be used."""

    def __call__(self, *args, **kwargs):
        raise AssertionError("the body model was called although wloss_v2v = wloss_jts = 0")

    def to(self, *args, **kwargs):
        raise AssertionError("the body model was moved although wloss_v2v = wloss_jts = 0")


class _SkeletonOnly:
    """A body model whose skeleton may be read (`smplx`, `num_betas`) but whose mesh must not be posed."""

    def __init__(self, body_model):
        self.smplx, self.num_betas = body_model.smplx, body_model.num_betas

    def __call__(self, *args, **kwargs):
        raise AssertionError("the mesh was posed although joints_source='skeleton' and wloss_v2v = 0")


def test_skeleton_joint_term_equals_the_formula_without_the_mesh(sampled_poses, body_model):
    from poseembroider.body.skeleton import Skeleton

    config = PoseVAEConfig(wloss_v2v=0.0, wloss_jts=0.7, wloss_rot=1.0, wloss_kld=0.5, kld_epsilon=0.0,
                           joints_source="skeleton")  # fmt: skip
    model = _tiny(config).set_body_model(_SkeletonOnly(body_model))
    poses = sampled_poses[:3]
    torch.manual_seed(5)
    out = model.training_step({"poses": poses})
    assert "v2v" not in out and {"jts", "rot"} <= set(out)
    q_z, rec = _sample(model, poses, 5)
    skeleton = Skeleton(body_model)
    rec_rot = rec["pose_body_matrot"].reshape(3, 22, 3, 3)
    joints_rec, joints_gt = skeleton.pose_rotations(rec_rot), skeleton(poses).body_joints
    torch.testing.assert_close(joints_gt, body_model(poses).body_joints, atol=1e-5, rtol=0)  # the MPJPE's joints
    jts = (math.log(2) - 0.2 + (joints_rec - joints_gt).abs() / math.exp(-0.2)).sum((1, 2))
    rot = 0.5 * (math.log(2 * math.pi) - 1.0) + 0.5 * (rec_rot - axis_angle_to_matrix(poses)) ** 2 / math.exp(-1.0)
    kl = kl_to_standard_normal(q_z)
    expected = (0.7 * (jts + 0.5 * kl) / (22 * 3) + (rot.sum((1, 2, 3)) + 0.5 * kl) / (22 * 9)).mean()
    torch.testing.assert_close(out["jts"], jts.mean(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out["loss"], expected, rtol=1e-5, atol=1e-6)
    out["loss"].backward()
    assert model.decsigma_jts.grad is not None and model.decsigma_jts.grad.abs() > 0
    assert model.pose_decoder.decoder[5].weight.grad.abs().sum() > 0


def test_skeleton_validation_keeps_the_mesh_metrics(sampled_poses, body_model):
    model = _tiny(PoseVAEConfig(wloss_v2v=0.0, joints_source="skeleton")).set_body_model(body_model)
    with torch.no_grad():
        out = model.validation_step({"poses": sampled_poses[:4]})
    assert {"loss", "v2v", "jts", "rot", "elbo_jts", "mpjpe_mm", "pampjpe_mm", "pve_mm"} <= set(out)
    assert out["pve_mm"] > 0 and out["pampjpe_mm"] <= out["mpjpe_mm"] + 1e-3


def test_unknown_joints_source_is_refused():
    with pytest.raises(ValueError, match="--joints_source"):
        PoseVAEConfig(joints_source="mesh")
