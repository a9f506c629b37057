"""`poseembroider data process-bedlam` end to end on a fixture release in BEDLAM's layout: every step runs,
the geometry matches the fixture's own derivation, the datasets load and train, a killed run resumes to the
same bytes, and changed settings are refused."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import SIZES, bedlam_config
from poseembroider import config
from poseembroider.datasets.cache_format import load_cache
from poseembroider.datasets.process_bedlam.pipeline import format_summary, process_bedlam
from poseembroider.datasets.registry import get_dataset
from poseembroider.geometry import axis_angle_to_matrix, matrix_to_axis_angle

pytestmark = [pytest.mark.render, pytest.mark.usefixtures("one_torch_thread")]


@pytest.fixture(scope="module")
def processed(bedlam_release, tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("bedlam_processed")
    stats = {split: process_bedlam(bedlam_config(bedlam_release, split, root)) for split in ("train", "val")}
    return {"root": root, "stats": stats, "release": bedlam_release}


@pytest.fixture
def bedlam_paths(processed, monkeypatch):
    monkeypatch.setattr(config, "DATA_CACHE_DIR", processed["root"] / "cache")
    monkeypatch.setattr(config, "BEDLAM_IMG_DIR", processed["release"]["layout"].images_dir)


def _cache(processed, split: str, family: str, kind: str) -> dict:
    return load_cache(next((processed["root"] / "cache").glob(f"{family}_version_*_split_{split}_{kind}_reduced_*")))


@pytest.mark.parametrize("split", ["train", "val"])
def test_every_step_runs_and_counts_add_up(processed, split):
    stats = processed["stats"][split]
    assert set(stats["seconds"]) == {"people", "fps", "captions", "pairs", "instructions", "caches"}
    assert stats["person_frames"] == sum(stats["rejected"].values()) + stats["kept"]
    assert stats["size"] == min(SIZES[split], stats["kept"])
    assert len(stats["cache_files"]) == 5
    for criterion, failed in stats["failed_criterion"].items():
        assert failed >= stats["rejected"][criterion]
    summary = json.loads(
        (bedlam_config(processed["release"], split, processed["root"]).split_dir / "summary.json").read_text()
    )
    assert summary["kept"] == stats["kept"]
    assert "kept:" in format_summary(stats)


def test_rejections_name_their_reason(processed):
    train = processed["stats"]["train"]
    assert train["rejected"]["motion_ended"] > 0  # the fixture's short motion
    both = [processed["stats"][s]["rejected"] for s in ("train", "val")]
    assert sum(r["overlap"] for r in both) > 0  # people walking behind each other


@pytest.mark.parametrize("split", ["train", "val"])
def test_boxes_joints_and_cameras_match_the_fixture(processed, split, body_model):
    """Tight boxes, in-frame joints, camera-view orientation and translation from BEDLAM's formulas agree with
    the fixture's own derivation (renderer camera, world placement)."""
    truth = processed["release"]["truth"]
    images, poses = (
        _cache(processed, split, "bedlamscript", "images"),
        _cache(processed, split, "bedlamscript", "poses"),
    )
    assert len(images["images"]) == SIZES[split]
    for data_id, source in images["source"].items():
        expected = truth[(source["scene"], source["sequence"], source["body"], source["frame"])]
        assert torch.allclose(torch.tensor(images["tight_bboxes"][data_id]).double(), expected["tight_bbox"], atol=1e-3)
        assert torch.equal(images["joints_in_frame"][data_id], expected["in_frame"])
        cam_rot, transl = images["camera_transformation"][data_id]
        pose = poses["poses"][data_id].clone()
        rotation = axis_angle_to_matrix(cam_rot.double()) @ axis_angle_to_matrix(pose[0].double())
        assert torch.allclose(rotation, expected["root_orientation_camera"], atol=1e-5)
        pose[0] = matrix_to_axis_angle(rotation).float()
        out = body_model(pose[None], betas=poses["shapes"][data_id][None, :10], transl=transl[None])
        assert torch.allclose(out.joints[0, 0].double(), expected["pelvis_camera"], atol=1e-4)
        x1, y1, x2, y2 = images["bboxes"][data_id]
        assert max(x2 - x1, y2 - y1) > 224 and int(images["joints_in_frame"][data_id].sum()) >= 16
    closeups = [i for i, s in images["source"].items() if "closeup" in s["scene"]]
    assert all(images["image_rotation"][i] == (90 if i in closeups else 0) for i in images["images"])
    if split == "train":
        assert closeups


