"""Random scenes around one posed body, rendered straight into the person crop of a virtual frame.

The real data are BEDLAM frames (1280 x 720) from which the pipeline cuts a person crop
(`crops.py`). Rendering a whole frame to keep a 256 x 192 window of it wastes most of the work, so a
sample is made in three steps:

1. `SceneSampler` draws a `SceneParams` for a body: a camera of the virtual frame (distance, elevation,
   azimuth, focal length, roll; the person placed anywhere in the frame, or partly out of it for
   truncation), lights (key, fill, rim; colour temperature), an environment (room, outdoor, studio
   backdrop), 0-3 occluders between the camera and the body, and the person's outfit.
2. The tight bbox of the projected vertices, the scaled crop box and its 4:3 padding are computed
   analytically in the frame (`crops.crop_window`).
3. `render_scene` renders that window only: the frame camera with its principal point shifted and its
   focal lengths scaled renders exactly the pixels the crop would hold, one OpenGL render per sample at
   the crop size; the environment is a function of the viewing ray (not of the image), so its pixels
   are those of the frame as well. The padding that lies outside the frame content is zeroed, as the
   original pads with zeros.

`render_sample` ties it together and returns a `RenderedSample` (crop, bbox, cameras, 2D joints,
visibility, `cam_rot`, selection criteria). World frame: SMPL-X (y up, metres); the floor is at the
lowest vertex of the body.

Visibility of the 22 body joints, three levels: `in_frame` (the original's rule: the joint projects
inside the frame; all 22 = `full_human_visibility`), `unoccluded` (in frame and no occluder on the line
of sight, exact ray test; the body never hides itself at this level) and `visible` (in frame and the
depth buffer shows no surface, occluder or other body part, more than 0.2 m in front of the joint).

Speed (2-core CPU, OSMesa, one thread): about 30 ms per sample, of which ~8 ms is the OpenGL render:
lights are evaluated per vertex with pyrender's BRDF (`rendering.vertex_lighting`) and the meshes drawn
unlit, since the per-pixel shader was two thirds of the render under Mesa's software rasteriser; the
whole 1280 x 720 frame then cropped costs ~10x more (`benchmarks/bench_scene_render.py`). `supersample=2`
renders 2x2 sub-pixels per crop pixel for anti-aliased edges (closer to a downscaled frame) for
roughly a quarter more time; keep one renderer per size (`create_scene_renderer`), since OSMesa
recreates its context when the size changes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageFilter

from poseembroider.datasets.synthetic.crops import (
    CROP_HW,
    OPENGL_TO_OPENCV,
    CropWindow,
    SelectionCriteria,
    bbox_overlap,
    camera_rotation,
    crop_window,
    joints_in_frame,
    tight_bbox,
)
from poseembroider.datasets.synthetic.textures import (
    BodySurfaceMap,
    Outfit,
    Texture2D,
    cell_random,
    fbm,
    kelvin_to_rgb,
    paint_body,
    sample_outfit,
    sample_palette,
    sample_texture,
)
from poseembroider.rendering.camera import Camera, orbit_rotation
from poseembroider.rendering.lighting import Light
from poseembroider.rendering.mesh_spec import MeshSpec, vertex_normals
from poseembroider.rendering.vertex_lighting import shade_vertices

__all__ = [
    "BEDLAM_FRAME_HW",
    "Environment",
    "Framing",
    "Occluder",
    "PosedBody",
    "Primitive",
    "RenderedSample",
    "SceneConfig",
    "SceneParams",
    "SceneRender",
    "SceneSampler",
    "create_scene_renderer",
    "frame_body",
    "render_frame",
    "render_sample",
    "render_samples",
    "render_scene",
]

BEDLAM_FRAME_HW: tuple[int, int] = (720, 1280)
"""(height, width) of BEDLAM frames, the virtual frame of the synthetic samples."""

NUM_BODY_JOINTS = 22
DEFAULT_CRITERIA = SelectionCriteria()
"""`overlap30_res224_j16_sf11`, the original's human-selection criteria."""


def _to_numpy(value) -> np.ndarray:
    value = value.detach().cpu().numpy() if hasattr(value, "detach") else value
    return np.asarray(value, dtype=np.float64)


