"""BEDLAM's own files, read as the release ships them: the scene table, `be_seq.csv`, the per-sequence
camera csv, the neutral SMPL-X ground-truth motion files and the image folders.

Layout under `--bedlam-root ROOT` (BEDLAM's download scripts and `df_full_body.py` defaults)::

    ROOT/images/<scene folder>/be_seq.csv                           one row per sequence group and per body
    ROOT/images/<scene folder>/ground_truth/camera/<seq>_camera.csv one row per 30 fps frame
    ROOT/images/<scene folder>/png/<seq>/<seq>_<frame>.png          the frames (30 fps or 6 fps folders)
    ROOT/smplx_gt/neutral_ground_truth_motioninfo/<subject>/<motion>/motion_seq.npz

The 6 fps image folders may also sit beside the 30 fps ones as `<scene folder>_6fps/png/...`: the first of
`<folder>/png` and `<folder>_6fps/png` that exists is used (`SceneFiles.png_dir`).

`be_seq.csv` (columns `Index, Type, Body, X, Y, Z, Yaw, Pitch, Roll, Comment`): a row whose comment holds
`sequence_name=<seq>` opens a sequence group (one camera, one image folder); each following row whose comment
holds `start_frame=<k>` is a body of that group: `Body` = `<subject>_<motion>` (the subject name may hold
'_': the motion id is the last part), X, Y, Z its placement in Unreal units (cm, x forward, y right, z up),
Yaw its heading in degrees, and the motion file frame `start_frame + f` plays at image frame f.

The camera csv has at least `x, y, z, yaw, pitch, roll, focal_length` (cm, degrees, mm), row f = frame f.
A motion file holds `poses` (T, 165) SMPL-X axis-angles (global, body, jaw, eyes, hands) in a y-up frame,
`trans` (T, 3) metres, `betas` (11,) (the 11th: the kid blend) and `gender_sub`.

Frame numbers come from the image names (`<seq>_<number>.<ext>`). A 6 fps folder whose numbers are not all
multiples of 5 is taken as renumbered (file k = 30 fps frame 5k); the choice is logged per folder.

Every reader names the file (and the column or key) at fault in a `BedlamInputError`.
"""

from __future__ import annotations

import csv
import logging
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

__all__ = [
    "BE_SEQ_COLUMNS",
    "BEDLAM_SCENES",
    "CAMERA_COLUMNS",
    "MOTION_KEYS",
    "BedlamInputError",
    "BedlamLayout",
    "BodyEntry",
    "CameraTrack",
    "Motion",
    "SceneEntry",
    "SceneFiles",
    "SequenceGroup",
    "list_frames",
    "read_be_seq",
    "read_camera_csv",
    "read_motion",
    "read_scene_table",
]

BE_SEQ_COLUMNS: tuple[str, ...] = ("Index", "Type", "Body", "X", "Y", "Z", "Yaw", "Pitch", "Roll", "Comment")
"""Columns of `be_seq.csv`."""
CAMERA_COLUMNS: tuple[str, ...] = ("x", "y", "z", "yaw", "pitch", "roll", "focal_length")
"""Columns of `ground_truth/camera/<seq>_camera.csv` that the pipeline reads (others are ignored)."""
MOTION_KEYS: tuple[str, ...] = ("poses", "trans", "betas")
"""Keys of `motion_seq.npz` that the pipeline reads."""
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


class BedlamInputError(ValueError):
    """A BEDLAM file that is missing or does not hold what the release holds (the message names it)."""


@dataclass(frozen=True)
class SceneEntry:
    """One scene folder of the release: its folder name, BEDLAM's scene name, our split and the frame rate
    of its image folder. Close-up scenes (name containing 'closeup') were rendered with the camera rolled by
    90 degrees: their frames are stored landscape and turned 90 degrees clockwise before use."""

    folder: str
    name: str
    split: str
    fps: int

    @property
    def closeup(self) -> bool:
        return "closeup" in self.name