def _person_fraction(crop: torch.Tensor, raw: np.ndarray) -> float:
    """Share of crop pixels unlike the fixture's two backdrop colours (read at the raw frame's corners)."""
    corners = np.stack([raw[0, 0], raw[0, -1], raw[-1, 0], raw[-1, -1]]).astype(np.float32) / 255.0
    pixels = crop.permute(1, 2, 0).reshape(-1, 1, 3).numpy()
    near = (np.abs(pixels - corners[None]).max(-1) < 0.08).any(-1)
    content = crop.reshape(3, -1).sum(0).numpy() > 0  # padding is black
    return float((~near & content).sum() / max(content.sum(), 1))


def test_script_dataset_loads_crops_of_people(processed, bedlam_paths):
    dataset = get_dataset("bedlamscript-overlap30_res224_j16_sf11", "train", item_format="ipt")
    assert len(dataset) == SIZES["train"]
    images = _cache(processed, "train", "bedlamscript", "images")
    closeup = next(i for i, s in images["source"].items() if "closeup" in s["scene"])
    for index in (0, dataset.data_ids.index(closeup)):
        item = dataset[index]
        assert item["images"].shape == (3, 256, 192) and item["poses"].shape == (22, 3)
        assert item["raw_texts"]
        raw = np.asarray(Image.open(config.BEDLAM_IMG_DIR / images["images"][item["data_ids"]]))
        assert _person_fraction(item["images"], raw) > 0.15  # the crop holds a person (close-ups: turned back)


def test_fix_dataset_has_both_pair_kinds(processed, bedlam_paths):
    name = "bedlamfix-overlap30_res224_j16_sf11-in15_out20_t05_sim0709"
    kinds = set()
    for split in ("train", "val"):
        dataset = get_dataset(name, split, item_format="pt")
        assert len(dataset) > 0
        item = dataset[0]
        assert item["poses_A"].shape == (22, 3) and item["poses_B"].shape == (22, 3) and item["raw_texts"]
        kinds |= set(_cache(processed, split, "bedlamfix", "pairs")["sequence_info"].values())
    assert kinds == {"in", "out"}


def test_captions_and_instructions_three_each(processed):
    texts = _cache(processed, "train", "bedlamscript", "rawtexts")["texts"]
    assert all(len(t) == 3 and all(t) for t in texts.values())
    instructions = _cache(processed, "train", "bedlamfix", "rawtexts")["texts"]
    assert all(len(t) == 3 for t in instructions.values()) and any(all(t) for t in instructions.values())