def _rotation_y(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _rotation_z(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(3, 3) smallest rotation taking unit vector a onto unit vector b."""
    a = a / np.linalg.norm(a)
    b = b / np.linalg.norm(b)
    axis = np.cross(a, b)
    sin, cos = float(np.linalg.norm(axis)), float(a @ b)
    if sin < 1e-12:
        if cos > 0:
            return np.eye(3)
        helper = np.array([1.0, 0.0, 0.0]) if abs(a[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
        axis = np.cross(a, helper)
        axis /= np.linalg.norm(axis)
        return 2.0 * np.outer(axis, axis) - np.eye(3)
    k = axis / sin
    skew = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + sin * skew + (1.0 - cos) * skew @ skew


# ---- occluders ----------------------------------------------------------------------------------


def _box_faces(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit box [-1, 1]^3 as 6 separate n x n vertex grids: (positions, faces outward CCW, face uv)."""
    lin = np.linspace(-1.0, 1.0, n)
    g1, g2 = np.meshgrid(lin, lin, indexing="ij")
    quads = []
    for i in range(n - 1):
        for j in range(n - 1):
            a, b, c, d = i * n + j, (i + 1) * n + j, (i + 1) * n + j + 1, i * n + j + 1
            quads.append((a, b, c, a, c, d))
    tri = np.asarray(quads, np.int64).reshape(-1, 3)
    positions, faces, uvs = [], [], []
    for axis in range(3):
        others = [k for k in range(3) if k != axis]
        for sign in (-1.0, 1.0):
            p = np.zeros((n * n, 3))
            p[:, axis] = sign
            p[:, others[0]] = g1.ravel()
            p[:, others[1]] = g2.ravel()
            t = tri.copy()
            normal = np.cross(p[t[0, 1]] - p[t[0, 0]], p[t[0, 2]] - p[t[0, 0]])
            if normal[axis] * sign < 0:
                t = t[:, ::-1]
            faces.append(t + len(positions) * n * n)
            positions.append(p)
            uvs.append(np.stack([g1.ravel(), g2.ravel()], axis=1))
    return np.concatenate(positions), np.concatenate(faces), np.concatenate(uvs)


def _cylinder_mesh(segments: int, rings: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit cylinder (radius 1, y in [-1, 1]) with caps: (positions, faces outward CCW, uv (arc, y))."""
    angles = np.linspace(0.0, 2 * math.pi, segments + 1)
    ys = np.linspace(-1.0, 1.0, rings)
    a, y = np.meshgrid(angles, ys, indexing="ij")
    side = np.stack([np.sin(a).ravel(), y.ravel(), np.cos(a).ravel()], axis=1)
    side_uv = np.stack([a.ravel(), y.ravel()], axis=1)
    faces = []
    for i in range(segments):
        for j in range(rings - 1):
            p, q = i * rings + j, (i + 1) * rings + j
            faces += [(p, q, q + 1), (p, q + 1, p + 1)]
    faces = np.asarray(faces, np.int64)
    p0 = side[faces[0, 0]]
    n0 = np.cross(side[faces[0, 1]] - p0, side[faces[0, 2]] - p0)
    if n0 @ np.array([p0[0], 0.0, p0[2]]) < 0:  # side faces must point away from the axis
        faces = faces[:, ::-1]
    positions, uvs, all_faces = [side], [side_uv], [faces]
    offset = len(side)
    for y_cap in (-1.0, 1.0):
        ring = np.stack([np.sin(angles[:-1]), np.full(segments, y_cap), np.cos(angles[:-1])], axis=1)
        cap = np.vstack([[0.0, y_cap, 0.0], ring])
        tris = np.asarray([(0, 1 + k, 1 + (k + 1) % segments) for k in range(segments)], np.int64)
        normal = np.cross(cap[tris[0, 1]] - cap[tris[0, 0]], cap[tris[0, 2]] - cap[tris[0, 0]])
        if normal[1] * y_cap < 0:
            tris = tris[:, ::-1]
        all_faces.append(tris + offset)
        positions.append(cap)
        uvs.append(cap[:, [0, 2]])
        offset += len(cap)
    return np.concatenate(positions), np.concatenate(all_faces), np.concatenate(uvs)


_BOX_TEMPLATE = _box_faces(5)
_CYLINDER_TEMPLATE = _cylinder_mesh(20, 4)


@dataclass(frozen=True, eq=False)
class Primitive:
    """A box or an upright cylinder in the world, with a colour texture.

    Attributes:
        kind: 'box' or 'cylinder' (vertical axis).
        center: (3,) centre in world coordinates.
        size: (3,) box: full extents along its local x, y, z; cylinder: (diameter, height, diameter).
        yaw: rotation about +y (radians).
        texture: pattern painted on the faces (evaluated in metres on each face).
    """

    kind: str
    center: np.ndarray
    size: np.ndarray
    yaw: float
    texture: Texture2D

    def __post_init__(self) -> None:
        if self.kind not in ("box", "cylinder"):
            raise ValueError(f"kind: expected 'box' or 'cylinder', got {self.kind!r}")
        object.__setattr__(self, "center", np.asarray(self.center, np.float64).reshape(3))
        size = np.asarray(self.size, np.float64).reshape(3)
        if (size <= 0).any():
            raise ValueError(f"size: expected positive extents, got {size}")
        object.__setattr__(self, "size", size)

    @property
    def rotation(self) -> np.ndarray:
        return _rotation_y(self.yaw)

    def mesh_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(vertices (V, 3) world, faces (F, 3), per-vertex colours (V, 3))."""
        half = self.size / 2.0
        if self.kind == "box":
            unit, faces, uv = _BOX_TEMPLATE
            local = unit * half
            coords = uv * np.array([half.max(), half.max()])
        else:
            unit, faces, uv = _CYLINDER_TEMPLATE
            local = unit * half
            coords = uv * np.array([half[0], half[1]])
        vertices = local @ self.rotation.T + self.center
        colors = self.texture.evaluate(coords[:, 0] + 0.31 * self.center[0], coords[:, 1] + 0.17 * self.center[2])
        return vertices.astype(np.float32), faces, colors

    def mesh(self) -> MeshSpec:
        vertices, faces, colors = self.mesh_arrays()
        return MeshSpec(vertices, faces, colors, smooth=self.kind == "cylinder")

    def corners(self) -> np.ndarray:
        """(8, 3) world corners of the bounding box (for projected bboxes)."""
        signs = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], np.float64)
        return (signs * self.size / 2.0) @ self.rotation.T + self.center

    def intersect(self, origin: np.ndarray, directions: np.ndarray) -> np.ndarray:
        """(N,) ray parameter t of the first hit of rays origin + t * directions (t >= 0), inf if missed.

        t is in units of each direction's length (a segment to a point P with direction P - origin is
        blocked when t < 1).
        """
        rot = self.rotation
        o = (np.asarray(origin, np.float64) - self.center) @ rot  # local = R^T (p - c)
        d = np.asarray(directions, np.float64).reshape(-1, 3) @ rot
        half = self.size / 2.0
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.kind == "box":
                t1 = (-half - o) / d
                t2 = (half - o) / d
                near = np.nanmax(np.minimum(t1, t2), axis=1)
                far = np.nanmin(np.maximum(t1, t2), axis=1)
            else:
                a = d[:, 0] ** 2 + d[:, 2] ** 2
                b = 2.0 * (o[0] * d[:, 0] + o[2] * d[:, 2])
                c = o[0] ** 2 + o[2] ** 2 - half[0] ** 2
                disc = b * b - 4.0 * a * c
                root = np.sqrt(np.maximum(disc, 0.0))
                parallel = a < 1e-12
                side_near = np.where(parallel, np.where(c <= 0, -np.inf, np.inf), (-b - root) / (2 * a))
                side_far = np.where(parallel, np.where(c <= 0, np.inf, -np.inf), (-b + root) / (2 * a))
                side_near = np.where(~parallel & (disc < 0), np.inf, side_near)
                side_far = np.where(~parallel & (disc < 0), -np.inf, side_far)
                ty1 = (-half[1] - o[1]) / d[:, 1]
                ty2 = (half[1] - o[1]) / d[:, 1]
                flat = np.abs(d[:, 1]) < 1e-12
                inside_y = abs(o[1]) <= half[1]
                cap_near = np.where(flat, -np.inf if inside_y else np.inf, np.minimum(ty1, ty2))
                cap_far = np.where(flat, np.inf if inside_y else -np.inf, np.maximum(ty1, ty2))
                near = np.maximum(side_near, cap_near)
                far = np.minimum(side_far, cap_far)
        hit = (far >= np.maximum(near, 0.0)) & np.isfinite(far)
        return np.where(hit, np.maximum(near, 0.0), np.inf)


@dataclass(frozen=True, eq=False)
class Occluder:
    """A named object made of primitives (crate, table, pillar, ...), standing between camera and body."""

    name: str
    parts: tuple[Primitive, ...]

    def meshes(self) -> list[MeshSpec]:
        return [part.mesh() for part in self.parts]

    def corners(self) -> np.ndarray:
        return np.concatenate([part.corners() for part in self.parts])

    def intersect(self, origin: np.ndarray, directions: np.ndarray) -> np.ndarray:
        """(N,) first hit over all parts (see `Primitive.intersect`)."""
        return np.min(np.stack([part.intersect(origin, directions) for part in self.parts]), axis=0)

    @property
    def center(self) -> np.ndarray:
        return np.mean([part.center for part in self.parts], axis=0)


# ---- environment --------------------------------------------------------------------------------

ENVIRONMENT_KINDS = ("indoor", "outdoor", "studio")
DECAL_WINDOW, DECAL_DOOR, DECAL_PICTURE, DECAL_CABINET = range(4)


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


# ---- scene parameters ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SceneParams:
    """Everything random about one sample except the body: same params + same body = same image.

    Attributes:
        frame_hw: (H, W) of the virtual frame.
        fx, fy, cx, cy: frame intrinsics (pixels; pixel centres at integers).
        camera_pose: (4, 4) OpenGL camera-to-world pose.
        distance, elevation_deg, azimuth_deg, roll_deg, hfov_deg: the draws behind the camera (record).
        truncated: whether the framing was drawn to push part of the body out of the frame.
        lights: lights of the render (world- or camera-attached).
        environment: background.
        occluders: objects between the camera and the body.
        outfit: the person's colours.
    """

    frame_hw: tuple[int, int]
    fx: float
    fy: float
    cx: float
    cy: float
    camera_pose: np.ndarray
    lights: tuple[Light, ...]
    environment: Environment
    occluders: tuple[Occluder, ...]
    outfit: Outfit
    distance: float = 0.0
    elevation_deg: float = 0.0
    azimuth_deg: float = 0.0
    roll_deg: float = 0.0
    hfov_deg: float = 0.0
    truncated: bool = False

    def frame_camera(self) -> Camera:
        """The camera of the whole virtual frame."""
        return Camera(
            width=self.frame_hw[1],
            height=self.frame_hw[0],
            fx=self.fx,
            fy=self.fy,
            cx=self.cx,
            cy=self.cy,
            pose=self.camera_pose,
            znear=0.05,
            zfar=500.0,
        )

    @property
    def key_light_direction(self) -> np.ndarray:
        """(3,) world direction of travel of the first light (shadows)."""
        return self.lights[0].world_direction(self.camera_pose) if self.lights else np.array([0.0, -1.0, 0.0])


@dataclass(frozen=True)
class SceneConfig:
    """Distributions of `SceneSampler` (ranges are uniform unless stated)."""

    frame_hw: tuple[int, int] = BEDLAM_FRAME_HW  # landscape virtual frame (H, W)
    portrait_prob: float = 0.1  # BEDLAM close-up scenes: the frame turned to portrait
    distance: tuple[float, float] = (2.5, 8.0)  # camera to body centre (m)
    elevation_deg: tuple[float, float] = (-10.0, 35.0)  # camera above (+) / below (-) the body centre
    hfov_deg: tuple[float, float] = (40.0, 70.0)  # horizontal field of view of the landscape frame
    roll_std_deg: float = 3.0  # camera roll, Gaussian
    roll_max_deg: float = 8.0
    min_camera_height: float = 0.3  # above the floor (m)
    truncation_prob: float = 0.2  # part of the body pushed out of the frame
    truncation_fraction: tuple[float, float] = (0.1, 0.45)  # of the body's image extent
    occluder_count_probs: tuple[float, ...] = (0.5, 0.25, 0.15, 0.1)  # P(0), P(1), P(2), P(3)
    max_occluder_overlap: float = 0.6  # of the person's image bbox hidden by one occluder's bbox
    environment_probs: tuple[float, float, float] = (0.45, 0.35, 0.2)  # indoor, outdoor, studio
    criteria: SelectionCriteria | None = SelectionCriteria()  # camera redrawn until res and j16 pass
    max_tries: int = 30


OCCLUDER_KINDS = ("crate", "table", "low_wall", "pillar", "barrel", "chair", "panel", "bush")
_OCCLUDER_PROBS = (0.2, 0.12, 0.16, 0.1, 0.12, 0.1, 0.12, 0.08)


class SceneSampler:
    """Draws `SceneParams` for bodies; seeded.

    `sample(vertices, joints)` draws from one stream (`seed`); `sample(..., index=i)` draws from a
    generator seeded by (seed, i) only, so sample i is the same whichever worker makes it and in
    whatever order (parallel, resumable generation).

    With `config.criteria`, the camera is redrawn (up to `max_tries` times) until the person passes the
    resolution and in-frame-joint criteria, which are known before rendering; occlusion is left to the
    draw (its `overlap` value is reported by `render_sample`).
    """

    def __init__(self, seed: int = 0, config: SceneConfig = SceneConfig()):
        self.seed = int(seed)
        self.config = config
        self._rng = np.random.default_rng(self.seed)

    def rng_for(self, index: int | None) -> np.random.Generator:
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
        camera = None
        for _ in range(max(1, self.config.max_tries)):
            camera = self._sample_camera(rng, probe, joints[:NUM_BODY_JOINTS])
            if self._passes(camera, probe, joints[:NUM_BODY_JOINTS]):
                break
        assert camera is not None
        frame_hw, fx, pose, record = camera
        env_kind = str(
            rng.choice(
                ENVIRONMENT_KINDS, p=np.asarray(self.config.environment_probs) / sum(self.config.environment_probs)
            )
        )
        lights, light_rgb = self._sample_lights(rng, env_kind, record["azimuth_deg"])
        environment = self._sample_environment(rng, env_kind, vertices, pose, light_rgb)
        occluders = self._sample_occluders(rng, vertices, _frame_camera(frame_hw, fx, pose), environment)
        return SceneParams(
            frame_hw=frame_hw,
            fx=fx,
            fy=fx,
            cx=(frame_hw[1] - 1) / 2.0,
            cy=(frame_hw[0] - 1) / 2.0,
            camera_pose=pose,
            lights=lights,
            environment=environment,
            occluders=occluders,
            outfit=sample_outfit(rng),
            **record,
        )

    # -- camera --------------------------------------------------------------------------------------

    def _passes(self, camera, probe: np.ndarray, joints: np.ndarray) -> bool:
        criteria = self.config.criteria
        if criteria is None:
            return True
        frame_hw, fx, pose, _ = camera
        cam = _frame_camera(frame_hw, fx, pose)
        if joints_in_frame(cam.project(joints), frame_hw).sum() < criteria.min_number_of_visible_joints:
            return False
        tight = tight_bbox(cam.project(probe), frame_hw)
        if tight is None:
            return False
        window = crop_window(tight, frame_hw, criteria.scale_factor)
        x1, y1, x2, y2 = window.bbox
        return max(x2 - x1, y2 - y1) > criteria.resolution_threshold

    def _sample_camera(self, rng: np.random.Generator, probe: np.ndarray, joints: np.ndarray):
        cfg = self.config
        height, width = cfg.frame_hw
        hfov = rng.uniform(*cfg.hfov_deg)
        fx = (max(height, width) / 2.0) / math.tan(math.radians(hfov) / 2.0)
        if rng.random() < cfg.portrait_prob:
            height, width = max(height, width), min(height, width)
        frame_hw = (int(height), int(width))
        distance = rng.uniform(*cfg.distance)
        elevation = rng.uniform(*cfg.elevation_deg)
        azimuth = rng.uniform(0.0, 360.0)
        roll = float(np.clip(rng.normal(0.0, cfg.roll_std_deg), -cfg.roll_max_deg, cfg.roll_max_deg))
        truncate = rng.random() < cfg.truncation_prob
        centre = (probe.min(axis=0) + probe.max(axis=0)) / 2.0
        floor_y = float(probe[:, 1].min())

        def look(distance: float, elevation: float) -> tuple[np.ndarray, float]:
            lowest = floor_y + cfg.min_camera_height
            if centre[1] + distance * math.sin(math.radians(elevation)) < lowest:
                elevation = math.degrees(math.asin(np.clip((lowest - centre[1]) / distance, -1.0, 1.0)))
            pose = np.eye(4)
            pose[:3, :3] = orbit_rotation(azimuth, elevation) @ _rotation_z(math.radians(roll))
            pose[:3, 3] = centre + distance * pose[:3, :3][:, 2]
            return pose, elevation

        pose, elevation = look(distance, elevation)
        if not truncate:  # move back until the body fits in the frame with a small margin
            for _ in range(6):
                box = _projected_box(_frame_camera(frame_hw, fx, pose), probe)
                grow = max((box[2] - box[0]) / (0.92 * width), (box[3] - box[1]) / (0.92 * height))
                if grow <= 1.0:
                    break
                distance *= grow * 1.02
                pose, elevation = look(distance, elevation)
        cam = _frame_camera(frame_hw, fx, pose)
        box = _projected_box(cam, probe)
        centre_uv = cam.project(centre)
        box_w, box_h = box[2] - box[0], box[3] - box[1]
        # where the body's bbox goes in the frame: anywhere it fits, or partly out for truncation
        lo_u, hi_u = 0.02 * width - box[0], 0.98 * width - box[2]  # shifts keeping the box inside
        lo_v, hi_v = 0.02 * height - box[1], 0.98 * height - box[3]
        shift_u = rng.uniform(lo_u, hi_u) if hi_u > lo_u else 0.5 * (lo_u + hi_u)
        shift_v = rng.uniform(lo_v, hi_v) if hi_v > lo_v else 0.5 * (lo_v + hi_v)
        if truncate:
            side = rng.choice(["bottom", "top", "left", "right"], p=[0.5, 0.1, 0.2, 0.2])
            outside = rng.uniform(*cfg.truncation_fraction)
            if side == "bottom":
                shift_v = height - 0.5 + outside * box_h - box[3]
            elif side == "top":
                shift_v = -0.5 - outside * box_h - box[1]
            elif side == "left":
                shift_u = -0.5 - outside * box_w - box[0]
            else:
                shift_u = width - 0.5 + outside * box_w - box[2]
        target = centre_uv + np.array([shift_u, shift_v])
        # turn the camera about its centre so the body centre projects at `target`
        ray = np.array([(target[0] - cam.cx) / fx, -(target[1] - cam.cy) / fx, -1.0])
        pose = pose.copy()
        pose[:3, :3] = pose[:3, :3] @ _rotation_between(ray, np.array([0.0, 0.0, -1.0]))
        record = {
            "distance": float(distance),
            "elevation_deg": float(elevation),
            "azimuth_deg": float(azimuth),
            "roll_deg": roll,
            "hfov_deg": float(hfov),
            "truncated": bool(truncate),
        }
        return frame_hw, float(fx), pose, record

    # -- lights ---------------------------------------------------------------------------------------

    def _sample_lights(self, rng: np.random.Generator, env_kind: str, camera_azimuth_deg: float):
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

    # -- environment ---------------------------------------------------------------------------------

    def _sample_environment(
        self, rng: np.random.Generator, kind: str, vertices: np.ndarray, pose: np.ndarray, light_rgb: np.ndarray
    ) -> Environment:
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
            decals = _sample_decals(rng, room_center, room_half, ceiling, palette)
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

    # -- occluders -----------------------------------------------------------------------------------

    def _sample_occluders(
        self,
        rng: np.random.Generator,
        vertices: np.ndarray,
        camera: Camera,
        environment: Environment,
    ) -> tuple[Occluder, ...]:
        """0-3 objects standing on the floor between the camera and the body, not touching the body
        nor each other, each hiding at most `max_occluder_overlap` of the person's image bbox."""
        probs = np.asarray(self.config.occluder_count_probs, np.float64)
        count = int(rng.choice(len(probs), p=probs / probs.sum()))
        if count == 0:
            return ()
        floor_y = environment.floor_y
        body_xz = (vertices[:, [0, 2]].min(axis=0) + vertices[:, [0, 2]].max(axis=0)) / 2.0
        body_r = float(np.linalg.norm(vertices[:, [0, 2]] - body_xz, axis=1).max())
        body_box = _projected_box(camera, vertices[:: max(1, len(vertices) // 1500)])
        to_eye = camera.position[[0, 2]] - body_xz
        span = float(np.linalg.norm(to_eye))
        if span < 1e-6:
            return ()
        toward = to_eye / span
        across = np.array([-toward[1], toward[0]])
        placed: list[tuple[np.ndarray, float]] = []
        occluders = []
        palette = sample_palette(rng, 5)
        for _ in range(count):
            kind = str(rng.choice(OCCLUDER_KINDS, p=np.asarray(_OCCLUDER_PROBS) / sum(_OCCLUDER_PROBS)))
            parts_local, radius = _occluder_parts(rng, kind, palette)
            near = body_r + radius + 0.15
            far = span - radius - 0.7
            if far <= near:
                continue
            for attempt in range(4):  # move sideways until it hides little enough of the person
                fraction = rng.uniform(0.55, 0.9) if kind == "panel" else rng.uniform(0.05, 0.65)
                along = near + fraction * (far - near)
                lateral = float(np.clip(rng.normal(0.0, 0.45 + 0.3 * attempt), -2.0, 2.0))
                spot = body_xz + toward * along + across * lateral
                clear = np.linalg.norm(spot - body_xz) >= near and all(
                    np.linalg.norm(spot - other) >= radius + other_r + 0.05 for other, other_r in placed
                )
                if not clear:
                    continue
                yaw = math.atan2(toward[0], toward[1]) + rng.normal(0.0, 0.35)
                rotation = _rotation_y(yaw)
                parts = tuple(
                    Primitive(
                        prim_kind,
                        np.array([spot[0], floor_y, spot[1]]) + rotation @ np.asarray(offset),
                        size,
                        yaw,
                        texture,
                    )
                    for prim_kind, offset, size, texture in parts_local
                )
                occluder = Occluder(kind, parts)
                corners = occluder.corners()
                corners = corners[camera.depth(corners) > camera.znear]
                if len(corners) == 0:
                    continue
                if bbox_overlap(body_box, _projected_box(camera, corners)) <= self.config.max_occluder_overlap:
                    placed.append((spot, radius))
                    occluders.append(occluder)
                    break
        return tuple(occluders)


def _sample_decals(
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


def _occluder_parts(rng: np.random.Generator, kind: str, palette: np.ndarray):
    """Local parts [(primitive kind, offset from the floor point, size, texture)] and footprint radius."""
    wood = np.array([[0.55, 0.38, 0.22], [0.42, 0.28, 0.16], [0.65, 0.48, 0.3]]) * rng.uniform(0.7, 1.2)
    wood = np.clip(wood, 0, 1)

    def tex(kinds, colors=None, scale=(0.1, 0.6)):
        return sample_texture(rng, kinds, palette if colors is None else colors, scale)

    parts = []
    if kind == "crate":
        w, h, d = rng.uniform(0.4, 0.9), rng.uniform(0.35, 1.0), rng.uniform(0.4, 0.9)
        parts.append(
            ("box", (0, h / 2, 0), (w, h, d), tex(("planks", "plain", "stripes"), wood if rng.random() < 0.6 else None))
        )
        if rng.random() < 0.4:  # a second crate on top
            h2 = rng.uniform(0.3, 0.6)
            parts.append(
                ("box", (rng.uniform(-0.1, 0.1), h + h2 / 2, 0), (w * 0.8, h2, d * 0.8), tex(("planks", "plain"), wood))
            )
        radius = 0.5 * math.hypot(w, d)
    elif kind == "table":
        w, d, h = rng.uniform(0.8, 1.6), rng.uniform(0.6, 0.9), rng.uniform(0.7, 0.78)
        texture = tex(("planks", "plain"), wood if rng.random() < 0.7 else None)
        parts.append(("box", (0, h - 0.02, 0), (w, 0.04, d), texture))
        for sx in (-1, 1):
            for sz in (-1, 1):
                parts.append(
                    ("box", (sx * (w / 2 - 0.05), (h - 0.04) / 2, sz * (d / 2 - 0.05)), (0.05, h - 0.04, 0.05), texture)
                )
        radius = 0.5 * math.hypot(w, d)
    elif kind == "low_wall":
        w, h, d = rng.uniform(0.8, 2.2), rng.uniform(0.6, 1.3), rng.uniform(0.15, 0.5)
        parts.append(("box", (0, h / 2, 0), (w, h, d), tex(("tiles", "plain", "clouds", "stripes"))))
        radius = 0.5 * math.hypot(w, d)
    elif kind == "pillar":
        r, h = rng.uniform(0.1, 0.3), rng.uniform(2.4, 3.5)
        shape = "cylinder" if rng.random() < 0.6 else "box"
        parts.append((shape, (0, h / 2, 0), (2 * r, h, 2 * r), tex(("plain", "clouds", "tiles"))))
        radius = r * 1.42
    elif kind == "barrel":
        r, h = rng.uniform(0.2, 0.35), rng.uniform(0.6, 1.0)
        parts.append(("cylinder", (0, h / 2, 0), (2 * r, h, 2 * r), tex(("plain", "stripes", "clouds"))))
        radius = r
    elif kind == "chair":
        s, h = rng.uniform(0.4, 0.5), rng.uniform(0.42, 0.48)
        texture = tex(("plain", "planks"), wood if rng.random() < 0.5 else None)
        parts.append(("box", (0, h - 0.025, 0), (s, 0.05, s), texture))
        parts.append(("box", (0, h + 0.22, -s / 2 + 0.025), (s, 0.45, 0.05), texture))
        for sx in (-1, 1):
            for sz in (-1, 1):
                parts.append(
                    ("box", (sx * (s / 2 - 0.03), (h - 0.05) / 2, sz * (s / 2 - 0.03)), (0.04, h - 0.05, 0.04), texture)
                )
        radius = 0.75 * s
    elif kind == "panel":
        w, h, d = rng.uniform(0.4, 1.2), rng.uniform(1.4, 2.2), rng.uniform(0.03, 0.1)
        parts.append(("box", (0, h / 2, 0), (w, h, d), tex(("plain", "stripes", "checker", "gradient", "blobs"))))
        radius = 0.5 * math.hypot(w, d)
    else:  # bush / planter
        r, h = rng.uniform(0.25, 0.5), rng.uniform(0.4, 0.9)
        green = np.clip(
            np.array([[0.2, 0.38, 0.15], [0.12, 0.26, 0.1], [0.3, 0.45, 0.2]]) * rng.uniform(0.7, 1.3), 0, 1
        )
        parts.append(
            (
                "cylinder",
                (0, h / 2, 0),
                (2 * r, h, 2 * r),
                Texture2D("clouds", green, scale=0.15, seed=int(rng.integers(2**31 - 1))),
            )
        )
        radius = r
    return parts, radius


def _frame_camera(frame_hw: tuple[int, int], fx: float, pose: np.ndarray) -> Camera:
    return Camera(
        width=frame_hw[1],
        height=frame_hw[0],
        fx=fx,
        fy=fx,
        cx=(frame_hw[1] - 1) / 2.0,
        cy=(frame_hw[0] - 1) / 2.0,
        pose=pose,
        znear=0.05,
        zfar=500.0,
    )


def _projected_box(camera: Camera, points: np.ndarray) -> np.ndarray:
    """(4,) bbox of all projected points (in front of the camera), in or out of the frame."""
    uv = camera.project(points)
    uv = uv[np.isfinite(uv).all(axis=1)]
    if len(uv) == 0:
        return np.array([0.0, 0.0, 0.0, 0.0])
    return np.concatenate([uv.min(axis=0), uv.max(axis=0)])


# ---- rendering ----------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class PosedBody:
    """One posed body in the world (SMPL-X frame, metres).

    Attributes:
        vertices: (V, 3) posed vertices.
        joints: (J >= 22, 3) posed joints (SMPL-X order; the first 22 are the body joints).
        faces: (F, 3) triangles.
        global_orient: (3,) axis-angle global orientation of the forward pass.
        transl: (3,) translation of the forward pass (default 0).
    """

    vertices: np.ndarray
    joints: np.ndarray
    faces: np.ndarray
    global_orient: np.ndarray
    transl: np.ndarray = field(default_factory=lambda: np.zeros(3))

    def __post_init__(self) -> None:
        def arr(value, dtype):
            value = value.detach().cpu().numpy() if hasattr(value, "detach") else value
            return np.asarray(value, dtype=dtype)

        object.__setattr__(self, "vertices", arr(self.vertices, np.float32))
        object.__setattr__(self, "joints", arr(self.joints, np.float64))
        object.__setattr__(self, "faces", arr(self.faces, np.int64))
        object.__setattr__(self, "global_orient", arr(self.global_orient, np.float64).reshape(3))
        object.__setattr__(self, "transl", arr(self.transl, np.float64).reshape(3))
        if self.vertices.ndim != 2 or self.vertices.shape[1] != 3:
            raise ValueError(f"vertices: expected (V, 3), got {self.vertices.shape}")
        if self.joints.ndim != 2 or self.joints.shape[0] < NUM_BODY_JOINTS or self.joints.shape[1] != 3:
            raise ValueError(f"joints: expected (>= 22, 3), got {self.joints.shape}")

    @classmethod
    def from_output(cls, output, index: int, faces: np.ndarray, poses, transl=None) -> PosedBody:
        """Body `index` of a `BodyModelOutput` forwarded with `poses` ((B, J, 3) axis-angles; the global
        orientation is poses[index, 0]) and `transl` ((B, 3) or None)."""
        pose = poses[index]
        pose = pose.detach().cpu().numpy() if hasattr(pose, "detach") else np.asarray(pose)
        t = np.zeros(3) if transl is None else transl[index]
        return cls(output.vertices[index], output.joints[index], faces, np.asarray(pose).reshape(-1, 3)[0], t)


def create_scene_renderer(out_hw: tuple[int, int] = CROP_HW, supersample: int = 1, backend: str = "auto"):
    """A renderer sized for `render_sample` (one framebuffer size: no OpenGL context is recreated)."""
    from poseembroider.rendering import create_renderer

    return create_renderer(out_hw[1] * supersample, out_hw[0] * supersample, backend=backend)


@dataclass(frozen=True, eq=False)
class SceneRender:
    """One rendered window: image (H, W, 3) uint8 (padding zeroed), and for the (supersampled) render:
    depth (sH, sW) float32 (0 = background), alpha (sH, sW) coverage of body and occluders."""

    image: np.ndarray
    depth: np.ndarray
    alpha: np.ndarray
    supersample: int


def _background(
    environment: Environment,
    camera: Camera,
    light_direction: np.ndarray,
    casters: np.ndarray,
    blur_pixels: float,
    out_hw: tuple[int, int],
) -> np.ndarray:
    """(H, W, 3) float32 background seen by `camera` (output size), evaluated at half resolution."""
    out_h, out_w = out_hw
    eval_h, eval_w = (out_h + 1) // 2, (out_w + 1) // 2
    step_x, step_y = out_w / eval_w, out_h / eval_h
    cols = (np.arange(eval_w, dtype=np.float64) + 0.5) * step_x - 0.5
    rows = (np.arange(eval_h, dtype=np.float64) + 0.5) * step_y - 0.5
    # rays in OpenGL camera coordinates, then world
    dx = (cols - camera.cx) / camera.fx
    dy = -(rows - camera.cy) / camera.fy
    rays = np.empty((eval_h, eval_w, 3))
    rays[..., 0] = dx[None, :]
    rays[..., 1] = dy[:, None]
    rays[..., 2] = -1.0
    rays = rays.reshape(-1, 3) @ camera.pose[:3, :3].T
    rays /= np.linalg.norm(rays, axis=1, keepdims=True)
    pixel_angle = 1.0 / min(camera.fx / step_x, camera.fy / step_y)
    colors = environment.shade(camera.position, rays, pixel_angle, light_direction, casters)
    small = (colors.reshape(eval_h, eval_w, 3) * 255.0 + 0.5).astype(np.uint8)
    picture = Image.fromarray(small)
    sigma = blur_pixels / step_x
    if sigma > 0.35:
        picture = picture.filter(ImageFilter.GaussianBlur(sigma))
    if picture.size != (out_w, out_h):
        picture = picture.resize((out_w, out_h), Image.BILINEAR)
    return np.asarray(picture, dtype=np.float32) / 255.0


# joints whose soft blobs make the body's shadow: pelvis, spine2, neck, head, knees, ankles, feet,
# shoulders, elbows, wrists (radius in metres: the trunk is wider than the limbs)
_SHADOW_JOINTS = np.array([0, 6, 12, 15, 4, 5, 7, 8, 10, 11, 16, 17, 18, 19, 20, 21])
_SHADOW_RADII = np.array([0.16, 0.16, 0.1, 0.1, 0.08, 0.08, 0.06, 0.06, 0.06, 0.06, 0.1, 0.1, 0.06, 0.06, 0.05, 0.05])


def _shadow_casters(body: PosedBody, occluders: Sequence[Occluder]) -> np.ndarray:
    """(K, 4) rows (x, y, z, radius) of the blobs casting soft shadows on the floor."""
    rows = [np.concatenate([body.joints[_SHADOW_JOINTS], _SHADOW_RADII[:, None]], axis=1)]
    for occluder in occluders:
        for part in occluder.parts:
            bottom = part.center - np.array([0.0, part.size[1] / 2.0, 0.0])
            rows.append(
                np.array([[part.center[0], bottom[1] + 0.05, part.center[2], 0.35 * max(part.size[0], part.size[2])]])
            )
    return np.concatenate(rows).astype(np.float64)


def _merged_mesh(parts: Sequence[Primitive]) -> MeshSpec:
    arrays = [part.mesh_arrays() for part in parts]
    offsets = np.cumsum([0] + [len(v) for v, _, _ in arrays[:-1]])
    vertices = np.concatenate([v for v, _, _ in arrays])
    faces = np.concatenate([f + o for (_, f, _), o in zip(arrays, offsets, strict=True)])
    colors = np.concatenate([c for _, _, c in arrays])
    return MeshSpec(vertices, faces, colors, smooth=True)


def _lit_mesh(mesh: MeshSpec, camera: Camera, lights: Sequence[Light]) -> MeshSpec:
    """Smooth `mesh` with its colours lit per vertex (`shade_vertices`), to draw unlit: the software
    rasteriser then skips the per-pixel BRDF, two thirds of the cost of a lit render. (The scene's
    meshes are all smooth: a flat-shaded one would need per-face normals.)"""
    normals = vertex_normals(mesh.vertices, mesh.faces)
    colors = shade_vertices(mesh.vertices, normals, mesh.vertex_rgba(), camera.pose, lights)
    return MeshSpec(mesh.vertices, mesh.faces, colors, smooth=mesh.smooth, double_sided=mesh.double_sided)


def _box_downsample(image: np.ndarray, factor: int) -> np.ndarray:
    """Mean over factor x factor blocks of (H * f, W * f, ...) -> (H, W, ...), as s^2 strided sums
    (several times faster than `reshape(...).mean(axis=(1, 3))`)."""
    total = np.zeros_like(image[::factor, ::factor], dtype=np.float32)
    for row in range(factor):
        for col in range(factor):
            total += image[row::factor, col::factor]
    return total / (factor * factor)


def render_scene(
    renderer,
    body: PosedBody,
    body_colors: np.ndarray,
    params: SceneParams,
    window: CropWindow,
    supersample: int = 1,
) -> SceneRender:
    """Render the window `window` of the frame of `params`: body, occluders, environment.

    One OpenGL render at `supersample` x the window's output size (box-filtered down when > 1), the
    environment shaded per pixel ray and blurred by `environment.blur` frame pixels (scaled to the
    window), the padding outside the frame content zeroed.
    """
    frame_camera = params.frame_camera()
    camera = window.camera(frame_camera, supersample)
    meshes = [MeshSpec(body.vertices, body.faces, body_colors)]
    if params.occluders:  # one mesh for all occluder parts: one draw call
        meshes.append(_merged_mesh([part for occluder in params.occluders for part in occluder.parts]))
    layers = renderer.render_layers([_lit_mesh(mesh, camera, params.lights) for mesh in meshes], camera, unlit=True)
    color, alpha = layers.color, layers.alpha
    depth = layers.depth if layers.depth is not None else np.zeros(alpha.shape, np.float32)
    out_h, out_w = window.out_hw
    if supersample > 1:
        color = _box_downsample(color, supersample)
        alpha_out = _box_downsample(alpha, supersample)
    else:
        alpha_out = alpha
    out_camera = window.camera(frame_camera, 1)
    blur = params.environment.blur * window.scale[0]
    background = _background(
        params.environment,
        out_camera,
        params.key_light_direction,
        _shadow_casters(body, params.occluders),
        blur,
        (out_h, out_w),
    )
    image = color + background * (1.0 - alpha_out[..., None])
    image *= window.content_weights()[..., None]
    image = np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return SceneRender(image=image, depth=depth, alpha=alpha, supersample=supersample)


@dataclass(frozen=True, eq=False)
class RenderedSample:
    """One synthetic sample, as the real pipeline records a BEDLAM person.

    Attributes:
        image: (256, 192, 3) uint8 crop (bbox, zero-padded to 4:3, resized).
        bbox: (4,) int64 [x1, y1, x2, y2] scaled crop box in full-frame pixels (the caches' `bboxes`).
        tight_bbox: (4,) float64 tight bbox of the in-frame projected vertices (frame pixels).
        padding: (4,) int64 zero padding (left, top, right, bottom) in frame pixels.
        frame_hw: (H, W) of the virtual frame.
        K: (3, 3) frame intrinsics (OpenCV), K_crop: (3, 3) intrinsics of the crop image.
        R_wc, t_wc: world-to-camera rotation (3, 3) and translation (3,), OpenCV camera frame.
        joints_2d: (22, 2) body joints in crop pixels; joints_2d_frame: (22, 2) in frame pixels.
        in_frame: (22,) bool, joint projects inside the frame (original visibility rule; all True =
            `full_human_visibility`).
        unoccluded: (22,) bool, in frame and the line of sight from the camera to the joint crosses no
            occluder (exact, analytic; self-occlusion does not count).
        visible: (22,) bool, in frame and no surface (occluder or another body part) lies more than
            `VISIBILITY_TOLERANCE` m in front of the joint on its pixel of the depth buffer
            (approximate: the tolerance stands for the body's own thickness around the joint).
        cam_rot: (3,) axis-angle, R(cam_rot) @ R(global_orient_normalized) = root orientation in the
            OpenCV camera frame (`crops.camera_rotation`).
        cam_transl: (3,) SMPL-X `transl` that puts the body, posed with that camera-frame orientation,
            at its place in the OpenCV camera frame (the caches' second `camera_transformation` item).
        global_orient_normalized: (3,) hip-normalised global orientation (y-up; heading removed).
        criteria: values and verdicts of the selection criteria (`SelectionCriteria.evaluate`) and
            `full_human_visibility`.
    """

    image: np.ndarray
    bbox: np.ndarray
    tight_bbox: np.ndarray
    padding: np.ndarray
    frame_hw: tuple[int, int]
    K: np.ndarray
    K_crop: np.ndarray
    R_wc: np.ndarray
    t_wc: np.ndarray
    joints_2d: np.ndarray
    joints_2d_frame: np.ndarray
    in_frame: np.ndarray
    unoccluded: np.ndarray
    visible: np.ndarray
    cam_rot: np.ndarray
    cam_transl: np.ndarray
    global_orient_normalized: np.ndarray
    criteria: dict

    @property
    def full_human_visibility(self) -> bool:
        return bool(self.in_frame.all())

    @property
    def camera_transformation(self) -> tuple[np.ndarray, np.ndarray]:
        """(cam_rot, transl), the caches' `camera_transformation` entry."""
        return self.cam_rot, self.cam_transl


VISIBILITY_TOLERANCE = 0.2
"""Metres a surface may lie in front of a joint on its pixel and the joint still count as `visible`."""


def _world_to_camera_cv(pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rotation = OPENGL_TO_OPENCV @ pose[:3, :3].T
    return rotation, -rotation @ pose[:3, 3]


def _occluder_bboxes(camera: Camera, occluders: Sequence[Occluder], frame_hw, body_depth: float) -> list[np.ndarray]:
    """Frame bboxes of the occluders nearer than the body: their projected corners, clipped to the frame.

    (Corners, not in-frame points: an occluder's few corners may all lie outside a frame it covers.)
    """
    height, width = frame_hw
    boxes = []
    for occluder in occluders:
        if camera.depth(occluder.center) >= body_depth:  # only what is nearer than the person counts
            continue
        corners = occluder.corners()  # the projected bbox of a box is that of its corners
        corners = corners[camera.depth(corners) > camera.znear]
        if len(corners) == 0:
            continue
        box = _projected_box(camera, corners)
        box = np.clip(box, [-0.5, -0.5, -0.5, -0.5], [width - 0.5, height - 0.5, width - 0.5, height - 0.5])
        if box[2] > box[0] and box[3] > box[1]:
            boxes.append(box)
    return boxes


@dataclass(frozen=True, eq=False)
class Framing:
    """Where a body sits in the frame of a scene, known before rendering (all analytic).

    Attributes:
        camera: the frame camera.
        tight_bbox: (4,) tight bbox of the in-frame projected vertices.
        window: the crop window (scaled bbox, clipped, padded to 4:3).
        joints_frame: (22, 2) projected body joints (frame pixels).
        in_frame: (22,) bool, the original's in-frame rule.
        criteria: `SelectionCriteria.evaluate` values and verdicts, plus `full_human_visibility`.
    """

    camera: Camera
    tight_bbox: np.ndarray
    window: CropWindow
    joints_frame: np.ndarray
    in_frame: np.ndarray
    criteria: dict


def frame_body(
    body: PosedBody,
    params: SceneParams,
    criteria: SelectionCriteria = DEFAULT_CRITERIA,
    out_hw: tuple[int, int] = CROP_HW,
) -> Framing:
    """Crop window, in-frame joints and selection criteria of `body` in the scene `params`, without
    rendering: a generator can reject a scene (e.g. `criteria["selected"]` False) before paying for
    its render. `render_sample` reports the same values."""
    frame_hw = tuple(params.frame_hw)
    camera = params.frame_camera()
    tight = tight_bbox(camera.project(body.vertices), frame_hw)
    if tight is None:
        raise ValueError("no vertex of the body projects inside the frame: the params do not frame this body")
    window = crop_window(tight, frame_hw, criteria.scale_factor, out_hw)
    joints = body.joints[:NUM_BODY_JOINTS]
    joints_frame = camera.project(joints)
    in_frame = joints_in_frame(joints_frame, frame_hw)
    body_depth = float(camera.depth(joints[0]))
    overlap = max(
        (bbox_overlap(tight, box) for box in _occluder_bboxes(camera, params.occluders, frame_hw, body_depth)),
        default=0.0,
    )
    x1, y1, x2, y2 = window.bbox
    values = criteria.evaluate(overlap, max(x2 - x1, y2 - y1), int(in_frame.sum()))
    values["full_human_visibility"] = bool(in_frame.all())
    return Framing(camera, np.asarray(tight, np.float64), window, joints_frame, in_frame, values)


def render_sample(
    renderer,
    body: PosedBody,
    params: SceneParams,
    surface: BodySurfaceMap,
    *,
    criteria: SelectionCriteria = DEFAULT_CRITERIA,
    out_hw: tuple[int, int] = CROP_HW,
    supersample: int = 1,
    framing: Framing | None = None,
) -> RenderedSample:
    """Render one sample: the person crop of the virtual frame and everything the caches record.

    Args:
        renderer: from `create_scene_renderer(out_hw, supersample)` (any size works; a matching one
            avoids recreating the OpenGL context).
        body: the posed body (world, SMPL-X frame).
        params: from `SceneSampler.sample`.
        surface: the body model's `BodySurfaceMap` (clothing regions), computed once.
        criteria: scale factor of the crop and thresholds of the reported criteria.
        out_hw: crop size (H, W).
        supersample: render at s x the crop size and box-filter (anti-aliased edges, s^2 the pixels).
        framing: `frame_body(body, params, criteria, out_hw)` when the caller computed it already.
    """
    if surface.num_vertices != len(body.vertices):
        raise ValueError(
            f"surface map has {surface.num_vertices} vertices, the body {len(body.vertices)}: "
            "use the BodySurfaceMap of the body model that posed it"
        )
    if framing is None:
        framing = frame_body(body, params, criteria, out_hw)
    camera, window, in_frame = framing.camera, framing.window, framing.in_frame
    scene = render_scene(renderer, body, paint_body(surface, params.outfit), params, window, supersample)

    joints = body.joints[:NUM_BODY_JOINTS]
    joints_crop = window.frame_to_crop(framing.joints_frame)

    # line of sight camera -> joint against the occluders (t < 1: something in between)
    directions = joints - camera.position
    blocked = np.zeros(NUM_BODY_JOINTS, bool)
    for occluder in params.occluders:
        blocked |= occluder.intersect(camera.position, directions) < 1.0
    unoccluded = in_frame & ~blocked

    # depth-buffer test on the (supersampled) render
    s = scene.supersample
    pix = np.rint((joints_crop + 0.5) * s - 0.5).astype(np.int64)
    pix[:, 0] = np.clip(pix[:, 0], 0, scene.depth.shape[1] - 1)
    pix[:, 1] = np.clip(pix[:, 1], 0, scene.depth.shape[0] - 1)
    surface_depth = scene.depth[pix[:, 1], pix[:, 0]]
    joint_depth = camera.depth(joints)
    visible = in_frame & ((surface_depth <= 0) | (surface_depth >= joint_depth - VISIBILITY_TOLERANCE))

    cam_rot, normalized = camera_rotation(body.global_orient, camera.pose, joints[1] - joints[2])
    rotation, translation = _world_to_camera_cv(camera.pose)
    pelvis_cam = rotation @ joints[0] + translation
    rest_pelvis = joints[0] - body.transl  # the SMPL-X root rotates about the rest pelvis
    cam_transl = pelvis_cam - rest_pelvis

    return RenderedSample(
        image=scene.image,
        bbox=np.asarray(window.bbox, np.int64),
        tight_bbox=framing.tight_bbox,
        padding=np.asarray(window.padding, np.int64),
        frame_hw=tuple(params.frame_hw),
        K=camera.intrinsics_matrix,
        K_crop=window.camera(camera, 1).intrinsics_matrix,
        R_wc=rotation,
        t_wc=translation,
        joints_2d=joints_crop,
        joints_2d_frame=framing.joints_frame,
        in_frame=in_frame,
        unoccluded=unoccluded,
        visible=visible,
        cam_rot=cam_rot,
        cam_transl=cam_transl,
        global_orient_normalized=normalized,
        criteria=framing.criteria,
    )


def render_samples(
    renderer,
    bodies: Sequence[PosedBody],
    params: Sequence[SceneParams],
    surface: BodySurfaceMap,
    **kwargs,
) -> list[RenderedSample]:
    """`render_sample` over paired bodies and params (one render each)."""
    if len(bodies) != len(params):
        raise ValueError(f"got {len(bodies)} bodies and {len(params)} params")
    return [render_sample(renderer, body, p, surface, **kwargs) for body, p in zip(bodies, params, strict=True)]


def render_frame(
    renderer, body: PosedBody, params: SceneParams, surface: BodySurfaceMap, scale: float = 1.0
) -> np.ndarray:
    """(H, W, 3) uint8 render of the whole virtual frame, optionally at `scale` x its resolution.

    The slow path the crops avoid: a reference for tests and the benchmark baseline. A renderer of
    another size is resized to the frame (costly with OSMesa: keep one renderer per size).
    """
    height, width = (max(1, round(v * scale)) for v in params.frame_hw)
    window = CropWindow(
        bbox=(0, 0, params.frame_hw[1], params.frame_hw[0]),
        padding=(0, 0, 0, 0),
        frame_hw=tuple(params.frame_hw),
        out_hw=(height, width),
    )
    colors = paint_body(surface, params.outfit)
    return render_scene(renderer, body, colors, params, window, 1).image
