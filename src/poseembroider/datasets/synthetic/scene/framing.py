"""`frame_body`: where a body sits in the frame of a scene, computed analytically before any render.

The tight bbox of the projected vertices, the scaled crop box and its 4:3 padding (`crops.crop_window`),
the projected body joints and which of them lie in the frame, and the original's selection criteria
(occluder bbox overlap, crop resolution, joints in frame) are all known from the params and the body
alone. A generator calls `frame_body` to reject a scene before paying for its render; `render_sample`
takes the `Framing` (or computes it) and reports the same values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from poseembroider.datasets.synthetic.crops import (
    CROP_HW,
    CropWindow,
    SelectionCriteria,
    bbox_overlap,
    crop_window,
    joints_in_frame,
    tight_bbox,
)
from poseembroider.datasets.synthetic.scene.body import NUM_BODY_JOINTS, PosedBody
from poseembroider.datasets.synthetic.scene.camera import projected_box
from poseembroider.datasets.synthetic.scene.occluders import Occluder
from poseembroider.datasets.synthetic.scene.params import SceneParams
from poseembroider.rendering.camera import Camera

__all__ = ["DEFAULT_CRITERIA", "Framing", "frame_body", "occluder_bboxes"]

DEFAULT_CRITERIA = SelectionCriteria()
"""`overlap30_res224_j16_sf11`, the original's human-selection criteria."""


def occluder_bboxes(
    camera: Camera, occluders: Sequence[Occluder], frame_hw: tuple[int, int], body_depth: float
) -> list[np.ndarray]:
    """Frame bboxes of the occluders nearer than the body: their projected corners, clipped to the frame.

    (Corners, not in-frame points: an occluder's few corners may all lie outside a frame it covers.)
    """
    height, width = frame_hw
    boxes = []
    for occluder in occluders:
        if camera.depth(occluder.center) >= body_depth:  # only what is nearer than the person counts
            continue
        corners = occluder.corners()  # the projected bbox of a box is that of its corners
        corners = corners[camera.depth(corners) > camera.znear]
        if len(corners) == 0:
            continue
        box = projected_box(camera, corners)
        box = np.clip(box, [-0.5, -0.5, -0.5, -0.5], [width - 0.5, height - 0.5, width - 0.5, height - 0.5])
        if box[2] > box[0] and box[3] > box[1]:
            boxes.append(box)
    return boxes


@dataclass(frozen=True, eq=False)
class Framing:
    """Where a body sits in the frame of a scene, known before rendering (all analytic).

    Attributes:
        camera: the frame camera.
        tight_bbox: (4,) tight bbox of the in-frame projected vertices.
        window: the crop window (scaled bbox, clipped, padded to 4:3).
        joints_frame: (22, 2) projected body joints (frame pixels).
        in_frame: (22,) bool, the original's in-frame rule.
        criteria: `SelectionCriteria.evaluate` values and verdicts, plus `full_human_visibility`.
    """

    camera: Camera
    tight_bbox: np.ndarray
    window: CropWindow
    joints_frame: np.ndarray
    in_frame: np.ndarray
    criteria: dict


def frame_body(
    body: PosedBody,
    params: SceneParams,
    criteria: SelectionCriteria = DEFAULT_CRITERIA,
    out_hw: tuple[int, int] = CROP_HW,
) -> Framing:
    """Crop window, in-frame joints and selection criteria of `body` in the scene `params`, without
    rendering: a generator can reject a scene (e.g. `criteria["selected"]` False) before paying for
    its render. `render_sample` reports the same values."""
    frame_hw = tuple(params.frame_hw)
    camera = params.frame_camera()
    tight = tight_bbox(camera.project(body.vertices), frame_hw)
    if tight is None:
        raise ValueError("no vertex of the body projects inside the frame: the params do not frame this body")
    window = crop_window(tight, frame_hw, criteria.scale_factor, out_hw)
    joints = body.joints[:NUM_BODY_JOINTS]
    joints_frame = camera.project(joints)
    in_frame = joints_in_frame(joints_frame, frame_hw)
    body_depth = float(camera.depth(joints[0]))
    overlap = max(
        (bbox_overlap(tight, box) for box in occluder_bboxes(camera, params.occluders, frame_hw, body_depth)),
        default=0.0,
    )
    x1, y1, x2, y2 = window.bbox
    values = criteria.evaluate(overlap, max(x2 - x1, y2 - y1), int(in_frame.sum()))
    values["full_human_visibility"] = bool(in_frame.all())
    return Framing(camera, np.asarray(tight, np.float64), window, joints_frame, in_frame, values)
