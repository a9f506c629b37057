"""Pose files of the text commands: the accepted npz layouts and the errors for the others."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from poseembroider.text.pose_files import load_pose_file


def _save(path, **arrays):
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    "shape, joints", [((4, 22, 3), 22), ((4, 52, 3), 52), ((4, 55, 3), 55), ((4, 66), 22), ((4, 156), 52)]
)
def test_poses_key(tmp_path, shape, joints):
    data = np.random.default_rng(0).normal(size=shape).astype(np.float64)
    poses = load_pose_file(_save(tmp_path / "p.npz", poses=data))
    assert poses.dtype == torch.float32 and poses.shape == (4, joints, 3)
    np.testing.assert_allclose(poses.numpy().reshape(4, -1), data.reshape(4, -1), rtol=1e-6)


def test_amass_layout(tmp_path):
    rng = np.random.default_rng(1)
    root, body, hands = rng.normal(size=(3, 3)), rng.normal(size=(3, 63)), rng.normal(size=(3, 90))
    poses = load_pose_file(_save(tmp_path / "a.npz", root_orient=root, pose_body=body, trans=np.zeros((3, 3))))
    assert poses.shape == (3, 22, 3)
    np.testing.assert_allclose(poses[:, 0].numpy(), root, rtol=1e-6)
    np.testing.assert_allclose(poses[:, 1:].reshape(3, -1).numpy(), body, rtol=1e-6)
    poses = load_pose_file(_save(tmp_path / "h.npz", root_orient=root, pose_body=body, pose_hand=hands))
    assert poses.shape == (3, 52, 3)


def test_errors_name_the_file_and_the_key(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        load_pose_file(tmp_path / "missing.npz")
    bad = _save(tmp_path / "bad.npz", poses=np.zeros((2, 23, 3)))
    with pytest.raises(ValueError, match=r"bad\.npz.*'poses'.*\(2, 23, 3\)"):
        load_pose_file(bad)
    with pytest.raises(ValueError, match=r"nokey\.npz.*found \['betas'\]"):
        load_pose_file(_save(tmp_path / "nokey.npz", betas=np.zeros((2, 10))))
    with pytest.raises(ValueError, match=r"'pose_body' has shape \(2, 60\)"):
        load_pose_file(_save(tmp_path / "amass.npz", root_orient=np.zeros((2, 3)), pose_body=np.zeros((2, 60))))
    with pytest.raises(ValueError, match="NaN"):
        load_pose_file(_save(tmp_path / "nan.npz", poses=np.full((1, 22, 3), np.nan)))
    with pytest.raises(ValueError, match="pickle"):
        load_pose_file(_save(tmp_path / "obj.npz", poses=np.array([object()] * 3, dtype=object)))
    text = tmp_path / "text.npz"
    text.write_text("not a zip")
    with pytest.raises(ValueError, match=r"text\.npz.*not an \.npz archive") as err:
        load_pose_file(text)
    assert "pickle" not in str(err.value)


def test_empty_file_and_absurd_values_are_refused(tmp_path):
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.npz.*empty file"):
        load_pose_file(empty)
    with pytest.raises(ValueError, match=r"huge\.npz.*exceed"):
        load_pose_file(_save(tmp_path / "huge.npz", poses=np.full((1, 22, 3), 1e30)))
    with pytest.raises(ValueError, match=r"degrees\.npz.*radians"):
        load_pose_file(_save(tmp_path / "degrees.npz", poses=np.full((1, 22, 3), 90.0)))
    assert load_pose_file(_save(tmp_path / "ok.npz", poses=np.full((1, 22, 3), 1.5))).shape == (1, 22, 3)
