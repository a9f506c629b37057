"""Steps 1-3 of the original on one sequence group: every person-frame's pose, boxes and joints (step 1),
grouped per image (step 2), then the human-selection criteria of the dataset name (step 3).

Per body of a group, all its sampled frames in one batched body-model forward (neutral SMPL-X, the motion's
betas, the motion's own orientation, zero translation), then the BEDLAM camera model (`camera.py`) moves the
vertices and joints into each frame's camera:

- tight bbox: min / max of the projected vertices that fall inside the frame (every vertex of the model;
  the original used BEDLAM's 437 downsampled vertices, whose matrix file is not ours to ship);
- scaled crop box `bbox` (`image_processing.scale_bbox`, sf 1.1), 2D body joints and which lie in the frame;
- the stored pose (52, 3): global orientation turned about the vertical so the hips face front
  (`normalize_global_orient_bedlam` with the hip line of the posed joints, y-up), 21 body joints and the
  two hands (jaw and eyes dropped), and its normalising rotation N (`heading_rotation`);
- `cam_rot` = M @ N^T (rotation from the stored orientation to the camera view, as the synthetic world
  stores it: `crops.camera_rotation`) and the SMPL-X translation in the camera frame.

Step 3 per image: overlap = the largest fraction of the person's tight bbox covered by the tight bbox of a
person nearer to the camera (smaller pelvis depth), resolution = the longer side of the crop box, visible
joints = body joints projecting inside the frame; `SelectionCriteria.evaluate` decides.

Person-frames that never reach the criteria are counted by reason: the motion ends before the frame
(`motion_ended`), the camera track has no row for it (`no_camera_row`), the image cannot be read or has
the wrong size (`frame_unreadable`), or no vertex projects inside the frame (`not_in_frame`).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from poseembroider.body.body_model import BodyModel
from poseembroider.body.model_file import locate_model_file, model_file_in, open_model_file
from poseembroider.datasets.image_processing import scale_bbox
from poseembroider.datasets.process_bedlam import camera as bedlam_camera
from poseembroider.datasets.process_bedlam.layout import (
    BedlamLayout,
    Motion,
    SceneFiles,
    SequenceGroup,
    list_frames,
    read_camera_csv,
    read_motion,
)
from poseembroider.datasets.synthetic.crops import SelectionCriteria, bbox_overlap, joints_in_frame
from poseembroider.datasets.synthetic.skeleton import BodySkeleton
from poseembroider.geometry import axis_angle_to_matrix, matrix_to_axis_angle, normalize_global_orient_bedlam

logger = logging.getLogger(__name__)

__all__ = [
    "COLUMNS",
    "EARLY_REJECTIONS",
    "FRAME_STEP",
    "GroupResult",
    "PersonFrameModels",
    "process_group",
    "select_humans",
    "stored_pose",
]

NUM_BODY_JOINTS = 22
RAW_FRAME_SIZE = (1280, 720)
"""(W, H) of every BEDLAM image file as stored (close-ups too: they are turned after reading)."""
FRAME_STEP = {6: 5, 30: 1}
"""Sampling rate (fps) -> step between the 30 fps frames processed."""
EARLY_REJECTIONS = ("motion_ended", "no_camera_row", "frame_unreadable", "not_in_frame")
"""Reasons a person-frame is dropped before the selection criteria, in the order they are checked."""
CRITERIA = ("visible_joints", "resolution", "overlap")
"""The selection criteria, in the order `rejected_by` attributes a person-frame failing several."""
FORWARD_BATCH = 256
"""Frames per body-model forward (its vertices are the largest temporaries of a group)."""

COLUMNS: dict[str, tuple[tuple[int, ...], torch.dtype]] = {
    "poses": ((52, 3), torch.float32),
    "heading_rotation": ((3,), torch.float32),
    "betas": ((11,), torch.float32),
    "canonical_joints": ((NUM_BODY_JOINTS, 3), torch.float32),
    "cam_rot": ((3,), torch.float32),
    "transl": ((3,), torch.float32),
    "bbox": ((4,), torch.int64),
    "tight_bbox": ((4,), torch.float32),
    "joints_2d": ((NUM_BODY_JOINTS, 2), torch.float32),
    "in_frame": ((NUM_BODY_JOINTS,), torch.bool),
    "frame": ((), torch.int64),
    "person": ((), torch.int64),
    "overlap": ((), torch.float32),
    "resolution": ((), torch.int64),
}
"""Tensor columns of a group's kept person-frames: (shape per row, dtype). String columns: `STRING_COLUMNS`."""
STRING_COLUMNS = ("image", "body", "subject", "sequence")


