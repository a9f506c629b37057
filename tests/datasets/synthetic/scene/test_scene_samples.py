"""`render_sample`: crop window = crop of the frame, joints, visibility, truncation, occluders, cam_rot,
supersampling and determinism."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from poseembroider.datasets.synthetic.crops import (
    CROP_HW,
    OPENGL_TO_OPENCV,
    apply_camera_rotation,
    crop_and_resize,
    crop_window,
)
from poseembroider.datasets.synthetic.scene import (
    Occluder,
    PosedBody,
    Primitive,
    SceneConfig,
    SceneSampler,
    frame_body,
    render_frame,
    render_sample,
)
from poseembroider.datasets.synthetic.textures import Texture2D
from poseembroider.rendering import Camera, MeshSpec


def _without_occluders(params):
    return dataclasses.replace(params, occluders=())


def _body_mask(renderer, body: PosedBody, params, sample) -> np.ndarray:
    """(256, 192) bool silhouette of the body alone in the sample's crop window."""
    window = crop_window(sample.tight_bbox, params.frame_hw)
    camera = window.camera(params.frame_camera())
    return renderer.render_layers([MeshSpec(body.vertices, body.faces)], camera, unlit=True).alpha > 0


@pytest.mark.render
def test_crops_are_256x192_and_frame_the_person(renderer, bodies, surface):
    sampler = SceneSampler(seed=1)
    for index, body in enumerate(bodies[:5]):
        params = _without_occluders(sampler.sample(body.vertices, body.joints, index=index))
        sample = render_sample(renderer, body, params, surface)
        assert sample.image.shape == (*CROP_HW, 3) and sample.image.dtype == np.uint8
        window = crop_window(sample.tight_bbox, params.frame_hw)
        content = window.content_weights() > 0.5
        mask = _body_mask(renderer, body, params, sample) & content  # the frame's part of the body
        coverage = mask[content].mean()
        assert 0.08 < coverage < 0.9, coverage
        # the silhouette's bbox is the tight bbox, mapped into the crop (sf 1.1 margin around it)
        rows, cols = np.nonzero(mask)
        corners = window.frame_to_crop(sample.tight_bbox.reshape(2, 2))
        np.testing.assert_allclose([cols.min(), rows.min()], corners[0], atol=2.0)
        np.testing.assert_allclose([cols.max(), rows.max()], corners[1], atol=2.0)
        # zero padding outside the frame content, as the original pads
        assert sample.image[window.content_weights() == 0].max(initial=0) == 0
        assert set(sample.criteria) >= {"overlap", "resolution", "visible_joints", "selected", "full_human_visibility"}
        assert sample.criteria["resolution"] > 224 and sample.criteria["visible_joints"] >= 16


@pytest.mark.render
def test_crop_equals_the_crop_of_a_full_frame_render(renderer, bodies, surface):
    from poseembroider.rendering import MeshRenderer

    config = SceneConfig(occluder_count_probs=(0.0, 1.0), truncation_prob=0.5, portrait_prob=0.0)
    sampler = SceneSampler(seed=5, config=config)
    frame_renderer = MeshRenderer(1280, 720)
    try:
        for index in (0, 3):
            body = bodies[index]
            params = sampler.sample(body.vertices, body.joints, index=index)
            sample = render_sample(renderer, body, params, surface)
            frame = render_frame(frame_renderer, body, params, surface)
            assert frame.shape == (720, 1280, 3)
            reference = crop_and_resize(frame, sample.bbox)
            diff = np.abs(reference.astype(int) - sample.image.astype(int))
            # equal up to resampling: differences sit on anti-aliased edges only
            assert diff.mean() < 2.5, diff.mean()
            assert np.percentile(diff, 90) <= 4
    finally:
        frame_renderer.close()


@pytest.mark.render
def test_projected_joints_land_on_the_body(renderer, bodies, surface):
    sampler = SceneSampler(seed=2)
    for index, body in enumerate(bodies[:4]):
        params = _without_occluders(sampler.sample(body.vertices, body.joints, index=index))
        sample = render_sample(renderer, body, params, surface)
        mask = _body_mask(renderer, body, params, sample)
        padded = np.pad(mask, 1)
        for joint in np.flatnonzero(sample.in_frame):
            u, v = np.rint(sample.joints_2d[joint]).astype(int)
            assert padded[v : v + 3, u : u + 3].any(), (index, joint)
        assert sample.unoccluded.tolist() == sample.in_frame.tolist()  # no occluder: only the frame counts


@pytest.mark.render
def test_truncated_samples_mark_off_frame_joints(renderer, bodies, surface):
    config = SceneConfig(truncation_prob=1.0, occluder_count_probs=(1.0,), portrait_prob=0.0)
    sampler = SceneSampler(seed=4, config=config)
    truncated = 0
    for index, body in enumerate(bodies):
        params = sampler.sample(body.vertices, body.joints, index=index)
        sample = render_sample(renderer, body, params, surface)
        height, width = params.frame_hw
        uv = sample.joints_2d_frame
        outside = (uv[:, 0] + 0.5 <= 0) | (uv[:, 0] + 0.5 >= width) | (uv[:, 1] + 0.5 <= 0) | (uv[:, 1] + 0.5 >= height)
        np.testing.assert_array_equal(sample.in_frame, ~outside)
        assert not sample.unoccluded[outside].any() and not sample.visible[outside].any()
        assert sample.criteria["full_human_visibility"] == bool(sample.in_frame.all())
        if outside.any():
            truncated += 1
            x1, y1, x2, y2 = sample.bbox
            assert x1 == 0 or y1 == 0 or x2 == width or y2 == height  # the crop is cut by the frame
    assert truncated >= 2


