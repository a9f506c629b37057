"""`poseembroider caption` and `poseembroider posecodes` on small pose files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from poseembroider.cli import main
from poseembroider.data import load_cmu_dev_poses
from poseembroider.text.captioning.posecode_definitions import POSECODES, SUPER_POSECODES


@pytest.fixture()
def pose_file(tmp_path, procedural_model_file):
    path = tmp_path / "poses.npz"
    np.savez(path, poses=load_cmu_dev_poses()[:3])
    return path


def test_caption_prints_one_line_per_pose(pose_file, capsys):
    assert main(["caption", "--poses", str(pose_file), "--seed", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and all(line.endswith(".") for line in lines)
    assert main(["caption", "--poses", str(pose_file), "--seed", "2", "--variant", "ripple", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["index"] for r in rows] == [0, 1, 2] and all(r["caption"] for r in rows)
    assert main(["caption", "--poses", str(pose_file), "--seed", "2", "--json"]) == 0
    assert [r["caption"] for r in json.loads(capsys.readouterr().out)] == lines


def test_posecodes_dump(pose_file, capsys):
    assert main(["posecodes", "--poses", str(pose_file), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 3
    codes = rows[0]["posecodes"]
    assert len(codes) == len(POSECODES) + len(SUPER_POSECODES)
    assert set(codes[0]) >= {"kind", "joints", "raw", "category", "eligibility"}
    assert codes[0]["kind"] == "angle" and codes[0]["joints"] == ["left_hip", "left_knee", "left_ankle"]


def test_bad_pose_file_is_reported(tmp_path, capsys, procedural_model_file):
    path = tmp_path / "bad.npz"
    np.savez(path, poses=np.zeros((2, 7)))
    assert main(["caption", "--poses", str(path)]) == 2
    err = capsys.readouterr().err
    assert "bad.npz" in err and "'poses'" in err and "(2, 7)" in err


def test_missing_poses_flag_is_reported(capsys):
    assert main(["caption"]) == 2
    assert "--poses" in capsys.readouterr().err
