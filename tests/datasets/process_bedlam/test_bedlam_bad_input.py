"""Bad BEDLAM input: an error naming the file and the column or key, or a logged skip with a count."""

from __future__ import annotations

import logging
import shutil

import pytest

from conftest import bedlam_config
from poseembroider.cli import main as cli_main
from poseembroider.datasets.process_bedlam.fixture import FIXTURE_SCENES, FixtureConfig, build_fixture
from poseembroider.datasets.process_bedlam.layout import BedlamInputError
from poseembroider.datasets.process_bedlam.pipeline import process_bedlam

pytestmark = pytest.mark.usefixtures("one_torch_thread")
SMALL = FixtureConfig(
    scenes=FIXTURE_SCENES[2:],
    sequences_per_scene=1,
    bodies_per_sequence=(2, 2),
    frames=15,
    render=False,
    short_motion=False,
)


@pytest.fixture
def release(tmp_path, body_model, procedural_model_file) -> dict:
    made = build_fixture(tmp_path / "release", body_model, SMALL)
    return {**made, "model_file": procedural_model_file.parent.parent}


def _scene_folder(release):
    return release["layout"].images_dir / FIXTURE_SCENES[2].folder


def test_unreadable_frame_is_skipped_and_counted(release, tmp_path, caplog):
    frames = sorted((_scene_folder(release) / "png" / "seq_000000").glob("*.png"))
    frames[1].write_bytes(b"truncated")
    with caplog.at_level(logging.WARNING):
        stats = process_bedlam(bedlam_config(release, "val", tmp_path, fps_size=4), steps=["people"])
    assert stats["rejected"]["frame_unreadable"] == 2  # both bodies of that frame
    assert stats["person_frames"] == 2 * len(frames)
    assert "1 unreadable or wrongly sized frame(s), skipped" in caplog.text and frames[1].name in caplog.text


def test_missing_scene_folder_names_it(release, tmp_path, capsys):
    shutil.rmtree(_scene_folder(release))
    args = [
        "data",
        "process-bedlam",
        "--bedlam-root",
        str(release["root"]),
        "--split",
        "val",
        "--scene-table",
        str(release["scene_table"]),
        "--work-dir",
        str(tmp_path / "work"),
        "--cache-dir",
        str(tmp_path / "c"),
    ]
    assert cli_main(args) == 2
    assert f"scene folder not found: {_scene_folder(release)}" in capsys.readouterr().err


def test_csv_with_other_columns_names_file_and_column(release, tmp_path):
    path = _scene_folder(release) / "be_seq.csv"
    path.write_text(path.read_text().replace("Comment", "Notes", 1))
    with pytest.raises(BedlamInputError, match=r"be_seq.csv: missing column\(s\) \['Comment'\]"):
        process_bedlam(bedlam_config(release, "val", tmp_path))


def test_motion_file_without_a_key_names_file_and_key(release, tmp_path):
    import numpy as np

    motion = next(release["layout"].motion_dir.rglob("motion_seq.npz"))
    with np.load(motion) as data:
        arrays = {k: data[k] for k in data.files if k != "betas"}
    with open(motion, "wb") as handle:
        np.savez(handle, **arrays)
    with pytest.raises(BedlamInputError, match=rf"{motion}: missing key\(s\) \['betas'\]"):
        process_bedlam(bedlam_config(release, "val", tmp_path))


def test_30fps_folder_sampled_every_fifth_frame_and_short_camera_track_counted(
    tmp_path, body_model, procedural_model_file
):
    from dataclasses import replace

    from poseembroider.datasets.process_bedlam.layout import SceneEntry

    scene = SceneEntry("20221024_3-10_100_batch01handhair_static_highSchoolGym", "static-gym-hair", "val", 30)
    made = build_fixture(tmp_path / "release", body_model, replace(SMALL, scenes=(scene,)))
    release = {**made, "model_file": procedural_model_file.parent.parent}
    folder = release["layout"].images_dir / scene.folder
    assert len(list((folder / "png" / "seq_000000").glob("*.png"))) == 15  # every 30 fps frame is there
    stats = process_bedlam(bedlam_config(release, "val", tmp_path / "a"), steps=["people"])
    assert stats["person_frames"] == 2 * 3  # frames 0, 5, 10 of both bodies
    every = process_bedlam(bedlam_config(release, "val", tmp_path / "b", sample_fps=30), steps=["people"])
    assert every["person_frames"] == 2 * 15
    camera = folder / "ground_truth" / "camera" / "seq_000000_camera.csv"
    camera.write_text("".join(camera.read_text().splitlines(keepends=True)[:8]))  # header + frames 0-6
    short = process_bedlam(bedlam_config(release, "val", tmp_path / "c"), steps=["people"])
    assert short["rejected"]["no_camera_row"] == 2  # frame 10 of both bodies
