"""What the mesh-recovery demo (`demo_pose_estimation.py`) computes, without streamlit, so it can be tested.

- Inputs: `parse_person_box` ("x, y, w, h" typed by the user -> [x1, y1, x2, y2]) and `check_text` (a typed
  description, at most `MAX_TEXT_CHARS`); uploads go through `demo_core_helpers.prepare_uploaded_image`
  (header checks, EXIF rotation, person box, the datasets' crop).
- `load_head`: an HPSEstimator folder (or shortname) with its frozen representation model attached, or an
  error that says what the folder holds instead.
- `predict_input_sets`: the head on x̄ of each input set of one crop (image alone, image + text): the head
  regresses the normalised body pose (global orientation in the models' z-up frame, 21 body joints) and,
  with a shape head, the betas; `sample_errors` gives the errors of one prediction against the ground truth
  in the evaluation's units and protocol (`evaluation.mesh_recovery`, the paper's: mm, degrees, betas
  compared only when images are in the input and the head predicts shape).
- The camera view: the dataset item's `cam_rot` turns the z-up body to the OpenCV camera frame (x right,
  y down, z forward; `body_in_camera`); `fit_weak_perspective` places its projected joints on the item's
  `joints_2d_crop` (closed-form scale + 2D translation); `overlay_body` renders the body with that camera
  over the crop. The head predicts no camera (as the original), so an upload gets no overlay.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from poseembroider.demo_core_helpers import MAX_TEXT_CHARS, check_text, query_batch
from poseembroider.devices import resolve_device
from poseembroider.downstream.input_types import input_types_name
from poseembroider.downstream.pose_estimation.evaluation import uses_betas
from poseembroider.downstream.pose_estimation.model_pose_estimation import HPSEstimator
from poseembroider.evaluation.mesh_recovery import PAPER_PROTOCOL, evaluate_smplx_predictions
from poseembroider.geometry import axis_angle_to_matrix, matrix_to_axis_angle
from poseembroider.models.pretrained import CheckpointError, load_pretrained, resolve_model_dir
from poseembroider.rendering import Camera, MeshSpec, Renderer
from poseembroider.representation import load_representation_model

__all__ = [
    "IMAGE_ONLY",
    "IMAGE_AND_TEXT",
    "MAX_TEXT_CHARS",
    "METRIC_LABELS",
    "Prediction",
    "WeakPerspective",
    "body_in_camera",
    "camera_view_pose",
    "check_text",
    "errors_table",
    "fit_weak_perspective",
    "load_head",
    "overlay_body",
    "parse_person_box",
    "predict_input_sets",
    "sample_errors",
]

IMAGE_ONLY: tuple[str, ...] = ("images",)
IMAGE_AND_TEXT: tuple[str, ...] = ("images", "texts")
METRIC_LABELS: dict[str, str] = {
    "mpjpe_mm": "MPJPE (mm)",
    "pa_mpjpe_mm": "PA-MPJPE (mm)",
    "pve_mm": "PVE (mm)",
    "rotation_error_deg": "rotation error (°)",
}
"""The evaluation's metrics (`evaluation.mesh_recovery.paper_protocol`) as the demo labels them, in the order shown."""
OVERLAY_DISTANCE_M = 100.0
"""Depth of the body for the overlay's pinhole camera: far enough that perspective is within 1% of the
weak-perspective fit (a body ~1 m deep), near enough for a well-conditioned depth buffer."""


# ---------------------------------------------------------------------------------------------- inputs


def parse_person_box(text: str) -> np.ndarray | None:
    """ "x, y, w, h" (pixels of the picture as shown: top-left corner, width, height; commas or spaces)
    -> (4,) float64 [x1, y1, x2, y2]; None for an empty field. `ValueError` saying what is wrong otherwise."""
    text = text.strip()
    if not text:
        return None
    words = [w for w in re.split(r"[,\s;]+", text) if w]
    try:
        values = [float(w) for w in words]
    except ValueError:
        raise ValueError(f"person box {text!r}: expected four numbers x, y, w, h (pixels)") from None
    if len(values) != 4:
        raise ValueError(f"person box {text!r}: {len(values)} numbers; expected four: x, y, w, h (pixels)")
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"person box {text!r}: every value must be a finite number")
    x, y, w, h = values
    if w <= 0 or h <= 0:
        raise ValueError(f"person box {text!r}: width and height must be > 0")
    return np.array([x, y, x + w, y + h], dtype=np.float64)


