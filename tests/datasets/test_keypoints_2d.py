"""2D joints in model-crop pixels: `crop_keypoints` / `flip_keypoints` against the image operations they
mirror, and the datasets' optional `joints_2d_crop` item key."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from poseembroider import config
from poseembroider.body.joints import joint_names_for_count, left_right_permutation
from poseembroider.datasets.cache_format import cache_file_name, save_cache
from poseembroider.datasets.image_processing import (
    AffineJitter,
    camera_roll,
    crop_box,
    crop_keypoints,
    flip_keypoints,
    pad_resize,
    similarity_matrix,
    warp_crop,
    warp_keypoints,
)
from poseembroider.datasets.registry import get_dataset, synth_image_root
from poseembroider.geometry import axis_angle_to_matrix

VERSION = "kp2d_overlap30_res224_j16_sf11"
IDS = (3, 4)
IMAGE_HW = (300, 200)
BBOXES = {3: [20.0, 30.0, 170.0, 260.0], 4: [10.2, 5.0, 190.0, 120.0]}  # tall crop (side padding), wide crop


def _bright_centroid(image: torch.Tensor) -> torch.Tensor:
    """(x, y) intensity centroid of a (3, H, W) image with one bright spot on black."""
    weight = image.float().sum(0)
    weight = weight * (weight > 0.3 * weight.max())
    ys, xs = torch.meshgrid(torch.arange(image.shape[1]), torch.arange(image.shape[2]), indexing="ij")
    return torch.stack([(xs * weight).sum(), (ys * weight).sum()]) / weight.sum()


def _spot_image(x: int, y: int, hw: tuple[int, int] = IMAGE_HW) -> torch.Tensor:
    image = torch.zeros(3, *hw, dtype=torch.uint8)
    image[:, y - 2 : y + 3, x - 2 : x + 3] = 255  # 5x5 square centred on pixel (x, y)
    return image


def test_crop_keypoints_by_hand_on_a_padded_box():
    # 96 wide x 64 high crop of a 64x96 image: wider than 3:4, so 32 rows of zeros above and below
    # (int(|96 / 192 * 256 - 64| / 2) = 32), then a 96x128 -> 192x256 resize (scale 2)
    points = torch.tensor([[0.0, 0.0], [95.0, 63.0], [47.5, 31.5]])
    mapped = crop_keypoints(points, [0, 0, 96, 64], (64, 96))
    expected = torch.tensor([[0.5, 64.5], [190.5, 190.5], [95.5, 127.5]])
    torch.testing.assert_close(mapped, expected)
    # a box offset inside the image, no padding (60x80 is 3:4): scale 3.2 from the box's corner
    mapped = crop_keypoints(torch.tensor([[50.0, 10.0]]), [50, 10, 110, 90], (100, 200))
    torch.testing.assert_close(mapped, torch.tensor([[1.1, 1.1]]))


@pytest.mark.parametrize(
    ("bbox", "spot"),
    [(BBOXES[3], (60, 80)), (BBOXES[3], (150, 200)), (BBOXES[4], (120, 40)), (BBOXES[4], (30, 100))],
)
def test_crop_keypoints_follow_the_image_crop_pad_and_resize(bbox, spot):
    x, y = spot
    crop = pad_resize(crop_box(_spot_image(x, y), bbox))
    mapped = crop_keypoints(torch.tensor([[float(x), float(y)]]), bbox, IMAGE_HW)[0]
    assert (mapped - _bright_centroid(crop)).abs().max() < 0.35


def test_flip_keypoints_follow_the_image_flip_and_swap_sides():
    crop = _spot_image(30, 100, (256, 192))
    flipped = flip_keypoints(
        torch.tensor([[[30.0, 100.0]] * 22]), 192, left_right_permutation(joint_names_for_count(22))
    )
    torch.testing.assert_close(_bright_centroid(crop.flip(-1)), flipped[0, 0])
    names = joint_names_for_count(22)
    points = torch.arange(44, dtype=torch.float32).view(22, 2)
    out = flip_keypoints(points, 192, left_right_permutation(names))
    left, right = names.index("left_wrist"), names.index("right_wrist")
    assert out[left, 1] == points[right, 1] and out[left, 0] == 191 - points[right, 0]
    torch.testing.assert_close(flip_keypoints(out, 192, left_right_permutation(names)), points)


@pytest.mark.parametrize(
    ("theta", "scale", "shift", "spot"),
    [(0.4, 1.0, (0.0, 0.0), (60, 90)), (-0.5, 1.2, (10.0, -15.0), (120, 180)), (0.0, 0.8, (-12.0, 7.0), (40, 60))],
)
def test_warp_keypoints_follow_the_warped_crop(theta, scale, shift, spot):
    matrix = similarity_matrix(theta, scale, shift, (256, 192))
    warped = warp_crop(_spot_image(*spot, (256, 192)), matrix)
    moved = warp_keypoints(torch.tensor([[float(spot[0]), float(spot[1])]]), matrix)[0]
    assert (moved - _bright_centroid(warped)).abs().max() < 0.35
    # the identity leaves pixels and points alone
    identity = similarity_matrix(0.0, 1.0, (0.0, 0.0), (256, 192))
    image = torch.randint(0, 256, (3, 256, 192), dtype=torch.uint8)
    assert torch.equal(warp_crop(image, identity), image)


def test_camera_roll_turns_projected_points_as_the_crop_turns():
    # a pinhole camera with its principal point at the crop centre: rolling the 3D points by camera_roll(theta)
    # moves their projections as similarity_matrix(theta) moves pixels
    gen = torch.Generator().manual_seed(0)
    points = torch.randn(30, 3, generator=gen) * 0.4 + torch.tensor([0.0, 0.0, 4.0])
    centre = torch.tensor([(192 - 1) / 2, (256 - 1) / 2])

    def project(p: torch.Tensor) -> torch.Tensor:
        return 500.0 * p[:, :2] / p[:, 2:] + centre

    theta = 0.6
    rolled = project(points @ camera_roll(theta).T)
    torch.testing.assert_close(
        rolled, warp_keypoints(project(points), similarity_matrix(theta, 1.0, (0, 0), (256, 192)))
    )


def test_affine_jitter_draws_within_its_ranges_and_refuses_bad_ranges():
    import math
    import random

    jitter = AffineJitter(rotation_deg=20.0, scale=(0.8, 1.25), translate=0.1)
    rng = random.Random(0)
    for _ in range(50):
        matrix, theta = jitter.draw(rng)
        scale = float(torch.linalg.det(matrix[:, :2]).sqrt())
        assert abs(theta) <= math.radians(20.0) + 1e-9 and 0.8 - 1e-5 <= scale <= 1.25 + 1e-5
        shift = warp_keypoints(torch.tensor([[95.5, 127.5]]), matrix)[0] - torch.tensor([95.5, 127.5])
        assert shift[0].abs() <= 19.2 + 1e-3 and shift[1].abs() <= 25.6 + 1e-3
    never = AffineJitter(probability=0.0)
    matrix, theta = never.draw(rng)
    assert theta == 0.0 and torch.allclose(matrix, similarity_matrix(0.0, 1.0, (0.0, 0.0), (256, 192)))
    with pytest.raises(ValueError, match="scale"):
        AffineJitter(scale=(1.2, 0.8))
    with pytest.raises(ValueError, match="probability"):
        AffineJitter(probability=1.5)


@pytest.fixture(scope="module")
def keypoint_dataset(isolated_config) -> str:
    """Two images with a bright square at a (made-up) joint position, and their 2D joints in the cache."""
    from poseembroider.data import load_cmu_dev_poses

    image_root = synth_image_root(VERSION)
    poses = load_cmu_dev_poses()[: len(IDS)]
    images, joints = {}, {}
    for data_id in IDS:
        rel = f"images/train/{data_id:06d}.png"
        (image_root / rel).parent.mkdir(parents=True, exist_ok=True)
        x1, y1, x2, y2 = BBOXES[data_id]
        points = torch.full((22, 2), -1000.0)  # joints far outside the frame, except the left wrist
        spot = (int(x1 + 0.25 * (x2 - x1)), int(y1 + 0.6 * (y2 - y1)))
        points[joint_names_for_count(22).index("left_wrist")] = torch.tensor(spot, dtype=torch.float32)
        Image.fromarray(_spot_image(*spot).permute(1, 2, 0).numpy()).save(image_root / rel)
        images[data_id], joints[data_id] = rel, points
    save_cache(
        {
            "criteria": {"fixture": True},
            "bboxes": BBOXES,
            "images": images,
            "full_human_visibility": {i: True for i in IDS},
            "camera_transformation": {i: (torch.zeros(3), torch.zeros(3)) for i in IDS},
            "joints_2d": joints,
        },
        config.DATA_CACHE_DIR / cache_file_name("synthscript", VERSION, "train", "images", len(IDS)),
    )
    stored = {i: torch.as_tensor(np.concatenate([poses[k], np.zeros((30, 3), np.float32)])) for k, i in enumerate(IDS)}
    save_cache(
        {"criteria": {"fixture": True}, "poses": stored, "shapes": {i: torch.zeros(11) for i in IDS}},
        config.DATA_CACHE_DIR / cache_file_name("synthscript", VERSION, "train", "poses", len(IDS)),
    )
    return f"synthscript-{VERSION}"


@pytest.mark.parametrize("flip", [0.0, 1.0])
def test_dataset_joints_2d_crop_land_on_the_item_image(keypoint_dataset, flip):
    dataset = get_dataset(keypoint_dataset, "train", item_format="ip", keypoints_2d=True, lr_flip_probability=flip)
    names = joint_names_for_count(22)
    wrist = names.index("right_wrist" if flip else "left_wrist")
    for index in range(len(dataset)):
        item = dataset[index]
        assert item["flipped"] is bool(flip)
        assert item["joints_2d_crop"].shape == (22, 2) and item["joints_2d_crop"].dtype == torch.float32
        assert (item["joints_2d_crop"][wrist] - _bright_centroid(item["images"])).abs().max() < 0.5
        others = torch.ones(22, dtype=torch.bool)
        others[wrist] = False
        assert (item["joints_2d_crop"][others].abs() > 500).all()  # the far joints stay far


@pytest.mark.parametrize("flip", [0.0, 1.0])
def test_jittered_items_keep_image_joints_and_camera_together(keypoint_dataset, flip):
    jitter = AffineJitter(rotation_deg=40.0, scale=(0.8, 1.25), translate=0.1)
    plain = get_dataset(keypoint_dataset, "train", item_format="ip", keypoints_2d=True, lr_flip_probability=flip)
    moved = get_dataset(
        keypoint_dataset,
        "train",
        item_format="ip",
        keypoints_2d=True,
        lr_flip_probability=flip,
        affine_jitter=jitter,
        seed=3,
    )
    wrist = joint_names_for_count(22).index("right_wrist" if flip else "left_wrist")
    for index in range(len(moved)):
        item, reference = moved[index], plain[index]
        assert (item["joints_2d_crop"][wrist] - _bright_centroid(item["images"])).abs().max() < 0.5
        assert (item["joints_2d_crop"][wrist] - reference["joints_2d_crop"][wrist]).norm() > 1.0  # it moved
        torch.testing.assert_close(item["poses"], reference["poses"])  # the pose is the same body
        # the camera rolled about its optical axis: the z axis (view direction) is unchanged
        view, ref_view = axis_angle_to_matrix(item["cam_rot"]), axis_angle_to_matrix(reference["cam_rot"])
        torch.testing.assert_close(view[2], ref_view[2], atol=1e-5, rtol=0)
        assert not torch.allclose(view, ref_view, atol=1e-3)


def test_joints_2d_crop_only_when_asked_and_without_decoding_images(keypoint_dataset):
    assert "joints_2d_crop" not in get_dataset(keypoint_dataset, "train", item_format="ip")[0]
    poses_only = get_dataset(keypoint_dataset, "train", item_format="p", keypoints_2d=True)[0]
    with_images = get_dataset(keypoint_dataset, "train", item_format="ip", keypoints_2d=True)[0]
    assert "images" not in poses_only
    torch.testing.assert_close(poses_only["joints_2d_crop"], with_images["joints_2d_crop"])


def test_keypoints_refuse_a_processing_that_moves_pixels(keypoint_dataset):
    with pytest.raises(ValueError, match="random resized crop"):
        get_dataset(keypoint_dataset, "train", item_format="ip", keypoints_2d=True, img_processing="smplerx_train")
    item = get_dataset(
        keypoint_dataset, "train", item_format="ip", keypoints_2d=True, img_processing="smplerx_train_photometric"
    )[0]
    assert item["images"].shape == (3, 256, 192)


def test_cache_without_2d_joints_is_named(tiny_synth_dataset):
    from poseembroider.datasets.cache_format import CacheError

    with pytest.raises(CacheError, match="joints_2d"):
        get_dataset(tiny_synth_dataset["script"], "train", item_format="p", keypoints_2d=True)


def test_preloaded_crops_give_the_same_items(keypoint_dataset):
    jitter = AffineJitter(rotation_deg=20.0)
    kwargs = dict(item_format="ip", keypoints_2d=True, lr_flip_probability=0.5, affine_jitter=jitter, seed=5)
    from_disk = get_dataset(keypoint_dataset, "train", **kwargs)
    preloaded = get_dataset(keypoint_dataset, "train", **kwargs)
    assert preloaded.preload_crops() is True
    assert preloaded._crop_store is not None and preloaded._crop_store.shape == (len(IDS), 3, 256, 192)
    for index in range(len(preloaded)):
        item, reference = preloaded[index], from_disk[index]
        for key in ("images", "joints_2d_crop", "cam_rot", "poses"):
            torch.testing.assert_close(item[key], reference[key])
    # a budget too small keeps nothing and reads from disk as before
    small = get_dataset(keypoint_dataset, "train", **kwargs)
    assert small.preload_crops(max_bytes=1000) is False and small._crop_store is None
    with pytest.raises(ValueError, match="without images"):
        get_dataset(keypoint_dataset, "train", item_format="p").preload_crops()