_VAL_SCENES = ("zoom-suburbb-frameocc", "static-hdri-frameocc", "orbit-archviz-objocc", "orbit-stadium-bmi")
_HAIR_SCENES = ("static-office-hair", "zoom-suburbd-hair", "static-gym-hair")  # image folders only at 30 fps
_FOLDERS = (
    ("20221010_3_1000_batch01hand", "static-hdri"),
    ("20221010_3-10_500_batch01hand_zoom_suburb_d", "zoom-suburbd"),
    ("20221011_1_250_batch01hand_closeup_suburb_a", "closeup-suburba"),
    ("20221011_1_250_batch01hand_closeup_suburb_b", "closeup-suburbb"),
    ("20221011_1_250_batch01hand_closeup_suburb_c", "closeup-suburbc"),
    ("20221011_1_250_batch01hand_closeup_suburb_d", "closeup-suburbd"),
    ("20221012_1_500_batch01hand_closeup_highSchoolGym", "closeup-gym"),
    ("20221012_3-10_500_batch01hand_zoom_highSchoolGym", "zoom-gym"),
    ("20221013_3-10_500_batch01hand_static_highSchoolGym", "static-gym"),
    ("20221013_3_250_batch01hand_static_bigOffice", "static-office"),
    ("20221013_3_250_batch01hand_orbit_bigOffice", "orbit-office"),
    ("20221014_3_250_batch01hand_orbit_archVizUI3_time15", "orbit-archviz-15"),
    ("20221015_3_250_batch01hand_orbit_archVizUI3_time19", "orbit-archviz-19"),
    ("20221015_3_250_batch01hand_orbit_archVizUI3_time12", "orbit-archviz-12"),
    ("20221015_3_250_batch01hand_orbit_archVizUI3_time10", "orbit-archviz-10"),
    ("20221017_3_1000_batch01hand", "static-hdri-zoomed"),
    ("20221018_1_250_batch01hand_zoom_suburb_b", "zoom-suburbb-frameocc"),
    ("20221018_3-8_250_batch01hand", "static-hdri-frameocc"),
    ("20221018_3_250_batch01hand_orbit_archVizUI3_time15", "orbit-archviz-objocc"),
    ("20221018_3-8_250_batch01hand_pitchUp52_stadium", "pitchup-stadium"),
    ("20221018_3-8_250_batch01hand_pitchDown52_stadium", "pitchdown-stadium"),
    ("20221019_3_250_highbmihand", "static-hdri-bmi"),
    ("20221019_1_250_highbmihand_closeup_suburb_b", "closeup-suburbb-bmi"),
    ("20221019_1_250_highbmihand_closeup_suburb_c", "closeup-suburbc-bmi"),
    ("20221019_3-8_250_highbmihand_orbit_stadium", "orbit-stadium-bmi"),
    ("20221019_3-8_1000_highbmihand_static_suburb_d", "static-suburbd-bmi"),
    ("20221020-3-8_250_highbmihand_zoom_highSchoolGym_a", "zoom-gym-bmi"),
    ("20221022_3_250_batch01handhair_static_bigOffice", "static-office-hair"),
    ("20221024_10_100_batch01handhair_zoom_suburb_d", "zoom-suburbd-hair"),
    ("20221024_3-10_100_batch01handhair_static_highSchoolGym", "static-gym-hair"),
)
BEDLAM_SCENES: tuple[SceneEntry, ...] = tuple(
    SceneEntry(folder, name, "val" if name in _VAL_SCENES else "train", 30 if name in _HAIR_SCENES else 6)
    for folder, name in _FOLDERS
)
"""The 30 scene folders the original uses (26 training, 4 validation; BEDLAM's `bedlam_scene_names.csv`)."""

SCENE_TABLE_COLUMNS = ("folder", "name", "split", "fps")


def read_scene_table(path: Path | None = None) -> tuple[SceneEntry, ...]:
    """`BEDLAM_SCENES`, or a csv with columns folder, name, split (train|val), fps (6|30) (`--scene-table`)."""
    if path is None:
        return BEDLAM_SCENES
    rows = _read_csv(Path(path), SCENE_TABLE_COLUMNS)
    scenes = []
    for line, row in enumerate(rows, start=2):
        if row["split"] not in ("train", "val"):
            raise BedlamInputError(f"{path}, line {line}, column 'split': expected train or val, got {row['split']!r}")
        fps = _number(row["fps"], path, line, "fps")
        if fps not in (6, 30):
            raise BedlamInputError(f"{path}, line {line}, column 'fps': expected 6 or 30, got {row['fps']!r}")
        scenes.append(SceneEntry(row["folder"], row["name"], row["split"], int(fps)))
    return tuple(scenes)


