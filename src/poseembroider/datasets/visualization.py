"""Shared pieces of the dataset browsers and demos: pose rendering, image conversion, split order, viewpoints.

Kept free of streamlit so it can be tested and reused by the quickstart's contact sheets.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch

from poseembroider.datasets.pose_processing import to_render_frame
from poseembroider.geometry import axis_angle_to_matrix, matrix_to_axis_angle

RENDER_HW = (320, 240)

SPLIT_PREFERENCE = ("val", "test", "train")
"""Splits a browser or demo opens on, best first: a held-out split shows what a model does on unseen data
(the original demos open BEDLAM-Script on val), and the train split is the largest and slowest to load."""

AZIMUTH_RANGE = (-180, 180)
AZIMUTH_STEP = 15
"""Viewpoint slider of the apps, in degrees around the body: a step that divides 90 reaches the side
views (+-90, `render_body`'s "side") and the back (+-180) as well as the front (0)."""


def order_splits(splits: Iterable[str]) -> list[str]:
    """The distinct `splits`, `SPLIT_PREFERENCE` first (val, test, train), then the others by name."""
    rank = {split: i for i, split in enumerate(SPLIT_PREFERENCE)}
    return sorted(set(splits), key=lambda split: (rank.get(split, len(rank)), split))


def pose_image(
    body_model,
    renderer,
    pose: torch.Tensor,
    shape: torch.Tensor | None = None,
    azimuth_deg: float = 0.0,
    cam_rot: torch.Tensor | None = None,
) -> np.ndarray:
    """(H, W, 3) uint8 render of a (22, 3) pose given in the models' z-up frame.

    With `cam_rot` (from the dataset item: z-up pose -> OpenCV camera frame), the body is shown as the
    camera saw it: the OpenCV camera frame (y down, z forward) is turned into the renderer's view frame
    (y up, looking down -z) by a half turn about x.
    """
    from poseembroider.rendering import render_body

    pose = pose.clone()
    if cam_rot is not None:
        opencv_to_view = torch.diag(torch.tensor([1.0, -1.0, -1.0]))
        pose[0] = matrix_to_axis_angle(opencv_to_view @ axis_angle_to_matrix(cam_rot) @ axis_angle_to_matrix(pose[0]))
    else:
        pose = to_render_frame(pose)
    betas = None if shape is None else shape[None]
    with torch.no_grad():
        vertices = body_model(pose[None], betas=betas).vertices[0].numpy()
    return render_body(renderer, vertices, body_model.faces, (azimuth_deg, 10.0), image_size=RENDER_HW)


def image_to_uint8(image: torch.Tensor) -> np.ndarray:
    """(3, H, W) float image in [0, 1] -> (H, W, 3) uint8 for display."""
    return (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