@dataclass
class PersonFrameModels:
    """What a worker loads once: the body model (neutral SMPL-X, BEDLAM's 11 betas when the model file has
    them) and its skeleton (mean-shape joints for the canonical positions)."""

    body: BodyModel
    skeleton: BodySkeleton

    @classmethod
    def load(cls, body_model_file: Path | None) -> PersonFrameModels:
        if body_model_file is None:
            model_file = locate_model_file()
        else:
            path = Path(body_model_file)
            model_file = open_model_file(path if path.suffix == ".npz" else model_file_in(path))
        body = BodyModel(model_file, num_betas=11)
        if body.smplx.num_betas != 11:  # e.g. the procedural model: 10 shape coefficients
            body = BodyModel(model_file, num_betas=int(body.smplx.num_betas))
        return cls(body.eval(), BodySkeleton(body))


def stored_pose(poses_165: torch.Tensor) -> torch.Tensor:
    """(n, 165) SMPL-X axis-angles (global, body, jaw, eyes, hands) -> (n, 52, 3): global, 21 body joints and
    the 2 x 15 hand joints (the stored layout)."""
    p = poses_165.reshape(-1, 55, 3)
    return torch.cat([p[:, :22], p[:, 25:55]], dim=1)


@dataclass
class GroupResult:
    """Kept person-frames of one sequence group (columns of `COLUMNS` and `STRING_COLUMNS`) and counts:
    `person_frames` sampled, `rejected` {reason: count} (early reasons, then `rejected_by` criterion),
    `failed` {criterion: count} (independently: one person-frame may fail several)."""

    columns: dict[str, Any]
    person_frames: int = 0
    rejected: Counter = field(default_factory=Counter)
    failed: Counter = field(default_factory=Counter)


def select_humans(
    tight: list[np.ndarray | None],
    depth: list[float],
    resolution: list[int],
    visible_joints: list[int],
    criteria: SelectionCriteria,
) -> list[dict[str, Any] | None]:
    """Step 3 on the people of one image: `SelectionCriteria.evaluate` values per person (None for a person
    with no tight bbox). Overlap counts the tight boxes of people nearer to the camera only."""
    out: list[dict[str, Any] | None] = []
    for i, box in enumerate(tight):
        if box is None:
            out.append(None)
            continue
        overlap = max(
            (
                bbox_overlap(box, other)
                for j, other in enumerate(tight)
                if j != i and other is not None and depth[j] < depth[i]
            ),
            default=0.0,
        )
        out.append(criteria.evaluate(overlap, resolution[i], visible_joints[i]))
    return out


def _readable(path: Path) -> bool:
    """Whether the image header opens and says BEDLAM's size (decoding every pixel would cost far more)."""
    try:
        with Image.open(path) as image:
            return tuple(image.size) == RAW_FRAME_SIZE
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError):
        return False