@dataclass(frozen=True)
class BedlamLayout:
    """Where the parts of a BEDLAM release are (defaults: BEDLAM's download layout under `root`)."""

    root: Path
    images_dir: Path | None = None  # default root/images: the scene folders (also the image root of the caches)
    motion_dir: Path | None = None  # default root/smplx_gt/neutral_ground_truth_motioninfo

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))
        if self.images_dir is None:
            object.__setattr__(self, "images_dir", self.root / "images")
        if self.motion_dir is None:
            object.__setattr__(self, "motion_dir", self.root / "smplx_gt" / "neutral_ground_truth_motioninfo")

    def scene(self, entry: SceneEntry) -> SceneFiles:
        """The files of one scene; a missing scene folder raises naming the folder looked for."""
        assert self.images_dir is not None
        folder = self.images_dir / entry.folder
        if not folder.is_dir():
            raise BedlamInputError(
                f"scene folder not found: {folder} (scene {entry.name!r}, split {entry.split}); "
                "untar the scene's images and ground truth there, or list the scenes you have with --scene-table"
            )
        return SceneFiles(entry, folder, self.images_dir)

    def motion_file(self, subject: str, motion: str) -> Path:
        assert self.motion_dir is not None
        return self.motion_dir / subject / motion / "motion_seq.npz"


@dataclass(frozen=True)
class SceneFiles:
    """The files of one scene folder."""

    entry: SceneEntry
    folder: Path
    images_dir: Path

    @property
    def be_seq(self) -> Path:
        return self.folder / "be_seq.csv"

    def camera_csv(self, sequence: str) -> Path:
        return self.folder / "ground_truth" / "camera" / f"{sequence}_camera.csv"

    @property
    def png_dir(self) -> Path:
        for candidate in (self.folder / "png", self.folder.with_name(self.folder.name + "_6fps") / "png"):
            if candidate.is_dir():
                return candidate
        raise BedlamInputError(
            f"no image folder for scene {self.entry.name!r}: looked for {self.folder / 'png'} and "
            f"{self.folder.with_name(self.folder.name + '_6fps') / 'png'}"
        )


# ------------------------------------------------------------------------------------------------ csv


def _read_csv(path: Path, required: Sequence[str]) -> list[dict[str, str]]:
    """Rows of a csv as dicts; its header must hold every `required` column (the error names the others)."""
    if not path.is_file():
        raise BedlamInputError(f"file not found: {path}")
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = [name.strip() for name in (reader.fieldnames or [])]
        missing = [name for name in required if name not in header]
        if missing:
            raise BedlamInputError(
                f"{path}: missing column(s) {missing}; it has {header} (expected at least {list(required)})"
            )
        return [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in reader]