# ---------------------------------------------------------------------------------------------- the head


def load_head(path: str, checkpoint: str = "best", device: str = "auto") -> tuple[HPSEstimator, str]:
    """(head in eval mode with its representation model attached, head folder) of an HPSEstimator folder,
    training output folder or shortname. Errors (`FileNotFoundError`, `CheckpointError`, `ValueError`) say
    what the folder holds instead and which representation model is missing or of another version."""
    head_dir = resolve_model_dir(path, checkpoint)
    head = load_pretrained(head_dir, map_location=resolve_device(device))
    if not isinstance(head, HPSEstimator):
        raise CheckpointError(
            f"{head_dir} holds a {type(head).__name__}, not an HPSEstimator head: name a folder written by "
            "train-pose-estimation (or its shortname, `poseembroider models list`)"
        )
    name = head.config.pretrained_representation_model
    if not name:
        raise CheckpointError(f"{head_dir}: the head names no representation model (pretrained_representation_model)")
    try:
        representation, _ = load_representation_model(name, device=device)
    except (FileNotFoundError, KeyError, ValueError) as err:
        raise CheckpointError(f"{head_dir}: its representation model {name!r} cannot be loaded: {err}") from None
    head.attach_representation(representation)  # refuses another version of the model it was trained on
    return head.eval(), str(head_dir)


@dataclass(frozen=True)
class Prediction:
    """The head's answer for one input set: `poses` (22, 3) axis-angles in the models' z-up frame,
    `rotations` (22, 3, 3), `betas` (10,) or None (no shape head)."""

    input_types: tuple[str, ...]
    poses: torch.Tensor
    rotations: torch.Tensor
    betas: torch.Tensor | None

    @property
    def name(self) -> str:
        return input_types_name(self.input_types)

    @property
    def label(self) -> str:
        if self.input_types == IMAGE_ONLY:
            return "image alone"
        return " + ".join("image" if t == "images" else "text" for t in self.input_types)


@torch.no_grad()
def predict_input_sets(head: HPSEstimator, image: torch.Tensor, text: str | None = None) -> dict[str, Prediction]:
    """The head on x̄ of the (3, 256, 192) crop alone and, with a `text`, of the crop and the text
    (`HPSEstimator.predict` computes x̄ of each input set with its representation model), keyed by the
    input set's name ("images", "images+texts")."""
    representation = head.representation()
    tokens = None
    if text is not None:
        tokens = representation.frozen_encoders.encoders["text"].tokenizer(text)
    sets = [IMAGE_ONLY] + ([IMAGE_AND_TEXT] if text is not None else [])
    device = head.pose_head.init_state.device
    out: dict[str, Prediction] = {}
    for types in sets:
        batch = query_batch(image=image, text_tokens=tokens if "texts" in types else None)
        batch = {key: value.to(device) for key, value in batch.items()}
        predicted = head.predict(batch, types)
        betas = predicted.get("betas")
        prediction = Prediction(
            types,
            predicted["poses"][0].cpu(),
            predicted["rotations"][0].cpu(),
            None if betas is None else betas[0].cpu(),
        )
        out[prediction.name] = prediction
    return out


