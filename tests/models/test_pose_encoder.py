"""The VPoser trunk and the retrieval pose encoder: the original layout, and state-dict keys that saved
checkpoints (ours and the original's) load into."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from poseembroider.assisting_models.poseVAE.model_poseVAE import PoseEncoder, PoseVAE
from poseembroider.models.pose_encoder import (
    FEATURE_LAYER,
    BatchFlatten,
    L2Norm,
    RetrievalPoseEncoder,
    vposer_feature_layers,
)

POSEVAE_STATE_SHAPES: dict[str, tuple[int, ...]] = {
    "decsigma_v2v": (1,),
    "decsigma_jts": (1,),
    "decsigma_rot": (1,),
    "pose_encoder.encoder.1.weight": (66,),
    "pose_encoder.encoder.1.bias": (66,),
    "pose_encoder.encoder.1.running_mean": (66,),
    "pose_encoder.encoder.1.running_var": (66,),
    "pose_encoder.encoder.1.num_batches_tracked": (),
    "pose_encoder.encoder.2.weight": (512, 66),
    "pose_encoder.encoder.2.bias": (512,),
    "pose_encoder.encoder.4.weight": (512,),
    "pose_encoder.encoder.4.bias": (512,),
    "pose_encoder.encoder.4.running_mean": (512,),
    "pose_encoder.encoder.4.running_var": (512,),
    "pose_encoder.encoder.4.num_batches_tracked": (),
    "pose_encoder.encoder.6.weight": (512, 512),
    "pose_encoder.encoder.6.bias": (512,),
    "pose_encoder.encoder.7.weight": (512, 512),
    "pose_encoder.encoder.7.bias": (512,),
    "pose_encoder.encoder.8.mu.weight": (32, 512),
    "pose_encoder.encoder.8.mu.bias": (32,),
    "pose_encoder.encoder.8.logvar.weight": (32, 512),
    "pose_encoder.encoder.8.logvar.bias": (32,),
    "pose_decoder.decoder.0.weight": (512, 32),
    "pose_decoder.decoder.0.bias": (512,),
    "pose_decoder.decoder.3.weight": (512, 512),
    "pose_decoder.decoder.3.bias": (512,),
    "pose_decoder.decoder.5.weight": (132, 512),
    "pose_decoder.decoder.5.bias": (132,),
}
"""`PoseVAE()`'s state dict as recorded before the VPoser trunk moved into `models.pose_encoder`."""

RETRIEVAL_POSE_STATE_SHAPES: dict[str, tuple[int, ...]] = {
    "encoder.1.weight": (66,),
    "encoder.1.bias": (66,),
    "encoder.1.running_mean": (66,),
    "encoder.1.running_var": (66,),
    "encoder.1.num_batches_tracked": (),
    "encoder.2.weight": (512, 66),
    "encoder.2.bias": (512,),
    "encoder.4.weight": (512,),
    "encoder.4.bias": (512,),
    "encoder.4.running_mean": (512,),
    "encoder.4.running_var": (512,),
    "encoder.4.num_batches_tracked": (),
    "encoder.6.weight": (512, 512),
    "encoder.6.bias": (512,),
    "encoder.7.weight": (512, 512),
    "encoder.7.bias": (512,),
    "encoder.8.weight": (32, 512),
    "encoder.8.bias": (32,),
    "encoder.10.weight": (512, 32),
    "encoder.10.bias": (512,),
}
"""`RetrievalPoseEncoder()`'s state dict as recorded before the move."""


def _shapes(module: nn.Module) -> dict[str, tuple[int, ...]]:
    return {name: tuple(tensor.shape) for name, tensor in module.state_dict().items()}


def test_posevae_state_dict_is_unchanged():
    """Saved PoseVAE checkpoints (and the original's) keep loading: same names, same shapes, same order."""
    assert list(_shapes(PoseVAE()).items()) == list(POSEVAE_STATE_SHAPES.items())


def test_retrieval_pose_encoder_state_dict_is_unchanged():
    assert list(_shapes(RetrievalPoseEncoder()).items()) == list(RETRIEVAL_POSE_STATE_SHAPES.items())


def test_pose_encoder_has_the_original_layout():
    encoder = RetrievalPoseEncoder()
    layers = encoder.encoder
    assert len(layers) == 12
    assert isinstance(layers[0], BatchFlatten)
    assert isinstance(layers[1], nn.BatchNorm1d) and layers[1].num_features == 66
    assert (layers[2].in_features, layers[2].out_features) == (66, 512)
    assert isinstance(layers[3], nn.LeakyReLU) and isinstance(layers[5], nn.Dropout) and layers[5].p == 0.1
    assert (layers[8].in_features, layers[8].out_features) == (512, 32) and isinstance(layers[9], nn.ReLU)
    assert (layers[10].in_features, layers[10].out_features) == (32, 512) and isinstance(layers[11], L2Norm)


def test_pose_encoder_trunk_matches_the_posevae_encoder_layers_0_to_7():
    vae_trunk = PoseEncoder(512, 32, 22).encoder[: FEATURE_LAYER + 1]
    ours = nn.Sequential(*vposer_feature_layers(22, 512))
    assert [type(m) for m in ours] == [type(m) for m in vae_trunk]
    vae_state = vae_trunk.state_dict()
    assert _shapes(ours) == _shapes(vae_trunk)
    ours.load_state_dict(vae_state)  # a PoseVAE trunk drops in
    poses = torch.randn(5, 22, 3)
    assert torch.allclose(ours.eval()(poses), vae_trunk.eval()(poses))


def test_pose_encoder_outputs_unit_vectors_and_refuses_bad_shapes():
    encoder = RetrievalPoseEncoder(latentD=16, num_neurons=32, num_neurons_mini=8).eval()
    out = encoder(torch.randn(3, 22, 3))
    assert out.shape == (3, 16) and torch.allclose(out.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert torch.allclose(encoder(torch.randn(3, 22, 3).reshape(3, 66)).norm(dim=-1), torch.ones(3), atol=1e-5)
    with pytest.raises(ValueError, match=r"\(B, 22, 3\)"):
        encoder(torch.randn(3, 52, 3))
