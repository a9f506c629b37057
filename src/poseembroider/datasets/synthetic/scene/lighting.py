"""Scene lights: a key, a fill and sometimes a rim light, with a colour temperature per environment.

The three-point lighting of photo and film sets, which BEDLAM's renders resemble: the key light makes
the shading and the floor shadows, the fill keeps the far side of the body from going black, the rim
separates the person from the background. Colours follow a colour temperature drawn per environment
kind (warm rooms, cool daylight); `Environment.tint` takes the same colour so body and background
match. The lights are evaluated per vertex (`rendering.vertex_lighting`), not per pixel.
"""

from __future__ import annotations

import math

import numpy as np

from poseembroider.datasets.synthetic.textures import kelvin_to_rgb
from poseembroider.rendering.lighting import Light

__all__ = ["sample_lights"]


def sample_lights(
    rng: np.random.Generator, env_kind: str, camera_azimuth_deg: float
) -> tuple[tuple[Light, ...], np.ndarray]:
    """(lights, rgb (3,) colour of the key light) for an environment of `env_kind` seen from
    `camera_azimuth_deg` (degrees about +y, the camera's orbit azimuth).

    A world-fixed key light from the camera's side (25-75 degrees up; stronger outdoors), a dimmer
    camera-attached fill light, and with probability 0.4 a world-fixed rim light from behind the person.
    """
    kelvin = {"indoor": (2800.0, 6500.0), "outdoor": (4500.0, 9000.0), "studio": (3500.0, 7500.0)}[env_kind]
    rgb = np.asarray(kelvin_to_rgb(rng.uniform(*kelvin)))
    key_az = math.radians(camera_azimuth_deg + rng.uniform(-110.0, 110.0))
    key_el = math.radians(rng.uniform(25.0, 75.0))
    toward_light = np.array(
        [math.cos(key_el) * math.sin(key_az), math.sin(key_el), math.cos(key_el) * math.cos(key_az)]
    )
    sun = 1.3 if env_kind == "outdoor" else 1.0
    lights = [
        Light.directional(tuple(-toward_light), rng.uniform(2.0, 4.0) * sun, tuple(rgb), frame="world"),
        Light.directional(
            (rng.uniform(-0.6, 0.6), rng.uniform(-0.6, 0.0), -1.0),
            rng.uniform(0.6, 1.8),
            tuple(np.clip(0.5 * rgb + 0.5 * np.array([0.85, 0.9, 1.0]), 0, 1)),
        ),
    ]
    if rng.random() < 0.4:  # rim light from behind the person
        rim_az = math.radians(camera_azimuth_deg + 180.0 + rng.uniform(-60.0, 60.0))
        rim = np.array([math.sin(rim_az), rng.uniform(0.2, 1.0), math.cos(rim_az)])
        lights.append(Light.directional(tuple(-rim), rng.uniform(0.5, 2.0), tuple(rgb), frame="world"))
    return tuple(lights), rgb
