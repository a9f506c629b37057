"""KeypointPoseRegressor: the ViT regressor's losses and metrics on the CNN's 32x24 heatmaps; the head reads the
token average only (what PoseEmbroider's compact image mode reads); training lowers the loss; save -> load ->
same outputs; the frozen encoder is the CNN; configs that cannot work are refused."""

from __future__ import annotations

import pytest
import torch

from poseembroider.assisting_models.imageEncoder.keypoint_encoder import KeypointImageEncoder, keypoint_encoder_config
from poseembroider.assisting_models.imageEncoder.keypoint_regressor import (
    KeypointPoseRegressor,
    KeypointPoseRegressorConfig,
)
from poseembroider.assisting_models.imageEncoder.model_imageEncoder import ImagePoseRegressor

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def small_config(**overrides) -> KeypointPoseRegressorConfig:
    encoder = keypoint_encoder_config("unet_kp_256x192", widths=(8, 16, 16, 32, 32), embed_dim=24)
    settings = {"head_hidden": 32, "wloss_joints": 10.0, "wloss_keypoints": 5.0, "wloss_keypoints_l1": 5.0,
                "lifter_hidden": 16, "wloss_lifting": 1.0}
    return KeypointPoseRegressorConfig(encoder=encoder, **{**settings, **overrides})


@pytest.fixture
def batch() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {
        "images": torch.rand(4, 3, 256, 192, generator=g),
        "poses": 0.3 * torch.randn(4, 22, 3, generator=g),
        "joints_2d_crop": torch.rand(4, 22, 2, generator=g) * torch.tensor([192.0, 256.0]),
    }


def test_training_step_has_every_term_and_training_lowers_the_loss(batch, body_model):
    torch.manual_seed(0)
    model = KeypointPoseRegressor(small_config())
    model.set_body_model(body_model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(8):
        out = model.training_step(batch)
        optimizer.zero_grad()
        out["loss"].backward()
        optimizer.step()
        losses.append(float(out["loss"].detach()))
    assert {"loss", "geodesic_deg", "joints_mm", "keypoint_kl", "keypoint_l1", "lifting_loss"} <= set(out)
    assert losses[-1] < losses[0]
    metrics = model.eval().validation_step(batch)
    assert 0 < metrics["pa_mpjpe_mm"] <= metrics["mpjpe_mm"] and metrics["keypoint_err_px"] > 0


def test_head_reads_the_token_average_only(batch):
    """Shuffling the tokens of an image leaves its pose: the head sees their average, as compact mode does."""
    torch.manual_seed(0)
    model = KeypointPoseRegressor(small_config(lifter_hidden=0, wloss_lifting=0.0)).eval()
    plain = model.predict(batch["images"])["rotations"]
    keypoints = model.encoder.keypoints

    def shuffled(images):
        out = keypoints(images)
        return {**out, "tokens": out["tokens"].flip(1)}

    model.encoder.keypoints = shuffled
    assert torch.allclose(model.predict(batch["images"])["rotations"], plain, atol=1e-5)


def test_save_load_same_outputs_and_frozen_encoder_is_the_cnn(batch, tmp_path):
    torch.manual_seed(0)
    model = KeypointPoseRegressor(small_config()).eval()
    model.save_pretrained(tmp_path / "reg")
    loaded = ImagePoseRegressor.from_pretrained(tmp_path / "reg")  # the subclass comes back
    assert isinstance(loaded, KeypointPoseRegressor)
    assert torch.equal(loaded.predict(batch["images"])["rotations"], model.predict(batch["images"])["rotations"])
    encoder = model.frozen_encoder()
    assert isinstance(encoder, KeypointImageEncoder) and encoder.frozen
    assert torch.equal(encoder.forward_features(batch["images"]), model.encode(batch["images"]))


def test_configs_that_cannot_work_are_refused():
    with pytest.raises(ValueError, match="always pools by its heatmaps"):
        small_config(pooling="mean")
    with pytest.raises(ValueError, match="encoder.num_joints 21 != num_body_joints 22"):
        KeypointPoseRegressorConfig(encoder=keypoint_encoder_config("unet_kp_256x192", num_joints=21))