def _tight_boxes(uv: np.ndarray, hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(F, V, 2) pixels (ours: centres at integers) -> ((F, 4) tight boxes, (F,) any vertex in frame).
    Vectorised `crops.tight_bbox`: the frame spans [-0.5, W - 0.5] x [-0.5, H - 0.5]."""
    height, width = hw
    with np.errstate(invalid="ignore"):
        inside = (
            (uv[..., 0] >= -0.5) & (uv[..., 0] <= width - 0.5) & (uv[..., 1] >= -0.5) & (uv[..., 1] <= height - 0.5)
        )
    big = np.inf
    lo = np.where(inside[..., None], uv, big).min(axis=1)
    hi = np.where(inside[..., None], uv, -big).max(axis=1)
    return np.concatenate([lo, hi], axis=1), inside.any(axis=1)


@dataclass
class _Person:
    """One body at one frame, before selection."""

    person: int
    frame: int
    tight: np.ndarray | None
    depth: float
    row: dict[str, Any]


def _to_camera(points: torch.Tensor, trans: torch.Tensor, m: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """(F, P, 3) motion-frame points posed at zero translation -> camera frame: M @ (p + trans) + t."""
    return (points + trans[:, None]) @ m.transpose(1, 2) + t[:, None]


def _body_frames(
    models: PersonFrameModels,
    motion: Motion,
    body_index: int,
    entry,
    frames: list[int],
    track,
    closeup: bool,
    criteria: SelectionCriteria,
) -> list[_Person]:
    """Step 1 for one body over `frames` (all valid): one batched forward per `FORWARD_BATCH` frames."""
    people: list[_Person] = []
    hw = bedlam_camera.frame_hw(closeup)
    betas_all = torch.as_tensor(motion.betas[:11], dtype=torch.float32)
    betas_all = torch.cat([betas_all, betas_all.new_zeros(11 - len(betas_all))])
    num_betas = int(models.body.num_betas)
    for start in range(0, len(frames), FORWARD_BATCH):
        chunk = frames[start : start + FORWARD_BATCH]
        idx = torch.as_tensor([entry.start_frame + f for f in chunk])
        poses = torch.as_tensor(motion.poses[idx.numpy()], dtype=torch.float32)
        trans = torch.as_tensor(motion.trans[idx.numpy()], dtype=torch.float64)
        n = len(chunk)
        betas = betas_all[None, :num_betas].expand(n, -1)
        with torch.no_grad():
            out = models.body(poses.reshape(n, 55, 3), betas=betas)
        vertices, joints = out.vertices.double(), out.joints.double()
        rows = np.asarray(chunk)
        m, t = bedlam_camera.body_to_camera(
            (entry.x, entry.y, entry.z),
            entry.yaw,
            torch.as_tensor(track.position[rows]),
            torch.as_tensor(track.yaw[rows]),
            torch.as_tensor(track.pitch[rows]),
            torch.as_tensor(track.roll[rows]),
            closeup,
        )
        k = bedlam_camera.intrinsics(torch.as_tensor(track.focal_length[rows]), closeup)

        uv_vertices, _ = bedlam_camera.project(_to_camera(vertices, trans, m, t), k)
        joints_cam = _to_camera(joints[:, :NUM_BODY_JOINTS], trans, m, t)
        uv_joints, _ = bedlam_camera.project(joints_cam, k)
        # ours: pixel centres at integers
        uv_vertices = uv_vertices.numpy() - 0.5
        uv_joints = uv_joints.numpy() - 0.5
        tight, any_inside = _tight_boxes(uv_vertices, hw)
        in_frame = joints_in_frame(uv_joints, hw)

        stored = stored_pose(poses)
        hip = joints[:, 1] - joints[:, 2]  # right hip -> left hip, motion frame (y up)
        normalized, heading = normalize_global_orient_bedlam(stored[:, 0].double(), hip)
        stored[:, 0] = normalized.float()
        cam_rot = matrix_to_axis_angle(m @ heading.transpose(1, 2))
        pelvis = joints[:, 0]  # the rest pelvis: the root rotates about it
        transl = (m @ (pelvis + trans)[..., None])[..., 0] + t - pelvis
        for r, frame in enumerate(chunk):
            if not any_inside[r]:
                people.append(_Person(body_index, frame, None, 0.0, {}))
                continue
            bbox = scale_bbox(tight[r], criteria.scale_factor, hw)
            people.append(
                _Person(
                    body_index,
                    frame,
                    tight[r],
                    float(joints_cam[r, 0, 2]),
                    {
                        "poses": stored[r],
                        "heading_rotation": matrix_to_axis_angle(heading[r]).float(),
                        "betas": betas_all,
                        "cam_rot": cam_rot[r].float(),
                        "transl": transl[r].float(),
                        "bbox": torch.as_tensor(bbox, dtype=torch.int64),
                        "tight_bbox": torch.as_tensor(tight[r], dtype=torch.float32),
                        "joints_2d": torch.as_tensor(uv_joints[r], dtype=torch.float32),
                        "in_frame": torch.as_tensor(in_frame[r]),
                        "resolution": int(max(bbox[2] - bbox[0], bbox[3] - bbox[1])),
                        "visible_joints": int(in_frame[r].sum()),
                    },
                )
            )
    return people


def _empty_columns() -> dict[str, Any]:
    columns: dict[str, Any] = {name: torch.zeros(0, *shape, dtype=dtype) for name, (shape, dtype) in COLUMNS.items()}
    columns.update({name: [] for name in STRING_COLUMNS})
    return columns


def process_group(
    models: PersonFrameModels,
    layout: BedlamLayout,
    scene: SceneFiles,
    group: SequenceGroup,
    criteria: SelectionCriteria,
    sample_fps: int = 6,
) -> GroupResult:
    """Steps 1-3 on one sequence group: the kept person-frames (rows ordered by image path, then by body
    order in `be_seq.csv`) and what was rejected, by reason."""
    result = GroupResult(_empty_columns())
    entry = scene.entry
    png_dir = scene.png_dir
    frames_all = list_frames(png_dir / group.sequence, entry.fps)
    step = FRAME_STEP[sample_fps]
    frames = sorted(f for f in frames_all if f % step == 0)
    if not group.bodies or not frames:
        return result
    track = read_camera_csv(scene.camera_csv(group.sequence))
    readable = {f: _readable(frames_all[f]) for f in frames}
    bad = [frames_all[f] for f in frames if not readable[f]]
    if bad:
        logger.warning("%d unreadable or wrongly sized frame(s), skipped, e.g. %s", len(bad), bad[0])

    people_by_frame: dict[int, list[_Person]] = {f: [] for f in frames}
    for body_index, body in enumerate(group.bodies):
        motion = read_motion(layout.motion_file(body.subject, body.motion))
        valid = []
        for f in frames:
            result.person_frames += 1
            if body.start_frame + f >= len(motion):
                result.rejected["motion_ended"] += 1
            elif f >= len(track):
                result.rejected["no_camera_row"] += 1
            elif not readable[f]:
                result.rejected["frame_unreadable"] += 1
            else:
                valid.append(f)
        for person in _body_frames(models, motion, body_index, body, valid, track, entry.closeup, criteria):
            people_by_frame[person.frame].append(person)

    kept: list[tuple[str, _Person]] = []
    for f in frames:
        people = people_by_frame[f]
        if not people:
            continue
        verdicts = select_humans(
            [p.tight for p in people],
            [p.depth for p in people],
            [p.row.get("resolution", 0) for p in people],
            [p.row.get("visible_joints", 0) for p in people],
            criteria,
        )
        image = frames_all[f].relative_to(scene.images_dir).as_posix()
        for person, verdict in zip(people, verdicts, strict=True):
            if verdict is None:
                result.rejected["not_in_frame"] += 1
                continue
            person.row["overlap"] = verdict["overlap"]
            passes = {
                "visible_joints": verdict["passes_visible_joints"],
                "resolution": verdict["passes_resolution"],
                "overlap": verdict["passes_overlap"],
            }
            for name in CRITERIA:
                if not passes[name]:
                    result.failed[name] += 1
            first = next((name for name in CRITERIA if not passes[name]), None)
            if first is not None:
                result.rejected[first] += 1
                continue
            kept.append((image, person))
    kept.sort(key=lambda item: (item[0], item[1].person))  # image path, then body order
    if not kept:
        return result
    columns = result.columns
    for name, (shape, dtype) in COLUMNS.items():
        if name == "frame":
            columns[name] = torch.tensor([p.frame for _, p in kept], dtype=dtype)
        elif name == "person":
            columns[name] = torch.tensor([p.person for _, p in kept], dtype=dtype)
        elif name == "canonical_joints":
            continue
        elif shape == ():
            columns[name] = torch.tensor([p.row[name] for _, p in kept], dtype=dtype)
        else:
            columns[name] = torch.stack([torch.as_tensor(p.row[name]) for _, p in kept]).to(dtype)
    joints = models.skeleton.joints(columns["poses"][:, :NUM_BODY_JOINTS])  # mean shape, normalised pose
    columns["canonical_joints"] = (joints - joints[:, :1]).float()
    columns["image"] = [image for image, _ in kept]
    columns["body"] = [group.bodies[p.person].body for _, p in kept]
    columns["subject"] = [group.bodies[p.person].subject for _, p in kept]
    columns["sequence"] = [group.sequence] * len(kept)
    return result


def relative_heading_deg(heading_a: torch.Tensor, heading_b: torch.Tensor) -> torch.Tensor:
    """Heading change (degrees about the vertical, positive = turning to the body's left) from pose A to
    pose B of one sequence, given their normalising rotations N (..., 3) axis-angles (R_norm = N R)."""
    relative = axis_angle_to_matrix(heading_a) @ axis_angle_to_matrix(heading_b).transpose(-1, -2)
    return torch.rad2deg(matrix_to_axis_angle(relative)[..., 1])
