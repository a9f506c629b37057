"""Camera placement: where the body's bbox lands in the frame, inside it or pushed out for truncation."""

from __future__ import annotations

import numpy as np
import pytest

from poseembroider.datasets.synthetic.scene.camera_placement import TRUNCATION_SIDES, frame_shift

FRAME_HW = (720, 1280)
BOX = np.array([300.0, 100.0, 500.0, 600.0])  # (x1, y1, x2, y2): 200 x 500 pixels


def _shifted(seed: int, truncate: bool, fraction=(0.1, 0.45)) -> np.ndarray:
    du, dv = frame_shift(np.random.default_rng(seed), BOX, FRAME_HW, truncate, fraction)
    return BOX + np.array([du, dv, du, dv])


def test_untruncated_boxes_land_anywhere_inside_the_frame_margin():
    height, width = FRAME_HW
    boxes = np.stack([_shifted(seed, truncate=False) for seed in range(50)])
    assert (boxes[:, 0] >= 0.02 * width - 1e-9).all() and (boxes[:, 2] <= 0.98 * width + 1e-9).all()
    assert (boxes[:, 1] >= 0.02 * height - 1e-9).all() and (boxes[:, 3] <= 0.98 * height + 1e-9).all()
    assert np.ptp(boxes[:, 0]) > 0.5 * (0.96 * width - 200)  # spread over the frame, not centred


def test_a_box_too_large_for_the_frame_is_centred():
    tall = np.array([0.0, 0.0, 100.0, 2000.0])
    du, dv = frame_shift(np.random.default_rng(0), tall, FRAME_HW, False, (0.1, 0.45))
    assert (tall[1] + dv + tall[3] + dv) / 2 == pytest.approx(FRAME_HW[0] / 2)


def test_truncated_boxes_stick_out_of_one_side_by_the_drawn_fraction():
    height, width = FRAME_HW
    sides = set()
    for seed in range(60):
        x1, y1, x2, y2 = _shifted(seed, truncate=True)
        out = {  # pixels beyond each frame edge (pixel centres at integers: edges at -0.5, size - 0.5)
            "left": -0.5 - x1,
            "right": x2 - (width - 0.5),
            "top": -0.5 - y1,
            "bottom": y2 - (height - 0.5),
        }
        outside = [side for side, pixels in out.items() if pixels > 1e-6]
        assert len(outside) == 1, out
        side = outside[0]
        extent = 200.0 if side in ("left", "right") else 500.0
        assert 0.1 * extent - 1e-6 <= out[side] <= 0.45 * extent + 1e-6
        sides.add(side)
    assert sides == set(TRUNCATION_SIDES)
