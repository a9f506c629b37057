"""Procedural textures, random backgrounds and clothed-body colours of the synthetic world."""

from __future__ import annotations

import numpy as np
import pytest

from poseembroider.datasets.synthetic import textures
from poseembroider.datasets.synthetic.textures import (
    TEXTURE_KINDS,
    BodySurfaceMap,
    Outfit,
    Texture2D,
    fbm,
    kelvin_to_rgb,
    paint_body,
    random_background,
    sample_outfit,
    sample_texture,
)


@pytest.mark.parametrize("size", [(256, 192), (720, 1280), (1, 1), (37, 5)])
def test_random_background_has_the_requested_shape_and_dtype(size):
    image = random_background(np.random.default_rng(0), *size)
    assert image.shape == (*size, 3)
    assert image.dtype == np.uint8


def test_random_backgrounds_are_seeded_and_differ_between_seeds():
    images = [random_background(np.random.default_rng(seed), 256, 192) for seed in range(8)]
    again = random_background(np.random.default_rng(3), 256, 192)
    np.testing.assert_array_equal(images[3], again)
    for i in range(len(images)):
        for j in range(i + 1, len(images)):
            assert np.abs(images[i].astype(int) - images[j].astype(int)).mean() > 3.0, (i, j)
    assert max(float(im.std()) for im in images) > 10.0  # not all flat


def test_random_background_rejects_empty_sizes():
    with pytest.raises(ValueError, match="height, width"):
        random_background(np.random.default_rng(0), 0, 10)


def test_fbm_is_a_deterministic_function_of_the_coordinates():
    rng = np.random.default_rng(1)
    x, y = rng.uniform(-50, 50, (2, 1000)).astype(np.float32)
    values = fbm(x, y, seed=7, octaves=4)
    assert values.shape == (1000,) and values.min() >= 0.0 and values.max() <= 1.0
    # the same points evaluated inside another array (another image) get the same values
    np.testing.assert_array_equal(fbm(x[::7], y[::7], seed=7, octaves=4), values[::7])
    assert np.abs(fbm(x, y, seed=8, octaves=4) - values).mean() > 0.05
    # smooth: nearby points have close values
    assert np.abs(fbm(x + 1e-3, y, seed=7) - values).max() < 0.05


@pytest.mark.parametrize("kind", TEXTURE_KINDS)
def test_every_texture_kind_evaluates_to_colours(kind):
    rng = np.random.default_rng(5)
    texture = sample_texture(rng, kinds=(kind,))
    assert texture.kind == kind
    x, y = np.meshgrid(np.linspace(-3, 3, 64), np.linspace(-2, 2, 48))
    colors = texture.evaluate(x, y)
    assert colors.shape == (48, 64, 3) and colors.dtype == np.float32
    assert colors.min() >= 0.0 and colors.max() <= 1.0
    # pointwise: a sub-grid gets the values of the full grid
    np.testing.assert_allclose(texture.evaluate(x[::5, ::3], y[::5, ::3]), colors[::5, ::3], atol=1e-6)


def test_fine_patterns_fade_to_their_mean_colour_when_pixels_are_large():
    colors = np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    checker = Texture2D("checker", colors, scale=0.1, noise=0.0)
    x, y = np.meshgrid(np.linspace(0, 1, 50), np.linspace(0, 1, 50))
    sharp = checker.evaluate(x, y, footprint=0.001)
    blurred = checker.evaluate(x, y, footprint=1.0)  # a pixel covers 10 checker periods
    assert sharp.std() > 0.4
    np.testing.assert_allclose(blurred, 0.5, atol=1e-6)


def test_texture_rejects_bad_arguments():
    with pytest.raises(ValueError, match="kind"):
        Texture2D("marble", np.zeros((2, 3)))
    with pytest.raises(ValueError, match="colors"):
        Texture2D("plain", np.zeros((1, 3)))


def test_colour_temperature_goes_from_warm_to_cool():
    warm, daylight, cool = kelvin_to_rgb(2800), kelvin_to_rgb(6600), kelvin_to_rgb(10000)
    assert warm[0] == 1.0 and warm[2] < 0.6
    assert min(daylight) > 0.9
    assert cool[2] == 1.0 and cool[0] < 0.9


# ---- body colours ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def surface(body_model) -> BodySurfaceMap:
    return BodySurfaceMap.from_body_model(body_model)


