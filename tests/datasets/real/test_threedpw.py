"""`poseembroider data process-3dpw` on a release made by our own code (`process_threedpw.fixture`): counts, crops
around the person, the original's normalisation, cam_rot back to the camera view, visibility; `threedpw-sf13`
loads with `get_dataset` and `evaluate_core` runs on it (image + pose); bad input names the file."""

from __future__ import annotations

import json
import pickle
import shutil

import numpy as np
import pytest
import torch

from poseembroider import config, evaluate_core
from poseembroider.cli import main as cli_main
from poseembroider.datasets.cache_format import CacheError, cache_file_name, load_cache
from poseembroider.datasets.process_threedpw.fixture import dump_python2_pickle, write_threedpw_release
from poseembroider.datasets.process_threedpw.processing import ThreeDPWConfig, process_threedpw
from poseembroider.datasets.process_threedpw.sequences import SequenceFileError, read_sequence_file
from poseembroider.datasets.registry import dataset_modalities, get_dataset
from poseembroider.datasets.restricted_pickle import PickleReadError, UnsafePickleError
from poseembroider.downstream.pose_estimation import evaluate_pose_estimation
from poseembroider.downstream.pose_estimation.model_pose_estimation import (
    HPSEstimator,
    HPSEstimatorConfig,
    representation_fingerprint,
)
from poseembroider.geometry import axis_angle_to_matrix, matrix_to_euler
from poseembroider.model import PoseEmbroider
from tiny_models import make_core_models

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def release(body_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("threedpw") / "3DPW"
    fixture = write_threedpw_release(root, body_model=body_model)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(config, "THREEDPW_IMG_DIR", root / "imageFiles")
        patch.setattr(config, "DATA_CACHE_DIR", root.parent / "cache")
        yield fixture


@pytest.fixture(scope="module")
def processed(release):
    assert cli_main(["data", "process-3dpw", "--threedpw-root", str(release.root), "--no-progress", "--json"]) == 0
    return {split: load_cache(config.DATA_CACHE_DIR / cache_file_name("threedpw", "sf13", split, "poses"), "poses")
            for split in ("train", "val", "test")}  # fmt: skip


def test_counts_and_skips(release, processed):
    for split, folder in (("train", "train"), ("val", "validation"), ("test", "test")):
        dataset = get_dataset("threedpw-sf13", split, item_format="p")
        assert len(dataset) == release.person_frames[folder] - release.invalid[folder]
    assert processed["test"]["criteria"]["skipped_invalid_camera_pose"] == release.invalid["test"] == 1
    assert processed["test"]["criteria"]["scale_factor"] == 1.3
    assert dataset_modalities("threedpw-sf13") == ("image", "pose")


def test_poses_normalised_as_the_original_and_cam_rot_gives_the_camera_view(release, processed):
    dataset = get_dataset("threedpw-sf13", "test", item_format="ip")  # cam_rot lives in the images cache
    files = sorted((release.root / "sequenceFiles" / "test").glob("*.pkl"))
    sequence = read_sequence_file(files[0])
    info = processed["test"]["sequence_info"]
    for data_id in range(len(dataset)):
        item = dataset[data_id]
        where = info[data_id]
        if where["sequence"] != sequence.name:
            continue
        frame, actor = where["frame_index"], where["actor"]
        world = torch.from_numpy(sequence.poses[actor, frame]).float()
        assert torch.allclose(item["poses"][1:], world[1:22], atol=1e-6)  # SMPL body joints 1-21 as SMPL-X's
        assert abs(float(matrix_to_euler(axis_angle_to_matrix(item["poses"][0]), "xyz")[2])) < 1e-4
        r_cam = torch.from_numpy(sequence.cam_poses[frame, :3, :3]).float() @ axis_angle_to_matrix(world[0])
        assert torch.allclose(axis_angle_to_matrix(item["cam_rot"]) @ axis_angle_to_matrix(item["poses"][0]), r_cam,
                              atol=1e-4)  # fmt: skip


def test_crops_hold_the_person(release, processed):
    images = load_cache(config.DATA_CACHE_DIR / cache_file_name("threedpw", "sf13", "test", "images"), "images")
    for data_id, box in images["bboxes"].items():
        joints = images["joints_2d"][data_id][:22][images["joints_in_frame"][data_id][:22]]
        x1, y1, x2, y2 = box
        assert x1 <= joints[:, 0].min() and joints[:, 0].max() <= x2 and y1 <= joints[:, 1].min()
        assert (
            images["images"][data_id].endswith(".jpg")
            and (release.root / "imageFiles" / images["images"][data_id]).is_file()
        )
    dataset = get_dataset("threedpw-sf13", "test", item_format="ip", keypoints_2d=True)
    item = dataset[0]
    assert item["images"].shape == (3, 256, 192) and item["joints_2d_crop"].shape == (22, 2)
    inside = (item["joints_2d_crop"] >= 0).all(-1) & (item["joints_2d_crop"][:, 0] < 192)
    assert inside.float().mean() > 0.8
    with pytest.raises(ValueError, match="threedpw-sf13 has no texts"):
        get_dataset("threedpw-sf13", "test", item_format="ipt")
    with pytest.raises(CacheError, match="unknown split 'validation'.*train, val, test"):
        get_dataset("threedpw-sf13", "validation")


def test_evaluate_core_runs_on_images_and_poses(processed, tmp_path, capsys):
    models = make_core_models(tmp_path / "models", ["a person stands with the arms down", "the left knee is bent"])
    capsys.readouterr()
    argv = [
        "--model_path",
        str(models["PoseEmbroider"]),
        "--dataset",
        "threedpw-sf13",
        "--split",
        "test",
        "--no_progress",
    ]
    assert evaluate_core.main(argv) == 0
    table = capsys.readouterr().out
    assert "i2p" in table and "p2i" in table and "t2p" not in table and "ip2t" not in table
    result = json.loads((models["PoseEmbroider"] / "result_test_threedpw-sf13.json").read_text())
    assert result["size"] == 17 and {k.split("_R@")[0] for k in result["metrics"] if "_R@" in k} == {"i2p", "p2i"}


def test_bad_release_input_names_the_file(release, tmp_path, capsys):
    root = tmp_path / "copy"
    shutil.copytree(release.root, root)
    target = sorted((root / "sequenceFiles" / "test").glob("*.pkl"))[0]
    original = target.read_bytes()
    config_ = ThreeDPWConfig(root, splits=("test",), cache_dir=tmp_path / "cache")

    target.write_bytes(original[: len(original) // 3])
    with pytest.raises(PickleReadError, match=rf"{target.name}: truncated"):
        process_threedpw(config_)
    target.write_bytes(original)
    assert cli_main(["data", "process-3dpw", "--threedpw-root", str(root), "--split", "test", "--no-progress"]) == 0

    data = pickle.loads(original, encoding="latin1")
    data["trans"][0] = data["trans"][0][:-1]
    dump_python2_pickle(data, target)
    with pytest.raises(SequenceFileError, match=rf"{target.name}: frame counts disagree.*trans\[0\] 5"):
        process_threedpw(config_)

    data = pickle.loads(original, encoding="latin1")
    data["genders"] = [np.random.RandomState]  # a class: pickled as a global
    target.write_bytes(pickle.dumps(data, protocol=2))
    with pytest.raises(UnsafePickleError, match=rf"{target.name}.*numpy.random"):
        process_threedpw(config_)
    target.write_bytes(original)

    name = read_sequence_file(target).name
    (root / "imageFiles" / name / "image_00003.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=rf"{name}/image_00003\.jpg"):
        process_threedpw(config_)
    with pytest.raises(ValueError, match="unknown split"):
        ThreeDPWConfig(root, splits=("dev",))
    capsys.readouterr()
    assert cli_main(["data", "process-3dpw", "--threedpw-root", str(root), "--split", "test", "--no-progress"]) == 2
    assert "image_00003.jpg" in capsys.readouterr().err


def test_mesh_recovery_evaluation_runs_with_both_protocols(processed, body_model, tmp_path):
    """An HPS head on a tiny PoseEmbroider evaluated on 3DPW: the input sets 3DPW offers (images, and poses as
    the upper bound; no texts), the paper's 22-joint protocol and the 14-joint one with a regressor file."""
    models = make_core_models(tmp_path / "models", ["a person stands with the arms down", "the left knee is bent"])
    rep = PoseEmbroider.from_pretrained(models["PoseEmbroider"])
    head = HPSEstimator(
        HPSEstimatorConfig(
            latentD=rep.config.latentD,
            regressor_hidden=32,
            pretrained_representation_model=str(models["PoseEmbroider"]),
            representation_model_fingerprint=representation_fingerprint(rep),
        )
    )
    head_dir = head.save_pretrained(tmp_path / "head")
    n_vertices = body_model(torch.zeros(1, 22, 3)).vertices.shape[1]
    regressor = tmp_path / "J_regressor_h36m.npy"
    weights = np.random.default_rng(0).random((17, n_vertices), dtype=np.float32) ** 8  # each joint: a few vertices
    np.save(regressor, weights / weights.sum(axis=1, keepdims=True))
    argv = ["--model_path", str(head_dir), "--dataset", "threedpw-sf13", "--split", "test", "--device", "cpu"]
    args = evaluate_pose_estimation.build_parser().parse_args(
        [*argv, "--no_progress", "--h36m_regressor", str(regressor)]
    )
    result = evaluate_pose_estimation.evaluate(args)
    assert result["size"] == 17 and set(result["metrics"]) == {"images", "poses", "mean_pose"}
    for summary in result["metrics"].values():
        assert summary["smplx22"]["pa_mpjpe_mm"]["value"] > 0 and summary["h36m14"]["mpjpe_mm"]["value"] > 0
