"""End-to-end generation of a tiny synthetic script + fix dataset, and its resume path."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch.utils.data import DataLoader

from poseembroider import config
from poseembroider.cli import main
from poseembroider.datasets.cache_format import load_cache
from poseembroider.datasets.registry import get_dataset
from poseembroider.datasets.synthetic.generate import SynthConfig, generate_synth, image_root

pytestmark = pytest.mark.render


def _config(root=None, **kwargs) -> SynthConfig:
    dirs = {} if root is None else {"synth_root": root / "synth", "cache_dir": root / "cache"}
    return SynthConfig(
        name="tiny", n_train=20, n_val=8, seed=3, workers=1, pool_factor=2.0, chunk_size=8, **dirs, **kwargs
    )


@pytest.fixture(scope="module")
def generated(procedural_model_file):
    cfg = _config(body_model_file=procedural_model_file)
    return cfg, generate_synth(cfg)


def test_names_follow_the_original_scheme(generated):
    cfg, stats = generated
    assert stats["script_dataset"] == "synthscript-tiny_overlap30_res224_j16_sf11"
    assert stats["fix_dataset"] == "synthfix-tiny_overlap30_res224_j16_sf11-in15_out20_t05_sim0709"
    assert {s: v["size"] for s, v in stats["splits"].items()} == {"train": 20, "val": 8}


@pytest.mark.parametrize("split", ["train", "val"])
def test_dataloader_with_two_workers_iterates_each_split(generated, split):
    cfg, _ = generated
    dataset = get_dataset(cfg.script_name, split, item_format="ipt", caption_selection="rand")
    n = 0
    for batch in DataLoader(dataset, batch_size=8, num_workers=2):
        b = batch["images"].shape[0]
        assert batch["images"].shape == (b, 3, 256, 192) and batch["images"].dtype == torch.float32
        assert batch["poses"].shape == (b, 22, 3) and batch["poses"].dtype == torch.float32
        assert batch["shapes"].shape == (b, 10) and batch["cam_rot"].shape == (b, 3)
        assert batch["data_ids"].dtype == torch.int64
        assert all(isinstance(t, str) and t for t in batch["raw_texts"])
        n += b
    assert n == cfg.size(split)


def test_images_are_person_crops_with_visible_joints(generated):
    cfg, _ = generated
    images = load_cache(next(cfg.cache_dir.glob("synthscript_version_tiny_*_split_train_images_*.pt")), "images")
    assert len(images["images"]) == 20
    in_frame = torch.stack(list(images["joints_in_frame"].values()))
    assert in_frame.float().mean() > 0.8  # j16 criterion: most joints in frame
    for rel in list(images["images"].values())[:3]:
        assert (image_root(cfg) / rel).stat().st_size > 2000


def test_three_captions_per_pose(generated):
    cfg, _ = generated
    texts = load_cache(next(cfg.cache_dir.glob("synthscript_version_tiny_*_split_train_rawtexts_*.pt")), "rawtexts")
    assert len(texts["texts"]) == 20
    assert all(len(t) == 3 and all(t) for t in texts["texts"].values())


def test_killed_run_resumes_to_the_same_dataset(generated, tmp_path, procedural_model_file):
    """Interrupt after one rendered chunk, resume with another worker count: same files as uninterrupted."""
    reference_cfg, _ = generated
    cfg = replace(_config(tmp_path, body_model_file=procedural_model_file))
    with pytest.raises(InterruptedError):
        generate_synth(cfg, stop_after_chunks=1)
    assert len(list((image_root(cfg) / "images" / "train").glob("*.jpg"))) == 8
    generate_synth(replace(cfg, workers=2))
    for reference in sorted(reference_cfg.cache_dir.glob("synth*_version_tiny_*.pt")):
        resumed = torch.load(cfg.cache_dir / reference.name, weights_only=True)
        expected = torch.load(reference, weights_only=True)
        assert _equal(resumed, expected), reference.name
    for image in sorted((image_root(reference_cfg) / "images").rglob("*.jpg")):
        twin = image_root(cfg) / image.relative_to(image_root(reference_cfg))
        assert twin.read_bytes() == image.read_bytes(), image.name


def _equal(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    return a == b


def test_cli_rejects_bad_arguments(capsys):
    assert main(["data", "synth", "--name", "Bad-Name", "--n-train", "4", "--n-val", "0"]) == 2
    assert "--name 'Bad-Name'" in capsys.readouterr().err
    assert main(["data", "synth", "--name", "ok", "--n-train", "0", "--n-val", "0"]) == 2
    assert config.DATA_CACHE_DIR  # nothing was generated for invalid arguments


def test_dataset_cam_rot_acts_on_the_z_up_pose_like_the_stored_one_on_the_y_up_pose(generated):
    """The loader moves poses to the z-up model frame; its cam_rot must still give the camera view."""
    from poseembroider.geometry import axis_angle_to_matrix

    cfg, _ = generated
    dataset = get_dataset(cfg.script_name, "val", item_format="ip")
    images = load_cache(next(cfg.cache_dir.glob("synthscript_version_tiny_*_split_val_images_*.pt")), "images")
    poses = load_cache(next(cfg.cache_dir.glob("synthscript_version_tiny_*_split_val_poses_*.pt")), "poses")
    for index in range(4):
        item = dataset[index]
        data_id = item["data_ids"]
        stored_cam_rot = images["camera_transformation"][data_id][0]
        camera_view = axis_angle_to_matrix(stored_cam_rot) @ axis_angle_to_matrix(poses["poses"][data_id][0])
        from_item = axis_angle_to_matrix(item["cam_rot"]) @ axis_angle_to_matrix(item["poses"][0])
        torch.testing.assert_close(from_item, camera_view, atol=1e-5, rtol=0)


def test_resuming_with_other_settings_is_refused(generated):
    cfg, _ = generated
    with pytest.raises(ValueError, match=r"made with other settings \(pool_factor\)"):
        generate_synth(replace(cfg, pool_factor=2.5))
