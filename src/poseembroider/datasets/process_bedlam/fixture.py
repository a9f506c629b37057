"""A small BEDLAM release made from the procedural world, in BEDLAM's layout, for the pipeline's tests.

`build_fixture(root, body_model)` writes what `layout.py` reads (a scene table too, since the release holds
only a few of BEDLAM's 30 scene folders):

    root/scenes.csv                                              folder, name, split, fps
    root/images/<folder>/be_seq.csv                              sequence groups and bodies (Unreal units)
    root/images/<folder>/ground_truth/camera/<seq>_camera.csv    one row per 30 fps frame
    root/images/<folder>/png/<seq>/<seq>_<frame:04d>.png         1280 x 720 frames (close-ups stored turned)
    root/smplx_gt/neutral_ground_truth_motioninfo/<subject>/<motion>/motion_seq.npz
    root/fixture_truth.pt                                        what the pipeline should find (tests)

Each sequence group places 2-3 bodies, each playing a smooth motion of the synthetic world
(`sample_sequences`: y-up SMPL-X poses, walking translation), in a y-up world and films them with a camera
aimed at the group, slowly zooming and drifting. The placement is chosen in that world (the renderer's
frame) and written in BEDLAM's terms by inverting BEDLAM's camera model (`camera.py`): a body at world
position P with heading h is the Unreal row (X, Y, Z) = (-100 P_z, 100 P_x, 100 P_y), Yaw = 90 - h; the
camera at E looking along d gets yaw, pitch from d and its position the same way. Frames are rendered with
the renderer's own `Camera` (OpenGL pose, intrinsics from the focal length), so the truths below come from
a second derivation of the geometry the pipeline computes with BEDLAM's formulas.

Truths per (scene folder, sequence, body, frame) (`fixture_truth.pt`): the tight bbox of the in-frame
projected vertices, the body joints inside the frame, the root orientation in the OpenCV camera frame and
the camera-frame pelvis. Frames are rendered at `render_scale` of their size and resized (fast);
`render=False` writes flat frames (no OpenGL) for tests that need files only.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from poseembroider.atomic_io import atomic_file
from poseembroider.body.body_model import BodyModel
from poseembroider.datasets.process_bedlam.camera import LANDSCAPE_HW, PORTRAIT_HW, SENSOR_MM
from poseembroider.datasets.process_bedlam.layout import BE_SEQ_COLUMNS, BedlamLayout, SceneEntry
from poseembroider.datasets.synthetic.crops import OPENGL_TO_OPENCV, joints_in_frame, tight_bbox
from poseembroider.datasets.synthetic.sequences import sample_sequences
from poseembroider.datasets.synthetic.textures import BodySurfaceMap, paint_body, sample_outfit
from poseembroider.rendering.camera import Camera, rotation_y
from poseembroider.rendering.contact_sheet import save_image
from poseembroider.rendering.mesh_spec import MeshSpec

__all__ = ["FIXTURE_SCENES", "FixtureConfig", "build_fixture", "opencv_world_rotation"]

FIXTURE_SCENES: tuple[SceneEntry, ...] = (
    SceneEntry("20221010_3_1000_batch01hand", "static-hdri", "train", 6),
    SceneEntry("20221011_1_250_batch01hand_closeup_suburb_a", "closeup-suburba", "train", 6),
    SceneEntry("20221018_3-8_250_batch01hand", "static-hdri-frameocc", "val", 6),
)
"""Three of BEDLAM's folders: a landscape and a close-up training scene, a validation scene."""
D = np.diag([1.0, -1.0, -1.0])
"""y-up world <-> y-down OpenCV world (a half turn about x; its own inverse)."""


@dataclass(frozen=True)
class FixtureConfig:
    """Size of the fixture release."""

    scenes: tuple[SceneEntry, ...] = FIXTURE_SCENES
    sequences_per_scene: int = 3
    bodies_per_sequence: tuple[int, int] = (2, 3)  # (min, max)
    frames: int = 60  # 30 fps frames per sequence (2 s)
    seed: int = 0
    render: bool = True
    render_scale: float = 0.25
    short_motion: bool = True  # one body of the first group has a motion ending before the images do
    hfov_deg: tuple[float, float] = (50.0, 65.0)
    extra_columns: dict[str, str] = field(default_factory=dict)  # extra be_seq columns (format tests)