def sample_errors(
    body: torch.nn.Module, head: HPSEstimator, prediction: Prediction, true_pose: torch.Tensor, true_betas: torch.Tensor
) -> dict[str, float]:
    """{metric of `METRIC_LABELS`: value} of one prediction against the true (22, 3) pose and (10,) betas, as
    the evaluation measures them (`evaluation.mesh_recovery`, the paper's protocol: zero translation, SMPL-X
    joints 0-21; betas compared only when the head predicts shape and images are in the input, else the mean
    shape on both sides)."""
    with_betas = uses_betas(head, prediction.input_types) and prediction.betas is not None
    joints = head.config.num_body_joints
    errors = evaluate_smplx_predictions(
        body,
        prediction.rotations[None, :joints],
        true_pose[None, :joints].float(),
        prediction.betas[None] if with_betas else None,
        true_betas[None, :10].float() if with_betas else None,
    )
    return {name: float(errors.per_sample[PAPER_PROTOCOL][name][0]) for name in METRIC_LABELS}


# ---------------------------------------------------------------------------------------------- camera view


def camera_view_pose(pose: torch.Tensor, cam_rot: torch.Tensor) -> torch.Tensor:
    """(J, 3) pose in the models' z-up frame -> the same pose seen by the camera: the global orientation
    turned by the item's `cam_rot` (3,) (z-up normalised pose -> OpenCV camera frame)."""
    turned = pose.clone().float()
    turned[0] = matrix_to_axis_angle(axis_angle_to_matrix(cam_rot.float()) @ axis_angle_to_matrix(turned[0]))
    return turned