def _number(text: str, path: Path, line: int, column: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise BedlamInputError(f"{path}, line {line}, column {column!r}: expected a number, got {text!r}") from None
    if not np.isfinite(value):
        raise BedlamInputError(f"{path}, line {line}, column {column!r}: expected a finite number, got {text!r}")
    return value


def _comment_fields(comment: str) -> dict[str, str]:
    """`key=value;key=value` -> {key: value}."""
    fields = {}
    for part in comment.split(";"):
        key, sep, value = part.partition("=")
        if sep:
            fields[key.strip()] = value.strip()
    return fields


@dataclass(frozen=True)
class BodyEntry:
    """A body of a sequence group: `body` = '<subject>_<motion>', placement in Unreal units (cm, degrees)."""

    body: str
    subject: str
    motion: str
    start_frame: int
    x: float
    y: float
    z: float
    yaw: float


@dataclass(frozen=True)
class SequenceGroup:
    """A sequence group of `be_seq.csv`: one camera track and image folder `<seq>`, several bodies."""

    sequence: str
    bodies: tuple[BodyEntry, ...]


def read_be_seq(path: Path) -> list[SequenceGroup]:
    """The sequence groups of a scene's `be_seq.csv`, in file order (bodies in file order)."""
    path = Path(path)
    rows = _read_csv(path, BE_SEQ_COLUMNS)
    groups: list[tuple[str, list[BodyEntry]]] = []
    for line, row in enumerate(rows, start=2):
        fields = _comment_fields(row["Comment"])
        if "sequence_name" in fields:
            groups.append((fields["sequence_name"], []))
        elif "start_frame" in fields:
            if not groups:
                raise BedlamInputError(f"{path}, line {line}: a body row before any 'sequence_name=' row")
            body = row["Body"]
            subject, sep, motion = body.rpartition("_")
            if not sep or not subject or not motion:
                raise BedlamInputError(
                    f"{path}, line {line}, column 'Body': expected '<subject>_<motion>', got {body!r}"
                )
            start = _number(fields["start_frame"], path, line, "Comment: start_frame")
            groups[-1][1].append(
                BodyEntry(
                    body=body,
                    subject=subject,
                    motion=motion,
                    start_frame=int(start),
                    x=_number(row["X"], path, line, "X"),
                    y=_number(row["Y"], path, line, "Y"),
                    z=_number(row["Z"], path, line, "Z"),
                    yaw=_number(row["Yaw"], path, line, "Yaw"),
                )
            )
    return [SequenceGroup(name, tuple(bodies)) for name, bodies in groups]


@dataclass(frozen=True)
class CameraTrack:
    """Per-frame camera of a sequence: positions (F, 3) in cm (Unreal x, y, z), yaw, pitch, roll (F,)
    degrees, focal_length (F,) mm; row f is frame f at 30 fps."""

    path: Path
    position: np.ndarray
    yaw: np.ndarray
    pitch: np.ndarray
    roll: np.ndarray
    focal_length: np.ndarray

    def __len__(self) -> int:
        return len(self.yaw)


def read_camera_csv(path: Path) -> CameraTrack:
    path = Path(path)
    rows = _read_csv(path, CAMERA_COLUMNS)
    if not rows:
        raise BedlamInputError(f"{path}: no camera row")
    table = {
        column: np.array([_number(r[column], path, line, column) for line, r in enumerate(rows, start=2)])
        for column in CAMERA_COLUMNS
    }
    if (table["focal_length"] <= 0).any():
        line = int(np.flatnonzero(table["focal_length"] <= 0)[0]) + 2
        raise BedlamInputError(f"{path}, line {line}, column 'focal_length': expected a positive focal length (mm)")
    return CameraTrack(
        path,
        np.stack([table["x"], table["y"], table["z"]], axis=1),
        table["yaw"],
        table["pitch"],
        table["roll"],
        table["focal_length"],
    )


# ------------------------------------------------------------------------------------------------ motion


@dataclass(frozen=True)
class Motion:
    """A neutral SMPL-X ground-truth motion: poses (T, 165), trans (T, 3), betas (11,) float64."""

    path: Path
    poses: np.ndarray
    trans: np.ndarray
    betas: np.ndarray

    def __len__(self) -> int:
        return len(self.poses)


def read_motion(path: Path) -> Motion:
    """Read `motion_seq.npz` without unpickling (`allow_pickle=False`: the arrays we read are numeric)."""
    path = Path(path)
    if not path.is_file():
        raise BedlamInputError(f"motion file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [key for key in MOTION_KEYS if key not in data.files]
            if missing:
                raise BedlamInputError(f"{path}: missing key(s) {missing}; it has {sorted(data.files)}")
            arrays = {key: np.asarray(data[key], dtype=np.float64) for key in MOTION_KEYS}
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        if isinstance(err, BedlamInputError):
            raise
        raise BedlamInputError(f"{path}: not a readable npz file ({type(err).__name__}: {err})") from None
    poses, trans, betas = arrays["poses"], arrays["trans"], arrays["betas"].reshape(-1)
    if poses.ndim != 2 or poses.shape[1] != 165:
        raise BedlamInputError(f"{path}, key 'poses': expected shape (T, 165), got {poses.shape}")
    if trans.shape != (len(poses), 3):
        raise BedlamInputError(f"{path}, key 'trans': expected shape ({len(poses)}, 3), got {trans.shape}")
    if not 10 <= len(betas) <= 16:
        raise BedlamInputError(f"{path}, key 'betas': expected 10 or 11 shape coefficients, got {len(betas)}")
    for key, value in (("poses", poses), ("trans", trans), ("betas", betas)):
        if not np.isfinite(value).all():
            raise BedlamInputError(f"{path}, key {key!r}: holds NaN or infinite values")
    return Motion(path, poses, trans, betas)


# ------------------------------------------------------------------------------------------------ images

_FRAME_NUMBER = re.compile(r"_(\d+)$")


def list_frames(folder: Path, folder_fps: int) -> dict[int, Path]:
    """{30 fps frame index: image path} of one sequence folder (see the module docstring for 6 fps folders).

    Raises naming the folder when it is missing or an image name has no frame number.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise BedlamInputError(f"image folder not found: {folder}")
    numbered: list[tuple[int, Path]] = []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        match = _FRAME_NUMBER.search(path.stem)
        if match is None:
            raise BedlamInputError(f"{path}: image name without a frame number ('<seq>_<number>{path.suffix}')")
        numbered.append((int(match.group(1)), path))
    if folder_fps == 6 and any(n % 5 for n, _ in numbered):
        logger.info("%s: 6 fps folder numbered 0, 1, 2, ...: file k is frame 5k", folder)
        return {5 * n: path for n, path in numbered}
    return dict(numbered)
