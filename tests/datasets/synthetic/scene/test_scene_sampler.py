"""`SceneSampler`: cameras meeting the criteria known before rendering, occluders between camera and body,
and draws that depend on (seed, index) only."""

from __future__ import annotations

import numpy as np

from poseembroider.datasets.synthetic.scene import SceneSampler, frame_body


def test_sampled_cameras_meet_the_selection_criteria_and_ranges(bodies):
    sampler = SceneSampler(seed=11)
    kinds = set()
    for index, body in enumerate(bodies):
        params = sampler.sample(body.vertices, body.joints, index=index)
        camera = params.frame_camera()
        assert params.frame_hw in ((720, 1280), (1280, 720))
        assert params.distance >= 2.5 and -10.0 <= params.elevation_deg <= 35.0 + 1e-9
        assert 40.0 <= params.hfov_deg <= 70.0
        uv = camera.project(body.joints[:22])
        inside = (uv[:, 0] > -0.5) & (uv[:, 0] < params.frame_hw[1] - 0.5)
        inside &= (uv[:, 1] > -0.5) & (uv[:, 1] < params.frame_hw[0] - 0.5)
        assert inside.sum() >= 16
        # the camera is above the floor, and the occluders stand between it and the body, clear of it
        floor = float(body.vertices[:, 1].min())
        assert camera.position[1] >= floor + 0.3 - 1e-9
        pelvis_depth = camera.depth(body.joints[0])
        for occluder in params.occluders:
            assert camera.depth(occluder.center) < pelvis_depth
            for part in occluder.parts:
                local = (body.vertices - part.center) @ part.rotation
                inside_part = (np.abs(local) <= part.size / 2).all(axis=1)
                assert not inside_part.any(), occluder.name
        kinds.add(params.environment.kind)
        # the criteria the camera was drawn for hold, known without rendering
        framing = frame_body(body, params)
        assert framing.criteria["passes_resolution"] and framing.criteria["passes_visible_joints"]
        np.testing.assert_array_equal(framing.in_frame, inside)
    assert len(kinds) >= 2


def test_sampling_by_index_is_reproducible(bodies):
    body = bodies[0]
    first = SceneSampler(seed=3).sample(body.vertices, body.joints, index=5)
    second = SceneSampler(seed=3).sample(body.vertices, body.joints, index=5)
    other = SceneSampler(seed=3).sample(body.vertices, body.joints, index=6)
    np.testing.assert_array_equal(first.camera_pose, second.camera_pose)
    assert first.outfit == second.outfit and first.lights == second.lights
    assert not np.allclose(first.camera_pose, other.camera_pose)
