import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from poseembroider import config
from poseembroider.evaluation import mesh_recovery as mr
from poseembroider.geometry import axis_angle_to_matrix, axis_rotation_matrix, random_rotation_matrices

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _points(n: int, p: int, seed: int = 0) -> torch.Tensor:
    return 0.3 * torch.randn(n, p, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _similarity(points: torch.Tensor, seed: int = 1) -> torch.Tensor:
    """A random scale in [0.5, 2], proper rotation and translation applied to each point set."""
    g = torch.Generator().manual_seed(seed)
    n = points.shape[0]
    rotation = random_rotation_matrices(n, generator=g, dtype=points.dtype)
    scale = 0.5 + 1.5 * torch.rand(n, 1, 1, generator=g, dtype=points.dtype)
    translation = torch.randn(n, 1, 3, generator=g, dtype=points.dtype)
    return scale * points @ rotation.transpose(-1, -2) + translation


# ------------------------------------------------------------------------------------------- metrics


def test_similarity_transformed_copy_has_zero_pa_mpjpe_and_positive_mpjpe():
    target = _points(8, 22)
    moved = _similarity(target)
    assert mr.pa_mpjpe(moved, target).abs().max() < 1e-6  # mm
    assert (mr.mpjpe(moved, target) > 10.0).all()


def test_mpjpe_and_pve_hand_computed_in_millimetres():
    target = torch.zeros(2, 4, 3)
    pred = target.clone()
    pred[0] += torch.tensor([0.003, 0.004, 0.0])  # every joint 5 mm away
    pred[1, 0] = torch.tensor([0.0, 0.0, 0.02])  # one joint of 4 is 20 mm away
    torch.testing.assert_close(mr.mpjpe(pred, target), torch.tensor([5.0, 5.0]))
    torch.testing.assert_close(mr.pve(pred, target), torch.tensor([5.0, 5.0]))


def test_pa_mpjpe_hand_computed_octahedron():
    """Target: the unit octahedron; prediction: its z axis stretched to 2. By symmetry the best rotation is
    the identity and the best scale 2/3 (Σ target·pred / Σ |pred|² about the centroids = 4 / 6), which puts
    every aligned point 1/3 m from its target: 333.3 mm."""
    axes = torch.eye(3, dtype=torch.float64)
    target = torch.cat([axes, -axes])[None]
    pred = target.clone()
    pred[..., 2] *= 2.0
    assert mr.pa_mpjpe(pred, target).item() == pytest.approx(1000.0 / 3.0)
    assert mr.mpjpe(pred, target).item() == pytest.approx(1000.0 / 3.0)  # two points 1 m off, four exact


def test_a_mirrored_skeleton_is_not_aligned_by_a_reflection():
    target = _points(4, 22, seed=5)
    mirrored = target * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    assert (mr.pa_mpjpe(mirrored, target) > 20.0).all()


def test_rotation_error_hand_computed_in_degrees():
    angles = torch.tensor([math.radians(30.0), math.radians(90.0)])
    pred = axis_rotation_matrix(angles, "z")[None]  # (1, 2, 3, 3): two joints
    target = torch.eye(3).expand(1, 2, 3, 3)
    torch.testing.assert_close(mr.rotation_error_deg(pred, target), torch.tensor([60.0]))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: mr.mpjpe(torch.zeros(2, 22, 2), torch.zeros(2, 22, 3)), "pred_joints"),
        (lambda: mr.mpjpe(torch.zeros(2, 22, 3), torch.zeros(2, 21, 3)), "target_joints"),
        (lambda: mr.pa_mpjpe(torch.zeros(2, 22, 3), torch.zeros(3, 22, 3)), "target_joints"),
        (lambda: mr.pve(torch.zeros(2, 5, 3), torch.zeros(2, 6, 3)), "target_vertices"),
        (lambda: mr.rotation_error_deg(torch.zeros(2, 22, 3), torch.zeros(2, 22, 3, 3)), "pred_rotations"),
        (lambda: mr.rotation_error_deg(torch.eye(3).expand(2, 22, 3, 3), torch.eye(3)), "target_rotations"),
        (
            lambda: mr.paper_protocol(mr.Bodies(torch.zeros(2, 21, 3)), mr.Bodies(torch.zeros(2, 22, 3))),
            r"pred\.joints",
        ),
        (
            lambda: mr.paper_protocol(
                mr.Bodies(torch.zeros(2, 22, 3)), mr.Bodies(torch.zeros(2, 22, 3), rotations=torch.zeros(2, 22, 3))
            ),
            r"target\.rotations",
        ),
    ],
)
def test_shape_errors_name_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ------------------------------------------------------------------------------------------- protocols


