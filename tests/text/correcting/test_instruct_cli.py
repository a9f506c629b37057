"""`poseembroider instruct` on small pose files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from instruction_helpers import POSES

from poseembroider.cli import main
from poseembroider.data import load_cmu_dev_poses


@pytest.fixture()
def pose_files(tmp_path, procedural_model_file):
    poses = load_cmu_dev_poses()
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    np.savez(a, poses=poses[:3])
    np.savez(b, poses=poses[10:13].reshape(3, 66))  # flat input is accepted too
    return a, b


def test_instruct_prints_one_line_per_pair(pose_files, capsys):
    a, b = pose_files
    assert main(["instruct", "--poses-a", str(a), "--poses-b", str(b), "--seed", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and all(line.endswith(".") and line[0].isupper() for line in lines)
    assert main(["instruct", "--poses-a", str(a), "--poses-b", str(b), "--seed", "2", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["index"] for r in rows] == [0, 1, 2] and [r["instruction"] for r in rows] == lines
    assert main(["instruct", "--poses-a", str(a), "--poses-b", str(b), "--variant", "short",
                 "--rotation-change", "90"]) == 0
    assert all(line.startswith(("Turn", "Make", "Rotate")) for line in capsys.readouterr().out.splitlines())


def test_in_sequence_turn_from_the_files(tmp_path, capsys, procedural_model_file):
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    pose_a = POSES["standing"].numpy()
    pose_b = pose_a.copy()
    pose_b[0, 0] = (0.0, -np.pi / 2, 0.0)  # a quarter turn to the body's right
    np.savez(a, poses=pose_a)
    np.savez(b, poses=pose_b)
    assert main(["instruct", "--poses-a", str(a), "--poses-b", str(b), "--in-sequence", "--variant", "short"]) == 0
    out = capsys.readouterr().out
    assert "right" in out and "left" not in out


def test_mismatched_pair_counts_are_reported(tmp_path, capsys, procedural_model_file):
    a, b = tmp_path / "four.npz", tmp_path / "two.npz"
    np.savez(a, poses=np.zeros((4, 22, 3), np.float32))
    np.savez(b, poses=np.zeros((2, 52, 3), np.float32))
    assert main(["instruct", "--poses-a", str(a), "--poses-b", str(b)]) == 2
    err = capsys.readouterr().err
    assert "four.npz" in err and "two.npz" in err and "(4, 22, 3)" in err and "(2, 52, 3)" in err


def test_missing_and_bad_files_are_reported(tmp_path, capsys, procedural_model_file):
    assert main(["instruct", "--poses-a", "x.npz"]) == 2
    assert "--poses-b" in capsys.readouterr().err
    bad = tmp_path / "bad.npz"
    np.savez(bad, poses=np.zeros((2, 7)))
    assert main(["instruct", "--poses-a", str(bad), "--poses-b", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.npz" in err and "(2, 7)" in err


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_non_finite_rotation_change_is_refused(pose_files, capsys, value):
    # NaN used to drop the turn silently and answer "Keep the same pose."
    a, b = pose_files
    with pytest.raises(SystemExit) as exit_info:
        main(["instruct", "--poses-a", str(a), "--poses-b", str(b), "--rotation-change", value])
    assert exit_info.value.code == 2 and "--rotation-change" in capsys.readouterr().err

