"""`render_sample`: one synthetic sample with everything the caches record about a BEDLAM person.

A sample is the person crop (`render_scene` of the crop window that `frame_body` computed) plus the
records of the processed BEDLAM caches and a few more: the crop box in frame pixels, the intrinsics of
the frame and of the crop, the world-to-camera transform, the 2D body joints, `cam_rot` / `cam_transl`
(the camera-view orientation and translation of the SMPL-X body), the selection criteria and three
levels of joint visibility:

- `in_frame`: the joint projects inside the frame (the original's rule; all 22 = `full_human_visibility`);
- `unoccluded`: in frame and no occluder on the line of sight (exact ray test; the body never hides
  itself at this level);
- `visible`: in frame and the depth buffer shows no surface, occluder or other body part, more than
  `VISIBILITY_TOLERANCE` in front of the joint.

`render_frame` renders the whole frame instead: the slow path the crops avoid, kept as the reference of
the tests and the baseline of the benchmark.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from poseembroider.datasets.synthetic.crops import (
    CROP_HW,
    OPENGL_TO_OPENCV,
    CropWindow,
    SelectionCriteria,
    camera_rotation,
)
from poseembroider.datasets.synthetic.scene.body import NUM_BODY_JOINTS, PosedBody
from poseembroider.datasets.synthetic.scene.framing import DEFAULT_CRITERIA, Framing, frame_body
from poseembroider.datasets.synthetic.scene.params import SceneParams
from poseembroider.datasets.synthetic.scene.render import render_scene
from poseembroider.datasets.synthetic.textures import BodySurfaceMap, paint_body

__all__ = ["VISIBILITY_TOLERANCE", "RenderedSample", "render_frame", "render_sample", "render_samples"]


@dataclass(frozen=True, eq=False)
class RenderedSample:
    """One synthetic sample, as the real pipeline records a BEDLAM person.

    Attributes:
        image: (256, 192, 3) uint8 crop (bbox, zero-padded to 4:3, resized).
        bbox: (4,) int64 [x1, y1, x2, y2] scaled crop box in full-frame pixels (the caches' `bboxes`).
        tight_bbox: (4,) float64 tight bbox of the in-frame projected vertices (frame pixels).
        padding: (4,) int64 zero padding (left, top, right, bottom) in frame pixels.
        frame_hw: (H, W) of the virtual frame.
        K: (3, 3) frame intrinsics (OpenCV), K_crop: (3, 3) intrinsics of the crop image.
        R_wc, t_wc: world-to-camera rotation (3, 3) and translation (3,), OpenCV camera frame.
        joints_2d: (22, 2) body joints in crop pixels; joints_2d_frame: (22, 2) in frame pixels.
        in_frame: (22,) bool, joint projects inside the frame (original visibility rule; all True =
            `full_human_visibility`).
        unoccluded: (22,) bool, in frame and the line of sight from the camera to the joint crosses no
            occluder (exact, analytic; self-occlusion does not count).
        visible: (22,) bool, in frame and no surface (occluder or another body part) lies more than
            `VISIBILITY_TOLERANCE` m in front of the joint on its pixel of the depth buffer
            (approximate: the tolerance stands for the body's own thickness around the joint).
        cam_rot: (3,) axis-angle, R(cam_rot) @ R(global_orient_normalized) = root orientation in the
            OpenCV camera frame (`crops.camera_rotation`).
        cam_transl: (3,) SMPL-X `transl` that puts the body, posed with that camera-frame orientation,
            at its place in the OpenCV camera frame (the caches' second `camera_transformation` item).
        global_orient_normalized: (3,) hip-normalised global orientation (y-up; heading removed).
        criteria: values and verdicts of the selection criteria (`SelectionCriteria.evaluate`) and
            `full_human_visibility`.
    """

    image: np.ndarray
    bbox: np.ndarray
    tight_bbox: np.ndarray
    padding: np.ndarray
    frame_hw: tuple[int, int]
    K: np.ndarray
    K_crop: np.ndarray
    R_wc: np.ndarray
    t_wc: np.ndarray
    joints_2d: np.ndarray
    joints_2d_frame: np.ndarray
    in_frame: np.ndarray
    unoccluded: np.ndarray
    visible: np.ndarray
    cam_rot: np.ndarray
    cam_transl: np.ndarray
    global_orient_normalized: np.ndarray
    criteria: dict

    @property
    def full_human_visibility(self) -> bool:
        return bool(self.in_frame.all())

    @property
    def camera_transformation(self) -> tuple[np.ndarray, np.ndarray]:
        """(cam_rot, transl), the caches' `camera_transformation` entry."""
        return self.cam_rot, self.cam_transl


VISIBILITY_TOLERANCE = 0.2
"""Metres a surface may lie in front of a joint on its pixel and the joint still count as `visible`."""


def _world_to_camera_cv(pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(R (3, 3), t (3,)) world-to-camera transform in the OpenCV camera frame (x right, y down, z forward)
    of an OpenGL camera-to-world `pose` (4, 4)."""
    rotation = OPENGL_TO_OPENCV @ pose[:3, :3].T
    return rotation, -rotation @ pose[:3, 3]


def render_sample(
    renderer,
    body: PosedBody,
    params: SceneParams,
    surface: BodySurfaceMap,
    *,
    criteria: SelectionCriteria = DEFAULT_CRITERIA,
    out_hw: tuple[int, int] = CROP_HW,
    supersample: int = 1,
    framing: Framing | None = None,
) -> RenderedSample:
    """Render one sample: the person crop of the virtual frame and everything the caches record.

    Args:
        renderer: from `create_scene_renderer(out_hw, supersample)` (any size works; a matching one
            avoids recreating the OpenGL context).
        body: the posed body (world, SMPL-X frame).
        params: from `SceneSampler.sample`.
        surface: the body model's `BodySurfaceMap` (clothing regions), computed once.
        criteria: scale factor of the crop and thresholds of the reported criteria.
        out_hw: crop size (H, W).
        supersample: render at s x the crop size and box-filter (anti-aliased edges, s^2 the pixels).
        framing: `frame_body(body, params, criteria, out_hw)` when the caller computed it already.
    """
    if surface.num_vertices != len(body.vertices):
        raise ValueError(
            f"surface map has {surface.num_vertices} vertices, the body {len(body.vertices)}: "
            "use the BodySurfaceMap of the body model that posed it"
        )
    if framing is None:
        framing = frame_body(body, params, criteria, out_hw)
    camera, window, in_frame = framing.camera, framing.window, framing.in_frame
    scene = render_scene(renderer, body, paint_body(surface, params.outfit), params, window, supersample)

    joints = body.joints[:NUM_BODY_JOINTS]
    joints_crop = window.frame_to_crop(framing.joints_frame)

    # line of sight camera -> joint against the occluders (t < 1: something in between)
    directions = joints - camera.position
    blocked = np.zeros(NUM_BODY_JOINTS, bool)
    for occluder in params.occluders:
        blocked |= occluder.intersect(camera.position, directions) < 1.0
    unoccluded = in_frame & ~blocked

    # depth-buffer test on the (supersampled) render
    s = scene.supersample
    pix = np.rint((joints_crop + 0.5) * s - 0.5).astype(np.int64)
    pix[:, 0] = np.clip(pix[:, 0], 0, scene.depth.shape[1] - 1)
    pix[:, 1] = np.clip(pix[:, 1], 0, scene.depth.shape[0] - 1)
    surface_depth = scene.depth[pix[:, 1], pix[:, 0]]
    joint_depth = camera.depth(joints)
    visible = in_frame & ((surface_depth <= 0) | (surface_depth >= joint_depth - VISIBILITY_TOLERANCE))

    cam_rot, normalized = camera_rotation(body.global_orient, camera.pose, joints[1] - joints[2])
    rotation, translation = _world_to_camera_cv(camera.pose)
    pelvis_cam = rotation @ joints[0] + translation
    rest_pelvis = joints[0] - body.transl  # the SMPL-X root rotates about the rest pelvis
    cam_transl = pelvis_cam - rest_pelvis

    return RenderedSample(
        image=scene.image,
        bbox=np.asarray(window.bbox, np.int64),
        tight_bbox=framing.tight_bbox,
        padding=np.asarray(window.padding, np.int64),
        frame_hw=tuple(params.frame_hw),
        K=camera.intrinsics_matrix,
        K_crop=window.camera(camera, 1).intrinsics_matrix,
        R_wc=rotation,
        t_wc=translation,
        joints_2d=joints_crop,
        joints_2d_frame=framing.joints_frame,
        in_frame=in_frame,
        unoccluded=unoccluded,
        visible=visible,
        cam_rot=cam_rot,
        cam_transl=cam_transl,
        global_orient_normalized=normalized,
        criteria=framing.criteria,
    )


def render_samples(
    renderer,
    bodies: Sequence[PosedBody],
    params: Sequence[SceneParams],
    surface: BodySurfaceMap,
    **kwargs,
) -> list[RenderedSample]:
    """`render_sample` over paired bodies and params (one render each)."""
    if len(bodies) != len(params):
        raise ValueError(f"got {len(bodies)} bodies and {len(params)} params")
    return [render_sample(renderer, body, p, surface, **kwargs) for body, p in zip(bodies, params, strict=True)]


def render_frame(
    renderer, body: PosedBody, params: SceneParams, surface: BodySurfaceMap, scale: float = 1.0
) -> np.ndarray:
    """(H, W, 3) uint8 render of the whole virtual frame, optionally at `scale` x its resolution.

    The slow path the crops avoid: a reference for tests and the benchmark baseline. A renderer of
    another size is resized to the frame (costly with OSMesa: keep one renderer per size).
    """
    height, width = (max(1, round(v * scale)) for v in params.frame_hw)
    window = CropWindow(
        bbox=(0, 0, params.frame_hw[1], params.frame_hw[0]),
        padding=(0, 0, 0, 0),
        frame_hw=tuple(params.frame_hw),
        out_hw=(height, width),
    )
    colors = paint_body(surface, params.outfit)
    return render_scene(renderer, body, colors, params, window, 1).image
