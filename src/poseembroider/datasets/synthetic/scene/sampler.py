"""`SceneSampler`: draws the `SceneParams` of a body, one component after the other, from one seeded stream.

The order of the draws is part of the data: camera (redrawn until the criteria known before rendering
pass), environment kind, lights, environment, occluders, outfit. Each component is drawn by its own
module (`camera_placement`, `lighting`, `environment_sampler`, `occluders`, `textures.sample_outfit`);
this one only seeds the stream and calls them in that order, so a given (seed, index) gives the same
scene for as long as that order and those modules' draws stay the same.
"""

from __future__ import annotations

import numpy as np

from poseembroider.datasets.synthetic.scene.body import NUM_BODY_JOINTS
from poseembroider.datasets.synthetic.scene.camera_placement import meets_criteria, sample_camera
from poseembroider.datasets.synthetic.scene.environment_sampler import sample_environment, sample_environment_kind
from poseembroider.datasets.synthetic.scene.lighting import sample_lights
from poseembroider.datasets.synthetic.scene.occluders import sample_occluders
from poseembroider.datasets.synthetic.scene.params import SceneConfig, SceneParams
from poseembroider.datasets.synthetic.textures import sample_outfit

__all__ = ["SceneSampler"]

DEFAULT_SCENE_CONFIG = SceneConfig()
"""The distributions of BEDLAM-like scenes (`SceneConfig` defaults)."""


def _to_numpy(value) -> np.ndarray:
    """float64 numpy copy of an array or a (possibly CUDA, grad-tracking) tensor."""
    value = value.detach().cpu().numpy() if hasattr(value, "detach") else value
    return np.asarray(value, dtype=np.float64)


class SceneSampler:
    """Draws `SceneParams` for bodies; seeded.

    `sample(vertices, joints)` draws from one stream (`seed`); `sample(..., index=i)` draws from a
    generator seeded by (seed, i) only, so sample i is the same whichever worker makes it and in
    whatever order (parallel, resumable generation).

    With `config.criteria`, the camera is redrawn (up to `max_tries` times) until the person passes the
    resolution and in-frame-joint criteria, which are known before rendering; occlusion is left to the
    draw (its `overlap` value is reported by `render_sample`).
    """

    def __init__(self, seed: int = 0, config: SceneConfig = DEFAULT_SCENE_CONFIG):
        self.seed = int(seed)
        self.config = config
        self._rng = np.random.default_rng(self.seed)

    def rng_for(self, index: int | None) -> np.random.Generator:
        """The sampler's own stream (`index` None) or a fresh generator seeded by (seed, index)."""
        return self._rng if index is None else np.random.default_rng([self.seed, int(index)])

    def sample(self, vertices: np.ndarray, joints: np.ndarray, index: int | None = None) -> SceneParams:
        """Params for a body with world vertices (V, 3) and joints (>= 22, 3) (SMPL-X frame, y up)."""
        rng = self.rng_for(index)
        vertices, joints = _to_numpy(vertices), _to_numpy(joints)
        if vertices.ndim != 2 or vertices.shape[1] != 3:
            raise ValueError(f"vertices: expected (V, 3), got {vertices.shape}")
        if joints.ndim != 2 or joints.shape[0] < NUM_BODY_JOINTS or joints.shape[1] != 3:
            raise ValueError(f"joints: expected (>= {NUM_BODY_JOINTS}, 3), got {joints.shape}")
        probe = vertices[:: max(1, len(vertices) // 1500)]
        body_joints = joints[:NUM_BODY_JOINTS]
        draw = None
        for _ in range(max(1, self.config.max_tries)):
            draw = sample_camera(rng, self.config, probe)
            if meets_criteria(draw, self.config.criteria, probe, body_joints):
                break
        assert draw is not None
        env_kind = sample_environment_kind(rng, self.config.environment_probs)
        lights, light_rgb = sample_lights(rng, env_kind, draw.record["azimuth_deg"])
        environment = sample_environment(rng, env_kind, vertices, draw.pose, light_rgb)
        occluders = sample_occluders(
            rng,
            vertices,
            draw.camera(),
            environment.floor_y,
            self.config.occluder_count_probs,
            self.config.max_occluder_overlap,
        )
        return SceneParams(
            frame_hw=draw.frame_hw,
            fx=draw.fx,
            fy=draw.fx,
            cx=(draw.frame_hw[1] - 1) / 2.0,
            cy=(draw.frame_hw[0] - 1) / 2.0,
            camera_pose=draw.pose,
            lights=lights,
            environment=environment,
            occluders=occluders,
            outfit=sample_outfit(rng),
            **draw.record,
        )