def _bodies(n: int, v: int = 30, seed: int = 0) -> mr.Bodies:
    g = torch.Generator().manual_seed(seed)
    return mr.Bodies(
        joints=0.3 * torch.randn(n, 22, 3, generator=g),
        vertices=0.3 * torch.randn(n, v, 3, generator=g),
        rotations=random_rotation_matrices((n, 22), generator=g),
    )


@pytest.fixture
def regressor_file(tmp_path) -> tuple:
    """A (17, 30) H36M-like regressor (non-negative rows summing to 1) saved as .npy."""
    weights = torch.rand(17, 30, generator=torch.Generator().manual_seed(7))
    weights = (weights / weights.sum(1, keepdim=True)).numpy()
    path = tmp_path / "J_regressor_h36m.npy"
    np.save(path, weights)
    return path, torch.from_numpy(weights)


def test_paper_protocol_gives_every_metric_per_sample():
    pred, target = _bodies(5, seed=0), _bodies(5, seed=1)
    errors = mr.paper_protocol(pred, target)
    assert set(errors) == {"pa_mpjpe_mm", "mpjpe_mm", "pve_mm", "rotation_error_deg"}
    assert all(e.shape == (5,) for e in errors.values())
    same = mr.paper_protocol(target, target)
    assert all(float(e.abs().max()) < 1e-3 for e in same.values())
    joints_only = mr.paper_protocol(mr.Bodies(pred.joints), target)
    assert set(joints_only) == {"pa_mpjpe_mm", "mpjpe_mm"}


def test_h36m14_protocol_centres_on_the_pelvis_and_keeps_14_joints(regressor_file):
    _, regressor = regressor_file
    target = _bodies(4).vertices
    moved = target + torch.tensor([0.5, -0.2, 1.0])  # a translated copy: zero after pelvis centring
    errors = mr.h36m14_protocol(moved, target, regressor)
    assert set(errors) == {"pa_mpjpe_mm", "mpjpe_mm", "pve_mm"}
    assert all(float(e.abs().max()) < 1e-3 for e in errors.values())
    similar = _similarity(target.double()).float()
    errors = mr.h36m14_protocol(similar, target, regressor)
    assert float(errors["pa_mpjpe_mm"].abs().max()) < 1e-2 and (errors["mpjpe_mm"] > 1.0).all()
    # by hand: regressed joints, pelvis subtracted, the 14 LSP rows, plain MPJPE
    pred_noisy = target + 0.01 * torch.randn(target.shape, generator=torch.Generator().manual_seed(3))
    j_pred, j_target = regressor @ pred_noisy, regressor @ target  # (N, 17, 3)
    rows = list(mr.H36M_TO_J14)
    expected = ((j_pred[:, rows] - j_pred[:, :1]) - (j_target[:, rows] - j_target[:, :1])).norm(dim=-1).mean(-1)
    torch.testing.assert_close(mr.h36m14_protocol(pred_noisy, target, regressor)["mpjpe_mm"], 1000 * expected)


def test_fourteen_joint_protocol_says_which_file_is_missing(tmp_path, monkeypatch):
    missing = tmp_path / "nowhere" / "J_regressor_h36m.npy"
    monkeypatch.setattr(config, "H36M_REGRESSOR_FILE", missing)
    result = mr.evaluate_bodies(_bodies(3, seed=0), _bodies(3, seed=1))
    assert set(result.per_sample) == {"smplx22"}
    reason = result.skipped["h36m14"]
    assert str(missing) in reason and "POSEEMBROIDER_H36M_REGRESSOR_FILE" in reason
    summary = result.summary(n_resamples=50)
    assert summary["skipped"]["h36m14"] == reason and "h36m14" not in summary
    with pytest.raises(mr.RegressorNotFoundError, match="POSEEMBROIDER_H36M_REGRESSOR_FILE"):
        mr.load_h36m_regressor()