def _rot(axis: str, degrees: float) -> np.ndarray:
    a = math.radians(degrees)
    c, s = math.cos(a), math.sin(a)
    if axis == "x":
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    if axis == "y":
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def opencv_world_rotation(yaw: float, pitch: float, roll: float, closeup: bool) -> np.ndarray:
    """(3, 3) OpenCV-world -> camera rotation of Unreal camera angles (degrees): Rz(-roll [+90]) Rx(-pitch)
    Ry(-yaw) (BEDLAM's convention, written with numpy here for the fixture's own derivation)."""
    return _rot("z", -roll + (90.0 if closeup else 0.0)) @ _rot("x", -pitch) @ _rot("y", -yaw)


def _unreal(point_world: np.ndarray) -> np.ndarray:
    """y-up world point (m) -> Unreal (cm): OpenCV world = D @ p, and Unreal (x, y, z) = 100 (cv_z, cv_x, -cv_y)."""
    cv = D @ np.asarray(point_world, dtype=np.float64)
    return 100.0 * np.array([cv[2], cv[0], -cv[1]])


def _aim(eye: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """Unreal (yaw, pitch) in degrees of a camera at `eye` looking at `target` (world, y up)."""
    d = D @ (target - eye)
    d /= np.linalg.norm(d)  # the optical axis C^T e_z in the OpenCV world is (cos p sin y, -sin p, cos p cos y)
    return math.degrees(math.atan2(d[0], d[2])), math.degrees(math.asin(-d[1]))


def _write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as tmp:
        tmp.write_text(buffer.getvalue())


def _write_motion(path: Path, poses: np.ndarray, trans: np.ndarray, betas: np.ndarray, rng) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as tmp, open(tmp, "wb") as handle:
        np.savez(
            handle,
            poses=poses.astype(np.float32),
            trans=trans.astype(np.float32),
            betas=betas.astype(np.float32),
            gender=np.array("neutral"),
            gender_sub=np.array(str(rng.choice(["female", "male"]))),
            motion_info=np.array(["fixture motion", "walk"]),
            mocap_frame_rate=np.array(30.0),
        )


def _save_png(image: np.ndarray, path: Path) -> None:
    save_image(image, path, compress_level=1)


@dataclass
class _Body:
    subject: str
    motion: str
    start: int
    position: np.ndarray  # world (y up), m
    heading: float  # degrees about +y
    poses: np.ndarray  # (T, 165)
    trans: np.ndarray  # (T, 3)
    betas: np.ndarray  # (11,)
    colors: np.ndarray


def build_fixture(root: Path, body_model: BodyModel, cfg: FixtureConfig = FixtureConfig()) -> dict[str, Any]:
    """Write a fixture release under `root`; returns {'scene_table': path, 'truth': {...}, 'layout': ...}."""
    root = Path(root)
    layout = BedlamLayout(root)
    rng = np.random.default_rng(cfg.seed)
    surface = BodySurfaceMap.from_body_model(body_model)
    renderers: dict[tuple[int, int], Any] = {}
    truth: dict[tuple[str, str, str, int], dict[str, Any]] = {}
    _write_csv(
        root / "scenes.csv",
        ["folder", "name", "split", "fps"],
        [[s.folder, s.name, s.split, s.fps] for s in cfg.scenes],
    )
    n_groups = len(cfg.scenes) * cfg.sequences_per_scene
    n_bodies = n_groups * cfg.bodies_per_sequence[1]
    margin = 12
    seqs = sample_sequences(n_bodies, cfg.frames + margin, 30.0, cfg.seed, body_model=body_model)
    faces = body_model.faces
    k = 0
    try:
        for s_index, scene in enumerate(cfg.scenes):
            folder = layout.images_dir / scene.folder
            be_rows: list[list[Any]] = []
            for g in range(cfg.sequences_per_scene):
                seq = f"seq_{g:06d}"
                be_rows.append(
                    [len(be_rows), "Group", "", 0, 0, 0, 0, 0, 0, f"sequence_name={seq};seq_len={cfg.frames}"]
                )
                count = int(rng.integers(cfg.bodies_per_sequence[0], cfg.bodies_per_sequence[1] + 1))
                bodies = []
                for b in range(count):
                    start = int(rng.integers(0, margin))
                    length = cfg.frames + margin
                    if cfg.short_motion and s_index == 0 and g == 0 and b == count - 1:
                        length = start + cfg.frames // 2  # this motion ends half way through the images
                    pose22 = seqs.poses[k].numpy()[:length]
                    poses = np.zeros((length, 165))
                    poses[:, :66] = pose22.reshape(length, 66)
                    speed = rng.uniform(0.0, 0.6)  # m/s along the body's initial facing, motion frame
                    walk = np.zeros((length, 3))
                    walk[:, 2] = speed * np.arange(length) / 30.0
                    betas = np.zeros(11)
                    betas[:10] = seqs.betas[k].numpy()
                    spread = 1.3 * (b - (count - 1) / 2)
                    position = np.array([spread + rng.uniform(-0.2, 0.2), 0.0, -rng.uniform(0.0, 2.5) * (b % 2)])
                    bodies.append(
                        _Body(
                            subject=f"rp_fixture{s_index}_{k:02d}_posed_{k:03d}",
                            motion=f"{1000 + k}",
                            start=start,
                            position=position,
                            heading=float(rng.uniform(-180, 180)),
                            poses=poses,
                            trans=walk,
                            betas=betas,
                            colors=paint_body(surface, sample_outfit(rng)),
                        )
                    )
                    k += 1
                for body in bodies:
                    x, y, z = _unreal(body.position)
                    be_rows.append(
                        [
                            len(be_rows),
                            "Body",
                            f"{body.subject}_{body.motion}",
                            x,
                            y,
                            z,
                            90.0 - body.heading,
                            0,
                            0,
                            f"start_frame={body.start};texture_body=skin_{body.subject};texture_clothing=none",
                        ]
                    )
                    _write_motion(
                        layout.motion_file(body.subject, body.motion), body.poses, body.trans, body.betas, rng
                    )
                _film_group(cfg, scene, folder, seq, bodies, body_model, faces, renderers, truth, rng)
            header = list(BE_SEQ_COLUMNS) + list(cfg.extra_columns)
            _write_csv(folder / "be_seq.csv", header, [row + list(cfg.extra_columns.values()) for row in be_rows])
    finally:
        for renderer in renderers.values():
            renderer.close()
    with atomic_file(root / "fixture_truth.pt") as tmp:
        torch.save({"|".join(map(str, key)): value for key, value in truth.items()}, tmp)
    return {"root": root, "scene_table": root / "scenes.csv", "truth": truth, "layout": layout}


def _film_group(cfg, scene, folder, seq, bodies, body_model, faces, renderers, truth, rng) -> None:
    """The camera track, frames and truths of one sequence group."""
    closeup = scene.closeup
    height, width = PORTRAIT_HW if closeup else LANDSCAPE_HW
    sensor_w = SENSOR_MM[1] if closeup else SENSOR_MM[0]
    # every body's world vertices and joints at the filmed frames (motion frame f + start)
    filmed = [f for f in range(cfg.frames) if scene.fps == 30 or f % 5 == 0]
    posed = []
    for body in bodies:
        frames = [f for f in filmed if body.start + f < len(body.poses)]
        rows = body.start + np.asarray(frames, dtype=np.int64)
        with torch.no_grad():
            out = body_model(
                torch.as_tensor(body.poses[rows], dtype=torch.float32).reshape(len(rows), 55, 3),
                betas=torch.as_tensor(body.betas[None, :10], dtype=torch.float32).expand(len(rows), -1),
            )
        turn = rotation_y(body.heading)
        to_world = lambda p, t=body.trans[rows], turn=turn, pos=body.position: (p + t[:, None]) @ turn.T + pos  # noqa: E731
        posed.append(
            (
                {f: i for i, f in enumerate(frames)},
                to_world(out.vertices.double().numpy()),
                to_world(out.joints.double().numpy()),
                turn,
                body.poses[rows, :3],
            )
        )
    centre = np.mean([v[0].mean(axis=0) for _, v, _, _, _ in posed], axis=0)
    distance = rng.uniform(4.5, 6.5) if not closeup else rng.uniform(3.0, 4.0)
    azimuth = rng.uniform(-40, 40)
    eye0 = centre + distance * np.array([math.sin(math.radians(azimuth)), 0.0, math.cos(math.radians(azimuth))])
    eye0[1] = centre[1] + rng.uniform(0.2, 1.2)
    hfov = rng.uniform(*cfg.hfov_deg)
    focal0 = (width / 2.0) / math.tan(math.radians(hfov) / 2.0) * sensor_w / width  # mm
    # close-ups: the camera rolled a quarter turn (Unreal roll ~ 90), which BEDLAM's +90 takes back: people
    # stand upright in the turned (portrait) frame and lie sideways in the stored one
    roll = float(rng.uniform(-3, 3)) + (90.0 if closeup else 0.0)
    cam_rows = []
    for f in range(cfg.frames):
        eye = eye0 + np.array([0.004 * f, 0.0, 0.0])  # a slow drift...
        focal = focal0 * (1.0 + 0.002 * f)  # ...and zoom
        yaw, pitch = _aim(eye, centre)
        x, y, z = _unreal(eye)
        cam_rows.append(
            [
                f"{seq}_{f:04d}",
                x,
                y,
                z,
                yaw,
                pitch,
                roll,
                focal,
                sensor_w,
                SENSOR_MM[1] if not closeup else SENSOR_MM[0],
                hfov,
            ]
        )
        if f % 5 != 0 and scene.fps == 6:
            continue
        rotation = opencv_world_rotation(yaw, pitch, roll, closeup) @ D  # y-up world -> OpenCV camera
        fx = focal / sensor_w * width
        pose = np.eye(4)
        pose[:3, :3] = rotation.T @ OPENGL_TO_OPENCV
        pose[:3, 3] = eye
        frame_camera = Camera(width, height, fx, fx, width / 2.0 - 0.5, height / 2.0 - 0.5, pose, 0.05, 500.0)
        meshes = []
        for body, (index, vertices, joints, turn, orient) in zip(bodies, posed, strict=True):
            if f not in index:
                continue
            i = index[f]
            meshes.append(MeshSpec(vertices[i].astype(np.float32), faces, body.colors))
            uv = frame_camera.project(vertices[i])
            tight = tight_bbox(uv, (height, width))
            root = rotation @ turn @ _rotvec_matrix(orient[i])
            pelvis = rotation @ (joints[i, 0] - eye)
            truth[(scene.folder, seq, f"{body.subject}_{body.motion}", f)] = {
                "tight_bbox": None if tight is None else torch.as_tensor(tight),
                "in_frame": torch.as_tensor(joints_in_frame(frame_camera.project(joints[i, :22]), (height, width))),
                "root_orientation_camera": torch.as_tensor(root),
                "pelvis_camera": torch.as_tensor(pelvis),
            }
        image = _frame_image(cfg, frame_camera, meshes, renderers, rng)
        if closeup:  # BEDLAM stores close-up frames turned: turning them clockwise gives the portrait frame
            image = np.ascontiguousarray(np.rot90(image, 1))
        _save_png(image, folder / "png" / seq / f"{seq}_{f:04d}.png")
    _write_csv(
        folder / "ground_truth" / "camera" / f"{seq}_camera.csv",
        ["name", "x", "y", "z", "yaw", "pitch", "roll", "focal_length", "sensor_width", "sensor_height", "hfov"],
        cam_rows,
    )


def _rotvec_matrix(rotvec: np.ndarray) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    return Rotation.from_rotvec(rotvec).as_matrix()


def _frame_image(cfg: FixtureConfig, camera: Camera, meshes: list[MeshSpec], renderers: dict, rng) -> np.ndarray:
    """(H, W, 3) uint8 frame: the bodies rendered at `render_scale` over a two-tone backdrop, resized."""
    height, width = camera.height, camera.width
    sky = rng.uniform(0.4, 0.9, 3)
    if not cfg.render or not meshes:
        image = np.empty((height, width, 3), np.uint8)
        image[:] = (sky * 255).astype(np.uint8)
        return image
    from poseembroider.rendering import create_renderer

    s = cfg.render_scale
    small_w, small_h = max(1, round(width * s)), max(1, round(height * s))
    small = Camera(
        small_w,
        small_h,
        camera.fx * small_w / width,
        camera.fy * small_h / height,
        (camera.cx + 0.5) * small_w / width - 0.5,
        (camera.cy + 0.5) * small_h / height - 0.5,
        camera.pose,
        camera.znear,
        camera.zfar,
    )
    if (small_h, small_w) not in renderers:
        renderers[(small_h, small_w)] = create_renderer(small_w, small_h)
    background = np.empty((small_h, small_w, 3), np.uint8)
    background[:] = (sky * 255).astype(np.uint8)
    background[small_h // 2 :] = (sky * 160).astype(np.uint8)  # "floor"
    rendered = renderers[(small_h, small_w)].render_meshes(meshes, small, background=background)
    return np.asarray(Image.fromarray(rendered).resize((width, height), Image.BILINEAR))
