"""Drawing an `Environment`: a room, an outdoor place or a studio around the body and the camera.

Apart from `environment.py` because drawing is the sampler's job and shading the renderer's: this module
holds the distributions (room sizes that enclose the body and the camera, wall, floor and ground
textures, windows, doors, pictures and cabinets on the walls, sky styles, skylines, exposure, blur,
shadow strength), `environment.py` what a drawn environment looks like from any ray.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from poseembroider.datasets.synthetic.scene.environment import (
    DECAL_CABINET,
    DECAL_DOOR,
    DECAL_PICTURE,
    DECAL_WINDOW,
    ENVIRONMENT_KINDS,
    Environment,
)
from poseembroider.datasets.synthetic.textures import Texture2D, sample_palette, sample_texture

__all__ = ["sample_decals", "sample_environment", "sample_environment_kind"]


def sample_environment_kind(rng: np.random.Generator, probs: Sequence[float]) -> str:
    """One of `ENVIRONMENT_KINDS`, drawn with the (unnormalised) probabilities `probs`."""
    return str(rng.choice(ENVIRONMENT_KINDS, p=np.asarray(probs) / sum(probs)))


def sample_environment(
    rng: np.random.Generator, kind: str, vertices: np.ndarray, pose: np.ndarray, light_rgb: np.ndarray
) -> Environment:
    """An environment of `kind` around a body with world vertices (V, 3), seen by a camera at `pose`.

    Args:
        rng: the scene's generator (the draws follow the camera and light draws).
        kind: one of `ENVIRONMENT_KINDS`.
        vertices: (V, 3) body vertices: the floor goes at their lowest point, a room encloses them.
        pose: (4, 4) OpenGL camera-to-world pose: a room also encloses the camera, and seams of
            direction-based patterns go behind it.
        light_rgb: (3,) colour of the key light: the background is tinted like the body.
    """
    floor_y = float(vertices[:, 1].min())
    eye = pose[:3, 3]
    forward = -pose[:3, 2]
    view_azimuth = math.atan2(forward[0], forward[2])
    palette = sample_palette(rng, 5)
    common = {
        "floor_y": floor_y,
        "view_azimuth": view_azimuth,
        "exposure": float(rng.uniform(0.75, 1.1)),
        "tint": tuple(float(c) for c in 0.6 + 0.4 * light_rgb),
        "blur": float(rng.choice([0.0, rng.uniform(0.5, 3.0)], p=[0.3, 0.7])),
        "shadow_strength": float(rng.uniform(0.15, 0.6)),
        "seed": int(rng.integers(2**31 - 1)),
    }
    if kind == "indoor":
        body_xz = (vertices[:, [0, 2]].min(axis=0) + vertices[:, [0, 2]].max(axis=0)) / 2.0
        body_r = float(np.linalg.norm(vertices[:, [0, 2]] - body_xz, axis=1).max())
        room_center = body_xz + rng.normal(0.0, 0.6, 2)
        need = np.maximum(np.abs(eye[[0, 2]] - room_center), np.abs(body_xz - room_center) + body_r)
        room_half = need + rng.uniform(0.6, 4.0, 2)
        top = max(float(vertices[:, 1].max()), float(eye[1])) - floor_y
        ceiling = max(rng.uniform(2.6, 4.5), top + 0.4)
        wall_kinds = ("plain", "plain", "plain", "gradient", "stripes", "tiles", "clouds", "waves")
        base_wall = sample_texture(rng, wall_kinds, palette, (0.15, 1.2))
        walls = tuple(
            base_wall if rng.random() < 0.75 else sample_texture(rng, wall_kinds, palette, (0.15, 1.2))
            for _ in range(4)
        )
        floor = sample_texture(rng, ("planks", "tiles", "checker", "clouds", "plain"), palette, (0.3, 1.2))
        decals = sample_decals(rng, room_center, room_half, ceiling, palette)
        wainscot = np.zeros(4, np.float32)
        if rng.random() < 0.25:
            wainscot = np.array([rng.uniform(0.7, 1.2), *palette[rng.integers(len(palette))]], np.float32)
        return Environment(
            kind="indoor",
            floor=floor,
            walls=walls,
            room_center=(float(room_center[0]), float(room_center[1])),
            room_half=(float(room_half[0]), float(room_half[1])),
            ceiling_height=float(ceiling),
            ceiling_color=tuple(float(c) for c in np.clip(palette[-1] * 0.3 + 0.7, 0, 1)),
            decals=decals,
            wainscot=wainscot,
            haze_color=tuple(float(c) for c in palette[0]),
            **common,
        )
    if kind == "outdoor":
        ground_palettes = (
            np.array([[0.30, 0.45, 0.18], [0.22, 0.36, 0.12], [0.40, 0.50, 0.25], [0.35, 0.32, 0.2]]),  # grass
            np.array([[0.33, 0.33, 0.34], [0.25, 0.25, 0.27], [0.42, 0.41, 0.40]]),  # asphalt
            np.array([[0.62, 0.58, 0.52], [0.5, 0.47, 0.43], [0.7, 0.68, 0.64]]),  # pavement
            np.array([[0.80, 0.72, 0.55], [0.70, 0.62, 0.45], [0.88, 0.82, 0.68]]),  # sand
            np.array([[0.45, 0.35, 0.25], [0.35, 0.27, 0.2], [0.55, 0.45, 0.32]]),  # dirt
        )
        ground_palette = ground_palettes[rng.integers(len(ground_palettes))]
        ground_palette = np.clip(ground_palette * rng.uniform(0.85, 1.15, (1, 3)), 0, 1)
        floor = sample_texture(
            rng, ("clouds", "clouds", "tiles", "plain", "planks", "checker"), ground_palette, (0.4, 3.0)
        )
        sky_style = rng.choice(["day", "overcast", "golden"], p=[0.55, 0.3, 0.15])
        zenith, horizon = {
            "day": ((0.25, 0.45, 0.8), (0.7, 0.8, 0.92)),
            "overcast": ((0.6, 0.63, 0.68), (0.78, 0.8, 0.82)),
            "golden": ((0.35, 0.4, 0.6), (0.95, 0.7, 0.45)),
        }[str(sky_style)]
        jitter = rng.uniform(0.9, 1.1, 3)
        clouds = None
        if rng.random() < 0.65:
            clouds = Texture2D(
                "clouds", np.array([[0.96, 0.96, 0.97], [0.8, 0.8, 0.83]]), seed=int(rng.integers(2**31 - 1))
            )
        skyline = str(rng.choice(["none", "buildings", "trees"], p=[0.2, 0.4, 0.4]))
        skyline_color = (
            np.array([0.18, 0.3, 0.15]) * rng.uniform(0.7, 1.3)
            if skyline == "trees"
            else palette[rng.integers(len(palette))] * rng.uniform(0.5, 1.0)
        )
        return Environment(
            kind="outdoor",
            floor=floor,
            sky_zenith=tuple(float(c) for c in np.clip(np.asarray(zenith) * jitter, 0, 1)),
            sky_horizon=tuple(float(c) for c in np.clip(np.asarray(horizon) * jitter, 0, 1)),
            clouds=clouds,
            skyline=skyline,
            skyline_height=float(rng.uniform(0.03, 0.25)),
            skyline_color=tuple(float(c) for c in np.clip(skyline_color, 0, 1)),
            haze_color=tuple(float(c) for c in np.clip(np.asarray(horizon) * jitter, 0, 1)),
            haze_distance=float(rng.uniform(25.0, 120.0)),
            **common,
        )
    backdrop = sample_texture(rng, palette=palette, scale_range=(0.3, 3.0))
    floor = (
        backdrop
        if rng.random() < 0.4
        else sample_texture(rng, ("plain", "checker", "tiles", "planks", "clouds"), palette, (0.3, 1.5))
    )
    return Environment(kind="studio", floor=floor, walls=(backdrop,), **common)


def sample_decals(
    rng: np.random.Generator, room_center: np.ndarray, room_half: np.ndarray, ceiling: float, palette: np.ndarray
) -> np.ndarray:
    """(K, 9) rectangles on the walls: (wall, s0, s1, y0, y1, r, g, b, kind), s along the wall in world
    coordinates (z for the x walls 0, 1; x for the z walls 2, 3), y above the floor."""
    rows = []
    for _ in range(int(rng.integers(2, 9))):
        wall = int(rng.integers(4))
        axis = 1 if wall < 2 else 0  # index into (x, z) of the coordinate along the wall
        kind = int(rng.choice([DECAL_WINDOW, DECAL_DOOR, DECAL_PICTURE, DECAL_CABINET], p=[0.3, 0.2, 0.3, 0.2]))
        if kind == DECAL_WINDOW:
            width, y0 = rng.uniform(0.8, 2.5), rng.uniform(0.7, 1.1)
            y1 = min(ceiling - 0.2, y0 + rng.uniform(1.0, 1.8))
            color = np.array([0.75, 0.85, 0.97]) * rng.uniform(0.9, 1.15)
        elif kind == DECAL_DOOR:
            width, y0, y1 = rng.uniform(0.8, 1.0), 0.0, min(ceiling - 0.1, rng.uniform(2.0, 2.2))
            color = palette[rng.integers(len(palette))] * rng.uniform(0.5, 1.0)
        elif kind == DECAL_PICTURE:
            width, y0 = rng.uniform(0.4, 1.4), rng.uniform(1.2, 1.6)
            y1 = min(ceiling - 0.1, y0 + rng.uniform(0.4, 1.0))
            color = sample_palette(rng, 1)[0]
        else:
            width, y0, y1 = rng.uniform(0.6, 2.5), 0.0, rng.uniform(0.5, 2.0)
            color = palette[rng.integers(len(palette))] * rng.uniform(0.6, 1.0)
        centre = room_center[axis] + rng.uniform(-1.0, 1.0) * max(room_half[axis] - width / 2, 0.0)
        rows.append([wall, centre - width / 2, centre + width / 2, y0, y1, *np.clip(color, 0, 1), kind])
    return np.asarray(rows, np.float32).reshape(-1, 9)