def test_regressor_file_is_read_from_config_as_npy_or_npz(regressor_file, tmp_path, monkeypatch):
    path, regressor = regressor_file
    monkeypatch.setattr(config, "H36M_REGRESSOR_FILE", path)
    torch.testing.assert_close(mr.load_h36m_regressor(), regressor)
    npz = tmp_path / "regressors.npz"
    np.savez(npz, J_regressor_h36m=regressor.numpy(), J_regressor=np.zeros((24, 30)))
    torch.testing.assert_close(mr.load_h36m_regressor(npz), regressor)
    result = mr.evaluate_bodies(_bodies(3, seed=0), _bodies(3, seed=1))
    assert set(result.per_sample) == {"smplx22", "h36m14"} and not result.skipped


def test_bad_regressor_files_are_refused_naming_the_file(tmp_path):
    pickled = tmp_path / "J_regressor_h36m.pkl"
    pickled.write_bytes(b"\x80\x04N.")
    with pytest.raises(ValueError, match=r"J_regressor_h36m\.pkl.*pickles are never loaded"):
        mr.load_h36m_regressor(pickled)
    object_array = tmp_path / "objects.npy"
    np.save(object_array, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="objects.npy"):
        mr.load_h36m_regressor(object_array)
    wrong_rows = tmp_path / "j24.npy"
    np.save(wrong_rows, np.zeros((24, 30)))
    with pytest.raises(ValueError, match=r"j24\.npy.*\(17, V\)"):
        mr.load_h36m_regressor(wrong_rows)
    with pytest.raises(ValueError, match="pred_vertices: 30 vertices.*6890"):
        mr.h36m14_protocol(_bodies(2).vertices, _bodies(2).vertices, torch.zeros(17, 6890))


# ------------------------------------------------------------------------------------------- body model


class LinearBody:
    """A stand-in body model: joints and vertices are fixed linear functions of the axis-angles and betas,
    plus the translation (which the paper's protocol must set to zero)."""

    def __init__(self, num_vertices: int = 30):
        g = torch.Generator().manual_seed(11)
        self.joint_map = torch.randn(66, 25 * 3, generator=g) * 0.05
        self.vertex_map = torch.randn(66, num_vertices * 3, generator=g) * 0.05
        self.calls: list[dict] = []

    def __call__(self, poses, betas=None, transl=None):
        self.calls.append({"poses": poses, "betas": betas, "transl": transl})
        flat = poses.reshape(poses.shape[0], -1).float()
        shift = (0.0 if betas is None else betas.sum(1, keepdim=True)[:, :, None] * 0.01) + transl[:, None]
        joints = (flat @ self.joint_map).reshape(len(flat), 25, 3) + shift
        vertices = (flat @ self.vertex_map).reshape(len(flat), -1, 3) + shift
        return SimpleNamespace(joints=joints, vertices=vertices)


def test_pose_bodies_runs_a_zero_translation_forward_pass():
    body = LinearBody()
    axis_angles = 0.3 * torch.randn(4, 22, 3, generator=torch.Generator().manual_seed(0))
    from_matrices = mr.pose_bodies(body, axis_angle_to_matrix(axis_angles))
    from_axis_angles = mr.pose_bodies(body, axis_angles)
    assert all(float(call["transl"].abs().max()) == 0.0 for call in body.calls)
    assert from_matrices.joints.shape == (4, 22, 3) and from_matrices.vertices.shape == (4, 30, 3)
    torch.testing.assert_close(from_matrices.joints, from_axis_angles.joints, atol=1e-5, rtol=0)
    torch.testing.assert_close(from_matrices.rotations, axis_angle_to_matrix(axis_angles))
    with pytest.raises(ValueError, match="rotations: expected"):
        mr.pose_bodies(body, torch.zeros(4, 21, 3))
    with pytest.raises(ValueError, match="betas"):
        mr.pose_bodies(body, axis_angles, betas=torch.zeros(3, 10))