@torch.no_grad()
def body_in_camera(
    body: torch.nn.Module, pose: torch.Tensor, betas: torch.Tensor | None, cam_rot: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(joints (22, 3), vertices (V, 3)) in metres of the body posed by `pose` (22, 3) (z-up frame) and
    `betas` (None: mean shape), in the OpenCV camera frame of `cam_rot`, up to a translation."""
    out = body(camera_view_pose(pose, cam_rot)[None], None if betas is None else betas[None].float())
    return out.joints[0, : pose.shape[0]], out.vertices[0]


@dataclass(frozen=True)
class WeakPerspective:
    """Weak-perspective camera: a point (X, Y, Z) of the camera frame lands at `scale` * (X, Y) +
    `translation` pixels; `residual_px` is the RMS distance of the fitted joints to their targets."""

    scale: float
    translation: tuple[float, float]
    residual_px: float

    def project(self, points: torch.Tensor) -> torch.Tensor:
        """(..., 3) camera-frame points in metres -> (..., 2) pixels."""
        return points[..., :2] * self.scale + points.new_tensor(self.translation)


def fit_weak_perspective(
    points_3d: torch.Tensor, points_2d: torch.Tensor, weights: torch.Tensor | None = None
) -> WeakPerspective:
    """The weak-perspective camera that best places (J, 3) camera-frame points on (J, 2) pixel positions
    (least squares, closed form, optional (J,) non-negative weights): with c3, c2 the weighted centroids
    of the (X, Y) and of the targets, scale = <P - c3, Q - c2> / |P - c3|^2 and translation = c2 -
    scale * c3. When that scale is not positive (a prediction turned away from the target skeleton), the
    scale that matches the two spreads, |Q - c2| / |P - c3|, is used instead, so the body is never mirrored."""
    if points_3d.dim() != 2 or points_3d.shape[1] != 3:
        raise ValueError(f"points_3d: expected (J, 3), got {tuple(points_3d.shape)}")
    if points_2d.shape != (points_3d.shape[0], 2):
        raise ValueError(f"points_2d: expected ({points_3d.shape[0]}, 2), got {tuple(points_2d.shape)}")
    p = points_3d[:, :2].double()
    q = points_2d.double()
    if not (torch.isfinite(p).all() and torch.isfinite(q).all()):
        raise ValueError("fit_weak_perspective: the points hold NaN or inf values")
    w = torch.ones(len(p), dtype=torch.float64) if weights is None else weights.double().reshape(-1)
    if w.shape != (len(p),) or (w < 0).any() or float(w.sum()) <= 0:
        raise ValueError(f"weights: expected ({len(p)},) non-negative values, not all zero")
    w = w / w.sum()
    c3, c2 = (w[:, None] * p).sum(0), (w[:, None] * q).sum(0)
    pc, qc = p - c3, q - c2
    spread_3d = float((w * (pc**2).sum(1)).sum())
    if spread_3d <= 1e-12:
        raise ValueError("fit_weak_perspective: the 3D points project to a single point")
    scale = float((w * (pc * qc).sum(1)).sum()) / spread_3d
    if scale <= 0:
        scale = math.sqrt(float((w * (qc**2).sum(1)).sum()) / spread_3d)
    translation = c2 - scale * c3
    residual = float((w * ((scale * p + translation - q) ** 2).sum(1)).sum()) ** 0.5
    return WeakPerspective(scale, (float(translation[0]), float(translation[1])), residual)


def overlay_body(
    renderer: Renderer,
    vertices: torch.Tensor,
    faces: np.ndarray,
    camera: WeakPerspective,
    crop: np.ndarray,
    opacity: float = 0.7,
    upscale: int = 1,
) -> np.ndarray:
    """(upscale x H, upscale x W, 3) uint8: the body of camera-frame `vertices` (V, 3) drawn over the (H, W, 3)
    uint8 `crop` where the weak-perspective `camera` (pixels of the crop) puts it, at `opacity`; `upscale` > 1
    renders the body at that multiple of the crop's resolution over the crop enlarged (sharper edges). A
    weak-perspective camera is the far limit of a pinhole one: the body is moved `OVERLAY_DISTANCE_M` away
    and seen with focal `scale` x that distance."""
    if int(upscale) != upscale or upscale < 1:
        raise ValueError(f"upscale={upscale}: expected an integer >= 1")
    if upscale > 1:
        crop = np.asarray(Image.fromarray(crop).resize((crop.shape[1] * upscale, crop.shape[0] * upscale)))
        tx, ty = camera.translation  # pixel centres at integers: u -> (u + 0.5) k - 0.5
        shift = ((tx + 0.5) * upscale - 0.5, (ty + 0.5) * upscale - 0.5)
        camera = WeakPerspective(camera.scale * upscale, shift, camera.residual_px * upscale)
    height, width = crop.shape[:2]
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    v = vertices.double().cpu().numpy()
    tx, ty = camera.translation
    x = v[:, 0] + (tx - cx) / camera.scale
    y = v[:, 1] + (ty - cy) / camera.scale
    z = v[:, 2] - v[:, 2].mean() + OVERLAY_DISTANCE_M
    gl_vertices = np.stack([x, -y, -z], axis=1)  # OpenCV (y down, z forward) -> OpenGL (y up, looking down -z)
    focal = camera.scale * OVERLAY_DISTANCE_M
    view = Camera(width, height, focal, focal, cx, cy, znear=OVERLAY_DISTANCE_M - 10, zfar=OVERLAY_DISTANCE_M + 10)
    layers = renderer.render_layers(MeshSpec(gl_vertices, faces), view)
    alpha = opacity * layers.alpha[..., None]
    blended = crop.astype(np.float32) / 255.0 * (1.0 - alpha) + opacity * layers.color
    return np.clip(np.rint(blended * 255.0), 0, 255).astype(np.uint8)


def errors_table(errors: Mapping[str, Mapping[str, float]], labels: Mapping[str, str]) -> dict[str, list[str]]:
    """{column: cells}: one row per metric (`METRIC_LABELS`), one column per input set (`labels`: name ->
    column title) and, with both the image alone and image + text, the change the text brings; values with
    one decimal, for `st.table`."""
    table = {"metric": list(METRIC_LABELS.values())}
    for name, values in errors.items():
        table[labels.get(name, name)] = [f"{values[m]:.1f}" for m in METRIC_LABELS]
    alone, both = input_types_name(IMAGE_ONLY), input_types_name(IMAGE_AND_TEXT)
    if alone in errors and both in errors:
        table["change with the text"] = [f"{errors[both][m] - errors[alone][m]:+.1f}" for m in METRIC_LABELS]
    return table
