"""A short PoseVAE training with the one Trainer lowers the reconstruction error clearly."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import Dataset

from poseembroider.assisting_models.poseVAE.model_poseVAE import PoseVAE, PoseVAEConfig
from poseembroider.training.config import TrainerConfig
from poseembroider.training.trainer import Trainer


class PoseList(Dataset):
    def __init__(self, poses: torch.Tensor):
        self.poses = poses

    def __len__(self) -> int:
        return len(self.poses)

    def __getitem__(self, index: int) -> dict:
        return {"poses": self.poses[index]}


@pytest.fixture
def one_thread():
    """Small MLP steps on a shared 2-core machine run several times faster on one thread (no contention
    between intra-op threads); restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_short_training_lowers_the_reconstruction_mpjpe(sampled_poses, body_model, tmp_path, one_thread):
    # body-model-free objective (rotations + KL) to train fast; validation still poses the bodies
    torch.manual_seed(0)
    model = PoseVAE(PoseVAEConfig(wloss_v2v=0.0, wloss_jts=0.0)).set_body_model(body_model)
    config = TrainerConfig(
        output_dir=str(tmp_path),
        epochs=8,
        batch_size=32,
        lr=1e-3,
        wd=1e-4,
        val_every=100,
        seed=1,
        tensorboard=False,
        progress=False,
        device="cpu",
    )
    trainer = Trainer(model, PoseList(sampled_poses[:256]), PoseList(sampled_poses[256:]), config)
    before = trainer.validate()
    summary = trainer.fit()
    after = summary["last_metrics"]
    assert {
        "loss",
        "v2v",
        "jts",
        "rot",
        "kld",
        "elbo_v2v",
        "elbo_jts",
        "elbo_rot",
        "mpjpe_mm",
        "pampjpe_mm",
        "pve_mm",
        "rot_deg",
    } <= set(after)
    assert after["mpjpe_mm"] < 0.5 * before["mpjpe_mm"], (before["mpjpe_mm"], after["mpjpe_mm"])
    assert after["pampjpe_mm"] < before["pampjpe_mm"] and after["rot_deg"] < 0.5 * before["rot_deg"]
    assert after["loss"] < before["loss"]
    # best/ holds a loadable PoseVAE, selected on the validation loss
    best = PoseVAE.from_pretrained(tmp_path / "best")
    torch.testing.assert_close(best.encode_features(sampled_poses[:4]), model.eval().encode_features(sampled_poses[:4]))
