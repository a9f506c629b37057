"""HPSEstimator: output shapes and rotations, the mean-pose start, save -> load, losses that go down, live x̄ =
cached x̄, refusal of another representation version; the mean pose file and answers; per-sample files."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from intermodality_world import make_intermodality_world
from poseembroider.downstream.pose_estimation.data import TensorItems, split_targets
from poseembroider.downstream.pose_estimation.evaluation import (
    compare_per_sample,
    load_per_sample,
    mean_pose_predictions,
    save_per_sample,
)
from poseembroider.downstream.pose_estimation.mean_pose import (
    MeanPose,
    compute_mean_smplx_pose,
    load_mean_pose,
    mean_pose_file,
    mean_smplx_pose,
    save_mean_pose,
)
from poseembroider.downstream.pose_estimation.model_pose_estimation import (
    HPSEstimator,
    HPSEstimatorConfig,
    representation_fingerprint,
)
from poseembroider.evaluation.mesh_recovery import MeshRecoveryErrors
from poseembroider.features.intermodality import compute_intermodality_features
from poseembroider.geometry import axis_angle_to_matrix, geodesic_distance
from poseembroider.model import PoseEmbroider
from poseembroider.models.pretrained import CheckpointError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_head(**overrides) -> HPSEstimator:
    values = dict(latentD=16, regressor_hidden=32, predict_bodyshape=True) | overrides
    torch.manual_seed(0)
    return HPSEstimator(HPSEstimatorConfig(**values))


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    return make_intermodality_world(tmp_path_factory.mktemp("hps"), "hpsworld", n_train=16, n_val=6)


def test_outputs_are_rotations_and_betas():
    head = tiny_head().eval()
    out = head(torch.randn(5, 16))
    rotations = out["rotations"]
    assert rotations.shape == (5, 22, 3, 3) and out["betas"].shape == (5, 10)
    eye = torch.eye(3).expand_as(rotations)
    torch.testing.assert_close(rotations @ rotations.transpose(-1, -2), eye, atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.linalg.det(rotations), torch.ones(5, 22), atol=1e-5, rtol=0)
    assert "betas" not in tiny_head(predict_bodyshape=False)(torch.randn(2, 16))
    with pytest.raises(ValueError, match=r"xbar: expected \(B, 16\), got \(2, 8\)"):
        head(torch.randn(2, 8))
    with pytest.raises(ValueError, match="--representation_model_input_types: unknown input type 'image'"):
        HPSEstimatorConfig(representation_model_input_types=["image"])


def test_regression_starts_at_the_mean_pose():
    """The last layer is initialised small: an untrained head answers about the initial state, for any x̄."""
    mean = torch.randn(22, 3) * 0.4
    head = tiny_head()
    head.set_mean_pose(mean)
    head.eval()
    angles = geodesic_distance(head(torch.randn(8, 16))["rotations"], axis_angle_to_matrix(mean))
    assert angles.max() < np.deg2rad(3.0)
    with pytest.raises(ValueError, match=r"mean_pose: expected \(22\+, 3\)"):
        head.set_mean_pose(torch.zeros(21, 3))


def test_save_and_load_give_the_same_outputs(tmp_path):
    head = tiny_head(representation_model_fingerprint="PoseEmbroider@abc")
    head.set_mean_pose(torch.randn(22, 3) * 0.3)
    head.eval()
    x = torch.randn(4, 16)
    loaded = HPSEstimator.from_pretrained(head.save_pretrained(tmp_path / "head")).eval()
    assert loaded.config == head.config
    for key, value in head(x).items():
        torch.testing.assert_close(loaded(x)[key], value, rtol=0, atol=0)


def test_training_steps_reduce_the_loss(body_model):
    """A few Adam steps on a fixed batch fit it better; the joint and vertex terms join when asked."""
    generator = torch.Generator().manual_seed(0)
    batch = {
        "xbar": torch.randn(16, 16, generator=generator),
        "poses": torch.randn(16, 22, 3, generator=generator) * 0.3,
        "shapes": torch.randn(16, 10, generator=generator),
    }
    head = tiny_head(regressor_dropout=0.0)
    optimizer = torch.optim.Adam(head.parameters(), lr=3e-3)
    first = head.training_step(batch)
    assert set(first) == {"loss", "loss_rotations", "loss_betas"}
    for _ in range(30):
        optimizer.zero_grad()
        head.training_step(batch)["loss"].backward()
        optimizer.step()
    last = head.training_step(batch)
    assert last["loss"] < 0.7 * first["loss"] and last["loss_rotations"] < first["loss_rotations"]
    texts_only = tiny_head(representation_model_input_types=["texts"])
    assert "loss_betas" not in texts_only.training_step(batch)  # the original's betas loss needs images
    with_body = tiny_head(smpl_losses=True)
    with_body.set_body_model(body_model)
    terms = with_body.training_step(batch)
    assert {"loss_joints", "loss_vertices"} <= set(terms) and all(torch.isfinite(v) for v in terms.values())
    terms["loss"].backward()
    assert with_body.pose_head.regressor[-1].weight.grad.abs().sum() > 0
    head.set_body_model(body_model)
    metrics = head.validation_step(batch)
    assert {"geodesic_deg", "mpjpe_mm", "pa_mpjpe_mm"} <= set(metrics) and metrics["pa_mpjpe_mm"] > 0


def test_live_xbar_is_the_cached_one_and_other_versions_are_refused(world):
    model_dir = world["models"]["PoseEmbroider"]
    rep = PoseEmbroider.from_pretrained(model_dir)
    head = tiny_head(
        pretrained_representation_model=str(model_dir),
        representation_model_fingerprint=representation_fingerprint(rep),
        representation_model_input_types=["poses"],
    )
    cached = compute_intermodality_features(model_dir, world["script"], "val", "poses", progress=False)
    poses, shapes = split_targets(world["script"], "val", cached.data_ids)
    live = head.xbar_of({"poses": poses})  # loads the representation model from its folder, checks its version
    torch.testing.assert_close(live, cached.features(), atol=1e-5, rtol=1e-4)
    assert torch.equal(head.xbar_of({"xbar": cached.features(), "poses": poses}), cached.features())
    with torch.no_grad():
        rep.intermodality_token.add_(1.0)
    with pytest.raises(CheckpointError, match="trained over PoseEmbroider@.*another version of that model"):
        head.attach_representation(rep)
    items = TensorItems(xbar=cached.features(), poses=poses, shapes=shapes)
    batch = items.__getitems__([2, 0])
    assert torch.equal(batch["poses"], poses[[2, 0]]) and batch["xbar"].shape == (2, 16)
    with pytest.raises(ValueError, match=r"data id\(s\) \[7\] are not in"):
        split_targets(world["script"], "val", [7])


def test_mean_pose_file(world, tmp_path):
    mean = compute_mean_smplx_pose(world["script"], "train")
    assert mean.pose.shape == (22, 3) and mean.betas.shape == (10,) and mean.count == 16
    angles = geodesic_distance(
        axis_angle_to_matrix(torch.as_tensor(world["poses"]["train"])), axis_angle_to_matrix(mean.pose)
    )
    assert angles.mean() < np.pi / 2  # a central pose, not an arbitrary one
    path = save_mean_pose(tmp_path / "mean.npz", mean)
    with np.load(path, allow_pickle=False) as data:  # no pickle in the file
        assert sorted(data.files) == ["betas", "count", "pose", "source"]
    loaded = load_mean_pose(path)
    assert torch.equal(loaded.pose, mean.pose) and loaded.source == f"{world['script']}:train"
    same = MeanPose(torch.full((22, 3), 0.2), torch.zeros(10), 1, "x")
    assert torch.equal(load_mean_pose(save_mean_pose(tmp_path / "same.npz", same)).pose, same.pose)
    assert not mean_pose_file(world["script"]).exists()
    torch.testing.assert_close(mean_smplx_pose(world["script"]).pose, mean.pose)
    assert mean_pose_file(world["script"]).is_file()
    (tmp_path / "bad.npz").write_bytes(b"not a file")
    with pytest.raises(ValueError, match="bad.npz is not a mean pose file"):
        load_mean_pose(tmp_path / "bad.npz")


def test_mean_pose_answers_and_per_sample_files(tmp_path):
    mean = MeanPose(torch.randn(22, 3) * 0.3, torch.randn(10), 5, "x")
    answer = mean_pose_predictions(mean, 4, 22, with_betas=True)
    assert answer["rotations"].shape == (4, 22, 3, 3) and answer["betas"].shape == (4, 10)
    torch.testing.assert_close(answer["rotations"][3], axis_angle_to_matrix(mean.pose))
    assert "betas" not in mean_pose_predictions(mean, 4, 22, with_betas=False)
    a = MeshRecoveryErrors({"smplx22": {"pa_mpjpe_mm": torch.tensor([10.0, 20.0, 30.0], dtype=torch.float64)}})
    b = MeshRecoveryErrors({"smplx22": {"pa_mpjpe_mm": torch.tensor([12.0, 25.0, 31.0], dtype=torch.float64)}})
    path = save_per_sample(tmp_path / "a.npz", np.array([3, 1, 2]), {"images": a, "mean_pose": b})
    loaded = load_per_sample(path)
    assert sorted(loaded) == ["data_ids", "images/smplx22/pa_mpjpe_mm", "mean_pose/smplx22/pa_mpjpe_mm"]
    other = dict(loaded, **{"images/smplx22/pa_mpjpe_mm": loaded["mean_pose/smplx22/pa_mpjpe_mm"]})
    diff = compare_per_sample(loaded, other, "images/smplx22/pa_mpjpe_mm")
    assert diff["difference"]["value"] == pytest.approx(-8.0 / 3) and diff["n"] == 3
    with pytest.raises(ValueError, match="data_ids differ"):
        compare_per_sample(loaded, dict(loaded, data_ids=np.array([1, 2, 3])), "images/smplx22/pa_mpjpe_mm")
