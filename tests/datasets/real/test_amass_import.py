"""`poseembroider data import-amass` on AMASS-style files made by our own code (SMPL+H and SMPL-X releases, a
shape-only file, CMU-layout sequences cut at dropped frames): poses at the asked frame rate, normalised as
PoseScript's, pairs mined within (<= 0.5 s apart) and across motions, texts, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from poseembroider import config
from poseembroider.cli import main as cli_main
from poseembroider.datasets.cache_format import cache_file_name, load_cache
from poseembroider.datasets.process_amass.fixture import (
    amass_release_from_cmu_sequences,
    synthetic_amass_release,
    write_amass_motion,
)
from poseembroider.datasets.process_amass.importer import AmassImportConfig, import_amass
from poseembroider.datasets.process_amass.motion_files import MotionFileError, read_motion_file
from poseembroider.datasets.registry import get_dataset
from poseembroider.geometry import axis_angle_to_matrix, matrix_to_euler

pytestmark = pytest.mark.usefixtures("one_torch_thread")
PAIRS = "amasspairs-motions-in15_out20_t05_sim0709"


@pytest.fixture(scope="module")
def imported(body_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("amass")
    paths = synthetic_amass_release(root, n_sequences=5, frames=45, fps=30.0, body_model=body_model)
    more = synthetic_amass_release(root / "X", n_sequences=2, frames=120, fps=120.0, seed=1, body_model=body_model,
                                   release="smplx")  # fmt: skip
    np.savez(root / "Synthetic" / "shape.npz", betas=np.zeros(16), gender=np.array("neutral"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(config, "DATA_CACHE_DIR", root / "cache")
        argv = ["data", "import-amass", "--amass-root", str(root), "--name", "motions", "--val-share", "0.3"]
        assert cli_main([*argv, "--no-progress", "--json"]) == 0
        yield {"root": root, "files": paths + more}


def _cache(family: str, version: str, split: str, kind: str) -> dict:
    return load_cache(config.DATA_CACHE_DIR / cache_file_name(family, version, split, kind), kind)


def test_poses_at_the_asked_frame_rate_in_both_splits(imported):
    criteria = _cache("amassposes", "motions", "train", "poses")["criteria"]
    assert criteria["files"] == 8 and criteria["skipped_without_poses"] == 1 and criteria["sequences"] == 7
    assert criteria["poses"] == 5 * 15 + 2 * 10  # 1.5 s and 1 s of motion at 10 fps
    train = get_dataset("amassposes-motions", "train", item_format="pt")
    val = get_dataset("amassposes-motions", "val", item_format="pt")
    assert len(train) + len(val) == criteria["poses"] and len(val) > 0
    info = _cache("amassposes", "motions", "val", "poses")["sequence_info"]
    assert not {v["sequence"] for v in info.values()} & {
        v["sequence"] for v in _cache("amassposes", "motions", "train", "poses")["sequence_info"].values()
    }
    item = train[0]
    assert item["poses"].shape == (22, 3) and item["raw_texts"]
    assert abs(float(matrix_to_euler(axis_angle_to_matrix(item["poses"][0]), "xyz")[2])) < 1e-4
    # the stored body joints are the file's, frame for frame
    where = _cache("amassposes", "motions", "train", "poses")["sequence_info"][item["data_ids"]]
    motion = read_motion_file(imported["root"] / where["sequence"])
    assert torch.allclose(item["poses"][1:], torch.from_numpy(motion.poses[where["frame_index"], 1:22]), atol=1e-6)


def test_pairs_within_and_across_motions(imported):
    poses_info = {}
    for split in ("train", "val"):
        poses_info.update(_cache("amassposes", "motions", split, "poses")["sequence_info"])
    kinds = set()
    for split in ("train", "val"):
        pairs = _cache("amasspairs", "motions-in15_out20_t05_sim0709", split, "pairs")
        for pair_id, (a, b) in pairs["pair_2_dataid"].items():
            kind = pairs["sequence_info"][pair_id]
            kinds.add(kind)
            same = poses_info[a]["sequence"] == poses_info[b]["sequence"]
            assert same == (kind == "in")
    assert kinds == {"in", "out"}
    dataset = get_dataset(PAIRS, "train", item_format="pt", caption_selection=0)
    in_items = [dataset[i] for i in range(len(dataset)) if dataset[i]["sequence_kind"] == "in"]
    assert in_items and all(item["raw_texts"] for item in in_items)
    stored = _cache("amassposes", "motions", "train", "poses")
    for item in in_items[:5]:  # B carries A's normalising rotation: the A -> B turn survives
        n_a = axis_angle_to_matrix(stored["heading_rotation"][item["data_ids_A"]])
        n_b = axis_angle_to_matrix(stored["heading_rotation"][item["data_ids_B"]])
        raw_b = n_b.T @ axis_angle_to_matrix(stored["poses"][item["data_ids_B"]][0])
        assert torch.allclose(axis_angle_to_matrix(item["poses_B"][0]), n_a @ raw_b, atol=1e-4)
        frames = (poses_info[item["data_ids_A"]]["frame_index"], poses_info[item["data_ids_B"]]["frame_index"])
        assert 0 < frames[1] - frames[0]  # B after A


def test_cmu_layout_sequences_are_cut_at_dropped_frames(tmp_path):
    rng = np.random.default_rng(0)
    frames = np.array([0, 1, 2, 3, 7, 8, 9, 0, 1, 2], np.int32)
    np.savez(
        tmp_path / "sequences.npz",
        poses=rng.normal(0, 0.2, (10, 22, 3)).astype(np.float32),
        seq_id=np.array([0] * 7 + [1] * 3, np.int32),
        frame=frames,
        seq_source=np.array(["060/60_01.bvh", "061/61_01.bvh"]),
    )
    paths = amass_release_from_cmu_sequences(tmp_path / "sequences.npz", tmp_path / "amass")
    assert [p.relative_to(tmp_path / "amass").as_posix() for p in paths] == [
        "CMU/060/60_01_part00_poses.npz",
        "CMU/060/60_01_part01_poses.npz",
        "CMU/061/61_01_part00_poses.npz",
    ]
    motion = read_motion_file(paths[1])
    assert motion.release == "smplx" and motion.fps == 10.0 and motion.num_frames == 3


def test_bad_motion_files_name_the_file_and_key(tmp_path, capsys):
    poses = np.zeros((4, 52, 3), np.float32)
    write_amass_motion(tmp_path / "ok_poses.npz", poses, 30.0)
    np.savez(tmp_path / "short_trans.npz", poses=np.zeros((4, 156)), trans=np.zeros((3, 3)), mocap_framerate=30.0)
    with pytest.raises(MotionFileError, match=r"short_trans\.npz: frame counts disagree.*'trans'"):
        read_motion_file(tmp_path / "short_trans.npz")
    np.savez(tmp_path / "no_rate.npz", poses=np.zeros((4, 156)))
    with pytest.raises(MotionFileError, match=r"no_rate\.npz: no frame rate.*mocap_framerate"):
        read_motion_file(tmp_path / "no_rate.npz")
    np.savez(tmp_path / "wide.npz", poses=np.zeros((4, 99)), mocap_framerate=30.0)
    with pytest.raises(MotionFileError, match=r"wide\.npz: key 'poses' has shape \(4, 99\)"):
        read_motion_file(tmp_path / "wide.npz")
    data = (tmp_path / "ok_poses.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(MotionFileError, match=r"cut\.npz"):
        read_motion_file(tmp_path / "cut.npz")
    assert cli_main(["data", "import-amass", "--amass-root", str(tmp_path), "--name", "bad", "--no-progress"]) == 2
    assert "cut.npz" in capsys.readouterr().err  # the first file in path order that fails
    with pytest.raises(ValueError, match="--name 'Bad-Name'"):
        AmassImportConfig(tmp_path, "Bad-Name")
    with pytest.raises(FileNotFoundError, match="no such folder"):
        import_amass(AmassImportConfig(tmp_path / "missing", "x", progress=False))