def test_killed_run_resumes_to_identical_caches(processed, bedlam_release, tmp_path):
    """Stopped after one unit, then resumed: the same cache bytes (SIGKILLs of the real command with two
    workers, at 10 random points: tests/reliability/test_kills_data.py)."""
    cfg = bedlam_config(bedlam_release, "train", tmp_path)
    with pytest.raises(InterruptedError):
        process_bedlam(cfg, stop_after_units=1)
    assert len(list((cfg.split_dir / "people").rglob("part_*.pt"))) == 1
    process_bedlam(cfg)
    reference = sorted((processed["root"] / "cache").glob("*_split_train_*"))
    resumed = sorted((tmp_path / "cache").glob("*_split_train_*"))
    assert [p.name for p in resumed] == [p.name for p in reference] and len(reference) == 5
    for a, b in zip(reference, resumed, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name


def test_changed_settings_are_refused_naming_the_step(processed, bedlam_release, capsys):
    cfg = bedlam_config(bedlam_release, "val", processed["root"], fps_size=SIZES["val"] - 1)
    with pytest.raises(ValueError, match=r"fps was made with other settings \(fps_size\)"):
        process_bedlam(cfg)


def test_train_core_one_epoch_on_the_processed_dataset(processed, bedlam_paths, tmp_path):
    from poseembroider import train_core
    from tiny_models import make_core_encoders

    texts = [
        t
        for s in ("train", "val")
        for caps in _cache(processed, s, "bedlamscript", "rawtexts")["texts"].values()
        for t in caps
    ]
    enc = make_core_encoders(tmp_path / "encoders", texts)
    args = [
        "--dataset",
        "bedlamscript-overlap30_res224_j16_sf11",
        "--model",
        "PoseEmbroider",
        "--image_encoder_name",
        enc["image"],
        "--pose_encoder_name",
        enc["pose"],
        "--text_encoder_name",
        enc["text"],
        "--latentD",
        "16",
        "--core_width",
        "8",
        "--core_heads",
        "2",
        "--core_ff",
        "16",
        "--l2normalize",
        "--single_partials",
        "--dual_partials",
        "--batch_size",
        "8",
        "--epochs",
        "1",
        "--val_every",
        "1",
        "--no_img_augmentation",
        "--no_progress",
        "--no_tensorboard",
        "--output_dir",
        str(tmp_path / "run"),
        "--shortname",
        "",
    ]
    assert train_core.main(args) == 0
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert any("train/loss" in r for r in records) and any("val/mRecall" in r for r in records)


def test_torchrun_shards_make_the_same_caches(processed, bedlam_release, tmp_path, monkeypatch):
    """Two ranks take alternate units of step 'people' (faked ranks, no process group), rank 0 the rest: the
    caches of a single process."""
    from poseembroider.datasets.process_bedlam import pipeline

    cfg = bedlam_config(bedlam_release, "train", tmp_path)
    monkeypatch.setattr(pipeline, "get_world_size", lambda: 2)
    monkeypatch.setattr(pipeline, "get_rank", lambda: 1)
    assert process_bedlam(cfg) == {
        "split": "train",
        "script_dataset": cfg.script_name,
        "fix_dataset": cfg.fix_name,
        "units": len(pipeline.unit_plan(cfg)),
    }  # rank 1 stops after its units
    done = sorted(p.name for p in (cfg.split_dir / "people").rglob("part_*.pt"))
    assert 0 < len(done) < len(pipeline.unit_plan(cfg))
    monkeypatch.setattr(pipeline, "get_rank", lambda: 0)
    process_bedlam(cfg)
    for reference in sorted((processed["root"] / "cache").glob("*_split_train_*")):
        assert (tmp_path / "cache" / reference.name).read_bytes() == reference.read_bytes()


def test_similarity_window_reads_the_named_models_features(processed, bedlam_release, tmp_path):
    """--similarity-model: the out-of-sequence window reads the given pose features. Features equal for every
    pose put every similarity at 1, above the 0.7-0.9 window: no out-of-sequence pair; in-sequence pairs stay."""
    cfg = bedlam_config(bedlam_release, "train", tmp_path, similarity_model="constant")
    with pytest.raises(ValueError, match="similarity-model constant: pass its pose features"):
        process_bedlam(cfg, steps=["people", "fps", "pairs"])  # refused before any work
    assert not (tmp_path / "work").exists()
    constant = lambda poses: torch.ones(len(poses), 4)  # noqa: E731
    stats = process_bedlam(cfg, steps=["people", "fps", "pairs"], similarity_features=constant)
    assert stats["pairs_out_of_sequence"] == 0
    assert stats["pairs_in_sequence"] == processed["stats"]["train"]["pairs_in_sequence"] > 0
    with pytest.raises(ValueError, match=r"pairs was made with other settings \(similarity_model\)"):
        process_bedlam(replace(cfg, similarity_model="other"), steps=["pairs"], similarity_features=torch.ones_like)