def test_evaluate_smplx_predictions_in_chunks_equals_one_pass(regressor_file):
    path, _ = regressor_file
    body = LinearBody()
    g = torch.Generator().manual_seed(4)
    target = random_rotation_matrices((10, 22), generator=g)
    pred = target @ axis_angle_to_matrix(0.1 * torch.randn(10, 22, 3, generator=g))
    betas = torch.randn(10, 10, generator=g)
    whole = mr.evaluate_smplx_predictions(body, pred, target, betas, None, h36m_regressor=path, batch_size=100)
    chunked = mr.evaluate_smplx_predictions(body, pred, target, betas, None, h36m_regressor=path, batch_size=3)
    assert set(whole.per_sample) == {"smplx22", "h36m14"} and whole.num_samples == 10
    for protocol, metrics in whole.per_sample.items():
        for metric, values in metrics.items():
            torch.testing.assert_close(chunked.per_sample[protocol][metric], values, atol=1e-4, rtol=0)
    exact = mr.evaluate_smplx_predictions(body, target, target, h36m_regressor=path)
    assert all(float(v.abs().max()) < 1e-2 for m in exact.per_sample.values() for v in m.values())
    rotation_error = whole.per_sample["smplx22"]["rotation_error_deg"]
    assert (rotation_error > 1.0).all() and (rotation_error < 20.0).all()  # 0.1 rad noise ~ 5.7 deg per axis


def test_summary_and_paired_comparison_of_two_methods(regressor_file):
    path, _ = regressor_file
    body = LinearBody()
    g = torch.Generator().manual_seed(5)
    target = random_rotation_matrices((40, 22), generator=g)
    noise = 0.1 * torch.randn(40, 22, 3, generator=g)
    close = target @ axis_angle_to_matrix(noise)
    far = target @ axis_angle_to_matrix(2.0 * noise)
    a = mr.evaluate_smplx_predictions(body, close, target, h36m_regressor=path)
    b = mr.evaluate_smplx_predictions(body, far, target, h36m_regressor=path)
    summary = a.summary(n_resamples=200)
    assert summary["n"] == 40 and "skipped" not in summary
    pa = summary["smplx22"]["pa_mpjpe_mm"]
    assert pa["low"] < pa["value"] < pa["high"] and pa["confidence"] == 0.95
    assert pa["value"] == pytest.approx(float(a.per_sample["smplx22"]["pa_mpjpe_mm"].mean()))
    comparison = a.compare(b, n_resamples=200)
    rot = comparison["smplx22"]["rotation_error_deg"]
    assert rot.difference.high < 0 and rot.relative.value == pytest.approx(-0.5, abs=0.05)
    assert set(comparison["h36m14"]) == {"pa_mpjpe_mm", "mpjpe_mm", "pve_mm"}
    assert rot.as_dict()["difference"]["value"] == rot.difference.value


def test_paper_protocol_on_the_procedural_body(body_model, tmp_path):
    """The real body model: a predicted body whose global orientation differs only has zero PA-MPJPE
    (a rotation about the pelvis of a zero-translation body is a similarity transform) but not zero MPJPE."""
    g = torch.Generator().manual_seed(0)
    target = 0.2 * torch.randn(3, 22, 3, generator=g)
    pred = target.clone()
    pred[:, 0] = torch.tensor([0.0, 0.0, 0.0])
    target[:, 0] = torch.tensor([0.0, 1.0, 0.0])
    errors = mr.evaluate_smplx_predictions(body_model, pred, target, h36m_regressor=tmp_path / "absent.npy")
    paper = errors.per_sample["smplx22"]
    assert "absent.npy" in errors.skipped["h36m14"]
    assert float(paper["pa_mpjpe_mm"].max()) < 0.5
    assert (paper["mpjpe_mm"] > 50.0).all() and (paper["pve_mm"] > 50.0).all()
    # one joint rotated by 1 rad out of 22: mean rotation error 1/22 rad
    torch.testing.assert_close(
        paper["rotation_error_deg"], torch.full((3,), math.degrees(1.0) / 22, dtype=torch.float64), rtol=1e-5, atol=0
    )
