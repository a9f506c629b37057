"""`Environment`: each kind shades rays into colours, pointwise (any window of the frame agrees)."""

from __future__ import annotations

import numpy as np

from poseembroider.datasets.synthetic.scene import ENVIRONMENT_KINDS, SceneConfig, SceneSampler


def test_environments_shade_rays_pointwise(bodies):
    body = bodies[1]
    rng = np.random.default_rng(0)
    rays = rng.normal(size=(500, 3))
    rays /= np.linalg.norm(rays, axis=1, keepdims=True)
    for kind_index, kind in enumerate(ENVIRONMENT_KINDS):
        probs = tuple(float(i == kind_index) for i in range(3))
        params = SceneSampler(seed=kind_index, config=SceneConfig(environment_probs=probs)).sample(
            body.vertices, body.joints, index=0
        )
        env, origin = params.environment, params.frame_camera().position
        assert env.kind == kind
        colors = env.shade(origin, rays, 1e-3, params.key_light_direction)
        assert colors.shape == (500, 3) and colors.min() >= 0 and colors.max() <= 1
        np.testing.assert_allclose(
            env.shade(origin, rays[100:150], 1e-3, params.key_light_direction), colors[100:150], atol=1e-6
        )