def test_surface_map_labels_every_body_part(surface, body_model):
    assert surface.num_vertices == body_model.num_vertices
    counts = np.bincount(surface.labels, minlength=8)
    assert (counts > 0).all(), counts  # torso, arm, hand, pelvis, leg, foot, neck, head
    arm = surface.labels == textures.ARM
    assert -0.2 <= np.percentile(surface.limb_t[arm], 1) and np.percentile(surface.limb_t[arm], 99) <= 2.1
    # the arm coordinate grows away from the body (rest pose: arms along +-x)
    x = np.abs(surface.rest[arm, 0])
    assert np.corrcoef(x, surface.limb_t[arm])[0, 1] > 0.95
    hand = surface.labels == textures.HAND
    assert np.abs(surface.rest[hand, 0]).min() > np.abs(surface.rest[arm, 0]).mean()


def _outfit(**changes) -> Outfit:
    base = {
        "skin": (0.9, 0.7, 0.6),
        "hair": (0.1, 0.05, 0.0),
        "top": (1.0, 0.0, 0.0),
        "top_secondary": (1.0, 1.0, 0.0),
        "bottom": (0.0, 0.0, 1.0),
        "shoes": (0.0, 1.0, 0.0),
    }
    base.update(changes)
    return Outfit(**base)


def _share(colors: np.ndarray, mask: np.ndarray, rgb) -> float:
    """Fraction of the masked vertices coloured `rgb` (up to the fabric grain)."""
    return float((np.abs(colors[mask] - np.asarray(rgb)).max(axis=1) < 0.1).mean())


def test_sleeve_and_leg_lengths_follow_the_outfit(surface):
    labels, t = surface.labels, surface.limb_t
    forearm = (labels == textures.ARM) & (t > 1.2) & (t < 1.8)
    shin = (labels == textures.LEG) & (t > 1.3) & (t < 1.8)
    torso = (labels == textures.TORSO) & (surface.torso_h > 0.4)
    long_clothes = paint_body(surface, _outfit(sleeve=1.95, leg=1.92))
    short_clothes = paint_body(surface, _outfit(sleeve=0.35, leg=0.5))
    assert long_clothes.shape == (surface.num_vertices, 3) and long_clothes.dtype == np.float32
    assert _share(long_clothes, torso, (1, 0, 0)) > 0.95
    assert _share(long_clothes, forearm, (1, 0, 0)) > 0.95
    assert _share(short_clothes, forearm, (0.9, 0.7, 0.6)) > 0.95  # bare forearms
    assert _share(long_clothes, shin, (0, 0, 1)) > 0.95
    assert _share(short_clothes, shin, (0.9, 0.7, 0.6)) > 0.95  # shorts
    hands = labels == textures.HAND
    assert _share(long_clothes, hands, (0.9, 0.7, 0.6)) > 0.95
    feet = labels == textures.FOOT
    assert _share(long_clothes, feet, (0, 1, 0)) > 0.95
    assert _share(paint_body(surface, _outfit(barefoot=True)), feet, (0.9, 0.7, 0.6)) > 0.95


def test_hair_covers_the_top_of_the_head_unless_bald(surface):
    head = surface.labels == textures.HEAD
    crown = head & (surface.head_h > 0.9)
    face = head & (surface.head_front > 0.6) & (surface.head_h < 0.3)
    haired = paint_body(surface, _outfit(hair_front=0.55, hair_back=-0.2))
    bald = paint_body(surface, _outfit(hair_front=2.0, hair_back=2.0))
    assert _share(haired, crown, (0.1, 0.05, 0.0)) > 0.95
    assert _share(haired, face, (0.9, 0.7, 0.6)) > 0.9
    assert _share(bald, crown, (0.9, 0.7, 0.6)) > 0.95


def test_sampled_outfits_vary_and_are_seeded(surface):
    first = [paint_body(surface, sample_outfit(np.random.default_rng(seed))) for seed in range(6)]
    again = paint_body(surface, sample_outfit(np.random.default_rng(2)))
    np.testing.assert_array_equal(first[2], again)
    for i in range(len(first)):
        for j in range(i + 1, len(first)):
            assert np.abs(first[i] - first[j]).mean() > 0.02
    for colors in first:
        assert colors.min() >= 0.0 and colors.max() <= 1.0


def test_surface_map_checks_shapes():
    with pytest.raises(ValueError, match="lbs_weights"):
        BodySurfaceMap.from_arrays(np.zeros((10, 3)), np.zeros((10, 3)), np.zeros((55, 3)))
