"""`Environment`: what surrounds the person (room, outdoors, studio), shaded as a function of the viewing ray.

The background is not geometry in the OpenGL render: it is evaluated per pixel ray after the render, from
the camera position and the ray direction only (an analytic box room, ground plane and sky, or a
backdrop), with procedural textures in metres and soft blob shadows of the body and the occluders on the
floor. Being a function of the ray, not of the image, it gives the same pixels whether the crop window
or the whole frame is rendered, which is what lets `render_scene` render the crop window alone. Patterns
finer than a pixel fade out (the ray's footprint is passed to the textures), so the crop does not alias.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from poseembroider.datasets.synthetic.textures import Texture2D, cell_random, fbm

__all__ = [
    "DECAL_CABINET",
    "DECAL_DOOR",
    "DECAL_PICTURE",
    "DECAL_WINDOW",
    "ENVIRONMENT_KINDS",
    "Environment",
]


ENVIRONMENT_KINDS = ("indoor", "outdoor", "studio")
DECAL_WINDOW, DECAL_DOOR, DECAL_PICTURE, DECAL_CABINET = range(4)
"""Kinds of the rectangles on indoor walls (last column of `Environment.decals`)."""


@dataclass(frozen=True, eq=False)
class Environment:
    """What surrounds the person, as a function of the viewing ray (so any window of the frame agrees).

    Attributes:
        kind: 'indoor' (box room: floor, 4 walls with windows/doors/pictures/cabinets, ceiling),
            'outdoor' (ground plane, sky with clouds, skyline of buildings or trees) or 'studio'
            (a backdrop all around, a floor that fades into it).
        floor_y: height of the floor (the body's lowest vertex).
        floor: floor / ground texture, in metres.
        walls: indoor: 4 wall textures (x-, x+, z-, z+ walls); studio: (backdrop,); outdoor: unused.
        room_center, room_half: indoor room centre (x, z) and half sizes (x, z).
        ceiling_height: indoor ceiling above the floor.
        ceiling_color, sky_zenith, sky_horizon, skyline_color, haze_color: RGB colours.
        clouds: outdoor cloud texture (None: clear sky).
        skyline: 'none', 'buildings' or 'trees'; skyline_height: max elevation (radians).
        decals: (K, 9) rows (wall, s0, s1, y0, y1, r, g, b, kind) of rectangles on the indoor walls.
        wainscot: (4,) (height, r, g, b) band along the bottom of the walls (height 0: none).
        view_azimuth: azimuth of the camera's viewing direction (radians): seams of direction-based
            patterns go behind the camera.
        haze_distance: distance (m) at which the ground is 63 % hazed.
        exposure, tint: overall gain and colour cast (matches the light colour).
        blur: Gaussian blur of the background in frame pixels (out of focus); 0 = sharp.
        shadow_strength: darkness of the soft shadows on the floor (0-1).
        seed: noise seed.
    """

    kind: str
    floor_y: float
    floor: Texture2D
    walls: tuple[Texture2D, ...] = ()
    room_center: tuple[float, float] = (0.0, 0.0)
    room_half: tuple[float, float] = (5.0, 5.0)
    ceiling_height: float = 3.0
    ceiling_color: tuple[float, float, float] = (0.9, 0.9, 0.88)
    sky_zenith: tuple[float, float, float] = (0.35, 0.55, 0.85)
    sky_horizon: tuple[float, float, float] = (0.8, 0.87, 0.95)
    clouds: Texture2D | None = None
    skyline: str = "none"
    skyline_height: float = 0.05
    skyline_color: tuple[float, float, float] = (0.4, 0.45, 0.5)
    decals: np.ndarray = field(default_factory=lambda: np.zeros((0, 9), np.float32))
    wainscot: np.ndarray = field(default_factory=lambda: np.zeros(4, np.float32))
    view_azimuth: float = 0.0
    haze_color: tuple[float, float, float] = (0.8, 0.85, 0.9)
    haze_distance: float = 60.0
    exposure: float = 1.0
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)
    blur: float = 0.0
    shadow_strength: float = 0.4
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in ENVIRONMENT_KINDS:
            raise ValueError(f"kind: expected one of {ENVIRONMENT_KINDS}, got {self.kind!r}")
        if self.kind == "indoor" and len(self.walls) != 4:
            raise ValueError(f"an indoor environment needs 4 wall textures, got {len(self.walls)}")
        if self.kind == "studio" and len(self.walls) < 1:
            raise ValueError("a studio environment needs a backdrop texture (walls[0])")
        object.__setattr__(self, "decals", np.asarray(self.decals, np.float32).reshape(-1, 9))
        object.__setattr__(self, "wainscot", np.asarray(self.wainscot, np.float32).reshape(4))

    # -- shading -----------------------------------------------------------------------------------

    def shade(
        self,
        origin: np.ndarray,
        directions: np.ndarray,
        pixel_angle: float,
        light_direction: np.ndarray,
        shadow_casters: np.ndarray | None = None,
    ) -> np.ndarray:
        """(N, 3) float32 colours seen along unit `directions` (N, 3) from `origin` (3,).

        Args:
            pixel_angle: angle subtended by one pixel (radians): patterns finer than a few pixels fade.
            light_direction: (3,) direction the key light travels (floor shading, shadow direction).
            shadow_casters: (K, 4) rows (x, y, z, radius) of blobs casting soft shadows on the floor.
        """
        o = np.asarray(origin, np.float64)
        d = np.asarray(directions, np.float64).reshape(-1, 3)
        if self.kind == "indoor":
            out = self._shade_indoor(o, d, pixel_angle, light_direction, shadow_casters)
        elif self.kind == "outdoor":
            out = self._shade_outdoor(o, d, pixel_angle, light_direction, shadow_casters)
        else:
            out = self._shade_studio(o, d, pixel_angle, light_direction, shadow_casters)
        out = out * (self.exposure * np.asarray(self.tint, np.float32))
        return np.clip(out, 0.0, 1.0).astype(np.float32)

    def _floor_shadow(
        self, points_xz: np.ndarray, light_direction: np.ndarray, casters: np.ndarray | None
    ) -> np.ndarray:
        """(N,) multiplicative shading of floor points by soft blob shadows."""
        if casters is None or len(casters) == 0 or self.shadow_strength <= 0 or len(points_xz) == 0:
            return np.ones(len(points_xz), np.float32)
        light = np.asarray(light_direction, np.float64)
        light = light / np.linalg.norm(light)
        down = min(light[1], -0.35)  # low suns would throw endless shadows: keep them near the caster
        height = np.maximum(casters[:, 1] - self.floor_y, 0.0)
        foot = (casters[:, [0, 2]] + light[[0, 2]][None] * (height / -down)[:, None]).astype(np.float32)
        sigma = (casters[:, 3] + 0.15 * height).astype(np.float32)
        weight = (np.exp(-height / 1.2) * 0.6 + 0.4 * (height < 0.3)).astype(np.float32)
        shade = np.ones(len(points_xz), np.float32)
        # only floor points within 3 sigma of some shadow get the (points x casters) evaluation
        reach = 3.0 * float(sigma.max())
        low, high = foot.min(axis=0) - reach, foot.max(axis=0) + reach
        near = ((points_xz >= low) & (points_xz <= high)).all(axis=1)
        if near.any():
            # (points x casters) Gaussians in place, summed by a matrix-vector product
            close = points_xz[near]
            falloff = close[:, :1] - foot[None, :, 0]
            falloff *= falloff
            dz = close[:, 1:] - foot[None, :, 1]
            dz *= dz
            falloff += dz
            falloff *= -0.5 / (sigma * sigma)
            np.exp(falloff, out=falloff)
            occlusion = falloff @ weight
            shade[near] = 1.0 - self.shadow_strength * (1.0 - np.exp(-occlusion))
        return shade

    def _direction_coords(self, d: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
        azimuth = np.arctan2(d[:, 0], d[:, 2]) - self.view_azimuth
        azimuth = (azimuth + math.pi) % (2 * math.pi) - math.pi  # seam behind the camera
        elevation = np.arcsin(np.clip(d[:, 1], -1.0, 1.0))
        return (radius * azimuth).astype(np.float32), (radius * elevation).astype(np.float32)

    def _shade_indoor(self, o, d, pixel_angle, light, casters) -> np.ndarray:
        cx, cz = self.room_center
        hx, hz = self.room_half
        with np.errstate(divide="ignore", invalid="ignore"):
            tx = np.where(d[:, 0] > 0, (cx + hx - o[0]) / d[:, 0], (cx - hx - o[0]) / d[:, 0])
            tz = np.where(d[:, 2] > 0, (cz + hz - o[2]) / d[:, 2], (cz - hz - o[2]) / d[:, 2])
            ty = np.where(
                d[:, 1] < 0, (self.floor_y - o[1]) / d[:, 1], (self.floor_y + self.ceiling_height - o[1]) / d[:, 1]
            )
        ts = np.stack([tx, ty, tz], axis=1)
        ts = np.where(np.isfinite(ts) & (ts > 0), ts, np.inf)
        which = ts.argmin(axis=1)
        t = ts[np.arange(len(d)), which]
        p = o + t[:, None] * d
        out = np.empty((len(d), 3), np.float32)
        light = np.asarray(light, np.float64)
        light = light / np.linalg.norm(light)

        floor = (which == 1) & (d[:, 1] < 0)
        ceiling = (which == 1) & ~floor
        if floor.any():
            foot = t[floor] * pixel_angle / np.maximum(-d[floor, 1], 0.05)
            xz = p[floor][:, [0, 2]].astype(np.float32)
            color = self.floor.evaluate(xz[:, 0], xz[:, 1], foot)
            # darker where the floor meets the walls
            gap = np.minimum(hx - np.abs(xz[:, 0] - cx), hz - np.abs(xz[:, 1] - cz))
            corner = 1.0 - 0.3 * np.exp(-np.maximum(gap, 0.0) / 0.4)
            lit = 0.85 + 0.25 * max(-light[1], 0.0)
            out[floor] = color * (lit * corner * self._floor_shadow(xz, light, casters))[:, None]
        if ceiling.any():
            out[ceiling] = np.asarray(self.ceiling_color, np.float32) * 0.92
        for index, (axis, sign) in enumerate(((0, -1), (0, 1), (2, -1), (2, 1))):
            wall = (which == (0 if axis == 0 else 2)) & (np.sign(d[:, axis]) == sign)
            if not wall.any():
                continue
            s = p[wall, 2 if axis == 0 else 0].astype(np.float32)
            h = (p[wall, 1] - self.floor_y).astype(np.float32)
            foot = t[wall] * pixel_angle / np.maximum(np.abs(d[wall, axis]), 0.05)
            color = self.walls[index].evaluate(s, h, foot)
            wainscot_h = float(self.wainscot[0])
            if wainscot_h > 0:
                band = h < wainscot_h
                color[band] = self.wainscot[1:] * (0.95 + 0.05 * fbm(s[band] * 3, h[band] * 3, self.seed, 2))[:, None]
                color[np.abs(h - wainscot_h) < 0.02] *= 0.7
            for w, s0, s1, y0, y1, r, g, b, kind in self.decals:
                if int(w) != index:
                    continue
                inside = (s >= s0) & (s <= s1) & (h >= y0) & (h <= y1)
                if not inside.any():
                    continue
                rgb = np.array([r, g, b], np.float32)
                frame = (np.minimum(s[inside] - s0, s1 - s[inside]) < 0.06) | (
                    np.minimum(h[inside] - y0, y1 - h[inside]) < 0.06
                )
                if int(kind) == DECAL_WINDOW:  # bright sky with a vertical gradient, mullions
                    fill = rgb * (0.85 + 0.3 * ((h[inside] - y0) / max(y1 - y0, 1e-3)))[:, None]
                    mullion = np.abs(s[inside] - 0.5 * (s0 + s1)) < 0.025
                    frame |= mullion
                    border = np.array([0.92, 0.92, 0.9], np.float32)
                elif int(kind) == DECAL_PICTURE:
                    fill = rgb * (0.6 + 0.8 * fbm(s[inside] * 4, h[inside] * 4, self.seed + 5, 4))[:, None]
                    border = np.array([0.2, 0.16, 0.12], np.float32)
                else:  # doors and cabinets: flat panels with a darker outline
                    fill = rgb * (0.95 + 0.1 * fbm(s[inside] * 2, h[inside] * 8, self.seed + 9, 3))[:, None]
                    border = rgb * 0.6
                color[inside] = np.where(frame[:, None], border, fill)
            # walls facing the light are brighter; darker toward the floor and ceiling corners
            normal = np.zeros(3)
            normal[axis] = -sign
            lit = 0.75 + 0.35 * max(-float(normal @ light), 0.0)
            corner = (
                1.0
                - 0.25 * np.exp(-np.maximum(h, 0.0) / 0.25)
                - 0.15 * np.exp(-np.maximum(self.ceiling_height - h, 0.0) / 0.3)
            )
            out[wall] = color * (lit * corner)[:, None]
        missed = ~np.isfinite(t)
        out[missed] = np.asarray(self.ceiling_color, np.float32)
        return out

    def _sky(self, d: np.ndarray, pixel_angle: float) -> np.ndarray:
        elevation = np.arcsin(np.clip(d[:, 1], 0.0, 1.0))
        t = np.sqrt(elevation / (math.pi / 2))[:, None].astype(np.float32)
        sky = np.asarray(self.sky_horizon, np.float32) * (1 - t) + np.asarray(self.sky_zenith, np.float32) * t
        if self.clouds is not None:
            lift = np.maximum(d[:, 1], 0.03)
            qx = (d[:, 0] / lift * 1.5).astype(np.float32)
            qz = (d[:, 2] / lift * 1.5).astype(np.float32)
            density = fbm(qx * 0.15, qz * 0.15, self.clouds.seed, 5)
            cover = np.clip((density - 0.45) * 3.0, 0.0, 1.0) * np.clip(d[:, 1] * 6.0, 0.0, 1.0)
            cloud_color = self.clouds.colors[0] * (0.8 + 0.3 * density[:, None])
            sky = sky * (1 - cover[:, None]) + cloud_color * cover[:, None]
        if self.skyline != "none":
            az, _ = self._direction_coords(d, 1.0)
            if self.skyline == "buildings":
                cell = np.floor(az * 9.0 + 100.0)
                height = self.skyline_height * (0.25 + 0.75 * cell_random(cell, 3, self.seed))
            else:
                height = self.skyline_height * (0.35 + 0.65 * fbm(az * 4.0, 0.5, self.seed + 2, 4))
            below = elevation < height
            if below.any():
                base = np.asarray(self.skyline_color, np.float32)
                shade = 0.85 + 0.3 * fbm(az[below] * 40.0, elevation[below] * 40.0, self.seed + 4, 3)
                if self.skyline == "buildings":
                    windows = (np.sin(az[below] * 600.0) > 0.3) & (np.sin(elevation[below] * 500.0) > 0.2)
                    shade = np.where(windows, shade * 1.2, shade)
                haze = (0.55 * (1 - elevation[below] / np.maximum(height[below], 1e-6)))[:, None]
                sky[below] = base * shade[:, None] * (1 - haze) + np.asarray(self.haze_color, np.float32) * haze
        return sky

    def _shade_outdoor(self, o, d, pixel_angle, light, casters) -> np.ndarray:
        out = np.empty((len(d), 3), np.float32)
        ground = (d[:, 1] < -1e-4) & (o[1] > self.floor_y)
        if ground.any():
            t = (self.floor_y - o[1]) / d[ground, 1]
            p = o + t[:, None] * d[ground]
            foot = t * pixel_angle / np.maximum(-d[ground, 1], 0.02)
            xz = p[:, [0, 2]].astype(np.float32)
            color = self.floor.evaluate(xz[:, 0], xz[:, 1], foot)
            color = color * self._floor_shadow(xz, light, casters)[:, None]
            haze = (1.0 - np.exp(-t / self.haze_distance))[:, None].astype(np.float32)
            out[ground] = color * (1 - haze) + np.asarray(self.haze_color, np.float32) * haze
        if (~ground).any():
            out[~ground] = self._sky(d[~ground], pixel_angle)
        return out

    def _shade_studio(self, o, d, pixel_angle, light, casters) -> np.ndarray:
        radius = 4.0
        u, v = self._direction_coords(d, radius)
        out = self.walls[0].evaluate(u, v, radius * pixel_angle)
        ground = (d[:, 1] < -1e-4) & (o[1] > self.floor_y)
        if ground.any():
            t = (self.floor_y - o[1]) / d[ground, 1]
            p = o + t[:, None] * d[ground]
            xz = p[:, [0, 2]].astype(np.float32)
            foot = t * pixel_angle / np.maximum(-d[ground, 1], 0.02)
            color = self.floor.evaluate(xz[:, 0], xz[:, 1], foot) * self._floor_shadow(xz, light, casters)[:, None]
            # the floor curves up into the backdrop (a cyclorama): blend by distance
            blend = np.clip((t - 6.0) / 6.0, 0.0, 1.0)[:, None].astype(np.float32)
            out[ground] = color * (1 - blend) + out[ground] * blend
        return out
