"""BEDLAM's files read as the release ships them; bad files fail naming the file and the column or key."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from poseembroider.datasets.process_bedlam import camera as bedlam_camera
from poseembroider.datasets.process_bedlam.fixture import _aim, _unreal, opencv_world_rotation
from poseembroider.datasets.process_bedlam.layout import (
    BEDLAM_SCENES,
    BedlamInputError,
    BedlamLayout,
    SceneEntry,
    list_frames,
    read_be_seq,
    read_camera_csv,
    read_motion,
    read_scene_table,
)

BE_SEQ = """Index,Type,Body,X,Y,Z,Yaw,Pitch,Roll,Comment
0,Group,,0,0,0,0,0,0,sequence_name=seq_000000;seq_len=40
1,Body,rp_aaron_posed_002_1234,100.5,-20,0,45,0,0,start_frame=7;texture_body=a;texture_clothing=b
2,Body,rp_bea_99,0,300,0,-90,0,0,start_frame=0;texture_body=a
3,Group,,0,0,0,0,0,0,sequence_name=seq_000001;seq_len=10
"""


def test_scene_table_is_bedlams_thirty_folders():
    assert len(BEDLAM_SCENES) == 30
    assert sum(s.split == "val" for s in BEDLAM_SCENES) == 4
    assert {s.name for s in BEDLAM_SCENES if s.fps == 30} == {
        "static-office-hair",
        "zoom-suburbd-hair",
        "static-gym-hair",
    }
    assert sum(s.closeup for s in BEDLAM_SCENES) == 7


def test_scene_table_file(tmp_path):
    path = tmp_path / "scenes.csv"
    path.write_text("folder,name,split,fps\nf1,closeup-x,train,6\nf2,static-y,val,30\n")
    scenes = read_scene_table(path)
    assert scenes == (SceneEntry("f1", "closeup-x", "train", 6), SceneEntry("f2", "static-y", "val", 30))
    path.write_text("folder,name,split,fps\nf1,x,test,6\n")
    with pytest.raises(BedlamInputError, match=r"scenes.csv, line 2, column 'split'"):
        read_scene_table(path)


def test_be_seq_groups_and_bodies(tmp_path):
    path = tmp_path / "be_seq.csv"
    path.write_text(BE_SEQ)
    groups = read_be_seq(path)
    assert [g.sequence for g in groups] == ["seq_000000", "seq_000001"]
    first, second = groups[0].bodies
    assert (first.subject, first.motion, first.start_frame) == ("rp_aaron_posed_002", "1234", 7)
    assert (first.x, first.y, first.yaw) == (100.5, -20.0, 45.0)
    assert (second.subject, second.motion) == ("rp_bea", "99")
    assert groups[1].bodies == ()


def test_be_seq_with_other_columns_names_the_file_and_columns(tmp_path):
    path = tmp_path / "be_seq.csv"
    path.write_text(BE_SEQ.replace("Yaw,", "Heading,", 1))
    with pytest.raises(BedlamInputError, match=r"be_seq.csv: missing column\(s\) \['Yaw'\]"):
        read_be_seq(path)


def test_be_seq_bad_value_names_line_and_column(tmp_path):
    path = tmp_path / "be_seq.csv"
    path.write_text(BE_SEQ.replace("100.5", "abc"))
    with pytest.raises(BedlamInputError, match=r"line 3, column 'X'"):
        read_be_seq(path)


def test_camera_csv(tmp_path):
    path = tmp_path / "seq_000000_camera.csv"
    path.write_text("name,x,y,z,yaw,pitch,roll,focal_length\na,1,2,3,4,5,6,50\nb,1,2,3,4,5,6,51\n")
    track = read_camera_csv(path)
    assert len(track) == 2 and track.focal_length.tolist() == [50.0, 51.0]
    path.write_text("name,x,y,z,yaw,pitch,roll\na,1,2,3,4,5,6\n")
    with pytest.raises(BedlamInputError, match=r"seq_000000_camera.csv: missing column\(s\) \['focal_length'\]"):
        read_camera_csv(path)


def _motion(path, **arrays):
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)


def test_motion_file_keys(tmp_path):
    path = tmp_path / "motion_seq.npz"
    _motion(path, poses=np.zeros((5, 165)), trans=np.zeros((5, 3)), betas=np.zeros(11), gender_sub=np.array("male"))
    motion = read_motion(path)
    assert len(motion) == 5 and motion.betas.shape == (11,)
    _motion(path, poses=np.zeros((5, 165)), betas=np.zeros(11))
    with pytest.raises(BedlamInputError, match=r"motion_seq.npz: missing key\(s\) \['trans'\]"):
        read_motion(path)
    _motion(path, poses=np.zeros((5, 66)), trans=np.zeros((5, 3)), betas=np.zeros(11))
    with pytest.raises(BedlamInputError, match=r"key 'poses': expected shape \(T, 165\), got \(5, 66\)"):
        read_motion(path)
    path.write_bytes(b"not an npz")
    with pytest.raises(BedlamInputError, match="not a readable npz"):
        read_motion(path)


def test_frame_numbers_from_image_names(tmp_path):
    folder = tmp_path / "seq_000000"
    folder.mkdir()
    for n in (0, 5, 10):
        (folder / f"seq_000000_{n:04d}.png").touch()
    (folder / "notes.txt").touch()
    assert sorted(list_frames(folder, 6)) == [0, 5, 10]
    renumbered = tmp_path / "renumbered"
    renumbered.mkdir()
    for n in (0, 1, 2):
        (renumbered / f"seq_000000_{n:04d}.jpg").touch()
    assert sorted(list_frames(renumbered, 6)) == [0, 5, 10]  # a 6 fps folder numbered 0, 1, 2: frames 0, 5, 10
    assert sorted(list_frames(renumbered, 30)) == [0, 1, 2]
    (renumbered / "cover.png").touch()
    with pytest.raises(BedlamInputError, match="cover.png: image name without a frame number"):
        list_frames(renumbered, 6)


def test_missing_scene_folder_is_named(tmp_path):
    with pytest.raises(BedlamInputError, match=r"scene folder not found: .*images/20221010_3_1000_batch01hand"):
        BedlamLayout(tmp_path).scene(BEDLAM_SCENES[0])


def test_intrinsics_landscape_and_closeup():
    k = bedlam_camera.intrinsics(torch.tensor([36.0]), closeup=False)[0]
    assert k[0, 0] == pytest.approx(1280.0) and k[1, 1] == pytest.approx(1280.0)
    assert (k[0, 2], k[1, 2]) == (640.0, 360.0)
    k = bedlam_camera.intrinsics(torch.tensor([36.0]), closeup=True)[0]
    assert k[0, 0] == pytest.approx(36 / 20.25 * 720) and (k[0, 2], k[1, 2]) == (360.0, 640.0)


@pytest.mark.parametrize("closeup", [False, True])
def test_camera_aimed_by_the_fixture_sees_its_target(closeup):
    """The fixture's inversion (world point -> Unreal angles) and the pipeline's camera model agree: the
    target projects onto the principal point, whatever the roll."""
    eye, target = np.array([1.0, 1.6, 4.0]), np.array([-0.5, 0.9, -1.0])
    yaw, pitch = _aim(eye, target)
    roll = 90.0 if closeup else 7.0
    m, t = bedlam_camera.body_to_camera(
        tuple(_unreal(target)),
        0.0,
        torch.tensor(_unreal(eye))[None],
        torch.tensor([yaw]),
        torch.tensor([pitch]),
        torch.tensor([roll]),
        closeup,
    )
    k = bedlam_camera.intrinsics(torch.tensor([30.0]), closeup)
    uv, front = bedlam_camera.project(t[:, None], k)
    assert front.all()
    assert torch.allclose(uv[0, 0], k[0, :2, 2], atol=1e-6)
    assert np.allclose(
        opencv_world_rotation(yaw, pitch, roll, closeup),
        bedlam_camera.world_to_camera_rotation(
            torch.tensor([yaw]), torch.tensor([pitch]), torch.tensor([roll]), closeup
        )[0][0].numpy(),
    )
    # looking down is a negative Unreal pitch
    assert pitch < 0 and math.isfinite(yaw)
