"""The scene's two dataclasses: `SceneConfig`, the distributions a scene is drawn from, and `SceneParams`,
one draw of them.

Kept together and apart from the code that draws (`sampler.py` and the modules it calls) or renders
(`render.py`): a `SceneParams` is the whole contract between the two. Same params + same body = same
image, so a generator can draw params, check the framing analytically, and render only what it keeps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from poseembroider.datasets.synthetic.crops import SelectionCriteria
from poseembroider.datasets.synthetic.scene.environment import Environment
from poseembroider.datasets.synthetic.scene.occluders import Occluder
from poseembroider.datasets.synthetic.textures import Outfit
from poseembroider.rendering.camera import Camera
from poseembroider.rendering.lighting import Light

__all__ = ["BEDLAM_FRAME_HW", "SceneConfig", "SceneParams"]

BEDLAM_FRAME_HW: tuple[int, int] = (720, 1280)
"""(height, width) of BEDLAM frames, the virtual frame of the synthetic samples."""


@dataclass(frozen=True, eq=False)
class SceneParams:
    """Everything random about one sample except the body: same params + same body = same image.

    Attributes:
        frame_hw: (H, W) of the virtual frame.
        fx, fy, cx, cy: frame intrinsics (pixels; pixel centres at integers).
        camera_pose: (4, 4) OpenGL camera-to-world pose.
        distance, elevation_deg, azimuth_deg, roll_deg, hfov_deg: the draws behind the camera (record).
        truncated: whether the framing was drawn to push part of the body out of the frame.
        lights: lights of the render (world- or camera-attached).
        environment: background.
        occluders: objects between the camera and the body.
        outfit: the person's colours.
    """

    frame_hw: tuple[int, int]
    fx: float
    fy: float
    cx: float
    cy: float
    camera_pose: np.ndarray
    lights: tuple[Light, ...]
    environment: Environment
    occluders: tuple[Occluder, ...]
    outfit: Outfit
    distance: float = 0.0
    elevation_deg: float = 0.0
    azimuth_deg: float = 0.0
    roll_deg: float = 0.0
    hfov_deg: float = 0.0
    truncated: bool = False

    def frame_camera(self) -> Camera:
        """The camera of the whole virtual frame."""
        return Camera(
            width=self.frame_hw[1],
            height=self.frame_hw[0],
            fx=self.fx,
            fy=self.fy,
            cx=self.cx,
            cy=self.cy,
            pose=self.camera_pose,
            znear=0.05,
            zfar=500.0,
        )

    @property
    def key_light_direction(self) -> np.ndarray:
        """(3,) world direction of travel of the first light (shadows)."""
        return self.lights[0].world_direction(self.camera_pose) if self.lights else np.array([0.0, -1.0, 0.0])


@dataclass(frozen=True)
class SceneConfig:
    """Distributions of `SceneSampler` (ranges are uniform unless stated)."""

    frame_hw: tuple[int, int] = BEDLAM_FRAME_HW  # landscape virtual frame (H, W)
    portrait_prob: float = 0.1  # BEDLAM close-up scenes: the frame turned to portrait
    distance: tuple[float, float] = (2.5, 8.0)  # camera to body centre (m)
    elevation_deg: tuple[float, float] = (-10.0, 35.0)  # camera above (+) / below (-) the body centre
    hfov_deg: tuple[float, float] = (40.0, 70.0)  # horizontal field of view of the landscape frame
    roll_std_deg: float = 3.0  # camera roll, Gaussian
    roll_max_deg: float = 8.0
    min_camera_height: float = 0.3  # above the floor (m)
    truncation_prob: float = 0.2  # part of the body pushed out of the frame
    truncation_fraction: tuple[float, float] = (0.1, 0.45)  # of the body's image extent
    occluder_count_probs: tuple[float, ...] = (0.5, 0.25, 0.15, 0.1)  # P(0), P(1), P(2), P(3)
    max_occluder_overlap: float = 0.6  # of the person's image bbox hidden by one occluder's bbox
    environment_probs: tuple[float, float, float] = (0.45, 0.35, 0.2)  # indoor, outdoor, studio
    criteria: SelectionCriteria | None = SelectionCriteria()  # camera redrawn until res and j16 pass
    max_tries: int = 30
