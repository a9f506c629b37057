"""Per-vertex lighting with pyrender's shading model, for unlit (flat-shader) renders.

pyrender's lit fragment shader evaluates a metallic-roughness BRDF for every light at every pixel;
with Mesa's software rasteriser (llvmpipe) that shader costs about two thirds of a 256 x 192 render
of a body. `shade_vertices` evaluates the same BRDF once per vertex in numpy instead (a ~10k-vertex
body: well under a millisecond per light), and the mesh is then drawn with `unlit=True`, which
interpolates the lit colours across each triangle (Gouraud shading). On dense meshes the two agree
to a few grey levels; highlights narrower than a triangle are smoothed.

The model is pyrender's (`shaders/mesh.frag`, metallic factor 0, white base colour): for each light,
radiance x n.l x ((1 - F) c_diff / pi + F G D / (4 n.l n.v)), plus the ambient term; the result is
multiplied by the vertex colour (decoded to linear), then gamma-encoded (`c ** (1 / 2.2)`), as
pyrender multiplies vertex colours into the lit colour after shading.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from poseembroider.rendering.lighting import Light

__all__ = ["DEFAULT_AMBIENT", "DEFAULT_ROUGHNESS", "shade_vertices"]

DEFAULT_AMBIENT = (0.25, 0.25, 0.25)
"""RGB ambient term of `MeshRenderer` (faces turned away from every light keep some colour)."""

DEFAULT_ROUGHNESS = 0.75
"""PBR roughness of `MeshRenderer`'s meshes (1 = matte)."""

_MIN_ROUGHNESS = 0.04  # pyrender's dielectric F0 and roughness floor


def _brdf(n_l: np.ndarray, n_v: np.ndarray, n_h: np.ndarray, v_h: np.ndarray, roughness: float) -> np.ndarray:
    """(V,) pyrender's BRDF x n.l for a white dielectric, from clamped cosines (V,) each."""
    grazing = 1.0 - v_h
    fresnel = _MIN_ROUGHNESS + (1.0 - _MIN_ROUGHNESS) * grazing * (grazing * grazing) ** 2  # Schlick: ^5
    k = (roughness + 1.0) ** 2 / 8.0
    geometry = (n_v / (n_v * (1.0 - k) + k)) * (n_l / (n_l * (1.0 - k) + k))
    a2 = roughness**4  # pyrender squares the (perceptual) roughness it is given
    denom = n_h * n_h * (a2 - 1.0) + 1.0
    distribution = a2 / (math.pi * denom * denom)
    diffuse = (1.0 - fresnel) * (1.0 - _MIN_ROUGHNESS) / math.pi
    specular = fresnel * geometry * distribution / (4.0 * n_l * n_v + 0.001)
    return n_l * (diffuse + specular)


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    """(3, V) columns scaled to unit length (zero columns stay zero)."""
    return vectors / np.maximum(np.sqrt(_dot(vectors, vectors)), 1e-12)


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(V,) dot products of the columns of (3, V) arrays (or a (3, 1) column), three fused rows."""
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _light_to_vertices(light: Light, vertices: np.ndarray, camera_pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit directions from the vertices (3, V) towards the light, (3, V) or (3, 1), and the
    radiance scale, (V,) or a scalar (point lights fall off with the squared distance)."""
    if light.kind == "directional":
        direction = -light.world_direction(camera_pose)
        return (direction / np.linalg.norm(direction))[:, None].astype(np.float32), np.float32(1.0)
    offset = light.world_position(camera_pose).astype(np.float32)[:, None] - vertices
    dist2 = np.maximum(_dot(offset, offset), 1e-12)
    return offset / np.sqrt(dist2), 1.0 / dist2


def shade_vertices(
    vertices: np.ndarray,
    normals: np.ndarray,
    colors: np.ndarray,
    camera_pose: np.ndarray,
    lights: Sequence[Light],
    *,
    ambient: Sequence[float] = DEFAULT_AMBIENT,
    roughness: float = DEFAULT_ROUGHNESS,
) -> np.ndarray:
    """(V, 3) float32 display colours of lit vertices, to draw with `unlit=True`.

    Args:
        vertices: (V, 3) world positions; normals: (V, 3) unit normals.
        colors: (V, 3|4) display (sRGB-like) colours in [0, 1] (alpha ignored).
        camera_pose: (4, 4) OpenGL camera-to-world pose (view direction, camera-attached lights).
        lights: the render's lights (directional or point, camera- or world-attached).
        ambient, roughness: as `MeshRenderer`'s.
    """
    # (3, V) layout: every dot product is three contiguous multiply-adds, not a reduction over rows
    points = np.ascontiguousarray(np.asarray(vertices, np.float32).T)
    normals = np.ascontiguousarray(np.asarray(normals, np.float32).T)
    roughness = float(np.clip(roughness, _MIN_ROUGHNESS, 1.0))
    to_camera = _unit_rows(np.asarray(camera_pose, np.float32)[:3, 3:4] - points)
    n_v = np.clip(np.abs(_dot(normals, to_camera)), 0.001, 1.0)
    radiance = np.repeat(np.asarray(ambient, np.float32)[:, None], points.shape[1], axis=1)
    for light in lights:
        to_light, scale = _light_to_vertices(light, points, camera_pose)
        half = _unit_rows(to_light + to_camera)
        n_l = np.clip(_dot(normals, to_light), 0.001, 1.0)
        n_h = np.clip(_dot(normals, half), 0.0, 1.0)
        v_h = np.clip(_dot(to_camera, half), 0.0, 1.0)
        strength = _brdf(n_l, n_v, n_h, v_h, roughness) * (scale * light.intensity)
        radiance += np.asarray(light.color, np.float32)[:, None] * strength
    linear = radiance * np.ascontiguousarray(np.asarray(colors, np.float32)[:, :3].T) ** np.float32(2.2)
    return np.ascontiguousarray((np.clip(linear, 0.0, 1.0) ** np.float32(1.0 / 2.2)).T)