@pytest.mark.render
def test_occluders_hide_joints(renderer, bodies, surface):
    body = bodies[2]
    params = _without_occluders(SceneSampler(seed=9).sample(body.vertices, body.joints, index=0))
    clear = render_sample(renderer, body, params, surface)
    camera = params.frame_camera()
    # a wall-like panel halfway between the camera and the pelvis, facing the camera
    pelvis = body.joints[0]
    middle = (camera.position + pelvis) / 2
    toward = camera.position - pelvis
    yaw = float(np.arctan2(toward[0], toward[2]))
    texture = Texture2D("stripes", np.array([[0.9, 0.1, 0.1], [0.1, 0.1, 0.9]]), scale=0.2)
    panel = Primitive("box", (middle[0], middle[1], middle[2]), (1.2, 0.8, 0.05), yaw, texture)
    hidden = render_sample(
        renderer, body, dataclasses.replace(params, occluders=(Occluder("panel", (panel,)),)), surface
    )
    assert clear.unoccluded.sum() == clear.in_frame.sum()
    assert hidden.unoccluded.sum() <= clear.unoccluded.sum() - 3
    assert not hidden.unoccluded[0]  # the panel is on the line of sight of the pelvis
    assert hidden.visible.sum() < clear.visible.sum()
    assert hidden.criteria["overlap"] > 0.0 and clear.criteria["overlap"] == 0.0
    with_panel = dataclasses.replace(params, occluders=(Occluder("panel", (panel,)),))
    assert frame_body(body, with_panel).criteria == hidden.criteria  # known before rendering
    assert np.abs(hidden.image.astype(int) - clear.image.astype(int)).mean() > 5


@pytest.mark.render
def test_cam_rot_reproduces_the_image(renderer, bodies, surface, body_model, dev_poses):
    body_index = 4
    body = bodies[body_index]
    poses = dev_poses[body_index : body_index + 1].double()
    params = _without_occluders(SceneSampler(seed=6).sample(body.vertices, body.joints, index=1))
    sample = render_sample(renderer, body, params, surface)
    # pose the body with cam_rot applied to the normalised global orientation: camera-frame body
    camera_orient = apply_camera_rotation(sample.cam_rot, sample.global_orient_normalized)
    posed = poses.clone()
    posed[0, 0] = torch.as_tensor(camera_orient)
    with torch.no_grad():
        output = body_model(posed.float(), transl=torch.as_tensor(sample.cam_transl, dtype=torch.float32)[None])
    joints_cv = output.body_joints[0].double().numpy()  # OpenCV camera frame: x right, y down, z forward
    projected = joints_cv[:, :2] / joints_cv[:, 2:] @ np.diag([sample.K[0, 0], sample.K[1, 1]]) + sample.K[:2, 2]
    np.testing.assert_allclose(projected, sample.joints_2d_frame, atol=0.05)
    crop_projected = (
        joints_cv[:, :2] / joints_cv[:, 2:] @ np.diag([sample.K_crop[0, 0], sample.K_crop[1, 1]]) + sample.K_crop[:2, 2]
    )
    np.testing.assert_allclose(crop_projected, sample.joints_2d, atol=0.05)
    # and rendering that camera-frame body with the crop intrinsics gives the same silhouette
    vertices_gl = output.vertices[0].double().numpy() @ OPENGL_TO_OPENCV  # OpenCV -> OpenGL camera frame
    crop_camera = Camera(
        width=CROP_HW[1],
        height=CROP_HW[0],
        fx=sample.K_crop[0, 0],
        fy=sample.K_crop[1, 1],
        cx=sample.K_crop[0, 2],
        cy=sample.K_crop[1, 2],
    )
    mask_cam = renderer.render_layers([MeshSpec(vertices_gl, body.faces)], crop_camera, unlit=True).alpha > 0
    mask_world = _body_mask(renderer, body, params, sample)
    iou = (mask_cam & mask_world).sum() / (mask_cam | mask_world).sum()
    assert iou > 0.97, iou


@pytest.mark.render
def test_same_params_give_the_same_image(renderer, bodies, surface):
    body = bodies[3]
    first = render_sample(renderer, body, SceneSampler(seed=8).sample(body.vertices, body.joints, index=2), surface)
    again = render_sample(renderer, body, SceneSampler(seed=8).sample(body.vertices, body.joints, index=2), surface)
    other = render_sample(renderer, body, SceneSampler(seed=8).sample(body.vertices, body.joints, index=3), surface)
    np.testing.assert_array_equal(first.image, again.image)
    np.testing.assert_array_equal(first.cam_rot, again.cam_rot)
    assert np.abs(first.image.astype(int) - other.image.astype(int)).mean() > 10


@pytest.mark.render
def test_supersampled_render_matches_the_plain_one(renderer, bodies, surface):
    body = bodies[0]
    params = SceneSampler(seed=12).sample(body.vertices, body.joints, index=0)
    plain = render_sample(renderer, body, params, surface)
    smooth = render_sample(renderer, body, params, surface, supersample=2)  # resizes the framebuffer
    assert smooth.image.shape == plain.image.shape
    assert np.abs(smooth.image.astype(int) - plain.image.astype(int)).mean() < 3.0
    np.testing.assert_array_equal(smooth.in_frame, plain.in_frame)
    np.testing.assert_allclose(smooth.joints_2d, plain.joints_2d)


def test_render_sample_checks_the_surface_map(bodies, surface):
    body = bodies[0]
    params = SceneSampler(seed=0).sample(body.vertices, body.joints, index=0)
    small = dataclasses.replace(surface, labels=surface.labels[:10])
    with pytest.raises(ValueError, match="surface map"):
        render_sample(None, body, params, small)
